"""Ingest every PDF and PPTX under a folder (no embedding) and report what came out and how fast.

Usage::

    .venv/bin/python benchmarks/docs_ingest.py [EVALDATA] [--workers 2] [--ocr-sample 6]
        [--no-render]
    .venv/bin/python benchmarks/docs_ingest.py ../shared/evaldata/financebench_dev \
        --compare [--every 3]

Per file: pages/slides, items by kind, problems; then pages/s for PDF render + text +
figures (OCR off, so the rate is not dominated by the few scanned pages), slide
rendering time via LibreOffice, and OCR seconds per page on a sample of pages.

``--compare`` runs the PDFs (every Nth with ``--every``) in one process twice: with the
earlier settings (``doc_context=False, tables=False``) and with today's defaults, and
prints pages/s, items per page by role, the tables found, and what the table finder
costs per page it is run on.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from bench_common import cpu_model  # noqa: E402

from mmrag.config import Settings  # noqa: E402
from mmrag.errors import InputError  # noqa: E402
from mmrag.ingest.base import Extracted, SourceData  # noqa: E402
from mmrag.ingest.pdf import PdfIngester, open_pdf, render  # noqa: E402
from mmrag.ingest.pptx import RENDERER_MISSING, PptxIngester, renderer_available  # noqa: E402


def ingest_file(path: str, render_slides: bool) -> dict[str, Any]:
    """Run one file through its ingester; counts, timing and problems (never raises)."""
    p = Path(path)
    settings = Settings(ocr=False)
    ingester: Any = (
        PdfIngester() if p.suffix.lower() == ".pdf" else PptxIngester(render=render_slides)
    )
    kinds: Counter[str] = Counter()
    captions = 0
    warnings: list[str] = []
    start = time.perf_counter()
    error = None
    try:
        for out in ingester.extract(SourceData.read(p), settings):
            if not isinstance(out, Extracted):  # a skipped page or slide, a notice
                warnings.append(str(out))
                continue
            kinds[out.item.kind] += 1
            captions += bool(out.item.kind == "figure" and out.item.metadata.get("caption"))
            no_text = out.item.kind == "page" and out.item.metadata.get("chars", 1) < 10
            kinds["pages_without_text"] += no_text
    except InputError as exc:
        error = exc.reason
    except Exception as exc:  # the benchmark must report crashes, not die of them
        error = f"CRASH {type(exc).__name__}: {exc}"
    return {
        "path": path,
        "seconds": time.perf_counter() - start,
        "kinds": dict(kinds),
        "captions": captions,
        "error": error,
        "warnings": warnings,
    }


def ocr_sample(pdfs: list[Path], n: int, seed: int = 0) -> list[tuple[str, float, int]]:
    """OCR ``n`` pages (scanned ones first, then random ones): (label, seconds, chars)."""
    from mmrag.models.ocr import RapidOcr, ocr_text

    ocr = RapidOcr()
    ocr.read(_blank())  # load the models outside the timing
    candidates: list[tuple[Path, int, bool]] = []
    for path in pdfs:
        try:
            doc = open_pdf(path)
        except InputError:
            continue
        with doc:
            for i in range(doc.page_count):
                scanned = len(doc[i].get_text().strip()) < 10
                candidates.append((path, i, scanned))
    rng = random.Random(seed)
    scanned = [c for c in candidates if c[2]]
    rest = [c for c in candidates if not c[2]]
    chosen = scanned[: n // 2] + rng.sample(rest, min(len(rest), n - min(len(scanned), n // 2)))
    out = []
    for path, index, _ in chosen:
        with open_pdf(path) as doc:
            page = doc[index]
            image = render(page, tuple(page.rect), PdfIngester().ocr_side)
        start = time.perf_counter()
        text = ocr_text(ocr.read(image))
        out.append((f"{path.name} p{index + 1}", time.perf_counter() - start, len(text)))
    return out


def _blank() -> Any:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (200, 60), "white")
    ImageDraw.Draw(img).text((10, 20), "warm up", fill="black")
    return img


def _load() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def extract_counts(pdfs: list[Path], settings: Settings) -> dict[str, Any]:
    """Extract every PDF with ``settings``; seconds, pages, items by role, table-finder use."""
    import mmrag.ingest.pdf as pdf_mod

    finder = pdf_mod.find_page_tables
    gated = {"table_pages": 0, "table_seconds": 0.0}

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return finder(*args, **kwargs)
        finally:
            gated["table_pages"] += 1
            gated["table_seconds"] += time.perf_counter() - start

    pdf_mod.find_page_tables = timed  # type: ignore[assignment]
    roles: Counter[str] = Counter()
    start = time.perf_counter()
    try:
        for path in pdfs:
            for out in PdfIngester().extract(SourceData.read(path), settings):
                if isinstance(out, Extracted):
                    roles[out.item.role or out.item.kind] += 1
    finally:
        pdf_mod.find_page_tables = finder  # type: ignore[assignment]
    return {"seconds": time.perf_counter() - start, "roles": roles, **gated}


def compare(root: Path, every: int) -> int:
    """Earlier settings against today's defaults on the same PDFs, in this process."""
    pdfs = sorted(root.glob("*.pdf"))[::every]
    print(f"{len(pdfs)} PDFs under {root} (every {every}); {cpu_model()}; {_load()}")
    runs = {
        "earlier (doc_context=False, tables=False)": Settings(
            ocr=False, doc_context=False, tables=False
        ),
        "context only (tables=False)": Settings(ocr=False, tables=False),
        "defaults (doc_context, tables)": Settings(ocr=False),
    }
    # A first pass fills the page cache and loads PyMuPDF's code, which would
    # otherwise be charged to whichever run comes first.
    extract_counts(pdfs, runs[next(iter(runs))])
    for name, settings in runs.items():
        r = extract_counts(pdfs, settings)
        pages = r["roles"]["page"]
        per_page = {k: round(v / max(pages, 1), 2) for k, v in sorted(r["roles"].items())}
        text_items = sum(v for k, v in r["roles"].items() if k not in ("page", "figure"))
        rate = pages / r["seconds"]
        print(f"\n{name}: {pages} pages in {r['seconds']:.1f} s = {rate:.1f} pages/s")
        print(f"  items per page {per_page}; text items to embed {text_items}  ({_load()})")
        if r["table_pages"]:
            print(
                f"  table finder ran on {r['table_pages']} pages "
                f"({r['table_pages'] / pages:.0%}), "
                f"{r['table_seconds'] / r['table_pages']:.2f} s per page run, found "
                f"{r['roles']['table']} table items"
            )
    return 0


