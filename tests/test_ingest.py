"""Every source is an Ingester: images and their text, content-type routing, the pipeline's
part (decode, blobs, warnings) and URL sources end to end."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw, ImageFont

import mmrag
from conftest import draw_photo
from mmrag.blobs import BlobStore
from mmrag.config import Settings
from mmrag.indexer import Indexer
from mmrag.ingest.base import Extracted, Notice, Output, Skipped, SourceData, pick_ingester
from mmrag.ingest.decode import DecodedImage, DecodeTask, decode_path
from mmrag.ingest.images import ImageIngester
from mmrag.ingest.items import part_hash
from mmrag.ingest.report import IndexReport
from mmrag.models.ocr import OcrLine
from mmrag.types import Item, item_id

LIMIT = 64_000_000


def _get(index: mmrag.Index, *ids: str) -> list[Item]:
    """Items by id, in the order asked."""
    found = {item.id: item for item in index.get(list(ids))}
    return [found[i] for i in ids]


def _decoded(path: Path, ocr: bool = False, ocr_engine: str = "rapidocr") -> DecodedImage:
    result = decode_path(DecodeTask(str(path), 32, 64, LIMIT, ocr, ocr_engine))
    assert isinstance(result, DecodedImage)
    return result


def _image_outputs(decoded: DecodedImage) -> list[Output]:
    source = SourceData(decoded.source, decoded.hash, decoded=decoded)
    return list(ImageIngester().extract(source, Settings()))


def _extracted(outputs: list[Output]) -> list[Extracted]:
    return [out for out in outputs if isinstance(out, Extracted)]


def test_an_image_becomes_its_item_its_ocr_text_and_its_caption(tmp_path: Path) -> None:
    path = tmp_path / "sign.png"
    draw_photo("red").save(path)
    path.with_suffix(".json").write_text('{"caption": "a red sign", "price": 3}')
    decoded = _decoded(path)
    decoded.ocr_lines = [OcrLine("OPEN DAILY", (10, 10, 300, 40), 0.95)]
    outputs = _image_outputs(decoded)
    extracted = _extracted(outputs)
    assert len(extracted) == len(outputs) == 3
    image, ocr, caption = (out.item for out in extracted)
    assert (image.id, image.kind, image.text) == (item_id(str(path)), "image", "a red sign")
    assert image.content_hash == decoded.hash and extracted[0].decoded is decoded
    assert image.metadata == {
        "width": 96,
        "height": 72,
        "format": "PNG",
        "price": 3,
        "caption": "a red sign",
    }
    assert (ocr.id, ocr.role, ocr.parent, ocr.text) == (
        item_id(str(path), "ocr", 0),
        "ocr",
        image.id,
        "OPEN DAILY",
    )
    assert (caption.id, caption.role, caption.parent, caption.text) == (
        item_id(str(path), "caption"),
        "caption",
        image.id,
        "a red sign",
    )
    assert caption.metadata == {"price": 3}
    assert caption.content_hash == part_hash(image.content_hash, "caption")
    # Text read from an image shows the image's picture: its blob key.
    assert ocr.thumb == caption.thumb == image.content_hash


def test_an_image_without_text_is_one_item(tmp_path: Path) -> None:
    path = tmp_path / "plain.jpg"
    draw_photo("blue").save(path)
    outputs = _image_outputs(_decoded(path))
    assert [out.item.kind for out in _extracted(outputs)] == ["image"] and len(outputs) == 1
    assert _extracted(outputs)[0].item.text is None


def test_an_ocr_failure_is_one_notice_that_reads_the_same_for_every_image(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.png"
    draw_photo("green").save(path)
    decoded = _decoded(path, ocr=True, ocr_engine="no-such-engine")
    outputs = _image_outputs(decoded)
    notices = [out for out in outputs if isinstance(out, Notice)]
    assert len(notices) == 1 and notices[0].source is None
    assert str(notices[0]).startswith("OCR skipped: unknown OCR engine 'no-such-engine'")
    assert [out.item.kind for out in _extracted(outputs)] == ["image"]


def test_the_image_ingester_needs_the_pipeline_to_decode() -> None:
    assert ImageIngester().decode is True
    with pytest.raises(ValueError, match="decoded"):
        list(ImageIngester().extract(SourceData("x.png", "h", b"\x89PNG"), Settings()))


class _Doc:
    suffixes = frozenset({".pdf"})
    content_types = frozenset({"application/pdf"})
    decode = False

    def extract(self, source: SourceData, settings: Settings) -> Iterator[object]:
        return iter(())


def test_url_bytes_go_to_the_ingester_claiming_their_content_type() -> None:
    images, doc = ImageIngester(), _Doc()
    ingesters = [images, doc]
    assert pick_ingester(ingesters, ".jpg") is images
    assert pick_ingester(ingesters, "", "image/webp") is images
    assert pick_ingester(ingesters, ".png", "application/pdf") is doc  # the server knows best
    assert pick_ingester(ingesters, ".pdf", "application/octet-stream") is doc  # by suffix
    assert pick_ingester(ingesters, "", "application/octet-stream") is None
    assert pick_ingester(ingesters, ".docx") is None


def _indexer(ingesters: list[Any]) -> Indexer:
    """An indexer with nothing behind it: enough to see what it takes."""
    nothing: Any = None
    return Indexer(nothing, nothing, nothing, None, nothing, Settings(), ingesters)


def test_the_indexer_takes_the_suffixes_of_the_ingesters_it_is_given() -> None:
    doc, images = _Doc(), ImageIngester()
    assert _indexer([doc]).suffixes == doc.suffixes  # no ingester is added behind the caller's back
    assert {".jpg", ".png", ".pdf"} <= _indexer([images, doc]).suffixes


def test_a_report_counts_skipped_parts_and_says_each_warning_once() -> None:
    report = IndexReport()
    report.note(Skipped("/d/manual.pdf", "page 7", "broken content stream"))
    report.note(Notice("OCR skipped: no engine"))
    report.note(Notice("OCR skipped: no engine"))
    assert report.skipped == [Skipped("/d/manual.pdf", "page 7", "broken content stream")]
    assert report.warnings == [
        "/d/manual.pdf page 7: skipped: broken content stream",
        "OCR skipped: no engine",
    ]
    # Every loss is in the JSON report too (issue 14), not only a warning line.
    assert report.to_dict()["skipped"] == [
        {"path": "/d/manual.pdf", "part": "page 7", "reason": "broken content stream"}
    ]
    assert report.to_dict()["partial"] == 1


# -- through the pipeline ---------------------------------------------------------------

pymupdf = pytest.importorskip("pymupdf")


def _pdf_bytes() -> bytes:
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_textbox(pymupdf.Rect(72, 72, 523, 300), "Pump maintenance schedule. " * 5)
    buf = io.BytesIO()
    draw_photo("red", "circle", (300, 200)).save(buf, format="PNG")
    page.insert_image(pymupdf.Rect(150, 320, 450, 520), stream=buf.getvalue())
    page.insert_text((150, 540), "Figure 1. The pump housing.", fontsize=10)
    return bytes(doc.tobytes())


def _png_bytes() -> bytes:
    image = Image.new("RGB", (320, 120), "white")
    ImageDraw.Draw(image).text((10, 30), "HELLO", fill="black", font=ImageFont.load_default(40))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


ROUTES = {
    "/manual.pdf": ("application/pdf", _pdf_bytes()),
    "/download": ("application/pdf", _pdf_bytes()),  # no suffix: the content type decides
    "/pic.png": ("image/png", _png_bytes()),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ctype, body = ROUTES.get(self.path, ("text/plain", b""))
        self.send_response(200 if self.path in ROUTES else 404)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.mark.integration
def test_urls_are_ingested_by_content_type_with_ids_from_the_url(
    tmp_path: Path, tiny_clip: Path, server: str
) -> None:
    urls = [f"{server}/manual.pdf", f"{server}/download", f"{server}/pic.png"]
    with mmrag.open(
        tmp_path / "idx", model=str(tiny_clip), ocr=False, allow_private_urls=True
    ) as index:
        report = index.add(urls)
        assert (report.added, report.failed) == (3, 0), report.errors
        for url, name in ((urls[0], "manual.pdf"), (urls[1], "download")):
            page, figure = _get(index, item_id(url, "page", 1), item_id(url, "figure", 1, 0))
            assert (page.kind, page.source, page.doc) == ("page", url, name)
            assert page.parent == item_id(url)
            assert figure.parent == page.id and figure.metadata["caption"].startswith("Figure 1")
        (image,) = _get(index, item_id(urls[2]))
        assert (image.kind, image.source, image.thumb) == ("image", urls[2], image.content_hash)
        again = index.add(urls)
        assert (again.unchanged, again.added, again.updated) == (3, 0, 0)


@pytest.mark.integration
def test_every_picture_is_kept_under_its_items_content_hash(
    tmp_path: Path, tiny_clip: Path
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "manual.pdf").write_bytes(_pdf_bytes())
    draw_photo("green").save(tmp_path / "docs" / "green.jpg")
    (tmp_path / "docs" / "green.txt").write_text("a green square")
    blobs = BlobStore(tmp_path / "idx" / "blobs")
    pdf, jpg = str(tmp_path / "docs" / "manual.pdf"), str(tmp_path / "docs" / "green.jpg")
    with mmrag.open(tmp_path / "idx", model=str(tiny_clip), ocr=False) as index:
        index.add(tmp_path / "docs")
        page, figure, chunk, image, caption = _get(
            index,
            item_id(pdf, "page", 1),
            item_id(pdf, "figure", 1, 0),
            item_id(pdf, "text", 1, 0),
            item_id(jpg),
            item_id(jpg, "caption"),
        )
    for visual in (page, figure):  # rendered: a thumbnail and a full copy
        assert visual.thumb == visual.content_hash
        assert blobs.has("thumb", visual.thumb) and blobs.has("full", visual.thumb)
    assert chunk.thumb is None
    assert image.thumb == caption.thumb == image.content_hash  # the file is its own full copy
    assert blobs.has("thumb", image.thumb) and not blobs.has("full", image.thumb)


@pytest.mark.integration
def test_a_skipped_page_is_a_typed_warning_of_the_run(
    tmp_path: Path, tiny_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmrag.ingest.pdf import PdfIngester

    path = tmp_path / "manual.pdf"
    doc = pymupdf.open(stream=_pdf_bytes())
    doc.insert_pdf(pymupdf.open(stream=_pdf_bytes()))
    doc.save(path)
    real = PdfIngester._page

    def first_broken(self: PdfIngester, doc: object, index: int, *args: object) -> list[Extracted]:
        if index == 0:
            raise RuntimeError("broken content stream")
        return real(self, doc, index, *args)

    monkeypatch.setattr(PdfIngester, "_page", first_broken)
    with mmrag.open(tmp_path / "idx", model=str(tiny_clip), ocr=False) as index:
        report = index.add(path)
    assert (report.added, report.failed) == (1, 0)
    assert report.skipped == [Skipped(str(path), "page 1", "broken content stream")]
    assert report.warnings == [f"{path} page 1: skipped: broken content stream"]
