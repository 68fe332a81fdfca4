"""Figure-caption retrieval on real PDFs: recall@1/5 per retrieval path, and indexing speed.

Usage::

    .venv/bin/python benchmarks/docs_retrieval.py [--evaldata ../shared/evaldata]
        [--clip tiny|vit-b-32] [--referenced-only] [--ocr] [--with-label] [--show-misses N]

Every PDF under ``pdfs_real`` (or, with ``--referenced-only``, those named in
``figure_captions.jsonl``) is indexed through ``mmrag.open(...).add(...)`` into a
temporary index. Then each caption in ``figure_captions.jsonl`` is a query; a hit
is relevant when it comes from that PDF and its page equals the caption's page
(both 1-based: the jsonl says so in SOURCE.txt, and PdfIngester numbers pages
from 1). Recall@k is the share of captions with a relevant hit among the first k,
per path: CLIP only, text embedder only, BM25 only, and all fused.

No pretrained CLIP weights exist on these machines, so the CLIP model here has
random weights (``tiny``: a 16-d toy; ``vit-b-32``: the real architecture, real
cost). The CLIP-only numbers are therefore chance level and say nothing about
CLIP quality; the text and BM25 paths use real models and are meaningful.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import mmrag  # noqa: E402
from mmrag.types import Hit  # noqa: E402

#: The paths compared; ``fused`` is a plain search with every path the index has, and
#: ``text+bm25`` the fusion without CLIP (whose random weights here only add noise).
PATHS: tuple[str, ...] = ("clip", "text", "bm25", "fused", "text+bm25")
KS: tuple[int, ...] = (1, 5)


@dataclass(frozen=True)
class Caption:
    """One query: a caption and where its figure is (PDF path, 1-based page)."""

    pdf: Path
    page: int
    label: str
    text: str


@dataclass
class Timer:
    """Seconds spent inside wrapped callables, by phase name."""

    seconds: dict[str, float] = field(default_factory=dict)

    def wrap(self, phase: str, func: Callable[..., Any]) -> Callable[..., Any]:
        """``func`` with its wall time added to ``phase``."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start

        return timed


def load_captions(pdfs_root: Path) -> list[Caption]:
    """The caption queries, with their PDFs resolved under ``pdfs_root``."""
    out = []
    for line in (pdfs_root / "figure_captions.jsonl").read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            out.append(
                Caption(
                    (pdfs_root / row["pdf"]).resolve(),
                    int(row["page"]),
                    row["label"],
                    row["caption"],
                )
            )
    return out


def make_clip(kind: str, directory: Path) -> Path:
    """A randomly initialised CLIP checkpoint on disk (no pretrained weights exist here)."""
    from mmrag.testing import make_random_clip, make_tiny_clip

    if kind == "tiny":
        return make_tiny_clip(directory)
    return make_random_clip(directory, kind)


def instrument(index: Any, timer: Timer) -> None:
    """Time embedding and writing by wrapping the index's encoders and store in place.

    The indexer has no timing hooks of its own; wrapping instance attributes costs
    nothing and leaves the library untouched. Extraction (render, text, figures) is
    what remains of the total.
    """
    indexer = index.indexer
    if indexer.clip is not None:
        indexer.clip.encode_pixels = timer.wrap("embed_clip", indexer.clip.encode_pixels)
    indexer.text.encode = timer.wrap("embed_text", indexer.text.encode)
    index.store.upsert = timer.wrap("write_store", index.store.upsert)
    index.store.delete = timer.wrap("write_store", index.store.delete)
    index.store.optimize = timer.wrap("write_optimize", index.store.optimize)
    indexer._write_blobs = timer.wrap("write_blobs", indexer._write_blobs)


