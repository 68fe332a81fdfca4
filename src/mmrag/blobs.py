"""Content-addressed blob store for thumbnails and normalised copies.

Blobs live under ``<index>/blobs/<kind>/<key[:2]>/<key>.jpg``; items carry the key in
``thumb``, never the pixels.

One scheme for every picture:

- The key is the ``content_hash`` of the visual item the picture shows: an image file's
  hash, or for a page, figure or slide the hash of its file and its place in it (see
  ``ingest/items.py``). The same bytes indexed from two places share their blobs. Text
  read from an image (its caption, its OCR text) carries its image's key as ``thumb``.
- Kinds: ``thumb`` (at most ``thumb_size`` on the long side) for every picture; ``full``
  (at most :data:`FULL_SIDE`) for rendered pictures (pages, figures, slides), whose
  original is no picture the app could show. An image file is its own full copy.
- One write point: the indexer writes a picture's blobs as soon as its ingester yields
  it, before its items reach the store. A 600-page manual never holds all its page
  images in memory, and an item in the store never points at a missing blob; a run that
  dies in between leaves orphan blobs, which are harmless, and blobs are never
  overwritten (same key, same picture).
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from .types import Item

__all__ = ["FULL_SIDE", "BlobStore"]

#: The long side of the normalised full copy kept of a rendered picture.
FULL_SIDE = 1024


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

    def picture_of(self, item: Item) -> Image.Image | None:
        """The best available picture of ``item``: its full copy, its original file (an image
        on disk), or its thumbnail; None when none of them opens."""
        for data in self._pictures(item):
            try:
                image = Image.open(io.BytesIO(data))
                image.load()
                return image
            except (OSError, ValueError):
                continue
        return None

    def _pictures(self, item: Item) -> Iterator[bytes]:
        """Candidate bytes for :meth:`picture_of`, best first."""
        if item.thumb and (full := self.get("full", item.thumb)):
            yield full
        if item.kind == "image" and "://" not in item.source and (original := _read(item.source)):
            yield original
        if item.thumb and (thumb := self.get("thumb", item.thumb)):
            yield thumb


def _read(path: str) -> bytes | None:
    """A file's bytes, or None when it cannot be read (moved, deleted, unreadable)."""
    try:
        return Path(path).read_bytes()
    except OSError:
        return None
