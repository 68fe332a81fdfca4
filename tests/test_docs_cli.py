"""Documents end to end: `mmrag index` on PDFs, a deck and broken files, then `mmrag search`.

Generated files only (fitz, python-pptx), a tiny random CLIP and the real MiniLM; the
real evaldata documents are read in place when present and the test skips otherwise.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import pytest

from conftest import EVALDATA, draw_photo
from mmrag.cli import main

pytestmark = pytest.mark.integration

pymupdf = pytest.importorskip("pymupdf")
pptx = pytest.importorskip("pptx")

CAPTION = "Figure 1: Centrifugal pump efficiency against flow rate"
BROKEN = ("locked.pdf", "broken.pdf", "empty.pdf")


def _png(colour: str) -> bytes:
    buf = io.BytesIO()
    draw_photo(colour, "circle", (160, 120)).save(buf, format="PNG")
    return buf.getvalue()


def _write_report(path: Path) -> None:
    """Page 1 text; page 2 a vector chart with its caption below; page 3 a raster photo."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_textbox(
        pymupdf.Rect(72, 72, 523, 400),
        "Maintenance manual. Check the seals every month and replace worn bearings. "
        "The impeller must be inspected for cavitation damage after heavy use.",
        fontsize=11,
    )
    page = doc.new_page(width=595, height=842)
    page.insert_textbox(
        pymupdf.Rect(72, 60, 523, 120), "Performance of the unit under load.", fontsize=11
    )
    shape = page.new_shape()
    shape.draw_rect(pymupdf.Rect(100, 150, 500, 400))  # axes frame
    for i in range(8):  # bars of a chart: a figure drawn with paths, no raster
        x = 120 + i * 45
        shape.draw_rect(pymupdf.Rect(x, 380 - 25 * i, x + 30, 400))
    shape.draw_polyline([pymupdf.Point(110 + 48 * i, 390 - 30 * i) for i in range(8)])
    shape.finish(color=(0, 0, 0.6), fill=(0.4, 0.6, 0.9), width=1)
    shape.commit()
    page.insert_text((100, 420), CAPTION, fontsize=10)
    page = doc.new_page(width=595, height=842)
    page.insert_textbox(
        pymupdf.Rect(72, 60, 523, 120), "Photograph of the installed housing.", fontsize=11
    )
    page.insert_image(pymupdf.Rect(150, 150, 450, 375), stream=_png("red"))
    doc.save(path)
    doc.close()


