"""Query latency: one-shot CLI wall time, and in-process p50/p95 idle and beside a busy process.

Run from the repo root: ``.venv/bin/python benchmarks/query_latency.py`` (``--items 100000``).

(1) ``python -m mmrag search "..."`` from process start to printed results, against
    ``python -c "import torch, transformers; from transformers import CLIPModel"`` timed in
    the same run (issue 8 target: under half of it).
(2) ``Index.search`` (CLIP text tower + MiniLM + store) on an index padded to ``--items``
    stored items, p50/p95 idle and with one other CPU-bound process (a numpy matmul loop
    on every core), four ways in one process: the default (text towers on ONNX Runtime,
    one thread each, the paths on threads at once), ``precision="int8"`` (the CLIP text
    tower's weights quantised), torch with per-call thread sizing (one thread per query),
    and torch with its default of one thread per core (the earlier behaviour).
CLIP is the real ViT-B/32 architecture with random weights (no pretrained weights here) and
a BPE tokenizer learned from evaldata's captions and product texts, so queries take about as
many tokens as with CLIP's own vocabulary (the byte-level test tokenizer takes ~3x as many,
and the text tower's cost grows with them); each query's token count is printed, and the
issue's target is for queries of up to 16 tokens.
The CPU model and 1-min load average are printed beside the figures.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from bench_common import cpu_model, english_corpus

REPO = Path(__file__).resolve().parent.parent
QUERIES = [
    "a photo of a dog",
    "red dress with short sleeves",
    "quarterly revenue growth",
    "cat",
    "a man riding a bicycle down a city street next to parked cars",
]
BUSY = "import numpy as np\na = np.random.rand(1500, 1500)\nwhile True:\n    a @ a\n"


def walls(cmds: dict[str, list[str]], env: dict[str, str], runs: int) -> dict[str, tuple]:
    """Median (wall s, CPU s) of each command over ``runs`` rounds, interleaved so both see
    the same load; every run must succeed."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cmds}
    for _ in range(runs):
        for name, cmd in cmds.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, capture_output=True)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            times[name].append((time.perf_counter() - start, cpu))
    return {
        n: tuple(float(np.median(col)) for col in zip(*t, strict=True)) for n, t in times.items()
    }


