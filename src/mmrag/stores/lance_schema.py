"""The LanceDB store's table layout: rows <-> items, and filters -> columns.

One row per item, built on the shared record (:mod:`mmrag.stores.records`): the record's
fields are typed columns; the metadata keys worth filtering fast (``price``, ``category``,
``tags``, ``label``, ``caption``) are typed columns too, and the whole metadata dict is kept
as JSON in ``meta`` so it round-trips exactly. Each vector space is a nullable
fixed-size-list column ``vec_<space>``; a null vector is skipped by vector search there. Each
multi-vector space is a nullable ``list<fixed_size_list<float32, dim>>`` column ``mv_<space>``
(LanceDB's multivector type, searched by MaxSim), with its quantised codes in ``mvq_<space>``
when the space has a first stage.
Filters on the typed columns become SQL (:func:`split_where`); the rest are checked in
Python on over-fetched candidates (:func:`ranked_hits`)::

    schema = table_schema({"clip": 512})
    table = to_arrow(items, {"clip": vectors}, schema, {"clip": 512})
    items = [row_to_item(r) for r in table.select(ROW_COLUMNS).to_pylist()]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import ConfigError, IndexError_, ModelMismatchError
from ..types import Hit, Item, Where
from . import filters as F
from .base import MultiSpace
from .fts import search_text
from .records import item_fields, metadata_json, record_to_item

__all__ = [
    "LANCE_FIELDS",
    "ROW_COLUMNS",
    "SEARCH_TEXT",
    "VEC_PREFIX",
    "check_schema",
    "chunks",
    "code_type",
    "ids_sql",
    "mv_col",
    "mvq_col",
    "ranked_hits",
    "row_to_item",
    "split_where",
    "table_schema",
    "to_arrow",
    "vec_col",
]

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
    pa.field("context", pa.string()),
]
#: What the full-text index covers: context and text, letter/digit runs split (mmrag.stores.fts).
SEARCH_TEXT = "search_text"
_SEARCH_TEXT = pa.field(SEARCH_TEXT, pa.string())
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
    if f.name not in ("bbox", "context")
}
#: The columns an item is read back from (the projected metadata columns are not needed).
ROW_COLUMNS = [f.name for f in [*_ITEM_COLUMNS, _META_JSON]]
VEC_PREFIX = "vec_"
MV_PREFIX = "mv_"
MVQ_PREFIX = "mvq_"
_ID_CHUNK = 2000  # ids per "id IN (...)" predicate; keeps SQL strings bounded


def vec_col(space: str) -> str:
    """The column holding ``space``'s vectors."""
    return VEC_PREFIX + space


def mv_col(space: str) -> str:
    """The column holding ``space``'s multi-vectors."""
    return MV_PREFIX + space


def mvq_col(space: str) -> str:
    """The column holding the quantised codes of ``space``'s multi-vectors."""
    return MVQ_PREFIX + space