def memoize_queries(index: Any) -> None:
    """Encode each query text once, however many paths ask for it.

    Every path is a separate ``Index.search`` call; without this the same caption
    would be embedded once per call, and ms/query would count that repeat work.
    """
    searcher = index.searcher
    for owner, name in ((searcher.clip, "encode_texts"), (searcher.text, "encode")):
        if owner is None:
            continue
        encode = getattr(owner, name)
        cache: dict[tuple[Any, ...], Any] = {}

        def cached(
            texts: Sequence[str],
            *args: Any,
            _encode: Callable[..., Any] = encode,
            _cache: dict[tuple[Any, ...], Any] = cache,
            **kwargs: Any,
        ) -> Any:
            key = (tuple(texts), args, tuple(sorted(kwargs.items())))
            if key not in _cache:
                _cache[key] = _encode(texts, *args, **kwargs)
            return _cache[key]

        setattr(owner, name, cached)


def relevant(hit: Hit, caption: Caption) -> bool:
    """True when the hit's item is on the caption's PDF page (pages are 1-based on both sides)."""
    item = hit.item
    return item.page == caption.page and Path(item.source).resolve() == caption.pdf


def evaluate(
    index: Any, captions: Sequence[Caption], paths: Sequence[str], with_label: bool
) -> tuple[
    dict[str, dict[int, float]], dict[str, float], dict[str, list[tuple[Caption, list[Hit]]]]
]:
    """Recall@k per path, mean query ms per path, and the misses at the largest k."""
    top = max(KS)
    found: dict[str, dict[int, int]] = {p: dict.fromkeys(KS, 0) for p in paths}
    ms: dict[str, float] = dict.fromkeys(paths, 0.0)
    misses: dict[str, list[tuple[Caption, list[Hit]]]] = {p: [] for p in paths}
    for caption in captions:
        query = f"{caption.label} {caption.text}" if with_label else caption.text
        for path in paths:
            start = time.perf_counter()
            use = None if path == "fused" else path.split("+")
            hits = index.search(query, k=top, paths=use)
            ms[path] += (time.perf_counter() - start) * 1000
            ranks = [i for i, hit in enumerate(hits) if relevant(hit, caption)]
            for k in KS:
                found[path][k] += bool(ranks and ranks[0] < k)
            if not ranks:
                misses[path].append((caption, hits))
    n = max(len(captions), 1)
    recall = {p: {k: found[p][k] / n for k in KS} for p in paths}
    return recall, {p: ms[p] / n for p in paths}, misses


def _pdfs(pdfs_root: Path, captions: Sequence[Caption], referenced_only: bool) -> list[Path]:
    if referenced_only:
        return sorted({c.pdf for c in captions})
    return sorted(p.resolve() for p in pdfs_root.rglob("*") if p.suffix.lower() == ".pdf")


def _pages(pdfs: Sequence[Path]) -> int:
    import pymupdf

    total = 0
    for pdf in pdfs:
        try:
            with pymupdf.open(pdf) as doc:
                total += doc.page_count
        except Exception:  # counted as failed by the indexer; the rate ignores it
            continue
    return total


def _describe(hits: Sequence[Hit]) -> Iterator[str]:
    for hit in hits:
        item = hit.item
        yield f"{item.kind}:{Path(item.source).name}:p{item.page}"