def build_index(root: Path, model_dir: Path, photos: list[str], items: int) -> None:
    """A real index of ``photos``, padded with random stored items up to ``items``."""
    import mmrag
    from mmrag.types import Item

    cache = root.parent / "onnx"  # this run's towers, exported by the current code
    with mmrag.open(
        root, model=str(model_dir), ocr=False, hf_offline=True, onnx_cache=cache
    ) as index:
        index.add(photos)
        index.text.encode([f"text {i}" for i in range(8)])  # loads MiniLM: exports its tower
        rng = np.random.default_rng(0)
        for lo in range(0, max(0, items - len(photos)), 20_000):
            n = min(20_000, items - len(photos) - lo)
            rows = [
                Item(id=f"pad{lo + i}", kind="text", source=f"pad{lo + i}.txt", text=f"row {i}")
                for i in range(n)
            ]
            spaces = index.store.spaces.items()
            vecs = {s: _unit(rng.standard_normal((n, d), np.float32)) for s, d in spaces}
            index.store.upsert(rows, vecs)
        index.store.optimize()


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def print_tokens(model_dir: Path) -> None:
    """Each query's CLIP token count (with start and end tokens) under the model's tokenizer."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    counts = {q: len(tokenizer.encode(q).ids) for q in QUERIES}
    print(
        "queries (CLIP tokens): " + "; ".join(f"{q!r} {n}" for q, n in counts.items()),
        flush=True,
    )


def latencies(search: Callable[[str], Any], trials: int) -> tuple[float, float]:
    """p50 and p95 milliseconds of ``search`` over ``trials`` queries."""
    ms = []
    for i in range(trials):
        start = time.perf_counter()
        search(QUERIES[i % len(QUERIES)])
        ms.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def phases(index: Any, trials: int) -> None:
    """Median ms of each part of a text query, called one by one as ``Index.search`` does."""
    store, clip, text = index.store, index.clip, index.text
    parts: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        start, start_cpu = time.perf_counter(), time.process_time()
        out = fn()
        parts.setdefault(name, []).append((time.perf_counter() - start) * 1000)
        cpu.setdefault(name, []).append((time.process_time() - start_cpu) * 1000)
        return out

    for i in range(trials):
        q = QUERIES[i % len(QUERIES)]
        cv = timed("clip text tower", lambda q=q: clip.encode_texts([q])[0])
        timed("store ANN clip", lambda cv=cv: store.query("clip", cv, 40))
        tv = timed("MiniLM", lambda q=q: text.encode([q], query=True)[0])
        timed("store ANN text", lambda tv=tv: store.query("text", tv, 40))
        timed("store full text", lambda q=q: store.text_query(q, 40))
        timed("Index.search total", lambda q=q: index.search(q, k=10))
    for label, table in (("wall", parts), ("CPU (all threads; load-independent)", cpu)):
        med = {name: float(np.median(ms)) for name, ms in table.items()}
        total = med["Index.search total"]
        rest = total - sum(v for n, v in med.items() if n != "Index.search total")
        print(
            f"(2) phases at {index.store.count()} items, median {label} ms: "
            + ", ".join(f"{name} {ms:.1f}" for name, ms in med.items())
            + f", grouping/parents/fusion (the rest) {rest:.1f}  load {os.getloadavg()[0]:.2f}",
            flush=True,
        )


def in_process(root: Path, model_dir: Path, trials: int) -> None:
    """p50/p95 idle and busy, per-call threads against torch's default thread count."""
    import torch

    import mmrag
    from mmrag.models import clip, precision

    sized = precision.call_threads
    default = torch.get_num_threads()
    cache = root.parent / "onnx"
    onnx = mmrag.open(root, model=str(model_dir), hf_offline=True, onnx_cache=cache)
    int8 = mmrag.open(
        root, model=str(model_dir), hf_offline=True, onnx_cache=cache, precision="int8"
    )
    plain = mmrag.open(root, model=str(model_dir), hf_offline=True, onnx_cache=None)
    with onnx, int8, plain:
        for index in (onnx, int8):
            index.search("warm up")  # int8: quantises the exported tower once
            index.search("warm up twice")  # the second query builds the prepacked sessions
        agreement = [
            float(onnx.clip.encode_texts([q])[0] @ int8.clip.encode_texts([q])[0]) for q in QUERIES
        ]
        print(
            f"(2) int8 CLIP text tower vs fp32 (ONNX): cosine min {min(agreement):.5f} "
            f"mean {np.mean(agreement):.5f} over the queries (random weights)",
            flush=True,
        )
        phases(onnx, max(10, trials // 3))
        table: dict[tuple[str, str], tuple[float, float]] = {}
        for load in ("idle", "busy"):
            busy = subprocess.Popen([sys.executable, "-c", BUSY]) if load == "busy" else None
            time.sleep(2.0 if busy else 0.0)
            try:
                for mode in ("onnx", "onnx int8", "per-call", "torch default"):
                    fixed = (lambda n, limit=0: default) if mode == "torch default" else sized
                    precision.call_threads = clip.call_threads = fixed  # type: ignore[assignment]
                    index = {"onnx": onnx, "onnx int8": int8}.get(mode, plain)
                    index.search("warm up")
                    table[(load, mode)] = latencies(partial(index.search, k=10), trials)
                    p50, p95 = table[(load, mode)]
                    print(
                        f"(2) {load:>4}, {mode:>13} threads: p50 {p50:6.1f} ms  p95 {p95:6.1f} ms"
                        f"  load {os.getloadavg()[0]:.2f}",
                        flush=True,
                    )
            finally:
                precision.call_threads = clip.call_threads = sized  # type: ignore[assignment]
                if busy:
                    busy.kill()
                    busy.wait()
    for mode, label in (("onnx", "default"), ("onnx int8", "MMRAG_PRECISION=int8")):
        idle, loaded = table[("idle", mode)][0], table[("busy", mode)][0]
        print(
            f"(2) targets ({label}): idle p50 {idle:.1f} ms <= 25: "
            f"{'MET' if idle <= 25 else 'MISSED'}; busy "
            f"p50 {loaded:.1f} ms <= 2x idle: {'MET' if loaded <= 2 * idle else 'MISSED'} "
            f"({loaded / idle:.2f}x; torch default threads: "
            f"{table[('busy', 'torch default')][0] / table[('idle', 'torch default')][0]:.2f}x)"
        )


def main() -> None:
    """Build a padded index, time the one-shot CLI and in-process queries."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--evaldata", type=Path, default=REPO.parent / "shared" / "evaldata")
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--runs", type=int, default=5, help="one-shot runs (median)")
    args = ap.parse_args()

    from mmrag.testing import make_random_clip

    photos = sorted(str(p) for p in (args.evaldata / "coco_mini").rglob("*.jpg"))[:16]
    print(f"CPU {cpu_model()}; cores {os.cpu_count()}; load {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="mmrag-qlat-") as tmp_str:
        tmp = Path(tmp_str)
        model_dir = make_random_clip(tmp / "vit-b-32", corpus=english_corpus(args.evaldata))
        print_tokens(model_dir)
        build_index(tmp / "idx", model_dir, photos, args.items)
        env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1"}
        env.update(
            MMRAG_INDEX=str(tmp / "idx"), MMRAG_HF_OFFLINE="1", MMRAG_ONNX_CACHE=str(tmp / "onnx")
        )
        torch_line = "import torch, transformers; from transformers import CLIPModel"
        got = walls(
            {
                "torch": [sys.executable, "-c", torch_line],
                "cli": [sys.executable, "-m", "mmrag", "search", QUERIES[0]],
            },
            env,
            args.runs,
        )
        (base, base_cpu), (cli, cli_cpu) = got["torch"], got["cli"]
        print(
            f"(1) one-shot CLI search {cli:.2f} s (CPU {cli_cpu:.2f} s) vs torch+transformers "
            f"import {base:.2f} s (CPU {base_cpu:.2f} s): {cli / base:.2f}x wall, "
            f"{cli_cpu / base_cpu:.2f}x CPU (target < 0.5x: "
            f"{'MET' if cli < 0.5 * base else 'MISSED'})  load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        in_process(tmp / "idx", model_dir, args.trials)


if __name__ == "__main__":
    main()
