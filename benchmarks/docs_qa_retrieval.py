"""Questions about long reports -> the evidence page: recall per path, fused, and a naive baseline.

Usage::

    .venv/bin/python benchmarks/docs_qa_retrieval.py ../shared/evaldata/financebench_dev
        [--work DIR] [--speed-docs 6] [--no-baseline] [--show-misses N]

DIR holds PDFs and ``questions.jsonl`` in financebench's layout (``doc``, ``question``,
``evidence: [{page_num_0based}]``). Every PDF is indexed with ``--model none`` (no CLIP
weights reach these machines) through ``mmrag.open(...).add(...)``; each question is run
across all documents and within its own (``where={"doc": ...}``), on each text path alone
and fused (the default ranking). A hit counts as its page, whatever it is (chunk, table,
figure, the page): recall@k is the share of questions with an evidence page among the
first k distinct pages. 95% intervals come from a bootstrap over questions.

The naive baseline is computed in the same run: PyMuPDF text per page, all-MiniLM-L6-v2
over 200-word windows (stride 100), a page scores its best window.

Speed: ``--speed-docs N`` PDFs are indexed twice more, with today's settings and with the
settings before this benchmark existed (``doc_context=False, tables=False``, fp32 text
embedding), in the same run, and pages/s printed for both.

The last line reads ``across R@5 X  within R@5 Y  fused-vs-best-path Z`` where Z is the
fused R@5 minus the best single path's (across documents).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from bench_common import cpu_model  # noqa: E402

import mmrag  # noqa: E402
from mmrag.evaluate import bootstrap_interval  # noqa: E402

KS = (1, 5, 10)
FETCH = 30  # hits asked for; enough to find 10 distinct pages


@dataclass(frozen=True)
class Question:
    """One question and its evidence pages (1-based, as mmrag numbers them)."""

    doc: str
    text: str
    pages: frozenset[int]


def load_questions(folder: Path) -> list[Question]:
    """financebench's questions.jsonl with 0-based evidence pages made 1-based."""
    out = []
    for line in (folder / "questions.jsonl").read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            pages = frozenset(int(e["page_num_0based"]) + 1 for e in row["evidence"])
            out.append(Question(row["doc"], row["question"], pages))
    return out


def first_rank(pages: Sequence[tuple[str, int]], q: Question, within: bool) -> int | None:
    """1-based rank of the first evidence page among distinct pages, or None."""
    seen: list[tuple[str, int]] = []
    for page in pages:
        if within and page[0] != q.doc:
            continue
        if page not in seen:
            seen.append(page)
            if page[0] == q.doc and page[1] in q.pages:
                return len(seen)
    return None


def recall_row(name: str, ranks: Sequence[int | None]) -> dict[str, Any]:
    """Recall@k with bootstrap intervals for one system."""
    row: dict[str, Any] = {"name": name}
    for k in KS:
        hits = [1.0 if r is not None and r <= k else 0.0 for r in ranks]
        low, high = bootstrap_interval(hits)
        row[k] = (float(np.mean(hits)), low, high)
    return row


def print_table(title: str, rows: Sequence[dict[str, Any]]) -> None:
    """Rows of recall@k (with intervals) under a title."""
    print(f"\n{title}")
    print(f"{'system':<16}" + "".join(f"{'R@' + str(k):>22}" for k in KS))
    for row in rows:
        cells = "".join(f"{row[k][0]:>8.3f} [{row[k][1]:.2f}, {row[k][2]:.2f}]" for k in KS)
        print(f"{row['name']:<16}{cells}")


def run_index(
    index: Any, questions: Sequence[Question], paths: Sequence[str] | None, within: bool
) -> tuple[list[int | None], list[float]]:
    """Ranks of the first evidence page and latencies (ms) for one path choice."""
    ranks, times = [], []
    for q in questions:
        where = {"doc": q.doc} if within else None
        start = time.perf_counter()
        hits = index.search(q.text, k=FETCH, where=where, paths=paths)
        times.append((time.perf_counter() - start) * 1000)
        found = [(h.item.doc or "", h.item.page or 0) for h in hits]
        ranks.append(first_rank(found, q, within))
    return ranks, times


def naive_baseline(pdfs: Sequence[Path], questions: Sequence[Question]) -> dict[bool, list]:
    """The 40-line script: page text, MiniLM over 200-word windows, page = best window."""
    import pymupdf

    from mmrag.models.text import SentenceTextEncoder

    windows: list[str] = []
    owner: list[tuple[str, int]] = []
    for pdf in pdfs:
        with pymupdf.open(pdf) as doc:
            for number, page in enumerate(doc, start=1):
                words = page.get_text().split()
                for start in range(0, max(len(words) - 100, 1), 100):
                    windows.append(" ".join(words[start : start + 200]))
                    owner.append((pdf.name, number))
    encoder = SentenceTextEncoder(
        "sentence-transformers/all-MiniLM-L6-v2", device="cpu", offline=True
    )
    vectors = encoder.encode(windows)
    out: dict[bool, list] = {False: [], True: []}
    for q in questions:
        scores = vectors @ encoder.encode([q.text], query=True)[0]
        ranked = [owner[i] for i in np.argsort(-scores)]
        for within in (False, True):
            out[within].append(first_rank(ranked, q, within))
    return out


