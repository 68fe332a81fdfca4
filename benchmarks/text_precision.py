"""MiniLM passage embedding speed and agreement per ``text_precision`` (issue 13).

Run from the repo root: ``.venv/bin/python benchmarks/text_precision.py`` (``--chunks 256``).

Chunks are 800-character pieces of real SEC filings (``evaldata/financebench_dev``), cut by
mmrag's own chunker. For fp32, bf16 and int8 it prints chunks/s through
``SentenceTextEncoder.encode`` (threads sized per call, as indexing does) and agreement with
fp32: mean/min cosine of the passage vectors, and top-10 overlap of passage rankings for
the filings' analyst questions (queries encoded at the same precision). The CPU model and
the 1-min load average are printed beside the figures: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from bench_common import cpu_model

REPO = Path(__file__).resolve().parent.parent


def real_chunks(folder: Path, n: int, chunk_chars: int) -> list[str]:
    """The first ``n`` chunks of the filings' text, a few pages from each filing."""
    import pymupdf

    from mmrag.ingest.chunk import chunk_text

    out: list[str] = []
    for pdf in sorted(folder.glob("*.pdf")):
        with pymupdf.open(pdf) as doc:
            for page in list(doc)[5:25]:
                pieces = chunk_text(page.get_text(), chunk_chars)
                out += [c.text for c in pieces if len(c.text) > 200]
        if len(out) >= n:
            break
    return out[:n]


def questions(folder: Path) -> list[str]:
    """The analyst questions shipped beside the filings (any JSON/JSONL with 'question')."""
    found: list[str] = []
    for path in sorted(folder.glob("*.json*")):
        lines = path.read_text().splitlines() if path.suffix == ".jsonl" else [path.read_text()]
        for line in lines:
            try:
                rows = json.loads(line)
            except ValueError:
                continue
            for row in rows if isinstance(rows, list) else [rows]:
                if isinstance(row, dict) and isinstance(row.get("question"), str):
                    found.append(row["question"])
    return found


def topk(passages: np.ndarray, queries: np.ndarray, k: int = 10) -> list[set[int]]:
    """Each query's top-k passage indices."""
    return [set(np.argsort(-(passages @ q))[:k].tolist()) for q in queries]


def main() -> None:
    """Encode the same chunks at each precision; print speed and agreement with fp32."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--evaldata", type=Path, default=REPO.parent / "shared" / "evaldata")
    ap.add_argument("--chunks", type=int, default=256)
    ap.add_argument("--chunk-chars", type=int, default=800)
    ap.add_argument("--precisions", default="fp32,bf16,int8")
    args = ap.parse_args()

    from mmrag.models.precision import cpu_supports_bf16
    from mmrag.models.text import SentenceTextEncoder

    folder = args.evaldata / "financebench_dev"
    chunks = real_chunks(folder, args.chunks, args.chunk_chars)
    asks = questions(folder) or [c[:80] for c in chunks[:32]]
    print(
        f"CPU {cpu_model()}; cores {os.cpu_count()}; native bf16 {cpu_supports_bf16()}; "
        f"{len(chunks)} chunks (mean {np.mean([len(c) for c in chunks]):.0f} chars), "
        f"{len(asks)} queries",
        flush=True,
    )
    results: dict[str, tuple[np.ndarray, list[set[int]], float]] = {}
    for precision in args.precisions.split(","):
        enc = SentenceTextEncoder(device="cpu", offline=True, precision=precision)
        enc.encode(chunks[:16])  # load and warm outside the timing
        start = time.perf_counter()
        vecs = enc.encode(chunks)
        rate = len(chunks) / (time.perf_counter() - start)
        results[precision] = (vecs, topk(vecs, enc.encode(asks, query=True)), rate)
        print(f"{precision}: {rate:7.1f} chunks/s  load {os.getloadavg()[0]:.2f}", flush=True)
        enc.release()
    if "fp32" not in results:
        return
    ref, ref_top, ref_rate = results["fp32"]
    for precision, (vecs, top, rate) in results.items():
        cos = np.sum(vecs * ref, axis=1)
        overlap = np.mean([len(a & b) / 10 for a, b in zip(top, ref_top, strict=True)])
        print(
            f"{precision:>5}: {rate / ref_rate:4.2f}x fp32; cosine to fp32 mean {cos.mean():.5f} "
            f"min {cos.min():.5f}; top-10 overlap {overlap:.3f}"
        )


if __name__ == "__main__":
    main()
