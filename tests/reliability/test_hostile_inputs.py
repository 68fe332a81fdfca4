"""Hostile inputs, generated here: each is a clear per-item error, bounded, and the run goes on.

Bounds enforced (and asserted): the whole run of every input below in under 120 s and
under 1.5 GB of peak memory growth in the indexing process; no input hangs the run.
"""

from __future__ import annotations

import io
import os
import resource
import struct
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image

import mmrag

pytestmark = [pytest.mark.reliability, pytest.mark.integration]
pymupdf = pytest.importorskip("pymupdf")

MAX_SECONDS = 120
MAX_GROWTH_MB = 1500


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that claims ``width`` x ``height``: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _image_bytes(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _hostile(root: Path) -> tuple[dict[str, bytes], set[str]]:
    """Files by name, and the names that must index (the rest must fail, one error each)."""
    good = Image.new("RGB", (64, 48), (200, 30, 30))
    frames = [Image.new("P", (8, 8), i % 256) for i in range(3000)]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=10)
    encrypted = pymupdf.open()
    encrypted.new_page().insert_text((20, 40), "secret")
    js = pymupdf.open()
    js.new_page().insert_text((20, 40), "a page with a script")
    js.set_xml_metadata("")  # any document-level change; the script is the catalog's
    js_bytes = js.tobytes()
    script = b"/Type /Catalog /OpenAction << /S /JavaScript /JS (app.alert\\(1\\)) >>"
    js_bytes = js_bytes.replace(b"/Type /Catalog", script, 1)
    files = {
        "good.png": _image_bytes(good, "PNG"),
        "bomb.png": _png_header_only(60_000, 60_000),
        "truncated.jpg": _image_bytes(good, "JPEG")[:200],
        "empty.jpg": b"",
        "text-not-image.png": b"hello, I am not a picture\n" * 10,
        "cmyk.tif": _image_bytes(good.convert("CMYK"), "TIFF"),
        "sixteen-bit.tif": _image_bytes(Image.new("I;16", (32, 32), 40000), "TIFF"),
        "animated.gif": gif.getvalue(),
        "encrypted.pdf": encrypted.tobytes(
            encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="pw", owner_pw="pw"
        ),
        "corrupt.pdf": b"%PDF-1.7\n1 0 obj <<>> garbage garbage\n",
        "script.pdf": js_bytes,
        "name\nwith newline.png": _image_bytes(good, "PNG"),
    }
    ok = {"good.png", "cmyk.tif", "sixteen-bit.tif", "animated.gif", "script.pdf"}
    ok |= {"name\nwith newline.png"}
    return files, ok


def test_hostile_inputs_fail_one_by_one_and_the_run_completes(
    tmp_path: Path, tiny_clip: Path
) -> None:
    root = tmp_path / "hostile"
    root.mkdir()
    files, ok = _hostile(root)
    for name, data in files.items():
        (root / name).write_bytes(data)
    (root / "loop").symlink_to(root / "loop2")
    (root / "loop2").symlink_to(root / "loop")
    os.symlink(root, root / "self")  # a folder that contains itself
    raw = os.fsencode(root) + b"/bad-\xff\xfe-name.png"
    Path(os.fsdecode(raw)).write_bytes(files["good.png"])

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.monotonic()
    with mmrag.open(tmp_path / "idx", model=str(tiny_clip), ocr=False) as index:
        report = index.add(root)
        seconds = time.monotonic() - started
        growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
        indexed = {Path(record.source).name for record in index.manifest}
    failed = {Path(error["path"]).name: error["reason"] for error in report.errors}
    assert indexed == ok, report.errors
    assert set(failed) >= set(files) - ok  # each bad file: its own error, named
    assert all(reason.strip() for reason in failed.values())
    assert "not valid UTF-8" in failed["bad-\\xff\\xfe-name.png"]  # refused by name, not a crash
    assert seconds < MAX_SECONDS and growth < MAX_GROWTH_MB, (seconds, growth)
