"""What was indexed from where: the index's record of sources, hashes and items.

A small SQLite file beside the store. It lets re-indexing skip unchanged files
(same size and mtime, or same content hash), replace the items of changed ones
and prune the items of deleted ones. It is written after the store, so a crash
in between only means some work is redone.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NO_STAT", "FileStat", "Manifest", "SourceRecord", "file_stat"]

#: A file's (size, mtime_ns) as the manifest records it; (None, None) when there is none.
FileStat = tuple[int | None, int | None]
NO_STAT: FileStat = (None, None)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    source TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    size INTEGER,
    mtime_ns INTEGER,
    items TEXT NOT NULL,
    indexed_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sources_hash ON sources(hash);
"""


@dataclass(frozen=True)
class SourceRecord:
    """One indexed source: its content hash, file stat and the ids of its items."""

    source: str
    hash: str
    size: int | None
    mtime_ns: int | None
    items: tuple[str, ...]


class Manifest:
    """Sources indexed so far, in ``<index>/manifest.sqlite``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def get(self, source: str) -> SourceRecord | None:
        """The record for ``source``, if indexed."""
        row = self._db.execute(
            "SELECT source, hash, size, mtime_ns, items FROM sources WHERE source = ?", (source,)
        ).fetchone()
        return _record(row) if row else None

    def is_current(self, source: str) -> bool:
        """True when the file ``source`` has the size and mtime it had when indexed."""
        record = self.get(source)
        return record is not None and file_stat(source) == (record.size, record.mtime_ns)

    def same_bytes(self, source: str, digest: str) -> bool:
        """True (and the source's new file stat recorded) when it was indexed from these bytes.

        A touched but unchanged file is then skipped by its stat next time.
        """
        record = self.get(source)
        if record is None or record.hash != digest:
            return False
        self.put(SourceRecord(source, digest, *file_stat(source), record.items))
        return True

    def missing(self, roots: Iterable[str] = ()) -> list[SourceRecord]:
        """Indexed files that no longer exist (under one of ``roots``, if given)."""
        under = [str(Path(root).expanduser().resolve()) for root in roots]
        return [
            record
            for record in self
            if "://" not in record.source
            and not Path(record.source).exists()
            and (not under or any(_under(record.source, root) for root in under))
        ]

    def by_hash(self, digest: str) -> list[SourceRecord]:
        """Sources whose content has this hash."""
        rows = self._db.execute(
            "SELECT source, hash, size, mtime_ns, items FROM sources WHERE hash = ?", (digest,)
        ).fetchall()
        return [_record(row) for row in rows]

    def put(self, record: SourceRecord) -> None:
        """Insert or replace the record of a source."""
        self.put_many([record])

    def put_many(self, records: list[SourceRecord]) -> None:
        """Insert or replace many records in one transaction."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (r.source, r.hash, r.size, r.mtime_ns, json.dumps(list(r.items)), time.time())
                    for r in records
                ],
            )

    def remove(self, sources: list[str]) -> None:
        """Forget sources."""
        with self._db:
            self._db.executemany("DELETE FROM sources WHERE source = ?", [(s,) for s in sources])

    def __iter__(self) -> Iterator[SourceRecord]:
        rows = self._db.execute("SELECT source, hash, size, mtime_ns, items FROM sources")
        return (_record(row) for row in rows.fetchall())

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM sources").fetchone()[0])

    def clear(self) -> None:
        """Forget everything (before a deliberate re-embed)."""
        with self._db:
            self._db.execute("DELETE FROM sources")


def file_stat(path: str) -> FileStat:
    """(size, mtime in ns) of a file; (None, None) for a URL or an unreadable path."""
    try:
        stat = os.stat(path)
    except OSError:
        return NO_STAT
    return stat.st_size, stat.st_mtime_ns


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _record(row: tuple) -> SourceRecord:
    source, digest, size, mtime_ns, items = row
    return SourceRecord(source, digest, size, mtime_ns, tuple(json.loads(items)))
