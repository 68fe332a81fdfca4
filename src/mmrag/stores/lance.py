"""The embedded default store: one LanceDB table on local disk.

Layout: one row per item. Item fields are typed columns; the metadata keys worth
filtering fast (``price``, ``category``, ``tags``, ``label``, ``caption``) are
typed columns too, and the whole metadata dict is kept as JSON in ``meta`` so it
round-trips exactly. Each vector space is a nullable fixed-size-list column
``vec_<space>``; a null vector is skipped by vector search in that space.

Filters on typed columns are pushed down to LanceDB as SQL (prefilter). Filters
on free-form metadata keys are evaluated in Python on an over-fetched candidate
set, so they are correct but slower on large, selective queries.

Indexes: the BM25 full-text index on ``text`` is built by the first
:meth:`LanceStore.text_query` or by :meth:`LanceStore.optimize`; rows written
later are searched exactly by LanceDB (and deletes/updates respected) until
``optimize()`` folds them in, so text search is always current. An IVF_SQ index
per space is built by ``optimize()`` once the space holds ``ann_threshold``
vectors; below that an exact scan is faster than the index is worth. Later
``optimize()`` calls fold new rows into it (cheap: rows are assigned to the
trained partitions) and retrain it only once the rows it was trained on are under
``1 - rebuild_fraction`` of the space. Scalar indexes on the filter columns make
pushed-down filters index lookups rather than column scans. Writes assume one
writer process; every write is an atomic LanceDB version.

Example::

    store = LanceStore(Path(".mmrag/store"), {"clip": 512, "text": 384})
    store.upsert(items, {"clip": clip_vectors})
    hits = store.query("clip", query_vector, k=10, where={"kind": "image"})
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import ConfigError, IndexError_, ModelMismatchError, StoreError
from ..types import Hit, Item, Where
from . import filters as F
from .base import query_vector

__all__ = ["LANCE_FIELDS", "LanceStore"]

_ITEM_COLUMNS: list[pa.Field] = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("content_hash", pa.string()),
    pa.field("parent", pa.string()),
    pa.field("role", pa.string()),
    pa.field("text", pa.string()),
    pa.field("doc", pa.string()),
    pa.field("page", pa.int64()),
    pa.field("bbox", pa.list_(pa.float64(), 4)),
    pa.field("thumb", pa.string()),
]
# Metadata keys projected into typed columns so filters on them run inside LanceDB.
_META_COLUMNS: list[pa.Field] = [
    pa.field("price", pa.float64()),
    pa.field("category", pa.string()),
    pa.field("tags", pa.list_(pa.string())),
    pa.field("label", pa.string()),
    pa.field("caption", pa.string()),
]
_META_JSON = pa.field("meta", pa.string())

_TYPES: dict[str, F.FieldType] = {"page": "int", "price": "float", "tags": "list"}
#: Filter keys LanceStore pushes down, with their column and value type.
LANCE_FIELDS: dict[str, F.FieldSpec] = {
    f.name: F.FieldSpec(f.name, _TYPES.get(f.name, "str"))
    for f in [*_ITEM_COLUMNS, *_META_COLUMNS]
    if f.name != "bbox"
}
_ROW_COLUMNS = [f.name for f in [*_ITEM_COLUMNS, _META_JSON]]
_VEC_PREFIX = "vec_"
_ID_CHUNK = 2000  # ids per "id IN (...)" predicate; keeps SQL strings bounded
#: Scalar indexes built by optimize(), by column: the item columns the app and the indexer
#: filter or look up by, and the metadata columns projected for filtering. BITMAP suits the
#: few-valued ``kind``; BTREE handles any cardinality (a category may be a free-form string).
_SCALAR_INDEXES: dict[str, str] = {
    "id": "BTREE",
    "kind": "BITMAP",
    "role": "BITMAP",
    "source": "BTREE",
    "parent": "BTREE",
    "doc": "BTREE",
    "category": "BTREE",
    "label": "BTREE",
    "price": "BTREE",
    "tags": "LABEL_LIST",
}
# The ANN index name records how many vectors it was trained on, so a later optimize() can
# tell when the partitions have gone stale without any state beside the table.
_ANN_NAME = re.compile(r"^(?P<col>.+)_ivfsq_n(?P<rows>\d+)$")


def _ann_name(col: str, rows: int) -> str:
    return f"{col}_ivfsq_n{rows}"


def _partition_size(rows: int) -> int:
    """Target rows per IVF partition for ``rows`` vectors: sqrt(n), so about sqrt(n) partitions.

    Measured on 100k clustered 512-d vectors: 316 partitions probed 20 at a time gave recall@10
    0.99 with a 3x re-rank; fewer, larger partitions make every probe scan more rows.
    Given as a partition *size* rather than a count on purpose: LanceDB 0.40's optimize()
    collapses an index built with ``num_partitions`` to a single partition (every query then
    scans all codes), while one built with ``target_partition_size`` keeps its partitions.
    """
    return max(32, round(math.sqrt(rows)))


def _vec_col(space: str) -> str:
    return _VEC_PREFIX + space


def _chunks(seq: Sequence[str], n: int = _ID_CHUNK) -> Iterator[Sequence[str]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def _ids_sql(ids: Sequence[str]) -> str:
    return f"`id` IN ({', '.join(F.sql_string(i) for i in ids)})"


def _meta_projection(meta: Mapping[str, Any], key: str, kind: str) -> Any:
    """The typed-column value for a metadata key, or None when absent or of another type."""
    v = meta.get(key)
    if kind == "float":
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        return None
    if kind == "list":
        if isinstance(v, (list, tuple, set, frozenset)) and all(isinstance(t, str) for t in v):
            return list(v)
        return [v] if isinstance(v, str) else None
    return v if isinstance(v, str) else None


def _row_to_item(row: Mapping[str, Any]) -> Item:
    bbox = row["bbox"]
    return Item(
        id=row["id"],
        kind=row["kind"],
        source=row["source"],
        content_hash=row["content_hash"] or "",
        parent=row["parent"],
        role=row["role"],
        text=row["text"],
        doc=row["doc"],
        page=row["page"],
        bbox=tuple(bbox) if bbox is not None else None,  # type: ignore[arg-type]
        thumb=row["thumb"],
        metadata=json.loads(row["meta"]) if row["meta"] else {},
    )


class LanceStore:
    """A :class:`~mmrag.stores.base.VectorStore` on one LanceDB table, a vector column per space."""

    #: Build an ANN index for a space once it holds this many vectors; below it exact scan wins.
    #: LanceDB's exact scan costs about 3-8 us per 512-d row here (20k rows: 150 ms, 100k:
    #: 770 ms on a loaded 2-core box), while an IVF_SQ index builds in about a second at 20k,
    #: so the index pays from a few thousand rows on.
    ann_threshold: int = 4_096
    #: Retrain a space's index once more than this fraction of its vectors arrived after
    #: training (or it shrank by as much); until then new rows are folded into the trained
    #: partitions by optimize(), which is cheap.
    rebuild_fraction: float = 0.2
    #: Each optimize() that folds rows in adds a delta segment that every query searches on
    #: its own; retrain once there are more than this many.
    max_index_segments: int = 16
    #: IVF partitions probed per query (at least), and the fraction of all partitions probed
    #: when that is more (keeps recall as the partition count grows with the table). Filtered
    #: queries probe further partitions until they have ``k`` rows.
    nprobes: int = 20
    probe_fraction: float = 0.06
    #: Exact re-rank of ``refine_factor * k`` candidates: removes the 8-bit quantisation error
    #: from ranks and scores (recall@10 0.95 -> 0.995 at 100k; scores exact cosine). 2 and 3
    #: gave the same recall there; each extra candidate is one more random vector read.
    refine_factor: int = 2
    #: HNSW search breadth, used only on an IVF_HNSW index left by an older mmrag until the
    #: next optimize() replaces it.
    ef: int = 100
    #: Versions older than this are removed by optimize(); 0 keeps only the latest.
    cleanup_older_than: timedelta = timedelta(0)

    def __init__(
        self,
        path: Path,
        spaces: Mapping[str, int],
        table: str = "items",
        *,
        overwrite: bool = False,
    ) -> None:
        """Open or create the table; ``overwrite`` drops an existing one (deliberate re-embed)."""
        import lancedb

        if not spaces:
            raise ConfigError("a store needs at least one vector space")
        for name, dim in spaces.items():
            if not name.isidentifier() or not isinstance(dim, int) or dim < 1:
                raise ConfigError(f"bad vector space {name!r}: {dim!r}")
        self.path = Path(path)
        self.spaces: dict[str, int] = dict(spaces)
        self.table_name = table
        self._schema = pa.schema(
            [
                *_ITEM_COLUMNS,
                *_META_COLUMNS,
                _META_JSON,
                *(pa.field(_vec_col(s), pa.list_(pa.float32(), d)) for s, d in self.spaces.items()),
            ]
        )
        try:
            self._db = lancedb.connect(str(self.path))
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
            self._check_schema(self._table.schema)
        # Ids known to be in the table, at table version ``_ids_version``: lets upsert tell fresh
        # rows (a cheap append) from replacements (merge_insert) without scanning the id column
        # on every batch, which made loading quadratic (20k rows: 7 s of 10 s in the probe).
        self._ids: set[str] | None = None
        self._ids_version: int | None = None
        # Probes per space for the current ANN indexes; None until read. Only optimize() and
        # drop() change indexes, and they reset it (re-checking the table version per query
        # would cost a round trip; this handle does not see other writers' indexes anyway).
        self._probes: dict[str, int] | None = None

    def _check_schema(self, found: pa.Schema) -> None:
        have = {
            f.name[len(_VEC_PREFIX) :]: f.type.list_size
            for f in found
            if f.name.startswith(_VEC_PREFIX) and pa.types.is_fixed_size_list(f.type)
        }
        if have != self.spaces:
            raise ModelMismatchError(
                f"the index at {self.path} has vector spaces {have}, not {self.spaces}: "
                "re-embed deliberately (drop the store) or open it with the original models"
            )
        missing = [f.name for f in self._schema if f.name not in found.names]
        if missing:
            raise IndexError_(f"the table at {self.path} lacks columns {missing}; unknown schema")

    # --- writing ---------------------------------------------------------------------------

    def _to_arrow(self, items: Sequence[Item], vectors: Mapping[str, np.ndarray]) -> pa.Table:
        cols: dict[str, pa.Array] = {}
        for f in _ITEM_COLUMNS:
            if f.name == "bbox":
                vals: list[Any] = [list(map(float, it.bbox)) if it.bbox else None for it in items]
            elif f.name == "content_hash":
                vals = [it.content_hash or "" for it in items]
            else:
                vals = [getattr(it, f.name) for it in items]
            cols[f.name] = pa.array(vals, type=f.type)
        for f in _META_COLUMNS:
            kind = _TYPES.get(f.name, "str")
            cols[f.name] = pa.array(
                [_meta_projection(it.metadata, f.name, kind) for it in items], type=f.type
            )
        try:
            cols["meta"] = pa.array([json.dumps(dict(it.metadata)) for it in items], pa.string())
        except TypeError as e:
            raise ConfigError(f"metadata must be JSON-serialisable: {e}") from e
        for space, dim in self.spaces.items():
            cols[_vec_col(space)] = self._vector_array(space, dim, vectors.get(space), len(items))
        return pa.Table.from_pydict(cols, schema=self._schema)

    @staticmethod
    def _vector_array(space: str, dim: int, arr: np.ndarray | None, n: int) -> pa.Array:
        typ = pa.list_(pa.float32(), dim)
        if arr is None:
            return pa.nulls(n, typ)
        a = np.ascontiguousarray(arr, dtype=np.float32)
        if a.shape != (n, dim):
            raise ConfigError(f"vectors[{space!r}] has shape {a.shape}, expected {(n, dim)}")
        missing = np.isnan(a).any(axis=1)  # a NaN row means "no vector in this space"
        values = pa.array(np.nan_to_num(a, nan=0.0).ravel())
        mask = pa.array(missing) if missing.any() else None
        return pa.FixedSizeListArray.from_arrays(values, dim, mask=mask)

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
        data = self._to_arrow(items, vectors)
        ids = [it.id for it in items]
        try:
            known = self._known_ids()
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
            self._ids = None  # the write may or may not have landed: re-read the ids next time
            raise StoreError(f"upsert of {len(items)} items into {self.path} failed: {e}") from e
        self._wrote(before, 1, added=ids)

    def _known_ids(self) -> set[str]:
        """Every id in the table, read once and then kept up to date by this store's writes.

        Re-read when the table version is not the one this store last wrote or read, so a
        handle that sees another writer's commit does not trust a stale set.
        """
        version = self._table.version
        if self._ids is None or self._ids_version != version:
            self._ids = set(self._scan(None, ["id"]).column("id").to_pylist())
            self._ids_version = version
        return self._ids

    def _wrote(
        self, before: int, commits: int, added: Sequence[str] = (), removed: Sequence[str] = ()
    ) -> None:
        """Bring the id set from version ``before`` to the one this store just committed.

        A version jump other than our own ``commits`` means another writer committed in
        between (LanceDB moves a handle to the latest version when it writes): forget the set.
        """
        if (
            self._ids is None
            or self._ids_version != before
            or self._table.version != before + commits
        ):
            self._ids = None
            return
        self._ids.difference_update(removed)
        self._ids.update(added)
        self._ids_version = before + commits

    def delete(self, ids: Sequence[str]) -> None:
        """Remove items by id; unknown ids are ignored."""
        ids = list(ids)
        before, commits = self._table.version, 0
        try:
            for chunk in _chunks(ids):
                self._table.delete(_ids_sql(chunk))
                commits += 1  # LanceDB commits a version per delete, even one matching nothing
        except Exception as e:
            self._ids = None
            raise StoreError(f"delete from {self.path} failed: {e}") from e
        self._wrote(before, commits, removed=ids)

    def drop(self) -> None:
        """Delete every item and index and start an empty table with the same spaces."""
        try:
            self._db.drop_table(self.table_name)
            self._table = self._db.create_table(self.table_name, schema=self._schema)
        except Exception as e:
            raise StoreError(f"dropping {self.table_name!r} at {self.path} failed: {e}") from e
        finally:
            self._ids = None
            self._probes = None

    # --- reading ---------------------------------------------------------------------------

    def _scan(self, sql: str | None, columns: list[str], limit: int | None = None) -> pa.Table:
        q = self._table.search().select(columns).limit(limit)
        if sql:
            q = q.where(sql)
        return q.to_arrow()

    def _where(self, where: Where | None) -> tuple[str | None, list[F.Cond]]:
        pushed, rest = F.split(F.normalize(where), LANCE_FIELDS)
        return F.to_lance_sql(pushed, LANCE_FIELDS), rest

    def _space(self, space: str, vector: np.ndarray) -> np.ndarray:
        return query_vector(self.spaces, space, vector)

    def _ranked(self, run: Any, k: int, rest: list[F.Cond], score: Any) -> list[Hit]:
        """Run a ranked search, over-fetching while Python-side filters drop candidates."""
        if k <= 0:
            return []
        fetch = k if not rest else max(4 * k, 64)
        while True:
            rows = run(fetch).to_pylist()
            hits = [Hit(_row_to_item(r), score(r)) for r in rows]
            if rest:
                hits = [h for h in hits if F.matches(rest, h.item)]
            if len(hits) >= k or len(rows) < fetch:
                return hits[:k]
            fetch *= 4

    def query(
        self, space: str, vector: np.ndarray, k: int, where: Where | None = None
    ) -> list[Hit]:
        """The ``k`` nearest items in ``space`` by cosine similarity (score = 1 - distance)."""
        v = self._space(space, vector)
        sql, rest = self._where(where)
        try:
            probes = self._probes_for(space)
        except Exception as e:
            raise StoreError(f"reading the index of {space!r} failed: {e}") from e

        def search(limit: int, widen: bool) -> pa.Table:
            # Typed as Any: lancedb's stubs give search() the base builder type.
            q: Any = self._table.search(v, vector_column_name=_vec_col(space))
            # Cosine here and in the index (a mismatch makes LanceDB ignore the index or rank
            # by the wrong metric). The ANN settings are no-ops on a flat scan.
            q = q.distance_type("cosine").select([*_ROW_COLUMNS, "_distance"]).limit(limit)
            # A fixed probe count unless widening: an open maximum (0) made LanceDB probe
            # 262 of 309 partitions on unfiltered 100k queries (2x the latency, no recall).
            n = probes or self.nprobes
            q = q.minimum_nprobes(n).maximum_nprobes(0 if widen else n)
            q = q.refine_factor(self.refine_factor).ef(self.ef)
            if sql:
                q = q.where(sql, prefilter=True)
            return q.to_arrow()

        def run(limit: int) -> pa.Table:
            tbl = search(limit, widen=False)
            if sql and probes and tbl.num_rows < limit:
                # A selective prefilter can leave fewer than ``limit`` rows in the probed
                # partitions (0.1% selectivity at 100k: 3 of 10); probe on until there are
                # enough, or every partition is searched.
                tbl = search(limit, widen=True)
            return tbl

        try:
            return self._ranked(run, k, rest, lambda r: 1.0 - float(r["_distance"]))
        except Exception as e:
            raise StoreError(f"vector query on {space!r} failed: {e}") from e

    def text_query(self, text: str, k: int, where: Where | None = None) -> list[Hit]:
        """BM25 over item text; rows written since the last index build are searched exactly."""
        sql, rest = self._where(where)
        if not text.strip():
            return []
        try:
            self._ensure_fts()

            def run(limit: int) -> pa.Table:
                q = (
                    self._table.search(text, query_type="fts", fts_columns="text")
                    .select([*_ROW_COLUMNS, "_score"])
                    .limit(limit)
                )
                if sql:
                    q = q.where(sql, prefilter=True)
                return q.to_arrow()

            return self._ranked(run, k, rest, lambda r: float(r["_score"]))
        except Exception as e:
            raise StoreError(f"full-text query failed: {e}") from e

    def get(self, ids: Sequence[str]) -> list[Item]:
        """Items by id, in the order asked; unknown ids are left out."""
        found: dict[str, Item] = {}
        try:
            for chunk in _chunks(list(dict.fromkeys(ids))):
                for row in self._scan(_ids_sql(chunk), _ROW_COLUMNS).to_pylist():
                    found[row["id"]] = _row_to_item(row)
        except Exception as e:
            raise StoreError(f"get from {self.path} failed: {e}") from e
        return [found[i] for i in ids if i in found]

    def get_vectors(self, space: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors by id for one space; ids without a vector are left out."""
        if space not in self.spaces:
            raise ConfigError(f"unknown vector space {space!r}; store has {sorted(self.spaces)}")
        col, dim = _vec_col(space), self.spaces[space]
        out: dict[str, np.ndarray] = {}
        try:
            for chunk in _chunks(list(dict.fromkeys(ids))):
                tbl = self._scan(f"{_ids_sql(chunk)} AND `{col}` IS NOT NULL", ["id", col])
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
        sql, rest = self._where(where)
        try:
            if not rest:
                return [_row_to_item(r) for r in self._scan(sql, _ROW_COLUMNS, limit).to_pylist()]
            out: list[Item] = []
            for batch in self._batches(sql):
                out.extend(it for it in map(_row_to_item, batch) if F.matches(rest, it))
                if limit is not None and len(out) >= limit:
                    return out[:limit]
            return out
        except Exception as e:
            raise StoreError(f"find in {self.path} failed: {e}") from e

    def _batches(self, sql: str | None) -> Iterator[list[dict[str, Any]]]:
        q = self._table.search().select(_ROW_COLUMNS).limit(None)
        if sql:
            q = q.where(sql)
        for rb in q.to_batches(batch_size=4096):
            yield rb.to_pylist()

    def count(self, where: Where | None = None) -> int:
        """How many items (matching the filter)."""
        sql, rest = self._where(where)
        try:
            if not rest:
                return int(self._table.count_rows(sql))
            return sum(sum(F.matches(rest, _row_to_item(r)) for r in b) for b in self._batches(sql))
        except Exception as e:
            raise StoreError(f"count in {self.path} failed: {e}") from e

    # --- maintenance -----------------------------------------------------------------------

    def _index_columns(self) -> set[str]:
        return {c for ix in self._table.list_indices() for c in ix.columns}

    def _ann_indexes(self) -> dict[str, tuple[str, int | None]]:
        """Vector column -> (index name, vectors it was trained on; None if not ours)."""
        out: dict[str, tuple[str, int | None]] = {}
        for ix in self._table.list_indices():
            col = ix.columns[0] if ix.columns else ""
            if not col.startswith(_VEC_PREFIX):
                continue
            m = _ANN_NAME.match(ix.name)
            ours = m is not None and m["col"] == col and ix.index_type == "IvfSq"
            out[col] = (ix.name, int(m["rows"]) if m and ours else None)
        return out

    def _probes_for(self, space: str) -> int | None:
        """IVF partitions to probe in ``space`` (``nprobes``, more for a large index); None
        when it has no vector index."""
        if self._probes is None:
            probes: dict[str, int] = {}
            for col, (_, rows) in self._ann_indexes().items():
                parts = rows / _partition_size(rows) if rows else 1
                probes[col[len(_VEC_PREFIX) :]] = max(
                    self.nprobes, math.ceil(parts * self.probe_fraction)
                )
            self._probes = probes
        return self._probes.get(space)

    def _ensure_fts(self) -> None:
        # Built once; later rows are found by LanceDB's exact scan of unindexed
        # fragments and folded in by optimize().
        if "text" not in self._index_columns():
            from lancedb.index import FTS

            self._table.create_index("text", config=FTS(), replace=True)

    def _ann_plan(self, space: str, indexes: dict[str, tuple[str, int | None]]) -> int | None:
        """Vectors to (re)train ``space``'s index on now, or None to leave it as it is.

        Built at ``ann_threshold`` vectors; retrained when the vectors it was trained on
        differ from the space by more than ``rebuild_fraction`` (growth or deletes: the
        partitions no longer fit the data), when it has more than ``max_index_segments``
        delta segments, or when it is not one this store builds (an IVF_HNSW_SQ from an
        older mmrag). Otherwise ``optimize()`` folds new rows into the trained partitions.
        """
        col = _vec_col(space)
        rows = self._table.count_rows(f"`{col}` IS NOT NULL")
        if col not in indexes:
            return rows if rows >= self.ann_threshold else None
        trained = indexes[col][1]
        if trained is None:
            return rows if rows >= self.ann_threshold else 0
        drift = abs(rows - trained) / max(rows, trained, 1)
        stats = self._table.index_stats(indexes[col][0])
        segments = stats.num_indices if stats and stats.num_indices else 1
        if drift <= self.rebuild_fraction and segments <= self.max_index_segments:
            return None
        return rows if rows >= self.ann_threshold else 0

    def _build_ann(self, space: str, rows: int, old: str | None) -> None:
        """Train a fresh IVF_SQ index on ``rows`` vectors (0: drop the index: too few rows)."""
        from lancedb.index import IvfSq

        col = _vec_col(space)
        if old is not None:
            # One vector index per column: drop the stale one first. Queries scan exactly in
            # between, which is correct, only slower.
            self._table.drop_index(old)
        if rows:
            self._table.create_index(
                col,
                config=IvfSq(distance_type="cosine", target_partition_size=_partition_size(rows)),
                name=_ann_name(col, rows),
            )

    def _ensure_scalar_indexes(self) -> None:
        """Build the scalar indexes missing on the filter columns (folded in by optimize())."""
        have = self._index_columns()
        for col, kind in _SCALAR_INDEXES.items():
            if col not in have:
                self._table.create_scalar_index(col, index_type=kind)  # type: ignore[arg-type]

    def optimize(self) -> None:
        """Compact files, fold new rows into indexes, build or retrain stale ones, drop versions.

        Cheap when called after every small ingest: compaction and the index fold-in touch only
        the new rows (and the small files), and no ANN index is retrained until enough of the
        space has changed since it was trained (see :meth:`_ann_plan`).
        """
        try:
            empty = self._table.count_rows() == 0
            if not empty:
                self._ensure_scalar_indexes()
                if "text" not in self._index_columns() and self._table.count_rows(
                    "`text` IS NOT NULL"
                ):
                    self._ensure_fts()
            indexes = self._ann_indexes()
            plans = {s: self._ann_plan(s, indexes) for s in self.spaces}
            with warnings.catch_warnings():
                # LanceDB warns that a zero retention breaks concurrent readers of old versions;
                # mmrag has one writer and readers re-read the latest version.
                warnings.simplefilter("ignore")
                # Compact (and fold new rows into the indexes) first, so a (re)trained index is
                # built over the compacted files rather than remapped onto them afterwards.
                self._table.optimize(cleanup_older_than=self.cleanup_older_than)
                rebuilt = False
                for space, rows in plans.items():
                    if rows is not None:
                        self._build_ann(space, rows, indexes.get(_vec_col(space), (None,))[0])
                        rebuilt = True
                if rebuilt:
                    # The replaced index files belong to old versions now; this second pass has
                    # nothing to compact or fold in, it only prunes (cleanup_old_versions needs
                    # pylance, which mmrag does not depend on).
                    self._table.optimize(cleanup_older_than=self.cleanup_older_than)
        except Exception as e:
            raise StoreError(f"optimize of {self.path} failed: {e}") from e
        finally:
            # Rows are unchanged, but optimize() makes several commits, so a foreign one among
            # them could not be told apart: re-read the ids at the next upsert (once per run).
            self._ids = None
            self._probes = None
