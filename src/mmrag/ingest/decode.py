"""Image decoding for indexing: bytes -> model-ready pixels, a thumbnail and embedded text.

Everything here is torch-free and picklable so it runs in decode worker processes
while the main process encodes.
"""

from __future__ import annotations

import io
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InputError, MmragError
from ..imaging import preprocess_image, to_rgb
from ..models.ocr import GATE_SIDE, looks_like_text
from ..types import content_hash

__all__ = [
    "IMAGE_SUFFIXES",
    "DecodeFailure",
    "DecodeTask",
    "DecodedImage",
    "decode_bytes",
    "decode_image",
    "decode_path",
    "embedded_description",
    "open_image",
    "read_sidecar",
]

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
)
_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO"})
_SIDE_CAPTION_KEYS = ("caption", "text", "description", "title", "alt")


@dataclass
class DecodedImage:
    """One decoded image: model pixels, a JPEG thumbnail and any text found with it."""

    source: str
    hash: str
    width: int
    height: int
    pixels: np.ndarray
    thumb_jpeg: bytes
    format: str
    texts: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    #: Text lines read by OCR, boxes in the pixels of an image ``ocr_scale`` times the original.
    ocr_lines: list[Any] = field(default_factory=list)
    ocr_scale: float = 1.0
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DecodeTask:
    """What a decode worker needs for one file (or the name of downloaded bytes)."""

    path: str
    size: int
    thumb_size: int
    max_pixels: int
    ocr: bool = False
    #: A name in ``registry.ocr_engines``; the worker builds that engine once.
    ocr_engine: str = "rapidocr"
    #: OCR only images that look like pages, slides or screenshots (see ``looks_like_text``).
    ocr_gate: bool = True


@dataclass
class DecodeFailure:
    """A source that could not be decoded, and why."""

    source: str
    reason: str


def _thumbnail(image: Image.Image, size: int) -> bytes:
    """A JPEG no larger than ``size`` on its long side (never upscaled)."""
    width, height = image.size
    scale = min(size / width, size / height, 1.0)
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    # resize() makes the new image itself, so no copy of the full-size source is needed,
    # and reducing_gap=1.0 box-reduces by the integer part of the scale before the bilinear
    # pass: about twice as fast on photos, and indistinguishable at thumbnail size.
    thumb = (
        image
        if target == image.size
        else image.resize(target, Image.Resampling.BILINEAR, reducing_gap=1.0)
    )
    out = io.BytesIO()
    thumb.save(out, format="JPEG", quality=82)
    return out.getvalue()


