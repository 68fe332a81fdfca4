"""Multi-vector (late-interaction) reads and writes on the LanceDB store's table.

A multi-vector space is a ``list<fixed_size_list<float32, dim>>`` column (see
:mod:`~mmrag.stores.lance_schema`); LanceDB 0.40 searches such a column by MaxSim with
``distance_type("cosine")``, reporting ``_distance = tokens - MaxSim``. With a first stage
the space also keeps int8 or binary codes per token: a query scores every matching row on
the codes in numpy, then rescores the best ``rerank * k`` with exact MaxSim::

    write_multivectors(table, "pages", space, {"page-1": vectors})
    hits = multi_search(table, "pages", space, query, k=10, where={"doc": "a.pdf"})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from ..errors import ConfigError
from ..types import Hit, Where
from . import filters as F
from .base import MultiSpace
from .lance_schema import (
    ROW_COLUMNS,
    chunks,
    code_type,
    ids_sql,
    mv_col,
    mvq_col,
    ranked_hits,
    row_to_item,
    split_where,
)
from .multivector import approximate_maxsim, encode_codes, maxsim_many

if TYPE_CHECKING:
    from lancedb.table import Table

__all__ = ["multi_search", "read_multivectors", "write_multivectors"]


def _multi_array(arrays: Sequence[np.ndarray], inner: pa.DataType) -> pa.ListArray:
    """A list<inner> column from one ``(tokens, width)`` array per row."""
    offsets = np.concatenate([[0], np.cumsum([len(a) for a in arrays])]).astype(np.int32)
    width = inner.list_size
    flat = np.concatenate([np.asarray(a).reshape(-1, width) for a in arrays]).ravel()
    values = pa.FixedSizeListArray.from_arrays(pa.array(flat, type=inner.value_type), width)
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def _checked(space: str, multi: MultiSpace, vectors: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    out = []
    for item_id, v in vectors.items():
        a = np.asarray(v, dtype=np.float32)
        if a.ndim != 2 or a.shape[1] != multi.dim or len(a) == 0 or not np.isfinite(a).all():
            raise ConfigError(
                f"multi-vector of {item_id!r} in {space!r} has shape {a.shape} "
                f"(or non-finite values); expected (tokens>0, {multi.dim})"
            )
        out.append(a)
    return out


def write_multivectors(
    table: Table, space: str, multi: MultiSpace, vectors: Mapping[str, np.ndarray]
) -> int:
    """Set the multi-vectors (and codes) of existing rows; returns the commits made."""
    arrays = _checked(space, multi, vectors)
    if not arrays:
        return 0
    cols: dict[str, pa.Array] = {
        "id": pa.array(list(vectors), pa.string()),
        mv_col(space): _multi_array(arrays, pa.list_(pa.float32(), multi.dim)),
    }
    if multi.first_stage != "none":
        codes = [encode_codes(a, multi.first_stage) for a in arrays]  # type: ignore[arg-type]
        cols[mvq_col(space)] = _multi_array(codes, code_type(multi))
    # Only matched rows are updated, and only these columns: an id with no row is ignored.
    table.merge_insert("id").when_matched_update_all().execute(pa.table(cols))
    return 1


def read_multivectors(
    table: Table, space: str, multi: MultiSpace, ids: Sequence[str]
) -> dict[str, np.ndarray]:
    """Stored multi-vectors by id; ids without one are left out."""
    col, out = mv_col(space), {}
    for chunk in chunks(list(dict.fromkeys(ids))):
        sql = f"{ids_sql(chunk)} AND `{col}` IS NOT NULL"
        rows = table.search().where(sql).select(["id", col]).limit(None).to_arrow()
        for row_id, value in zip(rows.column("id").to_pylist(), rows.column(col), strict=True):
            flat = value.values.flatten().to_numpy(zero_copy_only=False)
            out[row_id] = flat.astype(np.float32).reshape(-1, multi.dim)
    return out


def multi_search(
    table: Table, space: str, multi: MultiSpace, query: np.ndarray, k: int, where: Where | None
) -> list[Hit]:
    """The ``k`` rows with the highest MaxSim against ``query`` (float32 ``(tokens, dim)``)."""
    if multi.first_stage != "none":
        return _two_stage(table, space, multi, query, k, where)
    sql, rest = split_where(where)
    tokens = float(len(query))

    def run(limit: int) -> pa.Table:
        q: Any = table.search(query, vector_column_name=mv_col(space))
        q = q.distance_type("cosine").select([*ROW_COLUMNS, "_distance"]).limit(limit)
        if sql:
            q = q.where(sql, prefilter=True)
        return q.to_arrow()

    return ranked_hits(run, k, rest, lambda r: tokens - float(r["_distance"]))


def _two_stage(
    table: Table, space: str, multi: MultiSpace, query: np.ndarray, k: int, where: Where | None
) -> list[Hit]:
    """Rank by MaxSim on the codes, then rescore ``rerank * k`` candidates exactly."""
    if k <= 0:
        return []
    sql, rest = split_where(where)
    code_col = mvq_col(space)
    filters = [f"`{code_col}` IS NOT NULL", *([sql] if sql else [])]
    columns = ["id", code_col] if not rest else [*ROW_COLUMNS, code_col]
    reader = table.search().where(" AND ".join(f"({f})" for f in filters))
    ids: list[str] = []
    scores: list[np.ndarray] = []
    width = code_type(multi).list_size
    dtype = np.int8 if multi.first_stage == "int8" else np.uint8
    for batch in reader.select(columns).limit(None).to_batches(batch_size=4096):
        keep: list[int] = list(range(batch.num_rows))
        if rest:
            rows = batch.to_pylist()
            keep = [i for i, r in enumerate(rows) if F.matches(rest, row_to_item(r))]
        col = batch.column(code_col)
        codes = [
            col[i].values.flatten().to_numpy(zero_copy_only=False).astype(dtype).reshape(-1, width)
            for i in keep
        ]
        ids.extend(batch.column("id")[i].as_py() for i in keep)
        scores.append(approximate_maxsim(query, codes, multi.first_stage, multi.dim))  # type: ignore[arg-type]
    if not ids:
        return []
    rough = np.concatenate(scores)
    top = np.argsort(-rough, kind="stable")[: multi.rerank * k]
    candidates = [ids[i] for i in top]
    exact = read_multivectors(table, space, multi, candidates)
    found = [c for c in candidates if c in exact]
    final = maxsim_many(query, [exact[c] for c in found])
    best = np.argsort(-final, kind="stable")[:k]
    chosen = [found[i] for i in best]
    items = {}
    for chunk in chunks(chosen):
        rows = table.search().where(ids_sql(chunk)).select(ROW_COLUMNS).limit(None).to_arrow()
        items.update({r["id"]: row_to_item(r) for r in rows.to_pylist()})
    return [Hit(items[found[i]], float(final[i])) for i in best if found[i] in items]
