"""PDF documents: pages, text chunks and figures, linked document -> page -> figure/text.

::

    for out in PdfIngester().extract(SourceData.read(Path("report.pdf")), Settings()):
        ...  # page items (with image), text items, figure items (with image),
             # and a Skipped for each page that could not be read

Ids are stable across re-indexing: for a source named ``src`` (a path or URL),
``item_id(src)`` is the document, ``item_id(src, "page", n)`` page ``n`` (1-based),
``item_id(src, "text", n, i)`` its ``i``-th chunk, ``item_id(src, "figure", n, j)`` its
``j``-th figure and ``item_id(src, "caption", n, j)`` that figure's caption: a ``text``
item whose parent is the figure (``role="caption"``), so the caption is text-embedded and
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
from ..errors import ConfigError, DependencyError, InputError
from ..models.ocr import OcrEngine
from ..types import Item, item_id
from .base import Extracted, Output, Skipped, SourceData, each_part
from .context import SectionTracker, join_context, page_headings, pdf_identity, with_context
from .figures import (
    IMAGE_OPS,
    Figure,
    Rect,
    TextBlock,
    find_figures,
    graphics_log,
    rect_area,
    rect_clip,
)
from .items import caption_item, chunk_items, figure_item, part_hash
from .ocr_images import lines_to_items
from .tables import find_page_tables, looks_tabular

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


def open_pdf(pdf: Path | bytes, name: str | None = None) -> Any:
    """Open a PDF file or bytes with PyMuPDF; InputError for encrypted, corrupt or empty ones.

    ``name`` is what errors call it (the path, by default).
    """
    try:
        import pymupdf
    except ImportError as exc:
        raise DependencyError("pymupdf", "pdf", "PDF ingestion") from exc
    name = name or str(pdf)
    try:
        if isinstance(pdf, bytes):
            doc = pymupdf.open(stream=pdf, filetype="pdf")
        else:
            doc = pymupdf.open(pdf, filetype="pdf")
    except Exception as exc:  # FileDataError, EmptyFileError, OSError
        raise InputError(name, f"cannot open as PDF ({exc})") from exc
    if doc.needs_pass:
        doc.close()
        raise InputError(name, "encrypted: a password is required")
    if doc.page_count == 0:
        doc.close()
        raise InputError(name, "empty PDF (0 pages)")
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
    not given, ``settings.ocr_engine`` is built on the first such page if its package
    is installed (otherwise the page is indexed as an image only, with a log warning).
    A page that cannot be read is yielded as a :class:`~mmrag.ingest.base.Skipped`;
    the rest of the file is still indexed.
    """

    suffixes: frozenset[str] = frozenset({".pdf"})
    content_types: frozenset[str] = frozenset({"application/pdf"})
    decode: bool = False

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
        self._ocr_unavailable = False

    def extract(self, source: SourceData, settings: Settings) -> Iterator[Output]:
        """Page, text and figure items of one PDF; raises InputError if the file is unusable."""
        doc = open_pdf(source.data, source.name)
        try:
            state = _DocState(doc, source.filename or source.name, settings.doc_context)
            pages = min(doc.page_count, settings.max_pdf_pages)
            yield from each_part(
                source.name,
                "page",
                range(1, pages + 1),
                lambda number: self._page(doc, number - 1, source, settings, state),
            )
            if doc.page_count > pages:  # bounded time and memory; the loss is counted
                yield Skipped(
                    source.name,
                    f"pages {pages + 1}-{doc.page_count}",
                    f"over the page cap of {pages} (MMRAG_MAX_PDF_PAGES)",
                )
        finally:
            doc.close()

    def _page(
        self,
        doc: Any,
        index: int,
        source: SourceData,
        settings: Settings,
        state: _DocState | None = None,
    ) -> list[Extracted]:
        import pymupdf

        number = index + 1
        src = source.name
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
            content_hash=part_hash(source.hash, "page", number),
            parent=document_id(src),
            doc=source.filename,
            page=number,
            bbox=rect,
            metadata={"width": image.width, "height": image.height, "chars": len(text)},
        )
        out = [Extracted(page_item, image)]
        if _alnum(text) >= 10:
            chunks = chunk_items(page_item, text, settings.chunk_chars, spans=offsets)
            out += state.new_chunks(chunks) if state else chunks
        elif settings.ocr and _scanned(ops, rect):
            out += self._ocr_page(display, rect, page_item, settings)
        figures = find_figures(ops, blocks, rect)[: self.max_figures_per_page]
        for j, fig in enumerate(figures):
            out += self._figure(display, fig, page_item, j, source.hash)
        lines = [line for block in blocks for line, _ in block.lines]
        path = state.sections.path(number, lines) if state and state.identity is not None else []
        if settings.tables and looks_tabular(lines):
            out += _tables(page, page_item, " > ".join(page_headings(lines)) or path[-1:])
        if state is None or state.identity is None:
            return out
        return with_context(out, join_context(state.identity, path))

    def _ocr_page(
        self, display: Any, rect: Rect, page_item: Item, settings: Settings
    ) -> list[Extracted]:
        ocr = self._ocr_engine(settings)
        if ocr is None:
            return []
        image = render(display, rect, self.ocr_side)
        scale = image.width / (rect[2] - rect[0])
        return lines_to_items(
            ocr.read(image),
            page_item,
            id_key=(page_item.source, "text", page_item.page),
            chunk_chars=settings.chunk_chars,
            scale=scale,
        )

    def _ocr_engine(self, settings: Settings) -> OcrEngine | None:
        if self.ocr is None and not self._ocr_unavailable:
            from .. import registry

            try:
                self.ocr = registry.ocr_engines.create(settings.ocr_engine)
            except (DependencyError, ConfigError) as exc:
                self._ocr_unavailable = True
                log.warning("scanned pages are indexed as images only: %s", exc)
        return self.ocr

    def _figure(
        self, display: Any, fig: Figure, page_item: Item, j: int, file_hash: str
    ) -> list[Extracted]:
        """The figure (with its picture) and, when it has one, its caption under it."""
        image = render(display, fig.bbox, self.figure_max_side)
        figure = figure_item(
            page_item,
            j,
            file_hash,
            size=image.size,
            figure_kind=fig.kind,
            bbox=fig.bbox,
            caption=fig.caption,
            label=fig.label,
        )
        out = [Extracted(figure, image)]
        if fig.caption:
            meta = {"ocr": False, **({"label": fig.label} if fig.label else {})}
            caption_id = item_id(page_item.source, "caption", page_item.page, j)
            out.append(
                caption_item(figure, fig.caption, caption_id, bbox=fig.caption_bbox, metadata=meta)
            )
        return out