def main(argv: Sequence[str] | None = None) -> int:
    """Index, query, print the report; exit 0 when fused recall@5 meets the 90% target."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--evaldata", type=Path, default=ROOT.parent / "shared" / "evaldata", help="evaldata root"
    )
    parser.add_argument(
        "--clip",
        choices=("tiny", "vit-b-32"),
        default="tiny",
        help="random-weight CLIP: tiny (fast) or the real ViT-B/32 shapes (real cost)",
    )
    parser.add_argument(
        "--referenced-only", action="store_true", help="index only PDFs named by the captions"
    )
    parser.add_argument("--ocr", action="store_true", help="OCR pages without a text layer")
    parser.add_argument(
        "--with-label", action="store_true", help='query "Figure 3 <caption>" instead of caption'
    )
    parser.add_argument(
        "--index",
        type=Path,
        default=None,
        help="keep the index here and reuse it (unchanged PDFs are skipped: timings then are not)",
    )
    parser.add_argument("--show-misses", type=int, default=0, help="print N misses per path")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)

    pdfs_root = args.evaldata / "pdfs_real"
    if not (pdfs_root / "figure_captions.jsonl").exists():
        print(f"no {pdfs_root}/figure_captions.jsonl: nothing to measure", file=sys.stderr)
        return 2
    captions = load_captions(pdfs_root)
    pdfs = _pdfs(pdfs_root, captions, args.referenced_only)
    pages = _pages(pdfs)

    with tempfile.TemporaryDirectory(prefix="mmrag-docs-bench-") as tmp:
        home = args.index or Path(tmp)
        clip_dir = home / f"clip-{args.clip}"
        if not (clip_dir / "config.json").exists():
            make_clip(args.clip, clip_dir)
        index = mmrag.open(home / "index", model=str(clip_dir), ocr=args.ocr, hf_offline=True)
        with index:
            timer = Timer()
            instrument(index, timer)
            start = time.perf_counter()
            report = index.add([str(p) for p in pdfs])
            total = time.perf_counter() - start
            seconds = dict(timer.seconds)  # search shares the encoders: stop counting here
            memoize_queries(index)
            stats = index.stats()
            have = set(index.searcher.available_paths())
            paths = [p for p in PATHS if p == "fused" or set(p.split("+")) <= have]
            recall, query_ms, misses = evaluate(index, captions, paths, args.with_label)

    embed = seconds.get("embed_clip", 0.0) + seconds.get("embed_text", 0.0)
    write = sum(v for k, v in seconds.items() if k.startswith("write"))
    extract = total - embed - write
    load = os.getloadavg()
    print(f"CLIP: {args.clip} with RANDOM weights -> the clip-only numbers are chance level,")
    print("      not a measure of CLIP quality (no pretrained CLIP weights here). Text: MiniLM.")
    print(
        f"indexed {len(pdfs)} PDFs ({pages} pages): added {report.added}, "
        f"unchanged {report.unchanged}, failed {report.failed}; "
        f"items {stats['kinds']}; OCR {'on' if args.ocr else 'off'}"
    )
    for error in report.errors:
        print(f"  failed: {error['path']}: {error['reason']}")
    print(
        f"indexing {total:.1f} s = extract {extract:.1f} s (render+text+figures+thumbs) "
        f"+ embed {embed:.1f} s (clip {seconds.get('embed_clip', 0.0):.1f}, "
        f"text {seconds.get('embed_text', 0.0):.1f}) + write {write:.1f} s "
        f"(store {seconds.get('write_store', 0.0):.1f}, "
        f"blobs {seconds.get('write_blobs', 0.0):.1f}, "
        f"optimize {seconds.get('write_optimize', 0.0):.1f})"
    )
    rates = (
        f"{pages / max(extract, 1e-9):.1f} extraction only (one process), "
        f"{pages / max(total, 1e-9):.1f} end to end"
        if report.added == len(pdfs)
        else "n/a (reused index: not every PDF was indexed in this run)"
    )
    print(
        f"pages/s: {rates}; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores"
    )
    query = "label + caption" if args.with_label else "caption text"
    print(f"\n{len(captions)} captions, query = {query}; relevant = same PDF and page")
    print(f"{'path':<9} {'R@1':>6} {'R@5':>6} {'ms/query':>9}")
    for path in paths:
        print(
            f"{path:<9} {recall[path][1]:>6.1%} {recall[path][5]:>6.1%} {query_ms[path]:>9.1f}"
            + ("   (random CLIP: meaningless)" if path == "clip" else "")
        )
    print("(query encoding is cached per caption: the fused rows' ms leave it out)")
    for path in paths:
        for caption, hits in misses[path][: args.show_misses]:
            rel = caption.pdf.relative_to(pdfs_root.resolve())
            print(f"miss {path}: {rel} p{caption.page} {caption.text[:60]!r}")
            print("    got " + ", ".join(_describe(hits)))
    fused = recall.get("fused", {}).get(5, 0.0)
    print(f"\nfused recall@5 {fused:.1%} (target >= 90%): {'PASS' if fused >= 0.9 else 'FAIL'}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "clip": args.clip,
                    "pdfs": len(pdfs),
                    "pages": pages,
                    "seconds": {"total": total, "extract": extract, **seconds},
                    "recall": recall,
                    "query_ms": query_ms,
                    "loadavg": load,
                },
                indent=2,
            )
        )
    return 0 if fused >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