def code_type(multi: MultiSpace) -> pa.DataType:
    """One token's code: int8 values, or the sign bits packed into bytes."""
    if multi.first_stage == "int8":
        return pa.list_(pa.int8(), multi.dim)
    return pa.list_(pa.uint8(), -(-multi.dim // 8))


def _multi_fields(multi: Mapping[str, MultiSpace]) -> list[pa.Field]:
    fields = []
    for space, m in multi.items():
        fields.append(pa.field(mv_col(space), pa.list_(pa.list_(pa.float32(), m.dim))))
        if m.first_stage != "none":
            fields.append(pa.field(mvq_col(space), pa.list_(code_type(m))))
    return fields


def table_schema(
    spaces: Mapping[str, int], multi: Mapping[str, MultiSpace] | None = None
) -> pa.Schema:
    """The table schema for these vector spaces (name -> dimension) and multi-vector spaces."""
    vectors = (pa.field(vec_col(s), pa.list_(pa.float32(), d)) for s, d in spaces.items())
    multivectors = _multi_fields(multi or {})
    return pa.schema(
        [*_ITEM_COLUMNS, *_META_COLUMNS, _META_JSON, _SEARCH_TEXT, *vectors, *multivectors]
    )


def check_schema(
    found: pa.Schema,
    spaces: Mapping[str, int],
    path: Path,
    multi: Mapping[str, MultiSpace] | None = None,
) -> None:
    """Raise unless an existing table at ``path`` has exactly these spaces and every column."""
    have = {
        f.name[len(VEC_PREFIX) :]: f.type.list_size
        for f in found
        if f.name.startswith(VEC_PREFIX) and pa.types.is_fixed_size_list(f.type)
    }
    want = table_schema(spaces, multi)
    have_multi = {f.name: f.type for f in found if f.name.startswith((MV_PREFIX, MVQ_PREFIX))}
    want_multi = {f.name: f.type for f in want if f.name.startswith((MV_PREFIX, MVQ_PREFIX))}
    if have != dict(spaces) or have_multi != want_multi:
        raise ModelMismatchError(
            f"the index at {path} has vector spaces {have} and multi-vector columns "
            f"{sorted(have_multi)}, not {dict(spaces)} and {sorted(want_multi)}: "
            "re-embed deliberately (drop the store) or open it with the original models"
        )
    missing = [f.name for f in want if f.name not in found.names]
    if missing:
        raise IndexError_(f"the table at {path} lacks columns {missing}; unknown schema")


def chunks(seq: Sequence[str], n: int = _ID_CHUNK) -> Iterator[Sequence[str]]:
    """``seq`` in slices of at most ``n``."""
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def ids_sql(ids: Sequence[str]) -> str:
    """A quoted ``id IN (...)`` predicate."""
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


def to_arrow(
    items: Sequence[Item],
    vectors: Mapping[str, np.ndarray],
    schema: pa.Schema,
    spaces: Mapping[str, int],
) -> pa.Table:
    """Rows for ``items``; ``vectors[space]`` has a row per item (NaN row: no vector)."""
    # The record's fields and its metadata's JSON, without a decoded copy of the metadata:
    # a JSON round trip per item slowed loading 20k rows from 1.1 s to 1.3 s.
    meta = pa.array([metadata_json(it) for it in items], pa.string())
    fields = [item_fields(it) for it in items]
    cols: dict[str, pa.Array] = {
        f.name: pa.array([r[f.name] for r in fields], type=f.type) for f in _ITEM_COLUMNS
    }
    for f in _META_COLUMNS:
        kind = _TYPES.get(f.name, "str")
        cols[f.name] = pa.array(
            [_meta_projection(it.metadata, f.name, kind) for it in items], type=f.type
        )
    cols["meta"] = meta
    cols[SEARCH_TEXT] = pa.array(
        [search_text(it.text, it.context) for it in items], type=_SEARCH_TEXT.type
    )
    for space, dim in spaces.items():
        cols[vec_col(space)] = _vector_array(space, dim, vectors.get(space), len(items))
    for field in schema:  # multi-vectors are written after the row (set_multivectors)
        if field.name not in cols:
            cols[field.name] = pa.nulls(len(items), field.type)
    return pa.Table.from_pydict(cols, schema=schema)


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


def row_to_item(row: Mapping[str, Any]) -> Item:
    """The item a row (with at least :data:`ROW_COLUMNS`) holds."""
    meta = row["meta"]
    return record_to_item({**row, "metadata": json.loads(meta) if meta else {}})


def split_where(where: Where | None) -> tuple[str | None, list[F.Cond]]:
    """A filter as SQL on the typed columns, and the conditions left to check in Python."""
    pushed, rest = F.split(F.normalize(where), LANCE_FIELDS)
    return F.to_lance_sql(pushed, LANCE_FIELDS), rest


def ranked_hits(
    run: Callable[[int], pa.Table], k: int, rest: list[F.Cond], score: Callable[[Any], float]
) -> list[Hit]:
    """Run a ranked search (``run(limit)``), over-fetching while ``rest`` drops candidates."""
    if k <= 0:
        return []
    fetch = k if not rest else max(4 * k, 64)
    while True:
        rows = run(fetch).to_pylist()
        hits = [Hit(row_to_item(r), score(r)) for r in rows]
        if rest:
            hits = [h for h in hits if F.matches(rest, h.item)]
        if len(hits) >= k or len(rows) < fetch:
            return hits[:k]
        fetch *= 4
