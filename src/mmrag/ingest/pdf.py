"""PDF documents: pages, text chunks and figures, linked document -> page -> figure/text.

::

    ingester = PdfIngester()
    for extracted in ingester.extract(Path("report.pdf"), Settings(), file_hash):
        ...  # page items (with image), text items, figure items (with image)
    ingester.warnings  # pages that could not be read, and why

Ids are stable across re-indexing: ``item_id(str(path))`` is the document,
``item_id(str(path), "page", n)`` page ``n`` (1-based), ``item_id(str(path), "text", n, i)``
its ``i``-th chunk and ``item_id(str(path), "figure", n, j)`` its ``j``-th figure.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ..config import Settings
from ..errors import DependencyError, InputError
from ..models.ocr import OcrEngine
from ..types import Item, content_hash, item_id
from .base import Extracted
from .chunk import chunk_text
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

Rect = tuple[float, float, float, float]

_CAPTION = re.compile(
    r"^\s*(?P<label>(?:Figure|Fig\.?|Table|Tab\.|Abbildung|Abb\.|Tabelle|Chart|Exhibit|Plate)"
    r"\s*[A-Z]?\d+(?:[.\-–]\d+)*[a-z]?)\s*[.:—–\-]?\s*",
    re.IGNORECASE,
)
# Graphics operations from Page.get_bboxlog() that draw something a figure is made of.
_GRAPHIC_OPS = frozenset({"fill-path", "stroke-path", "fill-image", "fill-imgmask", "fill-shade"})
_IMAGE_OPS = frozenset({"fill-image", "fill-imgmask"})


@dataclass
class Figure:
    """A figure found on a page: its box in PDF points, how it is drawn, and its caption."""

    bbox: Rect
    kind: str  # "raster" (embedded image) or "vector" (drawn paths)
    ops: int = 0
    caption: str | None = None
    label: str | None = None
    members: list[Rect] = field(default_factory=list, repr=False)


@dataclass
class _Block:
    text: str
    bbox: Rect
    lines: list[tuple[str, Rect]]


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
            out.append(self._figure_item(display, fig, page_item, src, number, j, file_hash))
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


def _hash(file_hash: str, *parts: object) -> str:
    return content_hash("\x1f".join([file_hash, *map(str, parts)]).encode())


def _alnum(text: str) -> int:
    return sum(ch.isalnum() for ch in text)


def _text_blocks(page: Any, display: Any, pymupdf: Any) -> list[_Block]:
    """The page's text blocks with their lines; lines joined, hyphenated words rejoined.

    Text comes from the display list (no second pass over the page), in the same
    rotated coordinates as the rendered image.
    """
    flags = pymupdf.TEXT_PRESERVE_LIGATURES | pymupdf.TEXT_MEDIABOX_CLIP
    textpage = pymupdf.TextPage(display.get_textpage(flags))
    textpage.parent = page
    blocks: list[_Block] = []
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
        blocks.append(_Block(joined, tuple(block["bbox"]), lines))
    return blocks


def _join_blocks(blocks: Sequence[_Block]) -> tuple[str, list[tuple[int, int, Rect]]]:
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
            text=chunk.text,
            doc=page_item.doc,
            page=number,
            bbox=_union(boxes) if boxes else None,
            metadata={"chunk": i, "ocr": False},
        )
        out.append(Extracted(item))
    return out


def _scanned(ops: Sequence[tuple[str, Rect]], page: Rect) -> bool:
    """True when images cover a good part of the page: a scan worth OCR."""
    area = sum(_area(_clip(r, page)) for kind, r in ops if kind in _IMAGE_OPS)
    return area >= 0.25 * _area(page)


# ---- figures -------------------------------------------------------------------------


def graphics_log(display: Any) -> list[tuple[str, Rect]]:
    """(operation, box) for every path, image and shading drawn, cut to the clip in force.

    Unlike ``Page.get_bboxlog`` this honours clip paths (plots clip curves that
    run off the axes) and skips soft-mask contents, and it runs on the display
    list, so boxes are in the same rotated coordinates as the rendered image.
    """
    import pymupdf

    device = _GraphicsDevice(pymupdf.mupdf)
    mupdf = pymupdf.mupdf
    infinite = mupdf.FzRect(mupdf.FzRect.Fixed_INFINITE)
    mupdf.fz_run_display_list(display.this, device, mupdf.FzMatrix(), infinite, mupdf.FzCookie())
    mupdf.fz_close_device(device)
    return device.out


def _graphics_device_class(mupdf: Any) -> type:
    class GraphicsDevice(mupdf.FzDevice2):  # type: ignore[misc,name-defined]
        def __init__(self, _mupdf: Any) -> None:
            super().__init__()
            self.out: list[tuple[str, Rect]] = []
            self.clips: list[Rect] = [(-1e9, -1e9, 1e9, 1e9)]
            self.masks = 0
            for name in _DEVICE_CALLS:
                getattr(self, "use_virtual_" + name)()

        def _add(self, kind: str, r: Any) -> None:
            if not self.masks:  # drawing inside a soft mask is never seen
                self.out.append((kind, _intersect((r.x0, r.y0, r.x1, r.y1), self.clips[-1])))

        def _push(self, r: Any) -> None:
            self.clips.append(_intersect((r.x0, r.y0, r.x1, r.y1), self.clips[-1]))

        def fill_path(self, ctx: Any, path: Any, even_odd: Any, ctm: Any, *_: Any) -> None:
            self._add("fill-path", mupdf.ll_fz_bound_path(path, None, ctm))

        def stroke_path(self, ctx: Any, path: Any, stroke: Any, ctm: Any, *_: Any) -> None:
            self._add("stroke-path", mupdf.ll_fz_bound_path(path, stroke, ctm))

        def fill_shade(self, ctx: Any, shade: Any, ctm: Any, *_: Any) -> None:
            self._add("fill-shade", mupdf.ll_fz_bound_shade(shade, ctm))

        def fill_image(self, ctx: Any, image: Any, ctm: Any, *_: Any) -> None:
            self._add("fill-image", mupdf.ll_fz_transform_rect(mupdf.fz_unit_rect, ctm))

        def fill_image_mask(self, ctx: Any, image: Any, ctm: Any, *_: Any) -> None:
            self._add("fill-imgmask", mupdf.ll_fz_transform_rect(mupdf.fz_unit_rect, ctm))

        def clip_path(self, ctx: Any, path: Any, even_odd: Any, ctm: Any, *_: Any) -> None:
            self._push(mupdf.ll_fz_bound_path(path, None, ctm))

        def clip_stroke_path(self, ctx: Any, path: Any, stroke: Any, ctm: Any, *_: Any) -> None:
            self._push(mupdf.ll_fz_bound_path(path, stroke, ctm))

        def clip_text(self, ctx: Any, text: Any, ctm: Any, *_: Any) -> None:
            self._push(mupdf.ll_fz_bound_text(text, None, ctm))

        def clip_stroke_text(self, ctx: Any, text: Any, stroke: Any, ctm: Any, *_: Any) -> None:
            self._push(mupdf.ll_fz_bound_text(text, stroke, ctm))

        def clip_image_mask(self, ctx: Any, image: Any, ctm: Any, *_: Any) -> None:
            self._push(mupdf.ll_fz_transform_rect(mupdf.fz_unit_rect, ctm))

        def pop_clip(self, ctx: Any) -> None:
            if len(self.clips) > 1:
                self.clips.pop()

        def begin_mask(self, ctx: Any, area: Any, *_: Any) -> None:
            self.masks += 1  # popped by pop_clip after end_mask, like a clip
            self._push(area)

        def end_mask(self, ctx: Any, *_: Any) -> None:
            self.masks = max(0, self.masks - 1)

    return GraphicsDevice


_DEVICE_CALLS = (
    "fill_path",
    "stroke_path",
    "fill_shade",
    "fill_image",
    "fill_image_mask",
    "clip_path",
    "clip_stroke_path",
    "clip_text",
    "clip_stroke_text",
    "clip_image_mask",
    "pop_clip",
    "begin_mask",
    "end_mask",
)
_device_class: type | None = None


def _GraphicsDevice(mupdf: Any) -> Any:
    global _device_class
    if _device_class is None:
        _device_class = _graphics_device_class(mupdf)
    return _device_class(mupdf)


def find_figures(
    ops: Sequence[tuple[str, Sequence[float]]],
    blocks: Sequence[_Block],
    page: Rect,
    *,
    gap: float = 8.0,
    min_side: float = 36.0,
    min_area_frac: float = 0.012,
) -> list[Figure]:
    """Figures on a page from its drawing log: clusters of images and vector paths.

    Images and paths within ``gap`` points of each other form one cluster; short
    text lines touching it (axis labels) widen it; frames and boxed text are
    dropped; clusters sharing the nearest caption ("Figure 3", "Fig. 3",
    "Table 2", "Abbildung 1.2") below or above them are sub-figures of one
    figure; tiny results (logos, bullets, rules) and page-sized ones
    (backgrounds) are dropped.
    """
    page_area = _area(page)
    rects: list[tuple[Rect, bool]] = []
    for kind, raw in ops:
        if kind not in _GRAPHIC_OPS:
            continue
        r = _clip((raw[0], raw[1], raw[2], raw[3]), page)
        if r[2] < r[0] or r[3] < r[1] or _area(r) > 0.8 * page_area:
            continue  # invisible, or a background / page frame
        rects.append((r, kind in _IMAGE_OPS))
    clusters = [
        Figure(_absorb_labels(box, blocks, gap), "raster" if img else "vector", len(m), members=m)
        for box, m, img in _cluster(rects, gap)
    ]
    captions = _captions(blocks)
    kept = []
    for fig in clusters:
        distance = _attach_caption(fig, captions, blocks, page)
        # Frames and grids are layout unless a caption sits right against them (a
        # drawing made of one path looks like a frame too).
        if fig.kind == "raster" or not _box_like(fig) or distance <= 30:
            kept.append(fig)
    clusters = kept
    figures = []
    for fig in _merge_same_caption(clusters):
        w, h = fig.bbox[2] - fig.bbox[0], fig.bbox[3] - fig.bbox[1]
        if w < min_side or h < min_side or w * h < min_area_frac * page_area:
            continue
        if w * h > 0.75 * page_area:
            continue  # the page image already shows it
        if fig.kind == "vector" and not fig.caption and _mostly_text(fig, blocks):
            continue
        figures.append(fig)
    figures.sort(key=lambda f: (round(f.bbox[1] / 20), f.bbox[0]))
    return figures


def _cluster(rects: Sequence[tuple[Rect, bool]], gap: float) -> list[tuple[Rect, list[Rect], bool]]:
    """Merge rectangles closer than ``gap`` into clusters (box, members, contains an image)."""
    clusters: list[list[Any]] = []  # [box, members, has_image]
    for r, is_image in rects:
        hit = None
        # Drawing order is mostly spatial, so recent clusters are checked first.
        for cluster in reversed(clusters):
            if _near(cluster[0], r, gap):
                hit = cluster
                break
        if hit is None:
            clusters.append([r, [r], is_image])
        else:
            hit[0] = _union([hit[0], r])
            hit[1].append(r)
            hit[2] = hit[2] or is_image
    # Growing boxes can now touch each other: merge until stable.
    merged = True
    while merged:
        merged = False
        for i in range(len(clusters)):
            for j in range(len(clusters) - 1, i, -1):
                if _near(clusters[i][0], clusters[j][0], gap):
                    a, b = clusters[i], clusters.pop(j)
                    clusters[i] = [_union([a[0], b[0]]), a[1] + b[1], a[2] or b[2]]
                    merged = True
    return [(c[0], c[1], c[2]) for c in clusters]


def _box_like(fig: Figure) -> bool:
    """A vector cluster made only of frames and full-length rules: a text box or table grid."""
    x0, y0, x1, y1 = fig.bbox
    w, h = max(x1 - x0, 1e-6), max(y1 - y0, 1e-6)
    drawn = 0
    for r in fig.members:
        rw, rh = r[2] - r[0], r[3] - r[1]
        frame = (
            rw * rh >= 0.5 * w * h or (rh < 2.5 and rw >= 0.8 * w) or (rw < 2.5 and rh >= 0.8 * h)
        )
        drawn += not frame
    return drawn < 3


def _merge_same_caption(figures: list[Figure]) -> list[Figure]:
    """Sub-figures (a), (b), ... that share one caption become one figure."""
    out: list[Figure] = []
    by_caption: dict[str, Figure] = {}
    for fig in figures:
        if not fig.caption:
            out.append(fig)
            continue
        first = by_caption.get(fig.caption)
        if first is None:
            by_caption[fig.caption] = fig
            out.append(fig)
            continue
        first.bbox = _union([first.bbox, fig.bbox])
        first.members += fig.members
        first.ops += fig.ops
        if fig.kind == "raster":
            first.kind = "raster"
    return out


def _absorb_labels(box: Rect, blocks: Sequence[_Block], gap: float) -> Rect:
    """Widen a figure box over short text lines that touch it (tick and axis labels)."""
    grown = box
    for block in blocks:
        for text, r in block.lines:
            if len(text) <= 40 and not _CAPTION.match(text) and _near(box, r, gap):
                grown = _union([grown, r])
    return grown


def _mostly_text(fig: Figure, blocks: Sequence[_Block]) -> bool:
    """A vector 'figure' whose area is mostly running text is a table or a boxed paragraph."""
    long_text = sum(
        _area(_intersect(r, fig.bbox))
        for block in blocks
        for text, r in block.lines
        if len(text) > 40
    )
    return long_text > 0.4 * _area(fig.bbox)


def _captions(blocks: Sequence[_Block]) -> list[tuple[str, str, Rect]]:
    """Caption candidates (label, text, box): a line starting "Figure N" and the lines after it."""
    found = []
    for block in blocks:
        current: list[tuple[str, Rect]] | None = None
        label = ""
        for text, r in block.lines:
            m = _CAPTION.match(text)
            if m:
                if current:
                    found.append(_caption(label, current))
                current, label = [(text, r)], m.group("label")
            elif current is not None and sum(len(t) for t, _ in current) < 300:
                current.append((text, r))
        if current:
            found.append(_caption(label, current))
    return found


def _caption(label: str, lines: list[tuple[str, Rect]]) -> tuple[str, str, Rect]:
    text = " ".join(t for t, _ in lines)
    return label.strip(), text[:400], _union([r for _, r in lines])


def _attach_caption(
    fig: Figure,
    captions: Sequence[tuple[str, str, Rect]],
    blocks: Sequence[_Block],
    page: Rect,
) -> float:
    """Name the figure after the nearest caption below it (tables: also above).

    A caption counts when it is close, roughly in the same column, and no
    running text lies between it and the figure. Returns its distance (inf if none).
    """
    reach = 0.15 * (page[3] - page[1])
    slack = 0.2 * (page[2] - page[0])
    best: tuple[float, str, str] | None = None
    for label, text, r in captions:
        overlap = min(fig.bbox[2] + slack, r[2]) - max(fig.bbox[0] - slack, r[0])
        if overlap <= 0:
            continue
        below = r[1] - fig.bbox[3]
        above = fig.bbox[1] - r[3]
        is_table = label.lower().startswith("tab")
        if -4 <= below <= reach:
            distance, between = below + (10 if is_table else 0), (fig.bbox[3], r[1])
        elif -4 <= above <= reach / 2:
            distance, between = above + (0 if is_table else 15), (r[3], fig.bbox[1])
        else:
            continue
        if _text_between(blocks, between, fig.bbox):
            continue
        if best is None or distance < best[0]:
            best = (distance, label, text)
    if best is None:
        return float("inf")
    fig.label, fig.caption = best[1], best[2]
    return best[0]


def _text_between(blocks: Sequence[_Block], band: tuple[float, float], box: Rect) -> bool:
    """Running text (not labels, not captions) inside a horizontal band under/over ``box``."""
    for block in blocks:
        for text, r in block.lines:
            inside = r[1] >= band[0] - 1 and r[3] <= band[1] + 1
            overlaps = min(box[2], r[2]) - max(box[0], r[0]) > 0
            if inside and overlaps and len(text) > 40 and not _CAPTION.match(text):
                return True
    return False


def _area(r: Rect) -> float:
    return max(0.0, r[2] - r[0]) * max(0.0, r[3] - r[1])


def _clip(r: Rect, page: Rect) -> Rect:
    return (max(r[0], page[0]), max(r[1], page[1]), min(r[2], page[2]), min(r[3], page[3]))


def _intersect(a: Rect, b: Rect) -> Rect:
    return (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))


def _union(rects: Sequence[Rect]) -> Rect:
    return (
        min(r[0] for r in rects),
        min(r[1] for r in rects),
        max(r[2] for r in rects),
        max(r[3] for r in rects),
    )


def _near(a: Rect, b: Rect, gap: float) -> bool:
    return a[0] - gap <= b[2] and b[0] - gap <= a[2] and a[1] - gap <= b[3] and b[1] - gap <= a[3]
