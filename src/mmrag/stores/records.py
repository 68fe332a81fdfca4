"""One item <-> record mapping shared by every store backend.

A record is a JSON-safe plain dict with one key per :class:`~mmrag.types.Item` field.
Qdrant stores it as a point's payload; LanceDB stores its fields (:func:`item_fields`) as
typed columns and its metadata as the JSON text of :func:`metadata_json`, with its own
projected metadata columns on top::

    record = item_to_record(item)        # {"id": ..., "kind": ..., ..., "metadata": {...}}
    assert record_to_item(record) == item
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..types import Item

__all__ = ["RECORD_FIELDS", "item_fields", "item_to_record", "metadata_json", "record_to_item"]

#: The keys of a record, in order: every Item field.
RECORD_FIELDS: tuple[str, ...] = (
    "id",
    "kind",
    "source",
    "content_hash",
    "parent",
    "role",
    "text",
    "doc",
    "page",
    "bbox",
    "thumb",
    "context",
    "metadata",
)


def item_fields(item: Item) -> dict[str, Any]:
    """Every field of the item's record but ``metadata``, JSON-safe."""
    return {
        "id": item.id,
        "kind": item.kind,
        "source": item.source,
        "content_hash": item.content_hash or "",
        "parent": item.parent,
        "role": item.role,
        "text": item.text,
        "doc": item.doc,
        "page": item.page,
        "bbox": [float(x) for x in item.bbox] if item.bbox else None,
        "thumb": item.thumb,
        "context": item.context,
    }


def metadata_json(item: Item) -> str:
    """The item's metadata as JSON text; ConfigError when it is not JSON-serialisable."""
    try:
        return json.dumps(dict(item.metadata))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"metadata of item {item.id!r} must be JSON-serialisable: {e}") from e


def item_to_record(item: Item) -> dict[str, Any]:
    """The item as a JSON-safe plain dict; ConfigError when its metadata is not JSON."""
    # Metadata goes through JSON so every backend (and Qdrant's local mode and server alike)
    # gives back the same types: tuples come back as lists, keys as strings.
    return {**item_fields(item), "metadata": json.loads(metadata_json(item))}


def record_to_item(record: Mapping[str, Any]) -> Item:
    """The item a record was made from; optional fields a record lacks are None (or empty)."""
    bbox = record.get("bbox")
    return Item(
        id=record["id"],
        kind=record["kind"],
        source=record["source"],
        content_hash=record.get("content_hash") or "",
        parent=record.get("parent"),
        role=record.get("role"),
        text=record.get("text"),
        doc=record.get("doc"),
        page=record.get("page"),
        bbox=tuple(bbox) if bbox is not None else None,  # type: ignore[arg-type]
        thumb=record.get("thumb"),
        metadata=record.get("metadata") or {},
        context=record.get("context"),
    )