def _write_deck(path: Path) -> None:
    """Two slides with title, body and notes; the first has a picture."""
    prs = pptx.Presentation()
    layout = prs.slide_layouts[1]  # title and content
    for title, body, notes in (
        ("Quarterly revenue", "Revenue grew 12% in Q3", "Mention the currency effect."),
        ("Hiring plan", "Two engineers join in May", "Budget approved by the finance board."),
    ):
        slide = prs.slides.add_slide(layout)
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        slide.notes_slide.notes_text_frame.text = notes
    picture = io.BytesIO(_png("blue"))
    prs.slides[0].shapes.add_picture(picture, pptx.util.Inches(5), pptx.util.Inches(4))
    prs.save(str(path))


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a good PDF, a good deck and three documents that must be skipped."""
    root = tmp_path_factory.mktemp("docs")
    _write_report(root / "report.pdf")
    _write_deck(root / "deck.pptx")
    locked = pymupdf.open()
    locked.new_page().insert_text((72, 72), "secret")
    locked.save(
        root / "locked.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="o", user_pw="u"
    )
    (root / "broken.pdf").write_bytes(os.urandom(2048))
    (root / "empty.pdf").write_bytes(b"")
    return root


@pytest.fixture(scope="module")
def indexed(
    docs: Path, tiny_clip: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[str], int, dict]:
    """`mmrag index DOCS --json` run once: (options for later commands, exit code, report)."""
    env = ["--index", str(tmp_path_factory.mktemp("idx") / "index"), "--model", str(tiny_clip)]
    out = io.StringIO()
    # Module-scoped fixtures cannot take capsys; click writes to whatever sys.stdout is.
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setenv("MMRAG_OCR", "false")  # nothing here is scanned; keeps the run fast
        code = main(["index", str(docs), *env, "--json", "--no-progress"])
    return env, code, json.loads(out.getvalue())


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


def test_index_adds_the_good_documents_and_names_the_bad_ones(
    indexed: tuple[list[str], int, dict],
) -> None:
    _, code, report = indexed
    assert code == 3  # EXIT_PARTIAL: some sources failed
    assert (report["added"], report["failed"]) == (2, 3)
    reasons = {Path(e["path"]).name: e["reason"] for e in report["errors"]}
    assert set(reasons) == set(BROKEN)
    assert "encrypted" in reasons["locked.pdf"]
    assert "cannot open as PDF" in reasons["broken.pdf"]
    assert reasons["empty.pdf"]


def test_search_by_caption_words_finds_the_page_with_the_figure_as_evidence(
    indexed: tuple[list[str], int, dict], capsys: pytest.CaptureFixture[str]
) -> None:
    env = indexed[0]
    code, out = _run(capsys, "search", "centrifugal pump efficiency flow rate", *env, "--json")
    assert code == 0
    top = json.loads(out)["results"][0]
    assert (top["kind"], top["doc"], top["page"]) == ("page", "report.pdf", 2)
    assert CAPTION in [e["text"] for e in top["evidence"]]  # it found the page via its figure
    assert "figure" in [e["kind"] for e in top["evidence"]]
    assert {"text", "bm25"} <= set(top["via"])


def test_search_finds_slide_notes_on_their_slide(
    indexed: tuple[list[str], int, dict], capsys: pytest.CaptureFixture[str]
) -> None:
    env = indexed[0]
    code, out = _run(capsys, "search", "budget approved by the finance board", *env, "--json")
    assert code == 0
    top = json.loads(out)["results"][0]
    assert (top["doc"], top["page"]) == ("deck.pptx", 2)
    assert top["kind"] in ("slide", "text")


def test_search_human_output_shows_kind_document_and_page(
    indexed: tuple[list[str], int, dict], capsys: pytest.CaptureFixture[str]
) -> None:
    env = indexed[0]
    code, out = _run(capsys, "search", "centrifugal pump efficiency", *env, "-k", "3")
    assert code == 0
    first = out.splitlines()[0]
    assert "page" in first and "report.pdf" in first and "p.2" in first


# -- the real documents ------------------------------------------------------------------

_SAMPLE = 5


def _sample(root: Path) -> list[Path]:
    """A fixed sample: the smallest PDFs and the smallest deck (decks render slowly)."""
    pdfs = sorted((root / "pdfs_real").rglob("*.pdf"), key=lambda p: p.stat().st_size)
    decks = sorted((root / "pptx_real").rglob("*.pptx"), key=lambda p: p.stat().st_size)
    return [*pdfs[: _SAMPLE - 1], *decks[:1]]


@pytest.mark.skipif(not (EVALDATA / "pdfs_real").is_dir(), reason="no evaldata here")
def test_real_documents_index_without_a_crash(tmp_path: Path, tiny_clip: Path) -> None:
    import mmrag

    files = _sample(EVALDATA)
    assert files
    with mmrag.open(tmp_path / "idx", model=str(tiny_clip), ocr=False) as index:
        report = index.add(files)
        kinds = index.stats()["kinds"]
    assert report.errors == [] and report.added == len(files)
    assert kinds.get("text", 0) > 0 and kinds.get("page", 0) + kinds.get("slide", 0) > 0


@pytest.mark.slow
@pytest.mark.skipif(not (EVALDATA / "pdfs_real").is_dir(), reason="no evaldata here")
def test_every_real_pdf_and_deck_indexes_or_is_reported(tmp_path: Path, tiny_clip: Path) -> None:
    import mmrag

    files = sorted(
        p for p in EVALDATA.rglob("*") if p.suffix.lower() in (".pdf", ".pptx") and p.is_file()
    )
    with mmrag.open(tmp_path / "idx", model=str(tiny_clip), ocr=False) as index:
        report = index.add(files)
    # The indexer turns any exception into a failure; a crash shows as an exception's name.
    crashes = [e for e in report.errors if e["reason"].split(":")[0].endswith("Error")]
    assert crashes == []
    assert report.added + report.failed == len(files)
