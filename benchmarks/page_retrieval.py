"""Late-interaction pages: embedding cost, bytes per page, MaxSim latency, first-stage recall.

Run from the repo root: ``nice .venv/bin/python benchmarks/page_retrieval.py`` (sections:
``--only embed,storage,latency,recall``; ``--pages 2``; ``--big 100000``).

(1) embed: seconds per page through ``PageEncoderModel.encode_pages`` on the real ColQwen2-2B
    architecture (``mmrag.testing.COLQWEN2_2B``: Qwen2-VL-2B, 768 visual tokens max) with
    random weights in bf16 on this CPU, a PDF page rendered like the PDF ingester does (1024 px);
    beside it, in the same process, the CLIP ViT-B/32 image tower (random weights, bf16) the
    index already runs per page: the baseline. Also one query's encode time. Weights are built
    in memory (~4.4 GB bf16) and freed before the next section.
(2) storage: bytes per page stored (vectors only, and a LanceDB table of 2,000 synthetic pages
    on disk) with pooling 1/2/3 and the int8/binary first stage, against the float32 baseline.
(3) latency: MaxSim query latency (p50 over 20 queries) at 10k pages through the store
    (LanceStore.multi_query: exact, int8 and binary first stage) against numpy brute force in the
    same run; at ``--big`` pages numpy brute force streamed in 10k-page chunks (the vectors do
    not fit in this machine's memory at once; generation is not timed) and the store path with
    32 tokens per page. Synthetic unit vectors, 128-d.
(4) recall: recall@10 of the int8/binary first stage with exact rescoring of rerank*k
    candidates (rerank 1/2/4/8) against exact MaxSim, on 10k clustered synthetic pages.
Quality (nDCG on ViDoRe) cannot be measured here: no trained weights reach these machines.
The CPU model and the 1-minute load average are printed beside every figure.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_common import cpu_model

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

DIM = 128


def load() -> str:
    """The 1-minute load average, for printing beside a figure."""
    return f"load {os.getloadavg()[0]:.2f}"


def unit(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random unit vectors along the last axis, float32."""
    v = rng.standard_normal(shape, dtype=np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


# ------------------------------------------------------------------------------ (1) embed


def render_page() -> Any:
    """A text-and-chart PDF page rendered at 1024 px like the PDF ingester renders pages."""
    import pymupdf

    from mmrag.ingest.pdf import render

    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_textbox(pymupdf.Rect(50, 50, 545, 400), "Quarterly revenue by region. " * 60)
    for j in range(6):
        page.draw_rect(
            pymupdf.Rect(80 + 70 * j, 780 - 40 * j, 130 + 70 * j, 780), fill=(0.2, 0.4, 0.8)
        )
    return render(page.get_displaylist(), tuple(page.rect), 1024)


def build_colqwen2(directory: Path) -> Any:
    """ColQwen2-2B with random weights, bf16, in memory; its processor saved to ``directory``.

    Built rather than saved and loaded: the fp32 checkpoint would be 8.8 GB on disk.
    """
    import torch
    from transformers import ColQwen2ForRetrieval

    from mmrag.testing import COLQWEN2_2B, colqwen2_parts

    processor, config = colqwen2_parts(COLQWEN2_2B)
    processor.save_pretrained(directory)
    config.save_pretrained(directory)
    torch.set_default_dtype(torch.bfloat16)
    try:
        torch.manual_seed(0)
        model = ColQwen2ForRetrieval(config).eval()
    finally:
        torch.set_default_dtype(torch.float32)
    return model


def bench_embed(pages: int) -> None:
    import torch
    from transformers import AutoProcessor, CLIPConfig, CLIPModel

    from mmrag.models.pages import PageEncoderModel
    from mmrag.testing import CLIP_ARCHS

    image = render_page()
    tmp = Path(tempfile.mkdtemp(prefix="colqwen2-"))
    try:
        started = time.perf_counter()
        model = build_colqwen2(tmp)
        params = sum(p.numel() for p in model.parameters())
        print(
            f"ColQwen2-2B random weights built in {time.perf_counter() - started:.0f} s: "
            f"{params / 1e9:.2f} B parameters, {model.dtype} ({load()})"
        )
        encoder = PageEncoderModel(str(tmp), device="cpu", precision="bf16", batch_size=1)
        # The weights built above stand in for from_pretrained (same class, same forward).
        encoder._model, encoder._processor = model, AutoProcessor.from_pretrained(tmp)
        encoder._dim = 128
        times, tokens = [], 0
        for i in range(pages):
            t = time.perf_counter()
            vectors = encoder.encode_pages([image])[0]
            times.append(time.perf_counter() - t)
            tokens = len(vectors)
            print(
                f"  page {i + 1}: {times[-1]:.1f} s, {tokens} vectors x {vectors.shape[1]} "
                f"({load()}, torch threads {torch.get_num_threads()})"
            )
        t = time.perf_counter()
        q = encoder.encode_queries(["what was the revenue in europe in 2023?"])[0]
        query_s = time.perf_counter() - t
        print(
            f"ColQwen2-2B bf16: {np.median(times):.1f} s/page (median of {pages}; first call "
            f"included), {tokens} vectors/page; one query {query_s:.2f} s ({len(q)} vectors) "
            f"({load()})"
        )
        encoder.release()
        del model, encoder
        gc.collect()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    clip = CLIPModel(CLIPConfig(**CLIP_ARCHS["vit-b-32"])).eval().to(torch.bfloat16)
    pixels = torch.randn(1, 3, 224, 224, dtype=torch.bfloat16)
    with torch.inference_mode():
        clip.get_image_features(pixel_values=pixels)
        t = time.perf_counter()
        for _ in range(5):
            clip.get_image_features(pixel_values=pixels)
    clip_s = (time.perf_counter() - t) / 5
    print(
        f"baseline, same process: CLIP ViT-B/32 image tower bf16 {clip_s * 1000:.0f} ms/page "
        f"-> ColQwen2-2B costs {np.median(times) / clip_s:.0f}x ({load()})"
    )
    del clip
    gc.collect()


# ------------------------------------------------------------------------------ (2) storage


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def bench_storage(tokens: int) -> None:
    from mmrag.stores.base import MultiSpace
    from mmrag.stores.lance import LanceStore
    from mmrag.stores.multivector import pool_tokens
    from mmrag.types import Item

    rng = np.random.default_rng(0)
    n = 2000
    docs = [unit(rng, (tokens, DIM)) for _ in range(n)]
    print(f"bytes per page at {tokens} vectors x {DIM}-d (ColQwen2 at 768 visual tokens + prompt):")
    base = None
    for pool in (1, 2, 3):
        t = time.perf_counter()
        pooled = docs if pool == 1 else [pool_tokens(d, pool) for d in docs[:200]] * (n // 200)
        pool_s = (time.perf_counter() - t) / (200 if pool > 1 else 1)
        kept = len(pooled[0])
        for stage in ("none", "int8", "binary"):
            vec = kept * DIM * 4
            code = {"none": 0, "int8": kept * DIM, "binary": kept * DIM // 8}[stage]
            root = Path(tempfile.mkdtemp(prefix="pages-store-"))
            try:
                store = LanceStore(
                    root, {"clip": 4}, multi_spaces={"pages": MultiSpace(DIM, stage)}
                )
                items = [Item(id=f"p{i}", kind="page", source="a.pdf", page=i) for i in range(n)]
                store.upsert(items, {})
                for lo in range(0, n, 500):
                    store.set_multivectors(
                        "pages", {f"p{i}": pooled[i] for i in range(lo, lo + 500)}
                    )
                store.optimize()
                disk = dir_bytes(root) / n
            finally:
                shutil.rmtree(root, ignore_errors=True)
            base = base or disk
            print(
                f"  pool {pool} ({kept} vectors), first stage {stage:6}: "
                f"vectors {vec / 1024:6.1f} KiB + codes {code / 1024:5.1f} KiB; "
                f"LanceDB on disk {disk / 1024:6.1f} KiB/page "
                f"({disk / base:.2f}x of pool 1/none)"
                + (f"; pooling {pool_s * 1000:.0f} ms/page" if pool > 1 and stage == "none" else "")
                + f" ({load()})"
            )


# ------------------------------------------------------------------------------ (3) latency


def numpy_maxsim_all(query: np.ndarray, flat: np.ndarray, tokens: int) -> np.ndarray:
    """Exact MaxSim of one query against pages stored as one (pages*tokens, dim) matrix."""
    sims = flat @ query.T  # (pages*tokens, q)
    return sims.reshape(-1, tokens, len(query)).max(axis=1).sum(axis=1)


def p50(fn: Any, queries: list[np.ndarray]) -> float:
    fn(queries[0])  # warm
    times = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1000


def store_with(root: Path, n: int, tokens: int, stage: str, rng: np.random.Generator) -> Any:
    from mmrag.stores.base import MultiSpace
    from mmrag.stores.lance import LanceStore
    from mmrag.types import Item

    store = LanceStore(root, {"clip": 4}, multi_spaces={"pages": MultiSpace(DIM, stage, rerank=8)})
    for lo in range(0, n, 5000):
        items = [
            Item(id=f"p{i}", kind="page", source=f"d{i % 97}.pdf", doc=f"d{i % 97}.pdf", page=i)
            for i in range(lo, lo + 5000)
        ]
        store.upsert(items, {})
        store.set_multivectors("pages", {it.id: unit(rng, (tokens, DIM)) for it in items})
    store.optimize()
    return store


def bench_latency(big: int) -> None:
    rng = np.random.default_rng(1)
    queries = [unit(rng, (20, DIM)) for _ in range(20)]  # ColQwen2 queries: ~20 vectors
    n, tokens = 10_000, 256  # pool factor 3 on ~770 vectors
    flat = unit(rng, (n * tokens, DIM))
    numpy_ms = p50(lambda q: np.argsort(-numpy_maxsim_all(q, flat, tokens))[:10], queries)  # noqa: F821
    print(f"MaxSim latency, {n} pages x {tokens} vectors, 20-vector queries, k=10:")
    print(f"  numpy brute force (in memory, baseline): p50 {numpy_ms:.0f} ms ({load()})")
    del flat
    for stage in ("none", "int8", "binary"):
        root = Path(tempfile.mkdtemp(prefix="pages-lat-"))
        try:
            store = store_with(root, n, tokens, stage, rng)
            ms = p50(lambda q, s=store: s.multi_query("pages", q, 10), queries[:8])
            print(
                f"  LanceStore.multi_query, first stage {stage:6}: p50 {ms:.0f} ms "
                f"({ms / numpy_ms:.1f}x numpy) ({load()})"
            )
            filtered = p50(
                lambda q, s=store: s.multi_query("pages", q, 10, {"doc": "d5.pdf"}), queries[:8]
            )
            print(f"    filtered to one document (~1%): p50 {filtered:.0f} ms ({load()})")
        finally:
            shutil.rmtree(root, ignore_errors=True)
    if big <= 0:
        return
    chunk = 10_000
    chunk_ms = []
    for _ in range(big // chunk):
        block = unit(rng, (chunk * tokens, DIM))
        t = time.perf_counter()
        numpy_maxsim_all(queries[0], block, tokens)
        chunk_ms.append((time.perf_counter() - t) * 1000)
        del block
    print(
        f"  {big} pages x {tokens}: numpy brute force streamed in {chunk}-page chunks "
        f"{sum(chunk_ms):.0f} ms per query (compute only; {big * tokens * DIM * 4 / 2**30:.0f} GiB "
        f"of float32 would not fit in memory) ({load()})"
    )
    small = 32
    for stage in ("none", "binary"):
        root = Path(tempfile.mkdtemp(prefix="pages-big-"))
        try:
            store = store_with(root, big, small, stage, rng)
            ms = p50(lambda q, s=store: s.multi_query("pages", q, 10), queries[:5])
            print(
                f"  {big} pages x {small} vectors, LanceStore first stage {stage:6}: "
                f"p50 {ms:.0f} ms ({load()})"
            )
        finally:
            shutil.rmtree(root, ignore_errors=True)


# ------------------------------------------------------------------------------ (4) recall


def bench_recall() -> None:
    from mmrag.stores.multivector import approximate_maxsim, encode_codes, maxsim_many

    rng = np.random.default_rng(2)
    n, tokens, topics = 10_000, 64, 200
    centres = unit(rng, (topics, 16, DIM))  # each topic: 16 "visual words"
    docs = []
    for i in range(n):
        words = centres[i % topics][rng.integers(0, 16, tokens)]
        docs.append(unit(rng, (tokens, DIM)) * 0.6 + words)
    docs = [d / np.linalg.norm(d, axis=1, keepdims=True) for d in docs]
    queries = []
    for _ in range(30):
        page = docs[int(rng.integers(0, n))]
        q = page[rng.integers(0, tokens, 12)] + 0.5 * unit(rng, (12, DIM))
        queries.append(q / np.linalg.norm(q, axis=1, keepdims=True))
    print(
        f"first-stage recall@10 against exact MaxSim ({n} clustered pages x {tokens} vectors, "
        f"30 queries):"
    )
    exact = [set(np.argsort(-maxsim_many(q, docs))[:10]) for q in queries]
    for stage in ("int8", "binary"):
        codes = [encode_codes(d, stage) for d in docs]  # type: ignore[arg-type]
        rough = [approximate_maxsim(q, codes, stage, DIM) for q in queries]  # type: ignore[arg-type]
        cells = []
        for rerank in (1, 2, 4, 8):
            hits = 0
            for q, r, want in zip(queries, rough, exact, strict=True):
                cand = np.argsort(-r)[: rerank * 10]
                final = cand[np.argsort(-maxsim_many(q, [docs[i] for i in cand]))[:10]]
                hits += len(want & set(final.tolist()))
            cells.append(f"rerank {rerank}: {hits / (10 * len(queries)):.3f}")
        print(f"  {stage:6}: " + ", ".join(cells) + f" ({load()})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="embed,storage,latency,recall")
    parser.add_argument("--pages", type=int, default=2, help="pages to time in (1)")
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--tokens", type=int, default=790, help="vectors per page in (2)")
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}; cores {os.cpu_count()}; {load()}")
    only = set(args.only.split(","))
    if "embed" in only:
        bench_embed(args.pages)
    if "storage" in only:
        bench_storage(args.tokens)
    if "recall" in only:
        bench_recall()
    if "latency" in only:
        bench_latency(args.big)


if __name__ == "__main__":
    main()
