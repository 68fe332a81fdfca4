"""Image files and image URLs: the image item, its caption and the text OCR read in it.

Decoding is the pipeline's job (:mod:`mmrag.ingest.decode`, in worker processes for
files); what a decoded image becomes is this ingester's::

    decoded = decode_path(DecodeTask("/photos/sign.jpg", 224, 256, 64_000_000, ocr=True))
    source = SourceData(decoded.source, decoded.hash, decoded=decoded)
    for out in ImageIngester().extract(source, Settings()):
        ...  # the image (with its pixels and thumbnail), OCR text items, the caption item

Ids: ``item_id(source)`` is the image, ``item_id(source, "caption")`` its caption (from a
sidecar file or the description embedded in the file) and ``item_id(source, "ocr", n)``
the ``n``-th chunk of its OCR text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..config import Settings
from ..types import item_id
from .base import Extracted, Notice, Output, SourceData
from .decode import IMAGE_SUFFIXES, open_image
from .items import caption_item, image_item
from .ocr_images import lines_to_items

# open_image: query images are opened here under the indexing rules (app.py imports it).
__all__ = ["IMAGE_SUFFIXES", "ImageIngester", "open_image"]


class ImageIngester:
    """Decoded images into an image item, its caption item and its OCR text items."""

    suffixes: frozenset[str] = IMAGE_SUFFIXES
    content_types: frozenset[str] = frozenset({"image/"})
    decode: bool = True

    def extract(self, source: SourceData, settings: Settings) -> Iterator[Output]:
        """The items of one decoded image; ``source.decoded`` must be set (see ``decode``)."""
        decoded = source.decoded
        if decoded is None:
            raise ValueError(f"{source.name}: ImageIngester takes decoded images")
        for warning in decoded.warnings:  # the same for every image: reported once
            yield Notice(warning)
        caption = "\n".join(decoded.texts) if decoded.texts else None
        meta: dict[str, Any] = {
            "width": decoded.width,
            "height": decoded.height,
            "format": decoded.format,
            **decoded.metadata,
        }
        image = image_item(source.name, decoded.hash, caption=caption, metadata=meta)
        yield Extracted(image, decoded=decoded)
        # Text read from the image shows the image's picture, whose blobs are keyed by
        # the image's content hash (see blobs.py).
        thumb = image.content_hash
        if decoded.ocr_lines:
            yield from lines_to_items(
                decoded.ocr_lines,
                image,
                id_key=(source.name, "ocr"),
                chunk_chars=settings.chunk_chars,
                scale=decoded.ocr_scale,
                thumb=thumb,
            )
        if caption:
            caption_id = item_id(source.name, "caption")
            yield caption_item(image, caption, caption_id, metadata=decoded.metadata, thumb=thumb)
