"""Figures on a PDF page: what was drawn, clustered into figures, named by their captions.

A pure layer over PyMuPDF's display list and the page's text blocks, kept apart
from page ingestion (``pdf.py``) because it is a job of its own::

    ops = graphics_log(page.get_displaylist())      # (operation, box) per drawing
    for fig in find_figures(ops, blocks, tuple(page.rect)):
        fig.bbox, fig.kind, fig.label, fig.caption, fig.caption_bbox
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "IMAGE_OPS",
    "Figure",
    "Rect",
    "TextBlock",
    "find_figures",
    "graphics_log",
    "rect_area",
    "rect_clip",
    "rect_union",
]

Rect = tuple[float, float, float, float]

_CAPTION = re.compile(
    r"^\s*(?P<label>(?:Figure|Fig\.?|Table|Tab\.|Abbildung|Abb\.|Tabelle|Chart|Exhibit|Plate)"
    r"\s*[A-Z]?\d+(?:[.\-–]\d+)*[a-z]?)\s*[.:—–\-]?\s*",
    re.IGNORECASE,
)
# Graphics operations from Page.get_bboxlog() that draw something a figure is made of.
_GRAPHIC_OPS = frozenset({"fill-path", "stroke-path", "fill-image", "fill-imgmask", "fill-shade"})
IMAGE_OPS = frozenset({"fill-image", "fill-imgmask"})


@dataclass
class Figure:
    """A figure found on a page: its box in PDF points, how it is drawn, and its caption."""

    bbox: Rect
    kind: str  # "raster" (embedded image) or "vector" (drawn paths)
    ops: int = 0
    caption: str | None = None
    label: str | None = None
    caption_bbox: Rect | None = None
    members: list[Rect] = field(default_factory=list, repr=False)


@dataclass
class TextBlock:
    """A text block of a page: its joined text, its box and its lines with their boxes."""

    text: str
    bbox: Rect
    lines: list[tuple[str, Rect]]


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
    blocks: Sequence[TextBlock],
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
    page_area = rect_area(page)
    rects: list[tuple[Rect, bool]] = []
    for kind, raw in ops:
        if kind not in _GRAPHIC_OPS:
            continue
        r = rect_clip((raw[0], raw[1], raw[2], raw[3]), page)
        if r[2] < r[0] or r[3] < r[1] or rect_area(r) > 0.8 * page_area:
            continue  # invisible, or a background / page frame
        rects.append((r, kind in IMAGE_OPS))
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
            hit[0] = rect_union([hit[0], r])
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
                    clusters[i] = [rect_union([a[0], b[0]]), a[1] + b[1], a[2] or b[2]]
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
        first.bbox = rect_union([first.bbox, fig.bbox])
        first.members += fig.members
        first.ops += fig.ops
        if fig.kind == "raster":
            first.kind = "raster"
    return out


def _absorb_labels(box: Rect, blocks: Sequence[TextBlock], gap: float) -> Rect:
    """Widen a figure box over short text lines that touch it (tick and axis labels)."""
    grown = box
    for block in blocks:
        for text, r in block.lines:
            if len(text) <= 40 and not _CAPTION.match(text) and _near(box, r, gap):
                grown = rect_union([grown, r])
    return grown


#: A drawn region holding at least this many text lines, covering at least this share of its
#: area, is a table (ruled or shaded rows of labels and numbers), not a figure. Measured with
#: find_figures itself: uncaptioned vector regions in 6 financebench filings cover a median
#: 0.20 of their area with text (431 regions, 10th percentile 0.05); captioned vector figures
#: in pdfs_real a median 0.05 (118 figures). The rule keeps 39 of the filings' 431 regions
#: and drops 19 of pdfs_real's 232 figures: 15 tables and 4 densely labelled diagrams.
_TABLE_LINES = 6
_TABLE_TEXT_SHARE = 0.12


def _mostly_text(fig: Figure, blocks: Sequence[TextBlock]) -> bool:
    """A vector 'figure' that is really text: a boxed paragraph (mostly long lines) or a
    table (many lines of any length covering a good share of it)."""
    area = rect_area(fig.bbox)
    inside = [
        (text, r)
        for block in blocks
        for text, r in block.lines
        if rect_area(_intersect(r, fig.bbox)) > 0.5 * rect_area(r)
    ]
    covered = sum(rect_area(_intersect(r, fig.bbox)) for _, r in inside)
    long_text = sum(
        rect_area(_intersect(r, fig.bbox))
        for block in blocks
        for text, r in block.lines
        if len(text) > 40
    )
    table = len(inside) >= _TABLE_LINES and covered >= _TABLE_TEXT_SHARE * area
    return long_text > 0.4 * area or table


def _captions(blocks: Sequence[TextBlock]) -> list[tuple[str, str, Rect]]:
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
    return label.strip(), text[:400], rect_union([r for _, r in lines])


def _attach_caption(
    fig: Figure,
    captions: Sequence[tuple[str, str, Rect]],
    blocks: Sequence[TextBlock],
    page: Rect,
) -> float:
    """Name the figure after the nearest caption below it (tables: also above).

    A caption counts when it is close, roughly in the same column, and no
    running text lies between it and the figure. Returns its distance (inf if none).
    """
    reach = 0.15 * (page[3] - page[1])
    slack = 0.2 * (page[2] - page[0])
    best: tuple[float, str, str, Rect] | None = None
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
            best = (distance, label, text, r)
    if best is None:
        return float("inf")
    fig.label, fig.caption, fig.caption_bbox = best[1], best[2], best[3]
    return best[0]


def _text_between(blocks: Sequence[TextBlock], band: tuple[float, float], box: Rect) -> bool:
    """Running text (not labels, not captions) inside a horizontal band under/over ``box``."""
    for block in blocks:
        for text, r in block.lines:
            inside = r[1] >= band[0] - 1 and r[3] <= band[1] + 1
            overlaps = min(box[2], r[2]) - max(box[0], r[0]) > 0
            if inside and overlaps and len(text) > 40 and not _CAPTION.match(text):
                return True
    return False


def rect_area(r: Rect) -> float:
    """Area of a box; 0 for an empty or inverted one."""
    return max(0.0, r[2] - r[0]) * max(0.0, r[3] - r[1])


def rect_clip(r: Rect, page: Rect) -> Rect:
    """``r`` cut to ``page`` (may come out inverted when they do not meet)."""
    return (max(r[0], page[0]), max(r[1], page[1]), min(r[2], page[2]), min(r[3], page[3]))


def _intersect(a: Rect, b: Rect) -> Rect:
    return (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))


def rect_union(rects: Sequence[Rect]) -> Rect:
    """The smallest box holding every box in ``rects`` (at least one)."""
    return (
        min(r[0] for r in rects),
        min(r[1] for r in rects),
        max(r[2] for r in rects),
        max(r[3] for r in rects),
    )


def _near(a: Rect, b: Rect, gap: float) -> bool:
    return a[0] - gap <= b[2] and b[0] - gap <= a[2] and a[1] - gap <= b[3] and b[1] - gap <= a[3]
