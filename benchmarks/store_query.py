"""Benchmark LanceStore, before and after tuning, against numpy brute force.

Run: ``PYTHONPATH=src python benchmarks/store_query.py --n 100000``. On clustered, normalised
512-d vectors it measures, in one process and on one table:

* after (the current LanceStore): load through ``upsert`` in indexer-sized batches, the first
  ``optimize()`` (IVF_SQ + scalar indexes), top-k p50/p95 and recall@k, filtered p50/recall,
  and the cost of a small follow-up ingest + ``optimize()`` (folded in, not retrained);
* before (the settings LanceStore shipped with, rebuilt on the same rows): IVF_HNSW_SQ with
  LanceDB's default partitioning, queried with ``ef=200, refine_factor=3`` and no scalar
  indexes under the filter. ``--legacy-load`` also times the old load path (a scan of the id
  column per batch); it is off by default because it costs minutes at 100k;
* numpy brute force over the same vectors.

The machine's load average is printed: on a shared box latencies move with it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmrag.stores.lance import LanceStore
from mmrag.stores.lance_schema import ROW_COLUMNS, row_to_item
from mmrag.types import Hit, Item, Range

WHERE = {"category": "c3", "price": Range(lte=50.0)}
WHERE_SQL = "`category` = 'c3' AND (`price` <= 50.0)"


def make_data(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clustered unit vectors with a category (10 values) and a price per row."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((max(n // 1000, 10), dim)).astype(np.float32)
    assign = rng.integers(0, len(centers), n)
    vecs = centers[assign] + 0.6 * rng.standard_normal((n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return vecs, rng.integers(0, 10, n), rng.random(n) * 100


def pct(xs: list[float], p: float) -> float:
    """Percentile in milliseconds."""
    return float(np.percentile(np.array(xs) * 1000, p))


def load_avg() -> str:
    """The 1-minute load average and core count, to read latencies against."""
    return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus"


class LegacyProbeStore(LanceStore):
    """LanceStore with the old write path: every upsert scans the id column for its ids."""

    def upsert(self, items: Sequence[Item], vectors: Mapping[str, np.ndarray]) -> None:
        self._ids.forget()  # never trust a cached set: re-read per batch, as the old code did
        super().upsert(items, vectors)


def items_for(lo: int, hi: int, cat: np.ndarray, price: np.ndarray) -> list[Item]:
    """Product items p<lo>..p<hi-1>."""
    return [
        Item(
            id=f"p{i}",
            kind="product",
            source=f"catalog.csv#{i}",
            metadata={"category": f"c{cat[i]}", "price": float(price[i])},
        )
        for i in range(lo, hi)
    ]


def load(
    store: LanceStore,
    vecs: np.ndarray,
    cat: np.ndarray,
    price: np.ndarray,
    lo: int,
    hi: int,
    batch: int,
) -> float:
    """Upsert rows lo..hi in batches; seconds taken."""
    t0 = time.perf_counter()
    for a in range(lo, hi, batch):
        b = min(hi, a + batch)
        store.upsert(items_for(a, b, cat, price), {"clip": vecs[a:b]})
    return time.perf_counter() - t0


def measure(
    search: Callable[[np.ndarray, dict[str, Any] | None], list[Hit]],
    qs: np.ndarray,
    exact: np.ndarray,
    fexact: list[np.ndarray],
) -> dict[str, float]:
    """p50/p95 and recall@k, unfiltered and filtered, of one search function."""
    k = exact.shape[1]
    search(qs[0], None)  # warm caches
    out: dict[str, float] = {}
    for label, where, truth in (("", None, exact), ("f_", WHERE, fexact)):
        lat, rec = [], []
        for qi, q in enumerate(qs):
            t0 = time.perf_counter()
            hits = search(q, where)
            lat.append(time.perf_counter() - t0)
            rec.append(len({int(h.item.id[1:]) for h in hits} & set(truth[qi].tolist())) / k)
        out[label + "p50"] = pct(lat, 50)
        out[label + "p95"] = pct(lat, 95)
        out[label + "recall"] = float(np.mean(rec))
    return out


def legacy_search(store: LanceStore, k: int) -> Callable[[np.ndarray, Any], list[Hit]]:
    """The query LanceStore used to send: HNSW ef=200, 3x refine, default nprobes."""

    def search(q: np.ndarray, where: dict[str, Any] | None) -> list[Hit]:
        b: Any = store._table.search(q, vector_column_name="vec_clip")
        b = b.distance_type("cosine").select([*ROW_COLUMNS, "_distance"]).limit(k)
        b = b.ef(200).refine_factor(3)
        if where:
            b = b.where(WHERE_SQL, prefilter=True)
        rows = b.to_arrow().to_pylist()
        return [Hit(row_to_item(r), 1.0 - float(r["_distance"])) for r in rows]

    return search


def main() -> None:
    """Load, index, query before and after tuning, compare with numpy; print a table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128, help="rows per upsert (the indexer's)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the old index (minutes)")
    ap.add_argument("--legacy-load", action="store_true", help="also time the old load path")
    args = ap.parse_args()
    n, dim, k = args.n, args.dim, args.k
    extra = max(n // 100, 1)  # a small follow-up ingest: 1% more rows
    vecs, cat, price = make_data(n + extra, dim, 0)
    base, bcat, bprice = vecs[:n], cat[:n], price[:n]
    rng = np.random.default_rng(1)
    qs = base[rng.integers(0, n, args.queries)] + 0.3 * rng.standard_normal(
        (args.queries, dim)
    ).astype(np.float32)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    exact = np.argsort(-(qs @ base.T), axis=1)[:, :k]
    sub = np.flatnonzero((bcat == 3) & (bprice <= 50.0))
    fexact = [sub[np.argsort(-(base[sub] @ q))[:k]] for q in qs]
    print(f"n={n} dim={dim} k={k} queries={args.queries} batch={args.batch}; {load_avg()}")
    print(f"filter {WHERE_SQL}: {len(sub) / n:.1%} of rows pass")
    before: dict[str, float] = {}
    after: dict[str, float] = {}

    with tempfile.TemporaryDirectory() as tmp:
        if args.legacy_load:
            old = LegacyProbeStore(Path(tmp) / "legacy", {"clip": dim})
            before["load_s"] = load(old, vecs, cat, price, 0, n, args.batch)
            print(f"before: load {before['load_s']:.1f} s; {load_avg()}", flush=True)
            old.drop()

        store = LanceStore(Path(tmp) / "store", {"clip": dim})
        after["load_s"] = load(store, vecs, cat, price, 0, n, args.batch)
        t0 = time.perf_counter()
        store.optimize()
        after["index_s"] = time.perf_counter() - t0
        print(
            f"after: load {after['load_s']:.1f} s, optimize+index {after['index_s']:.1f} s; "
            f"{load_avg()}",
            flush=True,
        )
        after.update(measure(lambda q, w: store.query("clip", q, k, w), qs, exact, fexact))
        print(f"after: {after}; {load_avg()}", flush=True)

        # A small follow-up ingest: optimize() folds it in instead of retraining.
        load(store, vecs, cat, price, n, n + extra, args.batch)
        t0 = time.perf_counter()
        store.optimize()
        after["reopt_s"] = time.perf_counter() - t0
        store.delete([f"p{i}" for i in range(n, n + extra)])  # back to the measured rows
        print(f"after: +{extra} rows, optimize {after['reopt_s']:.2f} s", flush=True)

        if not args.no_baseline:
            from lancedb.index import IvfHnswSq

            for ix in list(store._table.list_indices()):
                if ix.name != "id_idx":  # the old store built only the id index
                    store._table.drop_index(ix.name)
            t0 = time.perf_counter()
            store._table.create_index("vec_clip", config=IvfHnswSq(distance_type="cosine"))
            before["index_s"] = time.perf_counter() - t0
            print(f"before: index {before['index_s']:.1f} s; {load_avg()}", flush=True)
            before.update(measure(legacy_search(store, k), qs, exact, fexact))
            print(f"before: {before}; {load_avg()}", flush=True)

    lat, flat = [], []
    fmask = (bcat == 3) & (bprice <= 50.0)
    for q in qs:
        t0 = time.perf_counter()
        s = base @ q
        top = np.argpartition(-s, k)[:k]
        top[np.argsort(-s[top])]
        lat.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        idx = np.flatnonzero(fmask)
        s = base[idx] @ q
        top = idx[np.argpartition(-s, k)[:k]]
        flat.append(time.perf_counter() - t0)
    numpy = {"p50": pct(lat, 50), "p95": pct(lat, 95), "recall": 1.0}
    numpy |= {"f_p50": pct(flat, 50), "f_p95": pct(flat, 95), "f_recall": 1.0}

    rows = [
        ("load (s)", "load_s", "{:.1f}"),
        ("optimize + index (s)", "index_s", "{:.1f}"),
        (f"optimize after +{extra} rows (s)", "reopt_s", "{:.2f}"),
        (f"top-{k} p50 (ms)", "p50", "{:.2f}"),
        (f"top-{k} p95 (ms)", "p95", "{:.2f}"),
        (f"recall@{k}", "recall", "{:.3f}"),
        ("filtered p50 (ms)", "f_p50", "{:.2f}"),
        ("filtered p95 (ms)", "f_p95", "{:.2f}"),
        (f"filtered recall@{k}", "f_recall", "{:.3f}"),
    ]
    print(f"\n{'':34s} {'before':>9s} {'after':>9s} {'numpy':>9s}   ({load_avg()})")
    for label, key, fmt in rows:
        cells = [fmt.format(d[key]) if key in d else "-" for d in (before, after, numpy)]
        print(f"{label:34s} {cells[0]:>9s} {cells[1]:>9s} {cells[2]:>9s}")


if __name__ == "__main__":
    main()
