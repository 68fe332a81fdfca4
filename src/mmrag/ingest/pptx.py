"""Slide decks: one ``slide`` item per slide (rendered when LibreOffice is present),
its text and notes as ``text`` items, and pictures as ``figure`` items.

::

    if not renderer_available():
        log.warning(RENDERER_MISSING)  # the CLI shows this once
    for out in PptxIngester().extract(SourceData.read(Path("deck.pptx")), Settings()):
        ...  # slide, text and figure items; Skipped slides; a Notice when not rendered

Ids, for a source named ``src`` (a path or URL): ``item_id(src, "slide", n)`` (1-based),
``item_id(src, "text", n, i)``, ``item_id(src, "figure", n, j)``; the deck itself is
``item_id(src)``.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from ..config import Settings
from ..errors import DependencyError, InputError
from ..types import Item, item_id
from .base import Extracted, Notice, Output, SourceData, each_part
from .context import identity_line, join_context, stem_words, with_context
from .items import chunk_items, figure_item, part_hash

__all__ = ["RENDERER_MISSING", "PptxIngester", "renderer_available"]

log = logging.getLogger(__name__)

#: What to tell the user when slides cannot be rendered.
RENDERER_MISSING = (
    "LibreOffice (soffice) is not on PATH: slides are indexed by their text only, "
    "without slide images. Install it to render slides, e.g. "
    "'apt-get install -y --no-install-recommends libreoffice-impress'."
)

_EMU_PER_POINT = 12700

#: A deck may unpack to at most this much in all, and a member over ``_RATIO_FROM`` bytes may
#: expand at most ``MAX_RATIO`` times (Apache POI's ZipSecureFile default). Checked on the
#: sizes the zip declares, before anything is decompressed (LibreOffice included): Python's
#: zipfile never returns more than a member's declared size, so a zip that lies gains nothing.
MAX_UNPACKED_BYTES = 2 << 30
MAX_RATIO = 100
_RATIO_FROM = 1 << 20


def renderer_available() -> bool:
    """True when LibreOffice's ``soffice`` is on PATH, so slides can be rendered."""
    return _soffice() is not None


def _soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


@dataclass
class _SlideText:
    title: str
    body: str
    notes: str

    @property
    def full(self) -> str:
        parts = [p for p in (self.body, f"Notes: {self.notes}" if self.notes else "") if p]
        return "\n\n".join(parts)


