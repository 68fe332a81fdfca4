"""The embedded default store: one LanceDB table on local disk.

One row per item (layout in :mod:`~mmrag.stores.lance_schema`): item fields and the metadata
keys worth filtering fast are typed columns, the whole metadata is JSON, and each vector
space is a nullable vector column. Filters on typed columns are pushed down to LanceDB as
SQL (prefilter). Filters on free-form metadata keys are evaluated in Python on an
over-fetched candidate set, so they are correct but slower on large, selective queries.

Indexes (full-text, scalar and one IVF_SQ per space; see :mod:`~mmrag.stores.lance_index`)
are built and refreshed by :meth:`LanceStore.optimize`; rows written since are searched
exactly, so results are always current. Writes assume one writer process; every write is
an atomic LanceDB version.

Example::

    store = LanceStore(Path(".mmrag/store"), {"clip": 512, "text": 384})
    store = LanceStore.from_url(parse_store_url("lance:/data/store", default_dir=d), spaces)
    store.upsert(items, {"clip": clip_vectors})
    hits = store.query("clip", query_vector, k=10, where={"kind": "image"})
"""

from __future__ import annotations

from collections.abc import Coroutine, Iterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pyarrow as pa

from ..errors import ConfigError, StoreError
from ..lazy import defer_init
from ..types import Hit, Item, Where
from . import filters as F
from .base import MultiSpace, query_multivector, query_vector
from .fts import fts_query
from .lance_ids import KnownIds
from .lance_index import IndexPolicy, ensure_fts, optimize_table, probes_per_space
from .lance_multi import multi_search, read_multivectors, write_multivectors
from .lance_schema import (
    LANCE_FIELDS,
    ROW_COLUMNS,
    SEARCH_TEXT,
    check_schema,
    chunks,
    ids_sql,
    ranked_hits,
    row_to_item,
    split_where,
    table_schema,
    to_arrow,
    vec_col,
)
from .url import StoreURL

if TYPE_CHECKING:
    from typing import Self

    from lancedb.table import AsyncTable

    from ..config import Settings

__all__ = ["DEFAULT_TABLE", "LANCE_FIELDS", "LanceStore"]

T = TypeVar("T")

#: The table a ``lance`` store URL opens when it names none.
DEFAULT_TABLE = "items"


