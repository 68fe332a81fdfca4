"""OCR text of a photo is evidence for that photo at search, never a result of its own."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from PIL import ImageDraw, ImageFont

import mmrag
from conftest import draw_photo

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("rapidocr_onnxruntime") is None,
        reason="rapidocr-onnxruntime is not installed",
    ),
]


def _sign_photo(path: Path) -> None:
    image = draw_photo("green", "circle", size=(640, 360))
    draw = ImageDraw.Draw(image)
    draw.rectangle((60, 250, 600, 330), fill="white")
    draw.text((80, 262), "HARBOUR CAFE OPEN DAILY", fill="black", font=ImageFont.load_default(40))
    image.save(path, quality=92)


def test_ocr_text_folds_into_its_image(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    _sign_photo(photos / "sign.jpg")
    for colour in ("red", "blue"):
        draw_photo(colour).save(photos / f"{colour}.png")
    # No CLIP: a random-weight tower's ranking of three photos is a coin toss that fusion
    # weighs like any path's, and this test is about where OCR text lands, not about CLIP.
    with mmrag.open(tmp_path / "idx", model="none", ocr=True) as index:
        assert index.add(photos).failed == 0
        hits = index.search("harbour cafe open daily", k=5)
    assert hits[0].item.kind == "image" and hits[0].item.source.endswith("sign.jpg")
    assert "ocr" in [e.role for e in hits[0].evidence]
    assert "HARBOUR" in next(e.text for e in hits[0].evidence if e.role == "ocr").upper()
    assert all(h.item.role != "ocr" for h in hits)