class PptxIngester:
    """PPTX decks into slide, text and figure items.

    ``render=None`` renders with LibreOffice when it is on PATH; ``False`` never
    renders (text and pictures only). A slide that cannot be read is yielded as a
    :class:`~mmrag.ingest.base.Skipped`, slides left unrendered as a ``Notice``.
    """

    suffixes: frozenset[str] = frozenset({".pptx"})
    content_types: frozenset[str] = frozenset(
        {"application/vnd.openxmlformats-officedocument.presentationml.presentation"}
    )
    decode: bool = False

    def __init__(
        self,
        *,
        render: bool | None = None,
        max_side: int = 1024,
        timeout: float = 180.0,
        min_picture_px: int = 64,
    ) -> None:
        self.render = render
        self.max_side = max_side
        self.timeout = timeout
        self.min_picture_px = min_picture_px

    def extract(self, source: SourceData, settings: Settings) -> Iterator[Output]:
        """Slide, text and figure items of one deck; raises InputError if the file is unusable."""
        prs = _open_deck(source)
        slides = list(prs.slides)
        if not slides:
            raise InputError(source.name, "empty deck (0 slides)")
        size = (prs.slide_width or 9144000, prs.slide_height or 6858000)
        repeated = _repeated_pictures(slides)
        identity = _deck_identity(prs, slides, source.filename) if settings.doc_context else None
        with tempfile.TemporaryDirectory(prefix="mmrag-pptx-") as tmp:
            rendered = self._rendered_pages(source, slides, Path(tmp))
            if isinstance(rendered, Notice):
                log.warning("%s", rendered)
                yield rendered
            pages = rendered if isinstance(rendered, tuple) else None
            try:
                yield from each_part(
                    source.name,
                    "slide",
                    range(1, len(slides) + 1),
                    lambda n: self._slide(
                        slides[n - 1], n, source, size, pages, repeated, settings, identity
                    ),
                )
            finally:
                if pages is not None:
                    pages[0].close()

    def _rendered_pages(
        self, source: SourceData, slides: list[Any], tmp: Path
    ) -> tuple[Any, dict[int, int]] | Notice | None:
        """The deck as PDF and a map slide number -> page index; a Notice saying why not."""
        if self.render is False:
            return None
        soffice = _soffice()
        if soffice is None:
            return Notice(RENDERER_MISSING, source.name) if self.render else None
        deck = tmp / "deck.pptx"  # LibreOffice reads files, and URL bytes have none
        deck.write_bytes(source.data)
        pdf = _convert_to_pdf(soffice, deck, tmp, self.timeout)
        if isinstance(pdf, str):
            return Notice(f"slides not rendered: {pdf}", source.name)
        from .pdf import open_pdf

        try:
            doc = open_pdf(pdf)
        except InputError as exc:
            return Notice(f"slides not rendered: {exc.reason}", source.name)
        # LibreOffice leaves hidden slides out of the PDF.
        shown = [n for n, s in enumerate(slides, 1) if s._element.get("show") not in ("0", "false")]
        if doc.page_count == len(slides):
            mapping = {n: n - 1 for n in range(1, len(slides) + 1)}
        elif doc.page_count == len(shown):
            mapping = {n: i for i, n in enumerate(shown)}
        else:
            doc.close()
            reason = f"{doc.page_count} pages for {len(slides)} slides"
            return Notice(f"slides not rendered: {reason}", source.name)
        return doc, mapping

    def _slide(
        self,
        slide: Any,
        n: int,
        source: SourceData,
        size: tuple[int, int],
        pages: tuple[Any, dict[int, int]] | None,
        repeated: set[str],
        settings: Settings,
        identity: str | None = None,
    ) -> list[Extracted]:
        src = source.name
        text = _slide_text(slide)
        image = None
        if pages is not None and n in pages[1]:
            from .pdf import render

            page = pages[0].load_page(pages[1][n])
            image = render(page, tuple(page.rect), self.max_side)
        meta: dict[str, Any] = {
            "title": text.title,
            "notes": text.notes,
            "rendered": image is not None,
            "hidden": slide._element.get("show") in ("0", "false"),
        }
        if image is not None:
            meta.update(width=image.width, height=image.height)
        slide_item = Item(
            id=item_id(src, "slide", n),
            kind="slide",
            source=src,
            content_hash=part_hash(source.hash, "slide", n),
            parent=item_id(src),
            text=text.full or None,
            doc=source.filename,
            page=n,
            bbox=(0.0, 0.0, size[0] / _EMU_PER_POINT, size[1] / _EMU_PER_POINT),
            metadata=meta,
        )
        out = [Extracted(slide_item, image)]
        out += chunk_items(slide_item, text.full, settings.chunk_chars)
        for j, (shape, picture) in enumerate(self._pictures(slide, repeated, settings)):
            out.append(_figure(shape, picture, slide_item, j, source.hash))
        if identity is None:
            return out
        return with_context(out, join_context(identity, [text.title]))

    def _pictures(
        self, slide: Any, repeated: set[str], settings: Settings
    ) -> Iterator[tuple[Any, Image.Image]]:
        """Pictures worth indexing: decodable, not tiny, not a logo repeated across slides."""
        for shape in _walk(slide.shapes):
            blob = _picture_blob(shape)
            if blob is None or blob[0] in repeated:
                continue
            try:
                with Image.open(io.BytesIO(blob[1])) as probe:
                    w, h = probe.size
                    if min(w, h) < self.min_picture_px or w * h > settings.max_image_pixels:
                        continue
                    probe.draft("RGB", (self.max_side, self.max_side))  # cheap JPEG downscale
                    picture = probe.convert("RGB")
            except Exception:  # EMF/WMF and other formats Pillow cannot draw
                continue
            picture.thumbnail((self.max_side, self.max_side))
            yield shape, picture


def _deck_identity(prs: Any, slides: list[Any], filename: str) -> str:
    """A deck's identity for search: file name words, its title (core properties, or the
    first slide's title) and subject."""
    core = prs.core_properties
    first = _slide_text(slides[0]).title if slides else ""
    title = _clean(core.title or "") or first
    return identity_line([stem_words(filename), title, _clean(core.subject or "")])


def _open_deck(source: SourceData) -> Any:
    try:
        from pptx import Presentation
    except ImportError as exc:
        raise DependencyError("python-pptx", "pptx", "Slide deck ingestion") from exc
    _refuse_bomb(source)
    try:
        return Presentation(io.BytesIO(source.data))
    except Exception as exc:  # PackageNotFoundError, BadZipFile, KeyError on broken parts
        reason = f"cannot open as PPTX ({type(exc).__name__}: {exc})"
        raise InputError(source.name, reason) from exc


