"""OCR: the RapidOCR engine, reading order, and OCR text items linked to their image."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from mmrag.errors import DependencyError
from mmrag.ingest.ocr_images import ocr_items
from mmrag.models import ocr as ocr_mod
from mmrag.models.ocr import OcrEngine, OcrLine, RapidOcr, ocr_text, reading_order
from mmrag.types import Item

has_rapidocr = importlib.util.find_spec("rapidocr_onnxruntime") is not None


def _text_image(lines: list[str]) -> Image.Image:
    font = ImageFont.load_default(size=40)
    img = Image.new("RGB", (900, 90 + 70 * len(lines)), "white")
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((40, 40 + 70 * i), line, fill="black", font=font)
    return img


def _line(text: str, x0: float, y0: float, x1: float, y1: float, score: float = 0.95) -> OcrLine:
    return OcrLine(text, (x0, y0, x1, y1), score)


def test_reading_order_is_rows_top_to_bottom_then_left_to_right() -> None:
    lines = [
        _line("world", 200, 12, 300, 38),
        _line("second row", 10, 60, 200, 85),
        _line("hello", 10, 10, 100, 40),
    ]
    assert [ln.text for ln in reading_order(lines)] == ["hello", "world", "second row"]
    assert ocr_text(lines) == "hello world\nsecond row"
    assert ocr_text([]) == ""


class FakeOcr:
    model_id = "fake"

    def __init__(self, lines: list[OcrLine]) -> None:
        self.lines = lines

    def read(self, image: Image.Image) -> list[OcrLine]:
        return self.lines


IMAGE = Item(id="img1", kind="image", source="/photos/sign.jpg", content_hash="abc")


def test_text_in_an_image_becomes_text_items_linked_to_it() -> None:
    fake = FakeOcr(
        [_line("OPENING HOURS", 10, 10, 300, 40), _line("Mon-Fri 9 to 17", 10, 50, 300, 80)]
    )
    assert isinstance(fake, OcrEngine)
    items = ocr_items(IMAGE, Image.new("RGB", (320, 100)), fake)
    assert len(items) == 1
    item = items[0].item
    assert item.kind == "text" and item.parent == "img1" and item.source == "/photos/sign.jpg"
    assert item.text == "OPENING HOURS\nMon-Fri 9 to 17"
    assert item.bbox == (10, 10, 300, 80)
    assert item.metadata["ocr"] is True and items[0].image is None
    again = ocr_items(IMAGE, Image.new("RGB", (320, 100)), fake)
    assert again[0].item.id == item.id and again[0].item.content_hash == item.content_hash


def test_a_photo_with_a_few_stray_glyphs_adds_nothing() -> None:
    fake = FakeOcr(
        [_line("a", 1, 1, 5, 5), _line("STOP", 10, 10, 40, 20, 0.4), _line("x7", 50, 50, 60, 60)]
    )
    assert ocr_items(IMAGE, Image.new("RGB", (100, 100)), fake) == []


def test_long_ocr_text_is_chunked() -> None:
    lines = [
        _line(f"Line {i} of the maintenance manual page.", 0, 30 * i, 500, 30 * i + 20)
        for i in range(60)
    ]
    items = ocr_items(IMAGE, Image.new("RGB", (500, 1800)), FakeOcr(lines), chunk_chars=300)
    assert len(items) > 3
    assert all(len(e.item.text) <= 360 for e in items)
    assert len({e.item.id for e in items}) == len(items)


def test_missing_rapidocr_is_a_dependency_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocr_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DependencyError, match="mmrag\\[ocr\\]"):
        RapidOcr()


@pytest.mark.skipif(not has_rapidocr, reason="rapidocr-onnxruntime is not installed")
def test_rapidocr_reads_rendered_text(tmp_path: Path) -> None:
    ocr = RapidOcr()
    assert ocr._engine is None  # nothing loaded until first use
    image = _text_image(["INVOICE NUMBER 4711", "Total due 250 EUR"])
    start = time.perf_counter()
    lines = ocr.read(image)
    elapsed = time.perf_counter() - start
    text = ocr_text(lines)
    assert "INVOICE" in text.upper() and "4711" in text
    assert "250" in text
    assert text.upper().index("INVOICE") < text.index("250")
    assert all(0 <= ln.bbox[0] < ln.bbox[2] <= image.width for ln in lines)
    assert elapsed < 30
    blank = ocr.read(Image.new("RGB", (400, 300), "white"))
    assert blank == []
    ocr.release()
    assert ocr._engine is None


def _photo_like(seed: int = 0) -> Image.Image:
    """Smooth colour gradients with soft blobs: texture without any glyphs."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:480, 0:640].astype(np.float32)
    channels = [
        128
        + 100
        * np.sin(x / rng.uniform(40, 120) + rng.uniform(0, 6))
        * np.cos(y / rng.uniform(40, 120))
        for _ in range(3)
    ]
    return Image.fromarray(np.stack(channels, axis=-1).clip(0, 255).astype(np.uint8))


@pytest.mark.skipif(not has_rapidocr, reason="rapidocr-onnxruntime is not installed")
def test_an_image_without_text_is_never_sent_to_the_recogniser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ocr = RapidOcr()
    ocr.read(Image.new("RGB", (64, 64), "white"))  # load the engine
    calls: list[int] = []
    real_rec = ocr._engine.text_rec
    monkeypatch.setattr(
        ocr._engine, "text_rec", lambda crops, *a: calls.append(len(crops)) or real_rec(crops, *a)
    )
    assert ocr.read(_photo_like()) == []
    assert calls == []
    assert "4711" in ocr_text(ocr.read(_text_image(["INVOICE NUMBER 4711"])))
    assert calls == [1]  # only the one line that was found, not the whole picture


@pytest.mark.skipif(not has_rapidocr, reason="rapidocr-onnxruntime is not installed")
def test_screened_reading_finds_what_the_full_pipeline_finds() -> None:
    image = _text_image(["Quarterly revenue grew 12 percent", "Operating margin 31.5", "Page 7"])
    screened = RapidOcr().read(image)
    full = RapidOcr(screen_side=None).read(image)
    words = lambda lines: set(ocr_text(lines).lower().split())  # noqa: E731
    assert words(full) <= words(screened) | {"page"}  # at most a short word apart
    assert {"quarterly", "revenue", "margin", "31.5"} <= words(screened)
    for ours, ref in zip(screened, full, strict=False):
        assert abs(ours.bbox[0] - ref.bbox[0]) < 12 and abs(ours.bbox[1] - ref.bbox[1]) < 12