class _DocState:
    """What pages of one document share: its identity and section tracker (for the
    context of its items; ``identity`` is None when ``context`` is off) and the chunk
    texts seen so far."""

    def __init__(self, doc: Any, filename: str, context: bool) -> None:
        self.identity = pdf_identity(doc, filename) if context else None
        self.sections = SectionTracker(doc.get_toc() if context else ())
        self._seen: set[str] = set()

    def new_chunks(self, chunks: list[Extracted]) -> list[Extracted]:
        """The chunks whose text no earlier page of the document had.

        A repeated chunk (an exhibit or legal text printed twice, a block repeated on every
        page: 1.8% of financebench_dev's chunks) costs an embedding and only crowds the
        results with copies.
        """
        fresh = []
        for chunk in chunks:
            key = " ".join((chunk.item.text or "").split())
            if key not in self._seen:
                self._seen.add(key)
                fresh.append(chunk)
        return fresh


def _tables(page: Any, page_item: Item, title: str | list[str]) -> list[Extracted]:
    """The page's tables as items; none (and a warning) when the table finder fails,
    since the page's text and figures are still worth indexing."""
    title = title if isinstance(title, str) else " > ".join(title)
    try:
        return find_page_tables(page, page_item, title)
    except Exception as exc:  # the finder's own errors on odd pages
        log.warning("%s page %s: tables not read (%s)", page_item.source, page_item.page, exc)
        return []


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


def _scanned(ops: Sequence[tuple[str, Rect]], page: Rect) -> bool:
    """True when images cover a good part of the page: a scan worth OCR."""
    area = sum(rect_area(rect_clip(r, page)) for kind, r in ops if kind in IMAGE_OPS)
    return area >= 0.25 * rect_area(page)
