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
``optimize()`` folds them in, so text search is always current. An IVF_HNSW_SQ
index per space is built by ``optimize()`` once the space holds ``ann_threshold``
vectors; below that an exact scan is faster than the index is worth. Writes
assume one writer process; every write is an atomic LanceDB version.

Example::

    store = LanceStore(Path(".mmrag/store"), {"clip": 512, "text": 384})
    store.upsert(items, {"clip": clip_vectors})
    hits = store.query("clip", query_vector, k=10, where={"kind": "image"})
"""

from __future__ import annotations

import json
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

__all__ = ["LANCE_FIELDS", "LanceStore"]

_ITEM_COLUMNS: list[pa.Field] = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("content_hash", pa.string()),
    pa.field("parent", pa.string()),
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
    ann_threshold: int = 50_000
    #: HNSW search breadth and exact re-rank factor for queries on an ANN index.
    ef: int = 200
    refine_factor: int = 3
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
        try:
            if self._existing_ids([it.id for it in items]):
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
            raise StoreError(f"upsert of {len(items)} items into {self.path} failed: {e}") from e

    def _existing_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(ids):
            tbl = self._scan(_ids_sql(chunk), ["id"])
            found.update(tbl.column("id").to_pylist())
        return found

    def delete(self, ids: Sequence[str]) -> None:
        """Remove items by id; unknown ids are ignored."""
        try:
            for chunk in _chunks(list(ids)):
                self._table.delete(_ids_sql(chunk))
        except Exception as e:
            raise StoreError(f"delete from {self.path} failed: {e}") from e

    def drop(self) -> None:
        """Delete every item and index and start an empty table with the same spaces."""
        try:
            self._db.drop_table(self.table_name)
            self._table = self._db.create_table(self.table_name, schema=self._schema)
        except Exception as e:
            raise StoreError(f"dropping {self.table_name!r} at {self.path} failed: {e}") from e

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
        if space not in self.spaces:
            raise ConfigError(f"unknown vector space {space!r}; store has {sorted(self.spaces)}")
        v = np.asarray(vector, dtype=np.float32).reshape(-1)
        if v.shape[0] != self.spaces[space]:
            raise ConfigError(
                f"query vector has dim {v.shape[0]}, {space!r} has {self.spaces[space]}"
            )
        return v

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

        def run(limit: int) -> pa.Table:
            # Typed as Any: lancedb's stubs give search() the base builder type.
            q: Any = self._table.search(v, vector_column_name=_vec_col(space))
            q = q.distance_type("cosine").select([*_ROW_COLUMNS, "_distance"]).limit(limit)
            # Measured on clustered 512-d data: HNSW defaults gave recall@10 0.43, ef=200 with
            # a 3x exact re-rank 0.95 (re-ranking also makes scores exact). No-ops on a flat scan.
            q = q.ef(self.ef).refine_factor(self.refine_factor)
            if sql:
                q = q.where(sql, prefilter=True)
            return q.to_arrow()

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

    def _ensure_fts(self) -> None:
        # Built once; later rows are found by LanceDB's exact scan of unindexed
        # fragments and folded in by optimize().
        if "text" not in self._index_columns():
            from lancedb.index import FTS

            self._table.create_index("text", config=FTS(), replace=True)

    def optimize(self) -> None:
        """Compact files, fold new rows into indexes, build missing ones, drop old versions."""
        from lancedb.index import IvfHnswSq

        try:
            indexed = self._index_columns()
            for space in self.spaces:
                col = _vec_col(space)
                if col in indexed:
                    continue
                if self._table.count_rows(f"`{col}` IS NOT NULL") >= self.ann_threshold:
                    self._table.create_index(col, config=IvfHnswSq(distance_type="cosine"))
            if "text" not in indexed and self._table.count_rows("`text` IS NOT NULL"):
                self._ensure_fts()
            if "id" not in indexed and self._table.count_rows():
                from lancedb.index import BTree

                # Speeds up get/delete and the existence probe in upsert.
                self._table.create_index("id", config=BTree())
            with warnings.catch_warnings():
                # LanceDB warns that a zero retention breaks concurrent readers of old versions;
                # mmrag has one writer and readers re-read the latest version.
                warnings.simplefilter("ignore")
                self._table.optimize(cleanup_older_than=self.cleanup_older_than)
        except Exception as e:
            raise StoreError(f"optimize of {self.path} failed: {e}") from e
