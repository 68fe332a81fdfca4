"""Slide decks: slide items with text and notes, pictures as figures, rendering via LibreOffice."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from mmrag.config import Settings
from mmrag.errors import InputError
from mmrag.ingest import pptx as pptx_mod
from mmrag.ingest.base import Extracted, Notice, Output, Skipped, SourceData
from mmrag.ingest.pptx import PptxIngester, renderer_available
from mmrag.types import item_id

pptx = pytest.importorskip("pptx")
from pptx.util import Inches, Pt  # noqa: E402

EVALDATA = Path(__file__).resolve().parents[2] / "shared" / "evaldata" / "pptx_real"


def _png(size: tuple[int, int], colour: str) -> io.BytesIO:
    img = Image.new("RGB", size, "white")
    ImageDraw.Draw(img).rectangle((10, 10, size[0] - 10, size[1] - 10), fill=colour)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    buf.seek(0)
    return buf


def _make_deck(path: Path) -> Path:
    prs = pptx.Presentation()
    slide = prs.slides.add_slide(prs.slide_layouts[1])  # title and content
    slide.shapes.title.text = "Quarterly revenue"
    slide.placeholders[1].text = "Revenue grew 12% in Q3\nEurope led the growth"
    slide.notes_slide.notes_text_frame.text = "Mention the currency effect."
    pic = slide.shapes.add_picture(_png((400, 300), "green"), Inches(5), Inches(3), Inches(4))
    pic._element.xpath("./*[1]/p:cNvPr")[0].set("descr", "Bar chart of revenue by region")
    slide.shapes.add_picture(_png((24, 24), "black"), Inches(0.1), Inches(0.1))  # an icon
    slide = prs.slides.add_slide(prs.slide_layouts[5])  # title only
    slide.shapes.title.text = "Headcount"
    table = slide.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(6), Inches(1)).table
    for r, row in enumerate([("Team", "People"), ("Pumps", "42")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    box = slide.shapes.add_textbox(Inches(1), Inches(4), Inches(4), Inches(1))
    box.text_frame.text = "Hiring freeze until May"
    box.text_frame.paragraphs[0].runs[0].font.size = Pt(18)
    prs.save(path)
    return path


@pytest.fixture
def deck(tmp_path: Path) -> Path:
    return _make_deck(tmp_path / "review.pptx")


def _extract(path: Path, **kwargs: object) -> tuple[list[Extracted], list[Skipped | Notice]]:
    """The deck's items, and the problems reported beside them."""
    ingester = PptxIngester(**kwargs)  # type: ignore[arg-type]
    outputs: list[Output] = list(ingester.extract(SourceData.read(path), Settings()))
    items = [out for out in outputs if isinstance(out, Extracted)]
    return items, [out for out in outputs if not isinstance(out, Extracted)]


def test_each_slide_is_an_item_with_its_text_title_and_notes(deck: Path) -> None:
    out, _ = _extract(deck, render=False)
    slides = [e for e in out if e.item.kind == "slide"]
    assert [s.item.page for s in slides] == [1, 2]
    first = slides[0].item
    assert first.id == item_id(str(deck), "slide", 1) and first.parent == item_id(str(deck))
    assert first.metadata["title"] == "Quarterly revenue"
    assert first.metadata["notes"] == "Mention the currency effect."
    assert "Revenue grew 12% in Q3" in first.text and "currency effect" in first.text
    second = slides[1].item
    assert "Pumps | 42" in second.text and "Hiring freeze" in second.text
    assert all(s.image is None and s.item.metadata["rendered"] is False for s in slides)


def test_slide_text_becomes_text_items_under_the_slide(deck: Path) -> None:
    out, _ = _extract(deck, render=False)
    texts = [e.item for e in out if e.item.kind == "text"]
    assert {t.page for t in texts} == {1, 2}
    for t in texts:
        assert t.parent == item_id(str(deck), "slide", t.page)
        assert t.doc == "review.pptx"
    assert any("Europe led the growth" in t.text for t in texts)


def test_every_slide_item_carries_the_deck_title_and_its_slide_title(deck: Path) -> None:
    out, _ = _extract(deck, render=False)
    assert {e.item.kind for e in out} == {"slide", "text", "figure"}
    for e in out:
        # No title in the core properties: the first slide's title names the deck.
        identity, section = (e.item.context or "").split("\n")
        assert identity == "review; Quarterly revenue"
        assert section == ("Quarterly revenue" if e.item.page == 1 else "Headcount")
        assert "review" not in (e.item.text or "")


