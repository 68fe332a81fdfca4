"""Which ids a LanceDB table holds, as one store handle last saw them.

Lets upsert tell fresh rows (a cheap append) from replacements (merge_insert) without
scanning the id column on every batch, which made loading quadratic (20k rows: 7 s of
10 s in the probe)::

    known = KnownIds()
    fresh = not any(i in known.get(table) for i in ids)
    before = table.version
    table.add(rows)
    known.wrote(table, before, 1, added=ids)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lancedb.table import Table

__all__ = ["KnownIds"]


class KnownIds:
    """The ids in a table at one version, kept up to date by this handle's own writes."""

    def __init__(self) -> None:
        self._ids: set[str] | None = None
        self._version: int | None = None

    def get(self, table: Table) -> set[str]:
        """Every id in the table, read once and then kept up to date by this store's writes.

        Re-read when the table version is not the one this store last wrote or read, so a
        handle that sees another writer's commit does not trust a stale set.
        """
        version = table.version
        if self._ids is None or self._version != version:
            ids = table.search().select(["id"]).limit(None).to_arrow().column("id")
            self._ids = set(ids.to_pylist())
            self._version = version
        return self._ids

    def wrote(
        self,
        table: Table,
        before: int,
        commits: int,
        added: Sequence[str] = (),
        removed: Sequence[str] = (),
    ) -> None:
        """Bring the set from version ``before`` to the one this store just committed.

        A version jump other than our own ``commits`` means another writer committed in
        between (LanceDB moves a handle to the latest version when it writes): forget the set.
        """
        if self._ids is None or self._version != before or table.version != before + commits:
            self._ids = None
            return
        self._ids.difference_update(removed)
        self._ids.update(added)
        self._version = before + commits

    def forget(self) -> None:
        """Re-read the ids at the next :meth:`get` (say after a write that may not have landed)."""
        self._ids = None
