"""Item construction in one place: images, figures, captions, text chunks and OCR text.

Every ingester builds its items here, so one kind of item looks the same whatever it
came from::

    image = image_item(source.name, source.hash, caption="a red bicycle", metadata=meta)
    caption = caption_item(image, "a red bicycle", item_id(source.name, "caption"))
    chunks = chunk_items(page, page_text, settings.chunk_chars, spans=block_boxes)

Ids are stable across re-indexing (derived from the source and the item's place in it);
content hashes are derived from the file's hash, so the same bytes indexed from two
places give the same hashes (:func:`part_hash`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..types import Item, content_hash, item_id
from .base import Extracted
from .catalog_rows import CatalogRow, split_category
from .chunk import chunk_text
from .figures import Rect, rect_union

__all__ = [
    "caption_item",
    "chunk_items",
    "figure_item",
    "image_item",
    "ocr_item",
    "part_hash",
    "product_id",
    "product_image_item",
    "product_item",
]

#: Metadata a product's photos copy from it, so filters hold on whichever item matched.
PRODUCT_FILTER_KEYS = ("name", "price", "currency", "category", "categories", "colors", "tags")


def part_hash(base_hash: str, *parts: object) -> str:
    """The content hash of a part (page 3, chunk 2) of what hashes to ``base_hash``."""
    return content_hash("\x1f".join([base_hash, *map(str, parts)]).encode())


def image_item(
    source: str, file_hash: str, *, caption: str | None, metadata: Mapping[str, Any]
) -> Item:
    """An image file (or image URL): keyed by its bytes, its caption as text and metadata."""
    meta = dict(metadata)
    if caption:
        meta["caption"] = caption
    return Item(
        id=item_id(source),
        kind="image",
        source=source,
        content_hash=file_hash,
        text=caption,
        metadata=meta,
    )


def figure_item(
    parent: Item,
    j: int,
    file_hash: str,
    *,
    size: tuple[int, int],
    figure_kind: str,
    bbox: Rect | None,
    caption: str | None = None,
    label: str | None = None,
) -> Item:
    """Figure ``j`` (a picture or drawing) of a page or slide, ``size`` its rendered pixels."""
    meta: dict[str, Any] = {"figure_kind": figure_kind, "width": size[0], "height": size[1]}
    if caption:
        meta["caption"] = caption
    if label:
        meta["label"] = label
    return Item(
        id=item_id(parent.source, "figure", parent.page, j),
        kind="figure",
        source=parent.source,
        content_hash=part_hash(file_hash, "figure", parent.page, j),
        parent=parent.id,
        text=caption,
        doc=parent.doc,
        page=parent.page,
        bbox=bbox,
        metadata=meta,
    )


def caption_item(
    parent: Item,
    text: str,
    id: str,
    *,
    bbox: Rect | None = None,
    metadata: Mapping[str, Any] | None = None,
    thumb: str | None = None,
) -> Extracted:
    """A caption as a text item under the image or figure it describes.

    Visual items only get a CLIP vector, and a figure's caption is diluted inside an
    800-character page chunk, so without this a caption query has no text vector that
    says just what the picture is. ``role="caption"`` lets a hit on it stand for its parent.
    """
    item = Item(
        id=id,
        kind="text",
        source=parent.source,
        content_hash=part_hash(parent.content_hash, "caption"),
        parent=parent.id,
        role="caption",
        text=text,
        doc=parent.doc,
        page=parent.page,
        bbox=bbox,
        thumb=thumb,
        metadata=dict(metadata or {}),
    )
    return Extracted(item)


def chunk_items(
    parent: Item,
    text: str,
    chunk_chars: int,
    *,
    spans: Sequence[tuple[int, int, Rect]] = (),
) -> list[Extracted]:
    """A page's or slide's text as ``role="chunk"`` items under it.

    ``spans`` are (start, end, box) of stretches of ``text``; a chunk's box is the union of
    the boxes it overlaps. Ids: ``item_id(source, "text", page, i)`` for chunk ``i``.
    """
    out = []
    for i, chunk in enumerate(chunk_text(text, chunk_chars)):
        boxes = [box for start, end, box in spans if start < chunk.end and end > chunk.start]
        item = Item(
            id=item_id(parent.source, "text", parent.page, i),
            kind="text",
            source=parent.source,
            content_hash=part_hash(parent.content_hash, i),
            parent=parent.id,
            role="chunk",
            text=chunk.text,
            doc=parent.doc,
            page=parent.page,
            bbox=rect_union(boxes) if boxes else None,
            metadata={"chunk": i, "ocr": False},
        )
        out.append(Extracted(item))
    return out


def ocr_item(
    parent: Item,
    text: str,
    id: str,
    n: int,
    *,
    bbox: Rect,
    score: float,
    thumb: str | None = None,
) -> Extracted:
    """Chunk ``n`` of the text OCR read in an image or a scanned page, under it."""
    item = Item(
        id=id,
        kind="text",
        source=parent.source,
        content_hash=part_hash(parent.content_hash, "ocr", n),
        parent=parent.id,
        role="ocr",
        text=text,
        doc=parent.doc,
        page=parent.page,
        bbox=bbox,
        thumb=thumb,
        metadata={"ocr": True, "chunk": n, "ocr_score": round(score, 4)},
    )
    return Extracted(item)


def product_id(namespace: str, key: str, *, variant: bool = False) -> str:
    """The item id of the product (or variant) with catalog id ``key`` in a catalog folder."""
    return item_id(namespace, "variant" if variant else "product", key)


def product_item(
    source: str,
    namespace: str,
    row: CatalogRow,
    *,
    parent: CatalogRow | None = None,
    colors: tuple[str, ...] = (),
) -> Item:
    """A catalog row as a ``product`` item; a variant row (``parent`` given) under its product.

    A variant inherits what it does not say itself (price, category, tags) from its product.
    """
    base = parent or row
    price = row.price if row.price is not None else base.price
    category_text = row.category or base.category or ""
    category, segments = split_category(category_text)
    meta: dict[str, Any] = {
        **{k: v for k, v in base.attributes.items() if parent is not None},
        **row.attributes,
        base.id_column: base.key,
        "id_field": base.id_column,
        "name": row.name,
        "price": price,
        "currency": row.currency or base.currency,
        "category": category,
        "categories": list(segments),
        "colors": list(colors),
        "tags": list(row.tags or base.tags),
    }
    if parent is not None:
        meta["variant"] = True
        meta["variant_id"] = row.key
    meta = {k: v for k, v in meta.items() if v is not None}
    text = _product_text(row.name, category_text, colors, meta, row.description or base.description)
    return Item(
        id=product_id(namespace, row.key, variant=parent is not None),
        kind="product",
        source=source,
        content_hash=content_hash(repr(sorted(meta.items())).encode() + text.encode()),
        parent=product_id(namespace, base.key) if parent is not None else None,
        text=text,
        metadata=meta,
    )


def _product_text(
    name: str, category: str, colors: Sequence[str], meta: Mapping[str, Any], description: str
) -> str:
    """What a product's text vector and BM25 see: the name first (MiniLM reads 256 tokens)."""
    _, segments = split_category(category)
    lines = [name]
    if segments:
        lines.append("Category: " + ", ".join(segments))
    if colors:
        lines.append("Colour: " + ", ".join(colors))
    if meta.get("tags"):
        lines.append("Tags: " + ", ".join(meta["tags"]))
    if description:
        lines.append(description)
    return "\n".join(lines)


def product_image_item(
    owner: Item, location: str, file_hash: str, *, metadata: Mapping[str, Any]
) -> Item:
    """A product's (or variant's) photo at ``location``, under it, with its filterable fields."""
    copied = {k: owner.metadata[k] for k in PRODUCT_FILTER_KEYS if k in owner.metadata}
    id_field = owner.metadata.get("id_field")
    if id_field:
        copied[id_field] = owner.metadata[id_field]
    product = owner.parent or owner.id
    return Item(
        id=item_id(owner.id, "image", location),
        kind="image",
        source=location,
        content_hash=file_hash,
        parent=owner.id,
        metadata={**copied, **metadata, "product": product},
    )
