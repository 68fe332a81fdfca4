"""Benchmark LanceStore against numpy brute force on clustered, normalised vectors.

Run: ``PYTHONPATH=src python benchmarks/store_query.py --n 100000``. Prints load time,
optimize/index time, p50/p95 top-k latency, recall@k against exact search and
filtered p50, then the same for a numpy baseline in the same process.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from mmrag.stores.lance import LanceStore
from mmrag.types import Item, Range


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


def main() -> None:
    """Load, index, query and compare; print one line per figure."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    n, dim, k = args.n, args.dim, args.k
    vecs, cat, price = make_data(n, dim, 0)
    rng = np.random.default_rng(1)
    qs = vecs[rng.integers(0, n, args.queries)] + 0.3 * rng.standard_normal(
        (args.queries, dim)
    ).astype(np.float32)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    print(f"n={n} dim={dim} k={k} queries={args.queries} cpus={os.cpu_count()}")

    with tempfile.TemporaryDirectory() as tmp:
        store = LanceStore(Path(tmp), {"clip": dim})
        t0 = time.perf_counter()
        for lo in range(0, n, args.batch):
            hi = min(n, lo + args.batch)
            items = [
                Item(
                    id=f"p{i}",
                    kind="product",
                    source=f"catalog.csv#{i}",
                    metadata={"category": f"c{cat[i]}", "price": float(price[i])},
                )
                for i in range(lo, hi)
            ]
            store.upsert(items, {"clip": vecs[lo:hi]})
        print(f"lance load: {time.perf_counter() - t0:.1f} s ({n // args.batch + 1} batches)")
        t0 = time.perf_counter()
        store.optimize()
        print(f"lance optimize+index: {time.perf_counter() - t0:.1f} s")

        store.query("clip", qs[0], k)  # warm caches
        lat, recall = [], []
        exact = np.argsort(-(qs @ vecs.T), axis=1)[:, :k]
        for qi, q in enumerate(qs):
            t0 = time.perf_counter()
            hits = store.query("clip", q, k)
            lat.append(time.perf_counter() - t0)
            got = {int(h.item.id[1:]) for h in hits}
            recall.append(len(got & set(exact[qi].tolist())) / k)
        print(
            f"lance top-{k}: p50 {pct(lat, 50):.2f} ms  p95 {pct(lat, 95):.2f} ms  "
            f"recall@{k} {np.mean(recall):.3f}"
        )
        flat, frec = [], []
        where = {"category": "c3", "price": Range(lte=50.0)}
        mask = (cat == 3) & (price <= 50.0)
        sub = np.flatnonzero(mask)
        for q in qs:
            t0 = time.perf_counter()
            hits = store.query("clip", q, k, where)
            flat.append(time.perf_counter() - t0)
            ex = sub[np.argsort(-(vecs[sub] @ q))[:k]]
            frec.append(len({int(h.item.id[1:]) for h in hits} & set(ex.tolist())) / k)
        print(
            f"lance filtered ({mask.mean():.1%} pass): p50 {pct(flat, 50):.2f} ms  "
            f"p95 {pct(flat, 95):.2f} ms  recall@{k} {np.mean(frec):.3f}"
        )

    lat, flat = [], []
    for q in qs:
        t0 = time.perf_counter()
        s = vecs @ q
        top = np.argpartition(-s, k)[:k]
        top[np.argsort(-s[top])]
        lat.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        m = (cat == 3) & (price <= 50.0)
        idx = np.flatnonzero(m)
        s = vecs[idx] @ q
        top = idx[np.argpartition(-s, k)[:k]]
        flat.append(time.perf_counter() - t0)
    print(f"numpy top-{k}: p50 {pct(lat, 50):.2f} ms  p95 {pct(lat, 95):.2f} ms  recall 1.000")
    print(f"numpy filtered: p50 {pct(flat, 50):.2f} ms  p95 {pct(flat, 95):.2f} ms")


if __name__ == "__main__":
    main()
