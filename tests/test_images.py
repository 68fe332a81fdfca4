"""Decoding images for the index: orientation, draft decoding, sidecars, embedded text."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import draw_photo
from mmrag.errors import InputError
from mmrag.imaging import preprocess_image
from mmrag.ingest.decode import (
    DecodedImage,
    DecodeFailure,
    DecodeTask,
    decode_image,
    decode_path,
    read_sidecar,
)

LIMIT = 64_000_000


def jpeg_bytes(image: Image.Image, **save: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=92, **save)
    return out.getvalue()


def decode(data: bytes, size: int = 32) -> DecodedImage:
    return decode_image(data, "x.jpg", size=size, thumb_size=64, max_pixels=LIMIT)


def test_preprocess_scales_shortest_edge_and_crops_centre() -> None:
    image = Image.new("RGB", (200, 100), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 50, 100))  # a red band on the far left is cropped away
    pixels = preprocess_image(image, 50)
    assert pixels.shape == (50, 50, 3) and pixels.dtype == np.uint8
    assert (pixels[:, :, 2] > 200).all()


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (80, 40), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 80, 20))  # top half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    decoded = decode(jpeg_bytes(image, exif=exif))
    assert (decoded.width, decoded.height) == (40, 80)
    thumb = Image.open(io.BytesIO(decoded.thumb_jpeg))
    assert thumb.height > thumb.width
    right = np.asarray(thumb)[:, -3:, :].mean(axis=(0, 1))
    assert right[2] > right[0]  # the blue top ended up on the right side


def test_jpeg_is_decoded_at_reduced_scale_with_same_geometry() -> None:
    photo = draw_photo("green", size=(1600, 1200))
    decoded = decode(jpeg_bytes(photo), size=224)
    reference = preprocess_image(photo, 224).astype(float)
    assert decoded.pixels.shape == (224, 224, 3)
    assert np.abs(decoded.pixels.astype(float) - reference).mean() < 6


def test_embedded_exif_description_becomes_text() -> None:
    exif = Image.Exif()
    exif[0x010E] = "Harbour at dawn"
    decoded = decode(jpeg_bytes(draw_photo("blue"), exif=exif))
    assert decoded.texts == ["Harbour at dawn"]


def test_xmp_description_becomes_text() -> None:
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description><dc:description>'
        b'<rdf:Alt><rdf:li xml:lang="x-default">Lighthouse in fog</rdf:li></rdf:Alt>'
        b"</dc:description></rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    decoded = decode(jpeg_bytes(draw_photo("blue"), xmp=xmp))
    assert decoded.texts == ["Lighthouse in fog"]


def test_sidecar_txt_and_json(tmp_path: Path) -> None:
    photo = tmp_path / "p.jpg"
    photo.write_bytes(b"")
    (tmp_path / "p.json").write_text(json.dumps({"caption": "red shoe", "price": 12.5, "x": {}}))
    caption, meta = read_sidecar(photo)
    assert caption == "red shoe" and meta == {"price": 12.5}
    (tmp_path / "p.txt").write_text("from the txt\n")
    caption, _ = read_sidecar(photo)
    assert caption == "from the txt"


def test_decode_path_reads_file_and_sidecar(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    draw_photo("red").save(path)
    path.with_suffix(".txt").write_text("a red square")
    result = decode_path(DecodeTask(str(path), 32, 64, LIMIT))
    assert isinstance(result, DecodedImage)
    assert result.texts == ["a red square"] and result.format == "PNG"
    assert result.pixels.shape == (32, 32, 3)


def _bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size."""
    out = io.BytesIO()
    Image.new("L", (8, 8)).save(out, format="PNG")
    data = bytearray(out.getvalue())
    ihdr = 8 + 8  # signature, then length+type of the IHDR chunk
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"this is not a picture", "not a recognised image"),
        (_bomb_png(50_000, 50_000), "decompression bomb"),
        (jpeg_bytes(draw_photo("red", size=(400, 300)))[:700], "cannot decode"),
    ],
    ids=["zero-bytes", "text-named-jpg", "bomb", "truncated-jpeg"],
)
def test_bad_bytes_raise_input_error_naming_the_input(data: bytes, reason: str) -> None:
    with pytest.raises(InputError) as caught:
        decode_image(data, "/photos/bad.jpg", size=32, thumb_size=32, max_pixels=LIMIT)
    assert caught.value.source == "/photos/bad.jpg"
    assert reason in caught.value.reason


def test_decode_path_reports_failures_instead_of_raising(tmp_path: Path) -> None:
    missing = tmp_path / "gone.jpg"
    result = decode_path(DecodeTask(str(missing), 32, 32, LIMIT))
    assert isinstance(result, DecodeFailure)
    assert result.source == str(missing) and "cannot read" in result.reason


def test_text_in_a_picture_is_read_by_ocr(tmp_path: Path) -> None:
    from PIL import ImageDraw, ImageFont

    sign = Image.new("RGB", (640, 200), "white")
    font = ImageFont.load_default(size=64)
    ImageDraw.Draw(sign).text((30, 60), "OPEN DAILY", fill="black", font=font)
    path = tmp_path / "sign.png"
    sign.save(path)
    result = decode_path(DecodeTask(str(path), 32, 64, LIMIT, ocr=True))
    assert isinstance(result, DecodedImage) and not result.warnings
    text = " ".join(line.text for line in result.ocr_lines).replace(" ", "").upper()
    assert "OPENDAILY" in text
    x0, _, x1, _ = result.ocr_lines[0].bbox
    assert 0 <= x0 < x1 <= 640 * result.ocr_scale + 1


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [
        ("PNG", "RGBA"),
        ("PNG", "P"),
        ("PNG", "I;16"),
        ("WEBP", "RGB"),
        ("GIF", "P"),
        ("BMP", "RGB"),
        ("TIFF", "RGB"),
        ("JPEG", "L"),
        ("JPEG", "CMYK"),
    ],
)
def test_every_supported_format_and_mode_decodes_to_rgb(fmt: str, mode: str) -> None:
    out = io.BytesIO()
    draw_photo("blue", size=(90, 60)).convert(mode).save(out, format=fmt)
    decoded = decode(out.getvalue(), size=32)
    assert decoded.format == fmt and (decoded.width, decoded.height) == (90, 60)
    assert decoded.pixels.shape == (32, 32, 3)
    assert Image.open(io.BytesIO(decoded.thumb_jpeg)).mode == "RGB"


def test_query_images_open_under_the_same_rules_and_orientation() -> None:
    from mmrag.ingest.decode import open_image

    exif = Image.Exif()
    exif[0x0112] = 6
    opened = open_image(
        jpeg_bytes(Image.new("RGB", (80, 40)), exif=exif), "q.jpg", max_pixels=LIMIT
    )
    assert opened.size == (40, 80)  # upright, as indexed images are
    with pytest.raises(InputError, match="decompression bomb"):
        open_image(_bomb_png(50_000, 50_000), "q.png", max_pixels=LIMIT)
    truncated = jpeg_bytes(draw_photo("red", size=(400, 300)))[:700]
    with pytest.raises(InputError, match="cannot decode"):
        open_image(truncated, "q.jpg", max_pixels=LIMIT)