class LanceStore:
    """A :class:`~mmrag.stores.base.VectorStore` on one LanceDB table, a vector column per space."""

    #: Exact re-rank of ``refine_factor * k`` candidates: removes the 8-bit quantisation error
    #: from ranks and scores (recall@10 0.95 -> 0.995 at 100k; scores exact cosine). 2 and 3
    #: gave the same recall there; each extra candidate is one more random vector read, so
    #: a query for more than ``refine_rows / refine_factor`` re-ranks just its ``k`` (a search
    #: path's 100 candidates: top-10 identical on 30 random queries at 100k, 3-5 ms less).
    #: Never 0: without the re-rank LanceDB 0.40 reports IVF_SQ distances off the cosine
    #: scale (by 0.88 at 100k), which fusion and the relevance floor would read as scores.
    refine_factor: int = 2
    refine_rows: int = 100
    #: HNSW search breadth, used only on an IVF_HNSW index left by an older mmrag until the
    #: next optimize() replaces it.
    ef: int = 100

    def __init__(
        self,
        path: Path,
        spaces: Mapping[str, int],
        table: str = DEFAULT_TABLE,
        *,
        overwrite: bool = False,
        index_policy: IndexPolicy | None = None,
        multi_spaces: Mapping[str, MultiSpace] | None = None,
    ) -> None:
        """Open or create the table; ``overwrite`` drops an existing one (deliberate re-embed).

        ``multi_spaces`` adds multi-vector columns (the late-interaction capability).
        """
        # lancedb imports its REST client's package only for types; that package's __init__
        # builds ~370 pydantic validators a local table never calls (0.6 s of a 2 s query).
        defer_init("lance_namespace_urllib3_client")
        import lancedb

        if not spaces:
            raise ConfigError("a store needs at least one vector space")
        for name, dim in spaces.items():
            if not name.isidentifier() or not isinstance(dim, int) or dim < 1:
                raise ConfigError(f"bad vector space {name!r}: {dim!r}")
        self.path = Path(path)
        self.spaces: dict[str, int] = dict(spaces)
        self.multi_spaces: dict[str, MultiSpace] = dict(multi_spaces or {})
        self.table_name = table
        #: When optimize() builds and retrains indexes, and how far queries probe them.
        self.index_policy = index_policy if index_policy is not None else IndexPolicy()
        self._schema = table_schema(self.spaces, self.multi_spaces)
        try:
            # Every read checks for the latest version: a long-lived reader (mmrag serve) must
            # follow other processes' writes, since optimize() removes the versions it read.
            self._db = lancedb.connect(str(self.path), read_consistency_interval=timedelta(0))
            exists = table in self._db.list_tables().tables
            if exists and overwrite:
                self._db.drop_table(table)
                exists = False
            if exists:
                self._table = self._db.open_table(table)
            else:
                self._table = self._db.create_table(table, schema=self._schema)
        except Exception as e:
            raise StoreError(f"cannot open LanceDB table {table!r} at {self.path}: {e}") from e
        if exists:
            check_schema(self._table.schema, self.spaces, self.path, self.multi_spaces)
        # Ids in the table, so upsert can append fresh rows rather than merge (see KnownIds).
        self._ids = KnownIds()
        # Probes per space for the current ANN indexes; None until read. Only optimize() and
        # drop() change indexes, and they reset it (re-checking the table version per query
        # would cost a round trip; this handle does not see other writers' indexes anyway).
        self._probes: dict[str, int] | None = None
        # The same table opened for reading through LanceDB's async API (see _read).
        self._reader: AsyncTable | None = None
        # Whether the full-text index is known to exist: only drop() removes it.
        self._fts_ready = False

    @classmethod
    def from_url(
        cls,
        url: StoreURL,
        spaces: Mapping[str, int],
        *,
        overwrite: bool = False,
        settings: Settings | None = None,
        multi_spaces: Mapping[str, MultiSpace] | None = None,
    ) -> Self:
        """Open table ``url.collection`` (default ``items``) in the directory ``url.location``."""
        if url.scheme != "lance":
            raise ConfigError(f"LanceStore cannot open a {url.scheme!r} store URL")
        table = url.collection or DEFAULT_TABLE
        return cls(
            Path(url.location), spaces, table, overwrite=overwrite, multi_spaces=multi_spaces
        )

    def __repr__(self) -> str:
        return f"LanceStore({str(self.path)!r}, {self.table_name!r}, spaces={self.spaces})"

    # --- writing ---------------------------------------------------------------------------

    def upsert(self, items: Sequence[Item], vectors: Mapping[str, np.ndarray]) -> None:
        """Insert or replace items by id (whole rows: a space left out is cleared)."""
        unknown = set(vectors) - set(self.spaces)
        if unknown:
            raise ConfigError(f"unknown vector spaces {sorted(unknown)}; store has {self.spaces}")
        if not items:
            return
        last = {it.id: i for i, it in enumerate(items)}
        if len(last) < len(items):  # a batch may repeat an id: the last one wins
            keep = sorted(last.values())
            items = [items[i] for i in keep]
            vectors = {s: np.asarray(v)[keep] for s, v in vectors.items()}
        data = to_arrow(items, vectors, self._schema, self.spaces)
        ids = [it.id for it in items]
        try:
            known = self._ids.get(self._table)
            before = self._table.version
            if any(i in known for i in ids):
                (
                    self._table.merge_insert("id")
                    .when_matched_update_all()
                    .when_not_matched_insert_all()
                    .execute(data, on_bad_vectors="null")
                )
            else:
                # Appending skips merge_insert's join, about 4x faster for fresh batches.
                self._table.add(data, on_bad_vectors="null")
        except Exception as e:
            self._ids.forget()  # the write may or may not have landed: re-read the ids next time
            raise StoreError(f"upsert of {len(items)} items into {self.path} failed: {e}") from e
        self._ids.wrote(self._table, before, 1, added=ids)

    def delete(self, ids: Sequence[str]) -> None:
        """Remove items by id; unknown ids are ignored."""
        ids = list(ids)
        before, commits = self._table.version, 0
        try:
            for chunk in chunks(ids):
                self._table.delete(ids_sql(chunk))
                commits += 1  # LanceDB commits a version per delete, even one matching nothing
        except Exception as e:
            self._ids.forget()
            raise StoreError(f"delete from {self.path} failed: {e}") from e
        self._ids.wrote(self._table, before, commits, removed=ids)

    def set_multivectors(self, space: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Give existing items a float32 ``(tokens, dim)`` multi-vector; unknown ids are ignored."""
        multi = self._multi(space)
        before = self._table.version
        try:
            commits = write_multivectors(self._table, space, multi, vectors)
        except ConfigError:
            raise
        except Exception as e:
            self._ids.forget()
            raise StoreError(f"writing multi-vectors into {self.path} failed: {e}") from e
        self._ids.wrote(self._table, before, commits)

    def drop(self) -> None:
        """Delete every item and index and start an empty table with the same spaces."""
        try:
            self._db.drop_table(self.table_name)
            self._table = self._db.create_table(self.table_name, schema=self._schema)
        except Exception as e:
            raise StoreError(f"dropping {self.table_name!r} at {self.path} failed: {e}") from e
        finally:
            self._ids.forget()
            self._probes = None
            self._reader = None
            self._fts_ready = False

    # --- reading ---------------------------------------------------------------------------

    def _read(self) -> AsyncTable:
        """The table for queries, through LanceDB's async API, sharing this store's cache.

        A query built on it runs in one trip to LanceDB's event loop thread: the sync
        builder (``table.search(...).to_arrow()``) makes six, three of them re-reading the
        schema (~1 ms of a 7 ms vector query at 100k items; ``Index.search`` with its three
        store queries went from 26 to 22 ms p50 with the same results).
        """
        if self._reader is None:
            self._reader = _on_loop(self._open_reader())
        return self._reader

    async def _open_reader(self) -> AsyncTable:
        import lancedb

        # Each read checks for the latest version, as the sync handle does (see __init__).
        db = await lancedb.connect_async(
            str(self.path),
            read_consistency_interval=timedelta(0),
            session=getattr(self._db, "session", None),
        )
        return await db.open_table(self.table_name)

    def _scan(self, sql: str | None, columns: list[str], limit: int | None = None) -> pa.Table:
        q = self._read().query().select(columns)
        if limit is not None:
            q = q.limit(limit)
        if sql:
            q = q.where(sql)
        return _on_loop(q.to_arrow())

    def query(
        self, space: str, vector: np.ndarray, k: int, where: Where | None = None
    ) -> list[Hit]:
        """The ``k`` nearest items in ``space`` by cosine similarity (score = 1 - distance)."""
        v = query_vector(self.spaces, space, vector)
        sql, rest = split_where(where)
        try:
            probes = self._probes_for(space)
        except Exception as e:
            raise StoreError(f"reading the index of {space!r} failed: {e}") from e

        def search(limit: int, widen: bool) -> pa.Table:
            q = self._read().query().nearest_to(v).column(vec_col(space))
            # Cosine here and in the index (a mismatch makes LanceDB ignore the index or rank
            # by the wrong metric). The ANN settings are no-ops on a flat scan.
            q = q.distance_type("cosine").select([*ROW_COLUMNS, "_distance"]).limit(limit)
            # A fixed probe count unless widening: an open maximum (0) made LanceDB probe
            # 262 of 309 partitions on unfiltered 100k queries (2x the latency, no recall).
            n = probes or self.index_policy.nprobes
            q = q.nprobes(n).maximum_nprobes(0 if widen else n)
            factor = self.refine_factor if limit * self.refine_factor <= self.refine_rows else 1
            q = q.refine_factor(factor).ef(self.ef)
            if sql:
                q = q.where(sql)  # a prefilter: the async builder's default
            return _on_loop(q.to_arrow())

        def run(limit: int) -> pa.Table:
            tbl = search(limit, widen=False)
            if sql and probes and tbl.num_rows < limit:
                # A selective prefilter can leave fewer than ``limit`` rows in the probed
                # partitions (0.1% selectivity at 100k: 3 of 10); probe on until there are
                # enough, or every partition is searched.
                tbl = search(limit, widen=True)
            return tbl

        try:
            return ranked_hits(run, k, rest, lambda r: 1.0 - float(r["_distance"]))
        except Exception as e:
            raise StoreError(f"vector query on {space!r} failed: {e}") from e

    def multi_query(
        self, space: str, vectors: np.ndarray, k: int, where: Where | None = None
    ) -> list[Hit]:
        """The ``k`` items with the highest MaxSim in multi-vector ``space`` (exact, or a
        quantised first stage with exact rescoring; see :mod:`~mmrag.stores.lance_multi`)."""
        q = query_multivector(self.multi_spaces, space, vectors)
        try:
            return multi_search(self._table, space, self.multi_spaces[space], q, k, where)
        except Exception as e:
            raise StoreError(f"multi-vector query on {space!r} failed: {e}") from e

    def get_multivectors(self, space: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored multi-vectors by id; ids without one are left out."""
        multi = self._multi(space)
        try:
            return read_multivectors(self._table, space, multi, ids)
        except Exception as e:
            raise StoreError(f"get_multivectors from {self.path} failed: {e}") from e

    def _multi(self, space: str) -> MultiSpace:
        if space not in self.multi_spaces:
            raise ConfigError(
                f"unknown multi-vector space {space!r}; store has {sorted(self.multi_spaces)}"
            )
        return self.multi_spaces[space]

    def text_query(self, text: str, k: int, where: Where | None = None) -> list[Hit]:
        """BM25 over item context and text; rows written since the last index build are
        searched exactly. The query is normalised like the indexed text (letter/digit split)."""
        sql, rest = split_where(where)
        if not text.strip():
            return []
        try:
            if not self._fts_ready:
                ensure_fts(self._table)
                self._fts_ready = True

            def run(limit: int) -> pa.Table:
                q = (
                    self._read()
                    .query()
                    .nearest_to_text(fts_query(text), columns=SEARCH_TEXT)
                    .select([*ROW_COLUMNS, "_score"])
                    .limit(limit)
                )
                if sql:
                    q = q.where(sql)  # a prefilter: the async builder's default
                return _on_loop(q.to_arrow())

            return ranked_hits(run, k, rest, lambda r: float(r["_score"]))
        except Exception as e:
            raise StoreError(f"full-text query failed: {e}") from e

    def get(self, ids: Sequence[str]) -> list[Item]:
        """Items by id, in the order asked; unknown ids are left out."""
        found: dict[str, Item] = {}
        try:
            for chunk in chunks(list(dict.fromkeys(ids))):
                for row in self._scan(ids_sql(chunk), ROW_COLUMNS).to_pylist():
                    found[row["id"]] = row_to_item(row)
        except Exception as e:
            raise StoreError(f"get from {self.path} failed: {e}") from e
        return [found[i] for i in ids if i in found]

    def get_vectors(self, space: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors by id for one space; ids without a vector are left out."""
        if space not in self.spaces:
            raise ConfigError(f"unknown vector space {space!r}; store has {sorted(self.spaces)}")
        col, dim = vec_col(space), self.spaces[space]
        out: dict[str, np.ndarray] = {}
        try:
            for chunk in chunks(list(dict.fromkeys(ids))):
                tbl = self._scan(f"{ids_sql(chunk)} AND `{col}` IS NOT NULL", ["id", col])
                if tbl.num_rows == 0:
                    continue
                arr = tbl.column(col).combine_chunks()
                mat = arr.values.to_numpy(zero_copy_only=False).reshape(-1, dim)
                for i, row_id in enumerate(tbl.column("id").to_pylist()):
                    out[row_id] = mat[i].copy()
        except Exception as e:
            raise StoreError(f"get_vectors from {self.path} failed: {e}") from e
        return out

    def find(self, where: Where, limit: int | None = None) -> list[Item]:
        """Items matching a filter, in no particular order."""
        sql, rest = split_where(where)
        try:
            if not rest:
                return [row_to_item(r) for r in self._scan(sql, ROW_COLUMNS, limit).to_pylist()]
            out: list[Item] = []
            for batch in self._batches(sql):
                out.extend(it for it in map(row_to_item, batch) if F.matches(rest, it))
                if limit is not None and len(out) >= limit:
                    return out[:limit]
            return out
        except Exception as e:
            raise StoreError(f"find in {self.path} failed: {e}") from e

    def _batches(self, sql: str | None) -> Iterator[list[dict[str, Any]]]:
        q = self._table.search().select(ROW_COLUMNS).limit(None)
        if sql:
            q = q.where(sql)
        for rb in q.to_batches(batch_size=4096):
            yield rb.to_pylist()

    def count(self, where: Where | None = None) -> int:
        """How many items (matching the filter)."""
        sql, rest = split_where(where)
        try:
            if not rest:
                return int(self._table.count_rows(sql))
            return sum(sum(F.matches(rest, row_to_item(r)) for r in b) for b in self._batches(sql))
        except Exception as e:
            raise StoreError(f"count in {self.path} failed: {e}") from e

    # --- maintenance -----------------------------------------------------------------------

    def _probes_for(self, space: str) -> int | None:
        """IVF partitions to probe in ``space``; None when it has no vector index."""
        if self._probes is None:
            self._probes = probes_per_space(self._table, self.index_policy)
        return self._probes.get(space)

    def optimize(self) -> None:
        """Compact files, fold new rows into indexes, build or retrain stale ones, drop versions.

        Cheap when called after every small ingest; what it builds when is
        :attr:`index_policy` (see :func:`~mmrag.stores.lance_index.optimize_table`).
        """
        try:
            optimize_table(self._table, self.spaces, self.index_policy)
        except Exception as e:
            raise StoreError(f"optimize of {self.path} failed: {e}") from e
        finally:
            # Rows are unchanged, but optimize() makes several commits, so a foreign one among
            # them could not be told apart: re-read the ids at the next upsert (once per run).
            self._ids.forget()
            self._probes = None


def _on_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run a LanceDB coroutine on LanceDB's own event loop thread, as its sync API does."""
    from lancedb.background_loop import LOOP

    return LOOP.run(coro)
