"""PDF documents: pages, text chunks and figures, linked document -> page -> figure/text.

::

    ingester = PdfIngester()
    for extracted in ingester.extract(Path("report.pdf"), Settings(), file_hash):
        ...  # page items (with image), text items, figure items (with image)
    ingester.warnings  # pages that could not be read, and why

Ids are stable across re-indexing: ``item_id(str(path))`` is the document,
``item_id(str(path), "page", n)`` page ``n`` (1-based), ``item_id(str(path), "text", n, i)``
its ``i``-th chunk, ``item_id(str(path), "figure", n, j)`` its ``j``-th figure and
``item_id(str(path), "caption", n, j)`` that figure's caption: a ``text`` item whose parent
is the figure (``role="caption"``), so the caption is text-embedded and
search can let it stand for the figure, like the captions of indexed images.

Figure detection itself lives in :mod:`mmrag.ingest.figures`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from ..config import Settings
from ..errors import DependencyError, InputError
from ..models.ocr import OcrEngine
from ..types import Item, content_hash, item_id
from .base import Extracted
from .chunk import chunk_text
from .figures import (
    IMAGE_OPS,
    Figure,
    Rect,
    TextBlock,
    find_figures,
    graphics_log,
    rect_area,
    rect_clip,
    rect_union,
)
from .ocr_images import lines_to_items

__all__ = [
    "Figure",
    "PdfIngester",
    "document_id",
    "find_figures",
    "graphics_log",
    "open_pdf",
    "render",
]

log = logging.getLogger(__name__)


def document_id(path_str: str) -> str:
    """The id of a document: the parent of its pages."""
    return item_id(path_str)


def open_pdf(path: Path) -> Any:
    """Open a PDF with PyMuPDF, raising InputError for encrypted, corrupt or empty files."""
    try:
        import pymupdf
    except ImportError as exc:
        raise DependencyError("pymupdf", "pdf", "PDF ingestion") from exc
    try:
        doc = pymupdf.open(path, filetype="pdf")
    except Exception as exc:  # FileDataError, EmptyFileError, OSError
        raise InputError(str(path), f"cannot open as PDF ({exc})") from exc
    if doc.needs_pass:
        doc.close()
        raise InputError(str(path), "encrypted: a password is required")
    if doc.page_count == 0:
        doc.close()
        raise InputError(str(path), "empty PDF (0 pages)")
    return doc


def render(source: Any, rect: Rect, max_side: int, max_zoom: float = 4.0) -> Image.Image:
    """Render ``rect`` (PDF points) of a page or display list, long side at most ``max_side`` px."""
    import pymupdf

    width, height = rect[2] - rect[0], rect[3] - rect[1]
    zoom = min(max_side / max(width, height, 1.0), max_zoom)
    pix = source.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), clip=pymupdf.Rect(rect), alpha=False)
    if pix.n != 3:  # grey or CMYK output from odd colour spaces
        pix = pymupdf.Pixmap(pymupdf.csRGB, pix)
    return Image.frombytes("RGB", (pix.width, pix.height), pix.samples)


class PdfIngester:
    """PDF files into page, text and figure items.

    ``ocr`` reads pages without a text layer when ``settings.ocr`` is on; when
    not given, a RapidOCR engine is made on the first such page if the package
    is installed (otherwise the page is indexed as an image only, with a warning).
    Problems with single pages go to :attr:`warnings` and the log; the rest of
    the file is still indexed.
    """

    suffixes: frozenset[str] = frozenset({".pdf"})

    def __init__(
        self,
        *,
        ocr: OcrEngine | None = None,
        max_side: int = 1024,
        figure_max_side: int = 768,
        ocr_side: int = 1280,
        max_figures_per_page: int = 12,
    ) -> None:
        self.ocr = ocr
        self.max_side = max_side
        self.figure_max_side = figure_max_side
        self.ocr_side = ocr_side
        self.max_figures_per_page = max_figures_per_page
        self.warnings: list[InputError] = []
        self._ocr_unavailable = False

    def extract(self, path: Path, settings: Settings, file_hash: str) -> Iterator[Extracted]:
        """Page, text and figure items of one PDF; raises InputError if the file is unusable."""
        doc = open_pdf(path)
        try:
            for index in range(doc.page_count):
                try:
                    # Build the whole page first so a failure leaves no half-page behind.
                    items = self._page(doc, index, str(path), path.name, settings, file_hash)
                except Exception as exc:
                    problem = InputError(f"{path} page {index + 1}", f"skipped: {exc}")
                    self.warnings.append(problem)
                    log.warning("%s", problem)
                    continue
                yield from items
        finally:
            doc.close()

    def _page(
        self, doc: Any, index: int, src: str, name: str, settings: Settings, file_hash: str
    ) -> list[Extracted]:
        import pymupdf

        number = index + 1
        page = doc.load_page(index)
        rect = tuple(page.rect)
        if rect[2] - rect[0] < 1 or rect[3] - rect[1] < 1:
            raise ValueError("page has no area")
        display = page.get_displaylist()
        image = render(display, rect, self.max_side)
        blocks = _text_blocks(page, display, pymupdf)
        text, offsets = _join_blocks(blocks)
        ops = graphics_log(display)
        page_item = Item(
            id=item_id(src, "page", number),
            kind="page",
            source=src,
            content_hash=_hash(file_hash, "page", number),
            parent=document_id(src),
            doc=name,
            page=number,
            bbox=rect,
            metadata={"width": image.width, "height": image.height, "chars": len(text)},
        )
        out = [Extracted(page_item, image)]
        if _alnum(text) >= 10:
            out += _chunk_items(text, offsets, page_item, src, number, settings.chunk_chars)
        elif settings.ocr and _scanned(ops, rect):
            out += self._ocr_page(display, rect, page_item, src, number, settings)
        figures = find_figures(ops, blocks, rect)[: self.max_figures_per_page]
        for j, fig in enumerate(figures):
            figure = self._figure_item(display, fig, page_item, src, number, j, file_hash)
            out.append(figure)
            if fig.caption:
                out.append(_caption_item(fig, figure.item, src, number, j))
        return out

    def _ocr_page(
        self, display: Any, rect: Rect, page_item: Item, src: str, number: int, settings: Settings
    ) -> list[Extracted]:
        ocr = self._ocr_engine()
        if ocr is None:
            return []
        image = render(display, rect, self.ocr_side)
        scale = image.width / (rect[2] - rect[0])
        return lines_to_items(
            ocr.read(image),
            page_item,
            id_key=(src, "text", number),
            chunk_chars=settings.chunk_chars,
            scale=scale,
        )

    def _ocr_engine(self) -> OcrEngine | None:
        if self.ocr is None and not self._ocr_unavailable:
            from ..models.ocr import RapidOcr

            try:
                self.ocr = RapidOcr()
            except DependencyError as exc:
                self._ocr_unavailable = True
                log.warning("scanned pages are indexed as images only: %s", exc)
        return self.ocr

    def _figure_item(
        self, display: Any, fig: Figure, page_item: Item, src: str, number: int, j: int, fh: str
    ) -> Extracted:
        image = render(display, fig.bbox, self.figure_max_side)
        meta: dict[str, Any] = {
            "figure_kind": fig.kind,
            "width": image.width,
            "height": image.height,
        }
        if fig.caption:
            meta["caption"] = fig.caption
        if fig.label:
            meta["label"] = fig.label
        item = Item(
            id=item_id(src, "figure", number, j),
            kind="figure",
            source=src,
            content_hash=_hash(fh, "figure", number, j),
            parent=page_item.id,
            text=fig.caption,
            doc=page_item.doc,
            page=number,
            bbox=fig.bbox,
            metadata=meta,
        )
        return Extracted(item, image)


def _caption_item(fig: Figure, figure: Item, src: str, number: int, j: int) -> Extracted:
    """The figure's caption as a text item under the figure.

    Figure items only get a CLIP vector, and the caption is diluted inside an
    800-character page chunk, so without this a caption query has no text vector
    that says just what the figure is. ``role="caption"`` tells search to let a
    hit on it stand for the figure.
    """
    assert fig.caption is not None
    item = Item(
        id=item_id(src, "caption", number, j),
        kind="text",
        source=src,
        content_hash=content_hash(f"{figure.content_hash}\x1fcaption".encode()),
        parent=figure.id,
        role="caption",
        text=fig.caption,
        doc=figure.doc,
        page=number,
        bbox=fig.caption_bbox,
        metadata={"ocr": False, **({"label": fig.label} if fig.label else {})},
    )
    return Extracted(item)


def _hash(file_hash: str, *parts: object) -> str:
    return content_hash("\x1f".join([file_hash, *map(str, parts)]).encode())


def _alnum(text: str) -> int:
    return sum(ch.isalnum() for ch in text)


def _text_blocks(page: Any, display: Any, pymupdf: Any) -> list[TextBlock]:
    """The page's text blocks with their lines; lines joined, hyphenated words rejoined.

    Text comes from the display list (no second pass over the page), in the same
    rotated coordinates as the rendered image.
    """
    flags = pymupdf.TEXT_PRESERVE_LIGATURES | pymupdf.TEXT_MEDIABOX_CLIP
    textpage = pymupdf.TextPage(display.get_textpage(flags))
    textpage.parent = page
    blocks: list[TextBlock] = []
    for block in textpage.extractDICT()["blocks"]:
        if block.get("type") != 0:
            continue
        lines: list[tuple[str, Rect]] = []
        for line in block["lines"]:
            text = "".join(span["text"] for span in line["spans"]).strip()
            if text:
                lines.append((text, tuple(line["bbox"])))
        if not lines:
            continue
        joined = lines[0][0]
        for text, _ in lines[1:]:
            # "hyphen-\nated" -> "hyphenated"; otherwise a line break is a space.
            if joined.endswith("-") and text[:1].islower():
                joined = joined[:-1] + text
            else:
                joined += " " + text
        blocks.append(TextBlock(joined, tuple(block["bbox"]), lines))
    return blocks


def _join_blocks(blocks: Sequence[TextBlock]) -> tuple[str, list[tuple[int, int, Rect]]]:
    """Blocks as paragraphs of one text, and each block's span and box."""
    parts: list[str] = []
    offsets: list[tuple[int, int, Rect]] = []
    pos = 0
    for block in blocks:
        if parts:
            parts.append("\n\n")
            pos += 2
        parts.append(block.text)
        offsets.append((pos, pos + len(block.text), block.bbox))
        pos += len(block.text)
    return "".join(parts), offsets


def _chunk_items(
    text: str,
    offsets: Sequence[tuple[int, int, Rect]],
    page_item: Item,
    src: str,
    number: int,
    chunk_chars: int,
) -> list[Extracted]:
    out = []
    for i, chunk in enumerate(chunk_text(text, chunk_chars)):
        boxes = [box for start, end, box in offsets if start < chunk.end and end > chunk.start]
        item = Item(
            id=item_id(src, "text", number, i),
            kind="text",
            source=src,
            content_hash=content_hash(f"{page_item.content_hash}\x1f{i}".encode()),
            parent=page_item.id,
            role="chunk",
            text=chunk.text,
            doc=page_item.doc,
            page=number,
            bbox=rect_union(boxes) if boxes else None,
            metadata={"chunk": i, "ocr": False},
        )
        out.append(Extracted(item))
    return out


def _scanned(ops: Sequence[tuple[str, Rect]], page: Rect) -> bool:
    """True when images cover a good part of the page: a scan worth OCR."""
    area = sum(rect_area(rect_clip(r, page)) for kind, r in ops if kind in IMAGE_OPS)
    return area >= 0.25 * rect_area(page)