def _open_checked(data: bytes, source: str, max_pixels: int) -> Image.Image:
    """Open without decoding, refusing unknown formats and decompression bombs up front."""
    if not data:
        raise InputError(source, "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(source, "not a recognised image (or a decompression bomb)") from None
    if image.format not in _FORMATS:
        raise InputError(source, f"unsupported image format {image.format}")
    width, height = image.size
    if width * height > max_pixels:
        raise InputError(
            source,
            f"image too large: {width}x{height} pixels exceeds {max_pixels} (decompression bomb?)",
        )
    return image


def open_image(data: bytes, source: str, *, max_pixels: int) -> Image.Image:
    """Decode image bytes at full size under the indexing rules, EXIF orientation applied.

    For query images: the same refusals and messages as indexing, and the same orientation.
    """
    image = _open_checked(data, source, max_pixels)
    try:
        image.load()
        return ImageOps.exif_transpose(image) or image
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InputError(source, f"cannot decode image: {exc}") from None


#: OCR reads images at most this large (long side); text smaller than that is rarely legible.
OCR_SIDE = 1280
_OCR_ENGINES: dict[str, Any] = {}


def _ocr_engine(name: str) -> Any:
    """One OCR engine per name and (worker) process, built on first use.

    One thread each: the decode workers already run one per core.
    """
    if name not in _OCR_ENGINES:
        from .. import registry

        _OCR_ENGINES[name] = registry.ocr_engines.create(name, threads=1)
    return _OCR_ENGINES[name]


def decode_image(
    data: bytes,
    source: str,
    *,
    size: int,
    thumb_size: int,
    max_pixels: int,
    ocr: bool = False,
    ocr_engine: str = "rapidocr",
    ocr_gate: bool = True,
) -> DecodedImage:
    """Decode image bytes (EXIF orientation applied) into model pixels, a thumbnail, OCR lines.

    With ``ocr_gate`` only images that look like text (pages, slides, screenshots) are read:
    OCR on every photo cost 5x the encoder's time per image, and found little but signs.
    """
    image = _open_checked(data, source, max_pixels)
    fmt = str(image.format)
    width, height = image.size
    if image.getexif().get(0x0112) in (5, 6, 7, 8):  # orientations that swap the axes
        width, height = height, width
    description = embedded_description(image)
    # The gate looks at GATE_SIDE pixels; only images it passes are decoded again for OCR.
    ocr_need = (GATE_SIDE if ocr_gate else OCR_SIDE // 2) if ocr else 0
    try:
        rgb = _decoded_rgb(image, fmt, max(size, thumb_size, ocr_need))
        pixels = preprocess_image(rgb, size, draft=False)
        thumb = _thumbnail(rgb, thumb_size)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InputError(source, f"cannot decode image: {exc}") from None
    lines: list[Any] = []
    scale = 1.0
    warnings: list[str] = []
    try:
        # The engine is built (not loaded) even for images the gate skips: a missing or
        # unknown engine is reported on every run with OCR on, whatever the images hold.
        engine = _ocr_engine(ocr_engine) if ocr else None
        if engine is not None and (not ocr_gate or looks_like_text(rgb)):
            if ocr_need < OCR_SIDE // 2 and fmt in ("JPEG", "MPO"):
                rgb = _decoded_rgb(_open_checked(data, source, max_pixels), fmt, OCR_SIDE // 2)
            page = rgb.copy()
            page.thumbnail((OCR_SIDE, OCR_SIDE), Image.Resampling.BICUBIC)
            scale = page.width / max(width, 1)
            lines = engine.read(page)
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(source, f"cannot decode image: {exc}") from None
    except MmragError as exc:  # no OCR is a lesser loss than no image
        warnings.append(f"OCR skipped: {exc}")
    return DecodedImage(
        source=source,
        hash=content_hash(data),
        width=width,
        height=height,
        pixels=pixels,
        thumb_jpeg=thumb,
        format=fmt,
        texts=[description] if description else [],
        ocr_lines=lines,
        ocr_scale=scale,
        warnings=warnings,
    )


def _decoded_rgb(image: Image.Image, fmt: str, need: int) -> Image.Image:
    """The opened ``image`` decoded to RGB, EXIF orientation applied; a JPEG is decoded
    straight at the smallest DCT scale that still covers ``need`` pixels."""
    if fmt in ("JPEG", "MPO"):
        image.draft("RGB", (need, need))
    image.load()
    # In place: the default returns a full copy even when there is nothing to rotate.
    ImageOps.exif_transpose(image, in_place=True)
    return to_rgb(image)


def decode_bytes(data: bytes, task: DecodeTask) -> DecodedImage:
    """Decode image bytes (a download, say) the way ``task`` asks; raises InputError."""
    return decode_image(
        data,
        task.path,
        size=task.size,
        thumb_size=task.thumb_size,
        max_pixels=task.max_pixels,
        ocr=task.ocr,
        ocr_engine=task.ocr_engine,
        ocr_gate=task.ocr_gate,
    )


def decode_path(task: DecodeTask) -> DecodedImage | DecodeFailure:
    """Worker entry point: read, decode and attach sidecar text; never raises."""
    path = Path(task.path)
    try:
        decoded = decode_bytes(path.read_bytes(), task)
        caption, metadata = read_sidecar(path)
    except InputError as exc:
        return DecodeFailure(task.path, exc.reason)
    except OSError as exc:
        return DecodeFailure(task.path, f"cannot read file: {exc.strerror or exc}")
    if caption:
        decoded.texts.insert(0, caption)
    decoded.metadata.update(metadata)
    return decoded


def read_sidecar(path: Path) -> tuple[str | None, dict[str, Any]]:
    """Caption and metadata from ``photo.txt`` / ``photo.json`` beside ``photo.jpg``.

    This is the folder format clip-retrieval uses. A JSON sidecar's caption comes
    from its first key among caption/text/description/title/alt; other scalar
    keys become metadata.
    """
    caption: str | None = None
    metadata: dict[str, Any] = {}
    txt = path.with_suffix(".txt")
    if txt.is_file():
        caption = txt.read_text(encoding="utf-8", errors="replace").strip() or None
    js = path.with_suffix(".json")
    if js.is_file():
        try:
            doc = json.loads(js.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(str(js), f"sidecar is not valid JSON: {exc}") from None
        if isinstance(doc, dict):
            for key in _SIDE_CAPTION_KEYS:
                if caption is None and isinstance(doc.get(key), str) and doc[key].strip():
                    caption = doc[key].strip()
            for key, value in doc.items():
                if key not in _SIDE_CAPTION_KEYS and isinstance(
                    value, (str, int, float, bool, list)
                ):
                    metadata[key] = value
    return caption, metadata


_XMP_DESCRIPTION = re.compile(
    rb"<dc:description>.*?<rdf:li[^>]*>(.*?)</rdf:li>", re.DOTALL | re.IGNORECASE
)


def embedded_description(image: Image.Image) -> str | None:
    """A description written into the file: EXIF ImageDescription or XMP dc:description."""
    try:
        exif = image.getexif()
    except (OSError, ValueError, SyntaxError):
        exif = None
    if exif:
        text = exif.get(0x010E)  # ImageDescription
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        if isinstance(text, str) and text.strip(" \x00"):
            return text.strip(" \x00")
    xmp = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
    if isinstance(xmp, str):
        xmp = xmp.encode()
    if isinstance(xmp, bytes):
        match = _XMP_DESCRIPTION.search(xmp)
        if match:
            text = match.group(1).decode("utf-8", "replace").strip()
            return text or None
    return None