def _refuse_bomb(source: SourceData) -> None:
    """InputError for a deck whose members would unpack to too much (a zip bomb)."""
    try:
        members = zipfile.ZipFile(io.BytesIO(source.data)).infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(source.name, f"cannot open as PPTX (not a zip file: {exc})") from None
    total = sum(member.file_size for member in members)
    if total > MAX_UNPACKED_BYTES:
        raise InputError(
            source.name,
            f"refused: its members would unpack to {total >> 20} MB "
            f"(limit {MAX_UNPACKED_BYTES >> 20} MB): a zip bomb?",
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > _RATIO_FROM and ratio > MAX_RATIO:
            raise InputError(
                source.name,
                f"refused: member {member.filename!r} would unpack {ratio:.0f}x, to "
                f"{member.file_size >> 20} MB (limit {MAX_RATIO}x): a zip bomb?",
            )


def _convert_to_pdf(soffice: str, path: Path, tmp: Path, timeout: float) -> Path | str:
    """Run LibreOffice headless; the PDF's path, or a reason it failed."""
    # A private profile lets several conversions run at once and never touches ~/.config.
    profile = (tmp / "profile").as_uri()
    cmd = [
        soffice,
        "--headless",
        "--norestore",
        f"-env:UserInstallation={profile}",
        "--convert-to",
        "pdf",
        "--outdir",
        str(tmp),
        str(path),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return f"LibreOffice took longer than {timeout:.0f} s"
    except OSError as exc:
        return f"LibreOffice could not start ({exc})"
    pdf = tmp / (path.stem + ".pdf")
    if proc.returncode != 0 or not pdf.exists():
        detail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        return f"LibreOffice failed (exit {proc.returncode}: {detail[0]})"
    return pdf


def _walk(shapes: Any) -> Iterator[Any]:
    """Every shape, descending into groups."""
    for shape in shapes:
        if getattr(shape, "shape_type", None) == 6 or hasattr(shape, "shapes"):  # GROUP
            yield from _walk(shape.shapes)
        else:
            yield shape


def _picture_blob(shape: Any) -> tuple[str, bytes] | None:
    """(sha1, bytes) of a picture shape's image, or None for other shapes."""
    try:
        image = shape.image
    except Exception:  # not a picture, or a picture placeholder left empty / linked
        return None
    return image.sha1, image.blob


def _repeated_pictures(slides: list[Any]) -> set[str]:
    """Images that appear on three or more slides: logos and template art."""
    counts: Counter[str] = Counter()
    for slide in slides:
        seen = set()
        for shape in _walk(slide.shapes):
            try:
                seen.add(shape.image.sha1)
            except Exception:
                continue
        counts.update(seen)
    return {sha for sha, count in counts.items() if count >= 3}


def _slide_text(slide: Any) -> _SlideText:
    """Title, body text (shapes top-to-bottom, tables, chart titles/series) and notes."""
    title_shape = slide.shapes.title
    title = _clean(title_shape.text_frame.text) if title_shape is not None else ""
    shapes = sorted(_walk(slide.shapes), key=lambda s: ((s.top or 0), (s.left or 0)))
    parts = [t for t in (_shape_text(s) for s in shapes) if t]
    notes = ""
    if slide.has_notes_slide:
        frame = slide.notes_slide.notes_text_frame
        notes = _clean(frame.text) if frame is not None else ""
    return _SlideText(title, "\n\n".join(parts), notes)


def _shape_text(shape: Any) -> str:
    if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
        return _clean(shape.text_frame.text)
    if getattr(shape, "has_table", False) and shape.has_table:
        rows = [" | ".join(_clean(c.text) for c in row.cells) for row in shape.table.rows]
        return "\n".join(r for r in rows if r.strip(" |"))
    if getattr(shape, "has_chart", False) and shape.has_chart:
        return _chart_text(shape.chart)
    return ""


def _chart_text(chart: Any) -> str:
    """A chart's title, categories and series names: what a question about it would mention."""
    parts = []
    try:
        if chart.has_title and chart.chart_title.has_text_frame:
            parts.append(_clean(chart.chart_title.text_frame.text))
        plot = chart.plots[0] if len(chart.plots) else None
        if plot is not None:
            categories = [str(c) for c in plot.categories if str(c)]
            if categories:
                parts.append("Categories: " + ", ".join(categories[:50]))
        series = [s.name for s in chart.series if s.name]
        if series:
            parts.append("Series: " + ", ".join(series[:50]))
    except Exception:  # charts with unusual XML: their text is a bonus, not a requirement
        pass
    return "\n".join(p for p in parts if p)


def _clean(text: str) -> str:
    # PowerPoint uses vertical tab for soft line breaks.
    lines = (" ".join(line.split()) for line in text.replace("\v", "\n").splitlines())
    return "\n".join(line for line in lines if line)


def _figure(shape: Any, picture: Image.Image, slide_item: Item, j: int, fh: str) -> Extracted:
    bbox = None
    if shape.left is not None and shape.top is not None and shape.width and shape.height:
        x0, y0 = shape.left / _EMU_PER_POINT, shape.top / _EMU_PER_POINT
        bbox = (x0, y0, x0 + shape.width / _EMU_PER_POINT, y0 + shape.height / _EMU_PER_POINT)
    caption = _alt_text(shape)
    item = figure_item(
        slide_item, j, fh, size=picture.size, figure_kind="picture", bbox=bbox, caption=caption
    )
    return Extracted(item, picture)


def _alt_text(shape: Any) -> str | None:
    """The picture's alt text (``descr``), a usable caption when the author wrote one."""
    try:
        props = shape._element.xpath("./*[1]/p:cNvPr")[0]
    except Exception:
        return None
    descr = _clean(props.get("descr") or "")
    return descr or None
