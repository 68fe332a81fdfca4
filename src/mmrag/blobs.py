"""Content-addressed blob store for thumbnails and normalised copies.

Blobs live under ``<index>/blobs/<kind>/<hash[:2]>/<hash>.jpg``; items carry the
hash, never the pixels.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from PIL import Image

__all__ = ["BlobStore"]


class BlobStore:
    """Thumbnails (``thumb``) and normalised full copies (``full``) keyed by content hash."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, kind: str, key: str) -> Path:
        """Where the blob ``key`` of ``kind`` lives (it may not exist)."""
        if not key or any(ch not in "0123456789abcdef" for ch in key):
            raise ValueError(f"bad blob key {key!r}")
        return self.root / kind / key[:2] / f"{key}.jpg"

    def has(self, kind: str, key: str) -> bool:
        """Whether the blob exists."""
        return self.path(kind, key).is_file()

    def put(self, kind: str, key: str, data: bytes) -> Path:
        """Store bytes under ``key`` atomically; an existing blob is kept as is."""
        target = self.path(kind, key)
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
        return target

    def put_image(self, kind: str, key: str, image: Image.Image, max_side: int) -> Path:
        """Store a JPEG copy of ``image`` no larger than ``max_side``."""
        if self.has(kind, key):
            return self.path(kind, key)
        copy = image.convert("RGB")
        copy.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
        out = io.BytesIO()
        copy.save(out, format="JPEG", quality=85)
        return self.put(kind, key, out.getvalue())

    def get(self, kind: str, key: str) -> bytes | None:
        """The blob's bytes, or None."""
        try:
            return self.path(kind, key).read_bytes()
        except (OSError, ValueError):
            return None

    def delete(self, kind: str, key: str) -> None:
        """Remove a blob if present."""
        self.path(kind, key).unlink(missing_ok=True)