def main() -> int:
    """Run the benchmark and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evaldata", nargs="?", default=str(ROOT.parent / "shared" / "evaldata"))
    parser.add_argument("--workers", type=int, default=2, help="processes (files run in parallel)")
    parser.add_argument("--ocr-sample", type=int, default=6, help="pages to OCR for the cost")
    parser.add_argument("--no-render", action="store_true", help="do not render slides")
    parser.add_argument("--compare", action="store_true", help="earlier settings vs defaults")
    parser.add_argument("--every", type=int, default=1, help="with --compare: every Nth PDF")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    root = Path(args.evaldata)
    if args.compare:
        return compare(root, max(1, args.every))
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in {".pdf", ".pptx"})
    # Rendered copies of the decks are PDFs too; they are real inputs, so they stay in.
    pdfs = [p for p in files if p.suffix.lower() == ".pdf"]
    decks = [p for p in files if p.suffix.lower() == ".pptx"]
    render_slides = not args.no_render and renderer_available()
    print(
        f"{len(pdfs)} PDFs, {len(decks)} decks under {root}; "
        f"workers={args.workers}; cpus={os.cpu_count()}"
    )
    if not renderer_available():
        print("note:", RENDERER_MISSING)

    pdf_results, pdf_wall = _run(pdfs, args.workers, render_slides)
    deck_results, deck_wall = _run(decks, args.workers, render_slides)
    for r in pdf_results + deck_results:
        status = f"FAILED: {r['error']}" if r["error"] else ""
        kinds = {k: v for k, v in r["kinds"].items() if v}
        print(
            f"  {Path(r['path']).relative_to(root)}  {r['seconds']:.2f}s  {kinds}  "
            f"captioned_figures={r['captions']} {status}"
        )
        for w in r["warnings"]:
            print(f"      warning: {w}")

    pages = sum(r["kinds"].get("page", 0) for r in pdf_results)
    busy = sum(r["seconds"] for r in pdf_results)
    figures = sum(r["kinds"].get("figure", 0) for r in pdf_results)
    captioned = sum(r["captions"] for r in pdf_results)
    failed = [r for r in pdf_results + deck_results if r["error"]]
    crashed = [r for r in failed if str(r["error"]).startswith("CRASH")]
    print("\nPDF: render + text + figures (no OCR, no embedding)")
    print(
        f"  pages={pages} figures={figures} (captioned {captioned}) "
        f"text={sum(r['kinds'].get('text', 0) for r in pdf_results)} "
        f"pages_without_text={sum(r['kinds'].get('pages_without_text', 0) for r in pdf_results)}"
    )
    print(
        f"  {pages / pdf_wall:.1f} pages/s wall with {args.workers} workers "
        f"({pages / busy:.1f} pages/s per process)"
    )
    slides = sum(r["kinds"].get("slide", 0) for r in deck_results)
    print(
        f"PPTX: slides={slides} figures={sum(r['kinds'].get('figure', 0) for r in deck_results)} "
        f"rendered={'yes (LibreOffice)' if render_slides else 'no'} "
        f"{slides / deck_wall:.1f} slides/s wall"
    )
    print(f"failures: {len(failed)} ({len(crashed)} crashes)")
    for r in failed:
        print(f"  {r['path']}: {r['error']}")

    if args.ocr_sample:
        sample = ocr_sample(pdfs, args.ocr_sample)
        secs = [s for _, s, _ in sample]
        print(
            f"\nOCR (RapidOCR, page rendered at {PdfIngester().ocr_side}px long side), "
            f"{len(sample)} pages:"
        )
        for label, s, chars in sample:
            print(f"  {label}: {s:.2f}s {chars} chars")
        if secs:
            print(
                f"  mean {statistics.mean(secs):.2f} s/page, "
                f"median {statistics.median(secs):.2f} s/page"
            )
    return 1 if crashed else 0


def _run(
    files: list[Path], workers: int, render_slides: bool
) -> tuple[list[dict[str, Any]], float]:
    if not files:
        return [], 1e-9
    # Biggest first so one long file does not start last.
    order = sorted(files, key=lambda p: -p.stat().st_size)
    start = time.perf_counter()
    if workers <= 1:
        results = [ingest_file(str(p), render_slides) for p in order]
    else:
        with ProcessPoolExecutor(workers) as pool:
            results = list(
                pool.map(ingest_file, [str(p) for p in order], [render_slides] * len(order))
            )
    wall = time.perf_counter() - start
    return sorted(results, key=lambda r: r["path"]), wall


if __name__ == "__main__":
    raise SystemExit(main())
