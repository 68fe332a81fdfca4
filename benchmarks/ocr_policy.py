"""OCR policy: cost per photo, photos skipped, and word recall on rendered pages, three ways.

Run from the repo root: ``.venv/bin/python benchmarks/ocr_policy.py`` (also called by
``index_throughput.py``). "full" is RapidOCR's own pipeline on every image (detection with
the short side scaled up to 736 px, then recognition); "before" is the previous default
(``RapidOcr``: detect at 480 px, and only where that finds text, detect at 960 px and
recognise those boxes), on every image; "after" is the current default: the text gate
(``looks_like_text``, 2-3 ms) first, and the "before" reading only for images it passes.
Images are sized as the decode workers size them (1280 px long side). Recall is the share
of the page's own words (text layer, 3+ letters/digits) found among OCR lines scored >= 0.7,
on slide decks rendered by LibreOffice and on real PDF pages; a page the gate skips counts
as none found.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import time
from pathlib import Path

import numpy as np
from bench_common import cpu_model
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SIDE = 1280  # mmrag.ingest.decode.OCR_SIDE


def _words(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Za-z0-9]{3,}", text)}


def _fit(image: Image.Image) -> Image.Image:
    image = image.convert("RGB")
    image.thumbnail((SIDE, SIDE))
    return image


def rendered_pages(evaldata: Path, limit: int) -> list[tuple[Image.Image, set[str]]]:
    """Pages with a text layer, rendered at 150 dpi: (image, the page's words)."""
    import pymupdf

    pdfs = sorted((evaldata / "pptx_real" / "_rendered_pdf_libreoffice").glob("*.pdf"))
    pdfs += sorted((evaldata / "pdfs_real").glob("*/*.pdf"))
    out = []
    for pdf in pdfs:
        with pymupdf.open(pdf) as doc:
            page = doc[min(1, len(doc) - 1)]
            words = _words(page.get_text())
            if len(words) >= 5:
                png = page.get_pixmap(dpi=150).tobytes("png")
                out.append((_fit(Image.open(io.BytesIO(png))), words))
        if len(out) >= limit:
            break
    return out


def compare(
    evaldata: Path, photos: list[str], pages: int, *, full: bool = False
) -> dict[str, tuple[float, float]]:
    """{"before"/"after" (and "full"): (ms per photo, word recall on rendered pages)}."""
    from mmrag.models.ocr import RapidOcr, looks_like_text, ocr_text

    docs = rendered_pages(evaldata, pages)
    images = [_fit(Image.open(p)) for p in photos]
    out = {}
    policies = [
        ("before", RapidOcr(threads=1), False),
        ("after", RapidOcr(threads=1), True),
    ]
    if full:
        policies.insert(0, ("full", RapidOcr(threads=1, screen_side=None), False))
    for name, engine, gated in policies:
        engine.read(images[0])  # load outside the timing

        def read(image: Image.Image, engine: RapidOcr = engine, gated: bool = gated) -> list:
            return engine.read(image) if not gated or looks_like_text(image) else []

        start = time.perf_counter()
        found = sum(bool(read(im)) for im in images)
        ms = (time.perf_counter() - start) / len(images) * 1000
        skipped = sum(not looks_like_text(im) for im in images) if gated else 0
        recall = [
            len(words & _words(ocr_text([ln for ln in read(im) if ln.score >= 0.7]))) / len(words)
            for im, words in docs
        ]
        out[name] = (ms, float(np.mean(recall)))
        print(
            f"OCR {name:>6}: {ms:6.1f} ms/photo; photos skipped unread {skipped}/{len(images)}, "
            f"with lines {found}/{len(images)}; word recall {out[name][1]:.3f} on {len(docs)} "
            f"rendered pages/slides  load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    return out


def main() -> None:
    """Compare the three OCR policies on real photos and rendered pages."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--evaldata", type=Path, default=REPO.parent / "shared" / "evaldata")
    ap.add_argument("--photos", type=int, default=30)
    ap.add_argument("--pages", type=int, default=24)
    ap.add_argument("--full", action="store_true", help="also RapidOCR's own full pipeline")
    args = ap.parse_args()
    sets = ("coco_mini", "clothing_small", "magento_luma_catalog")
    per_set = [sorted(str(p) for p in (args.evaldata / n).rglob("*.jpg")) for n in sets]
    photos = [p for group in zip(*per_set, strict=False) for p in group][: args.photos]
    print(f"CPU {cpu_model()}; load {os.getloadavg()}", flush=True)
    compare(args.evaldata, photos, args.pages, full=args.full)


if __name__ == "__main__":
    main()
