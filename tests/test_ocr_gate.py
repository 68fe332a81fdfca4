"""The OCR gate: images that look like text are read, photos are not sent to OCR at all."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from mmrag import registry
from mmrag.ingest.decode import DecodeTask, decode_path
from mmrag.models import ocr as ocr_module
from mmrag.models.ocr import OcrLine, looks_like_text

LIMIT = 64_000_000
EVALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "evaldata"


def _page(lines: int = 14, size: int = 18) -> Image.Image:
    """A page of small black text on white, like a rendered document."""
    page = Image.new("RGB", (900, 1200), "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=size)
    for i in range(lines):
        draw.text((60, 80 + i * 40), f"Line {i}: quarterly revenue grew by {i}%", fill=0, font=font)
    return page


def _photo(seed: int = 0) -> Image.Image:
    """A photo-like picture: smooth colour fields with fine noise, no flat background."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((640, 480), Image.Resampling.BICUBIC)
    noise = rng.normal(0, 6, (480, 640, 3))
    pixels = np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(0.6))


def test_a_page_of_text_looks_like_text_and_a_photo_does_not() -> None:
    assert looks_like_text(_page())
    assert not any(looks_like_text(_photo(seed)) for seed in range(5))
    assert not looks_like_text(Image.new("RGB", (800, 600), "white"))  # flat, no strokes


def test_large_letters_on_a_plain_background_look_like_text() -> None:
    sign = Image.new("RGB", (640, 200), "white")
    font = ImageFont.load_default(size=64)
    ImageDraw.Draw(sign).text((30, 60), "OPEN DAILY", fill="black", font=font)
    assert looks_like_text(sign)


class _Recorder:
    """An OCR engine that records what it was asked to read."""

    model_id = "recorder"
    calls: ClassVar[list[tuple[int, int]]] = []

    def __init__(self, threads: int | None = None) -> None:
        del threads

    def read(self, image: Image.Image) -> list[OcrLine]:
        _Recorder.calls.append(image.size)
        return [OcrLine("quarterly revenue", (0.0, 0.0, 10.0, 10.0), 0.99)]


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Recorder]]:
    registry.ocr_engines.register("recorder", _Recorder)
    monkeypatch.setattr("mmrag.ingest.decode._OCR_ENGINES", {})
    _Recorder.calls = []
    yield _Recorder
    registry.ocr_engines.unregister("recorder")


def _save(image: Image.Image, path: Path) -> str:
    image.save(path, quality=92)
    return str(path)


def test_decoding_sends_pages_to_ocr_and_skips_photos(
    tmp_path: Path, recorder: type[_Recorder]
) -> None:
    page = _save(_page(), tmp_path / "page.jpg")
    photo = _save(_photo(), tmp_path / "photo.jpg")
    decoded = [
        decode_path(DecodeTask(p, 224, 256, LIMIT, ocr=True, ocr_engine="recorder"))
        for p in (page, photo)
    ]
    assert [bool(d.ocr_lines) for d in decoded] == [True, False]  # type: ignore[union-attr]
    # The page was decoded again at OCR size (the gate saw a smaller draft of the JPEG).
    assert recorder.calls and max(recorder.calls[0]) >= ocr_module.GATE_SIDE * 2


def test_without_the_gate_every_image_is_read(tmp_path: Path, recorder: type[_Recorder]) -> None:
    photo = _save(_photo(), tmp_path / "photo.jpg")
    task = DecodeTask(photo, 224, 256, LIMIT, ocr=True, ocr_engine="recorder", ocr_gate=False)
    assert decode_path(task).ocr_lines  # type: ignore[union-attr]


def test_the_gate_keeps_rendered_pages_and_skips_most_real_photos() -> None:
    pytest.importorskip("pymupdf", reason="PyMuPDF renders the evaldata pages")
    photos = sorted((EVALDATA / "coco_mini").rglob("*.jpg"))[:60]
    pdfs = sorted((EVALDATA / "pdfs_real").glob("*/*.pdf"))[:12]
    if not photos or not pdfs:
        pytest.skip(f"evaldata photos and PDFs are not at {EVALDATA}")
    import pymupdf

    pages = []
    for pdf in pdfs:
        with pymupdf.open(pdf) as doc:
            if len(doc[0].get_text().split()) >= 20:
                png = doc[0].get_pixmap(dpi=150).tobytes("png")
                pages.append(Image.open(io.BytesIO(png)))
    kept = sum(looks_like_text(p) for p in pages)
    read = sum(looks_like_text(Image.open(p)) for p in photos)
    assert kept >= 0.9 * len(pages) and read <= 0.25 * len(photos)
