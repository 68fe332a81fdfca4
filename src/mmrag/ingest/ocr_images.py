"""Text found by OCR inside an image (or a scanned page), as ``text`` items linked to it.

The image ingester turns the lines a decode worker read into items with
:func:`lines_to_items`; :func:`ocr_items` reads an image in-process::

    for extracted in ocr_items(image_item, pil_image, RapidOcr(), chunk_chars=800):
        ...  # text items, role="ocr", parent = image_item.id
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from ..models.ocr import OcrEngine, OcrLine, reading_order
from ..types import Item, item_id
from .base import Extracted
from .chunk import chunk_text
from .items import ocr_item

__all__ = ["MIN_CHARS", "MIN_SCORE", "lines_to_items", "ocr_items"]

#: Fewer letters/digits than this in the whole image means "no text here" (photos
#: produce a few stray glyphs on signs and textures).
MIN_CHARS = 8
#: Lines the recogniser scores below this are dropped.
MIN_SCORE = 0.7


def ocr_items(
    image_item: Item,
    image: Image.Image,
    ocr: OcrEngine,
    *,
    chunk_chars: int = 800,
    min_chars: int = MIN_CHARS,
    min_score: float = MIN_SCORE,
) -> list[Extracted]:
    """OCR ``image`` and return its text as ``text`` items whose parent is ``image_item``.

    Returns nothing when the image holds too little confident text. Boxes are in
    the image's pixel coordinates.
    """
    lines = ocr.read(image)
    return lines_to_items(
        lines,
        image_item,
        id_key=(image_item.id, "ocr"),
        chunk_chars=chunk_chars,
        min_chars=min_chars,
        min_score=min_score,
    )


def lines_to_items(
    lines: Sequence[OcrLine],
    parent: Item,
    *,
    id_key: tuple[object, ...],
    chunk_chars: int = 800,
    min_chars: int = MIN_CHARS,
    min_score: float = MIN_SCORE,
    scale: float = 1.0,
    thumb: str | None = None,
) -> list[Extracted]:
    """Chunk OCR lines into ``text`` items under ``parent``.

    Item ids are ``item_id(*id_key, n)`` for chunk ``n``; boxes are divided by
    ``scale`` (pixels per unit of the parent's coordinates, e.g. PDF points);
    ``thumb`` is the picture the items show, if any.
    """
    kept = [ln for ln in lines if ln.score >= min_score and _alnum(ln.text) >= 2]
    if sum(_alnum(ln.text) for ln in kept) < min_chars:
        return []
    text, spans = _join(reading_order(kept))
    out: list[Extracted] = []
    for n, chunk in enumerate(chunk_text(text, chunk_chars)):
        inside = [ln for start, end, ln in spans if start < chunk.end and end > chunk.start]
        bbox = (
            min(ln.bbox[0] for ln in inside) / scale,
            min(ln.bbox[1] for ln in inside) / scale,
            max(ln.bbox[2] for ln in inside) / scale,
            max(ln.bbox[3] for ln in inside) / scale,
        )
        score = sum(ln.score for ln in inside) / len(inside)
        item_key = item_id(*map(str, id_key), n)
        out.append(ocr_item(parent, chunk.text, item_key, n, bbox=bbox, score=score, thumb=thumb))
    return out


def _alnum(text: str) -> int:
    return sum(ch.isalnum() for ch in text)


def _join(lines: Sequence[OcrLine]) -> tuple[str, list[tuple[int, int, OcrLine]]]:
    """Lines joined into text (a row per line, a blank line at big vertical gaps), with spans."""
    parts: list[str] = []
    spans: list[tuple[int, int, OcrLine]] = []
    pos = 0
    prev: OcrLine | None = None
    for line in lines:
        if prev is not None:
            height = max(1.0, prev.bbox[3] - prev.bbox[1])
            centre = (line.bbox[1] + line.bbox[3]) / 2
            if prev.bbox[1] <= centre <= prev.bbox[3]:
                sep = " "
            elif line.bbox[1] - prev.bbox[3] > 1.2 * height:
                sep = "\n\n"  # a gap taller than a line: a new paragraph for the chunker
            else:
                sep = "\n"
            parts.append(sep)
            pos += len(sep)
        parts.append(line.text)
        spans.append((pos, pos + len(line.text), line))
        pos += len(line.text)
        prev = line
    return "".join(parts), spans
