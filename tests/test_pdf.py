"""PDF ingestion: pages, text chunks, figures (raster and vector), captions, OCR and bad files."""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from mmrag.config import Settings
from mmrag.errors import InputError
from mmrag.ingest.base import Extracted, Output, Skipped, SourceData
from mmrag.ingest.pdf import PdfIngester, document_id
from mmrag.models.ocr import OcrLine
from mmrag.types import item_id

pymupdf = pytest.importorskip("pymupdf")

EVALDATA = Path(__file__).resolve().parents[2] / "shared" / "evaldata" / "pdfs_real"
BODY = (
    "Hydraulic pumps move fluid through the system. The gear pump is the most common type. "
    "Pressure relief valves protect the lines from overload. "
) * 6


def _png(size: tuple[int, int] = (300, 200), colour: str = "red") -> bytes:
    img = Image.new("RGB", size, "white")
    ImageDraw.Draw(img).ellipse((20, 20, size[0] - 20, size[1] - 20), fill=colour)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _make_pdf(path: Path) -> Path:
    """Page 1: text, a raster figure with caption and a tiny logo; page 2: a vector chart
    with caption; page 3: text only."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_image(pymupdf.Rect(20, 20, 40, 40), stream=_png((40, 40), "blue"))  # logo
    page.insert_textbox(pymupdf.Rect(72, 60, 523, 300), BODY, fontsize=10)
    page.insert_image(pymupdf.Rect(150, 320, 450, 520), stream=_png())
    page.insert_text((150, 540), "Figure 1. A red disc on white.", fontsize=10)
    page = doc.new_page(width=595, height=842)
    page.insert_textbox(pymupdf.Rect(72, 60, 523, 200), "Results. " + BODY[:300], fontsize=10)
    shape = page.new_shape()
    shape.draw_line((100, 500), (500, 500))  # x axis
    shape.draw_line((100, 500), (100, 250))  # y axis
    for i, height in enumerate((80, 150, 120, 200, 60)):
        x = 130 + i * 70
        shape.draw_rect(pymupdf.Rect(x, 500 - height, x + 40, 500))
    shape.finish(color=(0, 0, 0), fill=(0.2, 0.4, 0.8))
    shape.commit()
    page.insert_text((110, 530), "Fig. 2: Pump output by month.", fontsize=10)
    page = doc.new_page(width=595, height=842)
    # Text of its own: a page repeating another's text word for word has its chunks dropped.
    service = " ".join(f"Service the gear pump every {250 * n} hours of use." for n in range(1, 40))
    page.insert_textbox(pymupdf.Rect(72, 60, 523, 700), service, fontsize=10)
    doc.save(path)
    return path


def _items(outputs: Iterable[Output]) -> list[Extracted]:
    return [out for out in outputs if isinstance(out, Extracted)]


def _extract(path: Path, **settings: object) -> list[Extracted]:
    return _items(PdfIngester().extract(SourceData.read(path), Settings(**settings)))


@pytest.fixture
def sample_pdf(tmp_path: Path) -> Path:
    return _make_pdf(tmp_path / "manual.pdf")


def test_every_page_becomes_a_rendered_page_item_under_the_document(sample_pdf: Path) -> None:
    out = _extract(sample_pdf)
    pages = [e for e in out if e.item.kind == "page"]
    assert [p.item.page for p in pages] == [1, 2, 3]
    for p in pages:
        assert p.item.parent == document_id(str(sample_pdf))
        assert p.item.id == item_id(str(sample_pdf), "page", p.item.page)
        assert p.item.doc == "manual.pdf" and p.item.source == str(sample_pdf)
        assert p.image is not None and max(p.image.size) == 1024
        assert p.item.content_hash


def test_page_text_is_chunked_with_page_anchors(sample_pdf: Path) -> None:
    out = _extract(sample_pdf, chunk_chars=300)
    texts = [e.item for e in out if e.item.kind == "text" and "chunk" in e.item.metadata]
    assert {t.page for t in texts} == {1, 2, 3}
    for t in texts:
        assert t.parent == item_id(str(sample_pdf), "page", t.page)
        assert t.text and len(t.text) <= 360  # a short tail may join the last chunk
        assert t.bbox is not None and 0 <= t.bbox[1] < t.bbox[3] <= 842
        assert t.metadata["ocr"] is False
    assert any("gear pump" in t.text for t in texts if t.page == 3)


def test_raster_figure_is_cut_out_with_caption_and_the_logo_is_skipped(sample_pdf: Path) -> None:
    figs = [e for e in _extract(sample_pdf) if e.item.kind == "figure" and e.item.page == 1]
    assert len(figs) == 1
    fig = figs[0]
    assert fig.item.parent == item_id(str(sample_pdf), "page", 1)
    assert fig.item.metadata["figure_kind"] == "raster"
    assert fig.item.metadata["label"] == "Figure 1"
    assert fig.item.metadata["caption"].startswith("Figure 1. A red disc")
    x0, y0, x1, y1 = fig.item.bbox
    assert abs(x0 - 150) < 3 and abs(y0 - 320) < 3 and abs(x1 - 450) < 3 and abs(y1 - 520) < 3
    r, g, b = fig.image.convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    assert r > g and r > b  # the red disc, not the page


def test_vector_chart_is_found_from_its_drawings(sample_pdf: Path) -> None:
    figs = [e for e in _extract(sample_pdf) if e.item.kind == "figure" and e.item.page == 2]
    assert len(figs) == 1
    item = figs[0].item
    assert item.metadata["figure_kind"] == "vector"
    assert item.metadata["label"] == "Fig. 2"
    assert "Pump output" in item.metadata["caption"]
    assert item.bbox[0] <= 101 and item.bbox[2] >= 499 and item.bbox[1] <= 301
    assert figs[0].image is not None and figs[0].image.width > 200


def test_a_figure_caption_is_also_a_text_item_under_its_figure(sample_pdf: Path) -> None:
    out = [e.item for e in _extract(sample_pdf)]
    figures = {i.id: i for i in out if i.kind == "figure" and i.metadata.get("caption")}
    captions = [i for i in out if i.role == "caption"]
    assert len(captions) == len(figures) == 2
    for cap in captions:
        fig = figures[cap.parent]  # search folds a caption hit into this figure
        assert cap.text == fig.metadata["caption"] and cap.page == fig.page
        assert cap.metadata["label"] == fig.metadata["label"]
        assert cap.bbox is not None and cap.bbox[1] >= fig.bbox[3] - 4  # the caption sits below


def test_ids_are_stable_across_runs(sample_pdf: Path) -> None:
    first = [(e.item.id, e.item.content_hash) for e in _extract(sample_pdf)]
    second = [(e.item.id, e.item.content_hash) for e in _extract(sample_pdf)]
    assert first == second
    assert len({i for i, _ in first}) == len(first)


def test_a_text_only_page_has_no_figures(sample_pdf: Path) -> None:
    kinds = Counter(e.item.kind for e in _extract(sample_pdf) if e.item.page == 3)
    assert kinds["figure"] == 0 and kinds["page"] == 1 and kinds["text"] >= 2


class FakeOcr:
    model_id = "fake"

    def __init__(self) -> None:
        self.calls = 0

    def read(self, image: Image.Image) -> list[OcrLine]:
        self.calls += 1
        w, h = image.size
        return [
            OcrLine("SERVICE BULLETIN 42", (0.1 * w, 0.1 * h, 0.6 * w, 0.13 * h), 0.98),
            OcrLine(
                "Replace the filter every 500 hours.", (0.1 * w, 0.2 * h, 0.8 * w, 0.23 * h), 0.95
            ),
            OcrLine("smudge", (0.5 * w, 0.9 * h, 0.52 * w, 0.91 * h), 0.2),
        ]


def _scanned_pdf(path: Path) -> Path:
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_image(page.rect, stream=_png((600, 850), "gray"))
    doc.save(path)
    return path


def test_a_scanned_page_is_read_with_ocr_into_text_items(tmp_path: Path) -> None:
    path = _scanned_pdf(tmp_path / "scan.pdf")
    ocr = FakeOcr()
    out = _items(PdfIngester(ocr=ocr).extract(SourceData.read(path), Settings()))
    texts = [e.item for e in out if e.item.kind == "text"]
    assert ocr.calls == 1
    assert len(texts) == 1
    text = texts[0]
    assert "SERVICE BULLETIN 42" in text.text and "500 hours" in text.text
    assert "smudge" not in text.text  # low confidence
    assert text.parent == item_id(str(path), "page", 1) and text.page == 1
    assert text.metadata["ocr"] is True
    assert 0 < text.bbox[0] < text.bbox[2] <= 595 and 0 < text.bbox[1] < text.bbox[3] <= 842
    assert not [e for e in out if e.item.kind == "figure"]  # the scan is the page, not a figure


def test_ocr_is_skipped_when_turned_off(tmp_path: Path) -> None:
    ocr = FakeOcr()
    path = _scanned_pdf(tmp_path / "scan.pdf")
    out = _items(PdfIngester(ocr=ocr).extract(SourceData.read(path), Settings(ocr=False)))
    assert ocr.calls == 0 and [e.item.kind for e in out] == ["page"]


def test_encrypted_pdf_is_an_input_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.pdf"
    doc = pymupdf.open()
    doc.new_page()
    doc.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="u", owner_pw="o")
    with pytest.raises(InputError, match="password") as err:
        _extract(path)
    assert err.value.source == str(path)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"%PDF-1.4\nthis is not really a pdf",
        b"PK\x03\x04 a zip file renamed",
    ],
)
def test_corrupt_pdf_is_an_input_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(data)
    with pytest.raises(InputError) as err:
        _extract(path)
    assert str(path) in str(err.value)


def test_pdf_with_zero_pages_is_an_input_error(tmp_path: Path) -> None:
    body = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    body += b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    xref = len(body)
    body += b"xref\n0 3\n0000000000 65535 f \n0000000009 00000 n \n0000000052 00000 n \n"
    body += b"trailer<</Size 3/Root 1 0 R>>\nstartxref\n" + str(xref).encode() + b"\n%%EOF\n"
    path = tmp_path / "empty.pdf"
    path.write_bytes(body)
    with pytest.raises(InputError, match="0 pages"):
        _extract(path)


def test_one_bad_page_is_skipped_and_reported(
    sample_pdf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = PdfIngester._page

    def flaky(self: PdfIngester, doc: object, index: int, *args: object) -> list[Extracted]:
        if index == 1:
            raise RuntimeError("broken content stream")
        return real(self, doc, index, *args)

    monkeypatch.setattr(PdfIngester, "_page", flaky)
    outputs: list[Output] = list(PdfIngester().extract(SourceData.read(sample_pdf), Settings()))
    assert {e.item.page for e in _items(outputs)} == {1, 3}
    skipped = [out for out in outputs if not isinstance(out, Extracted)]
    assert skipped == [Skipped(str(sample_pdf), "page 2", "broken content stream")]
    assert str(skipped[0]) == f"{sample_pdf} page 2: skipped: broken content stream"


def test_rotated_page_boxes_match_the_rendered_image(tmp_path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=842, height=595)
    page.insert_image(pymupdf.Rect(100, 100, 400, 300), stream=_png())
    page.set_rotation(90)
    path = tmp_path / "rotated.pdf"
    doc.save(path)
    out = _extract(path)
    page_item = next(e for e in out if e.item.kind == "page")
    fig = next(e for e in out if e.item.kind == "figure")
    assert page_item.image.height > page_item.image.width  # rendered as displayed
    x0, y0, x1, y1 = fig.item.bbox
    assert x1 <= page_item.item.bbox[2] + 1 and y1 <= page_item.item.bbox[3] + 1
    assert (y1 - y0) > (x1 - x0)  # the landscape picture now stands upright


needs_evaldata = pytest.mark.skipif(not EVALDATA.is_dir(), reason=f"{EVALDATA} is absent")


@pytest.mark.integration
@needs_evaldata
def test_real_pdfs_have_a_captioned_figure_on_the_page_their_caption_names() -> None:
    rows = [json.loads(line) for line in (EVALDATA / "figure_captions.jsonl").open()]
    labels: dict[tuple[str, int], list[str]] = {}
    for pdf in sorted({r["pdf"] for r in rows}):
        source = SourceData.read(EVALDATA / pdf)
        for e in _items(PdfIngester().extract(source, Settings(ocr=False))):
            if e.item.kind == "figure":
                labels.setdefault((pdf, e.item.page), []).append(e.item.metadata.get("label") or "")

    def norm(label: str) -> str:
        return label.lower().replace(" ", "").rstrip(".:")

    found = sum(
        any(norm(r["label"]) == norm(lab) for lab in labels.get((r["pdf"], r["page"]), []))
        for r in rows
    )
    assert found / len(rows) >= 0.85, f"{found}/{len(rows)} captions matched a figure"


def test_a_shaded_table_is_not_a_figure_but_a_drawn_chart_with_labels_is(tmp_path: Path) -> None:
    # Filings draw their financial statements as shaded rows of labels and numbers: a
    # cluster of vector paths that is really a table, already on the page's text.
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    rows = ["Net sales", "Cost of sales", "Gross profit", "Operating expenses", "Net income"]
    for i, label in enumerate(rows * 2):
        y = 100 + i * 18
        shade = (0.85, 0.9, 0.95) if i % 2 else (0.95, 0.95, 0.95)
        for x0, x1 in ((72, 390), (390, 460), (460, 523)):  # shaded cells, row by row
            page.draw_rect(pymupdf.Rect(x0, y - 12, x1, y + 6), color=None, fill=shade)
        page.insert_text((76, y), label, fontsize=9)
        page.insert_text((400, y), f"{1_204 + 37 * i:,}", fontsize=9)
        page.insert_text((470, y), f"{998 + 41 * i:,}", fontsize=9)
    page.draw_line((100, 700), (500, 700))  # a bar chart with a few tick labels, uncaptioned
    page.draw_line((100, 700), (100, 450))
    for i, height in enumerate((80, 150, 120, 200, 60)):
        bar = pymupdf.Rect(130 + i * 70, 700 - height, 170 + i * 70, 700)
        page.draw_rect(bar, color=(0, 0, 0), fill=(0.2, 0.4, 0.8))
    for i, year in enumerate(("2019", "2020", "2021")):
        page.insert_text((140 + i * 140, 715), year, fontsize=8)
    doc.save(tmp_path / "statement.pdf")
    figs = [e.item for e in _extract(tmp_path / "statement.pdf") if e.item.kind == "figure"]
    assert len(figs) == 1
    assert figs[0].bbox[1] >= 440  # the chart, not the table above it