def index_speed(pdfs: Sequence[Path], work: Path, **settings: Any) -> tuple[float, int]:
    """Seconds and items to index ``pdfs`` into a fresh index with ``settings``."""
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        start = time.perf_counter()
        with mmrag.open(tmp, model="none", hf_offline=True, ocr=False, **settings) as index:
            report = index.add([str(p) for p in pdfs])
        return time.perf_counter() - start, report.items


def pages_in(pdfs: Sequence[Path]) -> int:
    """Total pages of some PDFs."""
    import pymupdf

    total = 0
    for pdf in pdfs:
        with pymupdf.open(pdf) as doc:
            total += doc.page_count
    return total


def speed_section(pdfs: Sequence[Path], work: Path) -> None:
    """pages/s with today's settings vs the earlier ones, same PDFs, same run."""
    pages = pages_in(pdfs)
    earlier = {"doc_context": False, "tables": False, "text_precision": "fp32"}
    runs: list[tuple[str, Callable[[], tuple[float, int]]]] = [
        ("earlier settings", lambda: index_speed(pdfs, work, **earlier)),
        ("default settings", lambda: index_speed(pdfs, work)),
    ]
    print(f"\nindexing speed on {len(pdfs)} PDFs / {pages} pages (OCR off, --model none)")
    rates = {}
    for name, run in runs:
        seconds, items = run()
        rates[name] = pages / seconds
        print(f"  {name:<18} {seconds:7.1f} s  {pages / seconds:6.2f} pages/s  {items} items")
    print(f"  speed-up: {rates['default settings'] / rates['earlier settings']:.2f}x")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--work", type=Path, default=None, help="where the index is built")
    parser.add_argument("--speed-docs", type=int, default=6, help="PDFs for the speed runs")
    parser.add_argument("--no-baseline", action="store_true", help="skip the naive baseline")
    parser.add_argument("--show-misses", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    questions = load_questions(args.folder)
    pdfs = sorted(args.folder.glob("*.pdf"))
    load = os.getloadavg()[0]
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; load before: {load:.2f}")
    print(f"{len(pdfs)} PDFs, {pages_in(pdfs)} pages, {len(questions)} questions")

    work = Path(args.work or tempfile.mkdtemp(prefix="mmrag-docsqa-"))
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with mmrag.open(work / "index", model="none", hf_offline=True, ocr=False) as index:
        report = index.add([str(p) for p in pdfs])
        seconds = time.perf_counter() - start
        print(
            f"indexed {report.items} items in {seconds:.1f} s "
            f"({pages_in(pdfs) / seconds:.2f} pages/s); failed {report.failed}"
        )
        items = index.stats()["items"]  # all of them, also when an earlier run built them
        tables: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
        latency: list[float] = []
        misses: list[tuple[Question, Any]] = []
        for within in (False, True):
            for name, paths in (("text", ["text"]), ("bm25", ["bm25"]), ("fused", None)):
                ranks, times = run_index(index, questions, paths, within)
                tables[within].append(recall_row(name, ranks))
                if name == "fused" and not within:
                    latency = times
                    misses = [
                        (q, r) for q, r in zip(questions, ranks, strict=True) if r is None or r > 5
                    ]
    if not args.no_baseline:
        naive = naive_baseline(pdfs, questions)
        for within in (False, True):
            tables[within].append(recall_row("naive baseline", naive[within]))
    print_table("question -> evidence page, across all documents", tables[False])
    print_table("question -> evidence page, within the question's document", tables[True])
    print(
        f"\nfused query latency: p50 {statistics.median(latency):.1f} ms, "
        f"p95 {float(np.percentile(latency, 95)):.1f} ms "
        f"({items} items; load now {os.getloadavg()[0]:.2f})"
    )
    for q, rank in misses[: args.show_misses]:
        print(f"  miss (rank {rank}): {q.doc} p.{sorted(q.pages)}: {q.text[:100]}")
    if args.speed_docs:
        speed_section(pdfs[: args.speed_docs], work)

    across = {row["name"]: row[5][0] for row in tables[False]}
    within5 = {row["name"]: row[5][0] for row in tables[True]}
    best_path = max(across["text"], across["bm25"])
    best_within = max(within5["text"], within5["bm25"])
    print(
        "\nwithin the document: fused R@5 minus the best single path's "
        f"{within5['fused'] - best_within:+.3f}"
    )
    print(
        f"\nacross R@5 {across['fused']:.3f}  within R@5 {within5['fused']:.3f}  "
        f"fused-vs-best-path {across['fused'] - best_path:+.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