def test_a_deck_title_from_its_properties_and_no_context_when_off(tmp_path: Path) -> None:
    path = _make_deck(tmp_path / "q3.pptx")
    prs = pptx.Presentation(str(path))
    prs.core_properties.title = "Pump Division Review 2023"
    prs.save(str(path))
    out, _ = _extract(path, render=False)
    assert all((e.item.context or "").startswith("q3; Pump Division Review 2023\n") for e in out)
    items = PptxIngester(render=False).extract(SourceData.read(path), Settings(doc_context=False))
    assert all(e.item.context is None for e in items if isinstance(e, Extracted))


def test_pictures_become_figures_with_alt_text_and_icons_are_skipped(deck: Path) -> None:
    out, _ = _extract(deck, render=False)
    figs = [e for e in out if e.item.kind == "figure"]
    assert len(figs) == 1
    fig = figs[0]
    assert fig.item.parent == item_id(str(deck), "slide", 1)
    assert fig.item.metadata["caption"] == "Bar chart of revenue by region"
    assert fig.image is not None and fig.image.size == (400, 300)
    x0, y0, x1, _ = fig.item.bbox
    assert (x0, y0) == (5 * 72, 3 * 72) and round(x1 - x0) == 4 * 72


def test_without_libreoffice_slides_are_indexed_as_text_with_a_warning(
    deck: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pptx_mod.shutil, "which", lambda name: None)
    assert renderer_available() is False
    out, problems = _extract(deck)  # render=None: quietly text-only
    assert all(e.image is None for e in out if e.item.kind == "slide")
    assert problems == []
    out, problems = _extract(deck, render=True)  # asked to render: say why not
    assert problems == [Notice(pptx_mod.RENDERER_MISSING, str(deck))]
    assert str(problems[0]) == f"{deck}: {pptx_mod.RENDERER_MISSING}"
    assert [e.item.kind for e in out].count("slide") == 2


def test_a_broken_slide_is_skipped_and_reported_and_the_rest_indexed(
    deck: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = PptxIngester._slide

    def flaky(self: PptxIngester, slide: object, n: int, *args: object) -> list[Extracted]:
        if n == 1:
            raise KeyError("rId7")
        return real(self, slide, n, *args)

    monkeypatch.setattr(PptxIngester, "_slide", flaky)
    out, problems = _extract(deck, render=False)
    assert {e.item.page for e in out} == {2}
    assert problems == [Skipped(str(deck), "slide 1", "'rId7'")]
    assert str(problems[0]) == f"{deck} slide 1: skipped: 'rId7'"


def test_ids_are_stable_across_runs(deck: Path) -> None:
    first = [e.item.id for e in _extract(deck, render=False)[0]]
    assert first == [e.item.id for e in _extract(deck, render=False)[0]]
    assert len(set(first)) == len(first)


@pytest.mark.parametrize("data", [b"", b"not a zip at all", b"PK\x03\x04broken zip"])
def test_corrupt_deck_is_an_input_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "broken.pptx"
    path.write_bytes(data)
    with pytest.raises(InputError) as err:
        _extract(path, render=False)
    assert err.value.source == str(path)


def test_deck_without_slides_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.pptx"
    pptx.Presentation().save(path)
    with pytest.raises(InputError, match="0 slides"):
        _extract(path, render=False)


needs_soffice = pytest.mark.skipif(
    not renderer_available(),
    reason="LibreOffice is not installed "
    "(apt-get install -y --no-install-recommends libreoffice-impress)",
)


@pytest.mark.integration
@needs_soffice
def test_slides_are_rendered_with_libreoffice(deck: Path) -> None:
    out, problems = _extract(deck)
    slides = [e for e in out if e.item.kind == "slide"]
    assert problems == []
    assert all(s.image is not None and max(s.image.size) == 1024 for s in slides)
    assert all(s.item.metadata["rendered"] for s in slides)
    # 4:3 default slide size
    assert abs(slides[0].image.width / slides[0].image.height - 4 / 3) < 0.01


@pytest.mark.integration
@pytest.mark.skipif(not EVALDATA.is_dir(), reason=f"{EVALDATA} is absent")
def test_every_real_deck_ingests_as_text_and_pictures() -> None:
    decks = sorted(EVALDATA.rglob("*.pptx"))
    assert decks
    for path in decks:
        out, problems = _extract(path, render=False)
        assert any(e.item.kind == "slide" for e in out), path
        assert problems == [], path
