"""Plain data shared by every layer: items, hits and filters."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

__all__ = [
    "VISUAL_KINDS",
    "Hit",
    "Item",
    "Kind",
    "Range",
    "Role",
    "Where",
    "content_hash",
    "item_id",
]

Kind = Literal["image", "page", "figure", "slide", "text", "product"]

#: What a text item is to its parent: a ``caption`` of an image or figure, ``ocr`` text read
#: from its pixels, a ``chunk`` of a page's or slide's text, a ``table`` cut from a page,
#: ``notes`` of a slide. ``None`` for items that stand alone.
Role = Literal["caption", "ocr", "chunk", "table", "notes"]

#: Kinds whose vector lives in the CLIP image space.
VISUAL_KINDS: frozenset[str] = frozenset({"image", "page", "figure", "slide"})


@dataclass(frozen=True)
class Range:
    """A numeric range for filters; ``None`` bounds are open."""

    gte: float | None = None
    lte: float | None = None
    gt: float | None = None
    lt: float | None = None


#: A metadata filter: every key must match (AND). A value matches by equality,
#: a list/tuple/set means "in", and a :class:`Range` a numeric range. Keys are
#: item fields (``kind``, ``source``, ``parent``, ``page``, ``doc``) or metadata
#: keys (``category``, ``price``, ``tags``, ...). For list-valued metadata such as
#: ``tags`` equality means "contains".
Where = Mapping[str, str | int | float | bool | list | tuple | set | frozenset | Range]


@dataclass(frozen=True)
class Item:
    """One indexed thing: an image, a page, a figure, a slide, a text chunk or a product.

    ``source`` is where the original lives (a path or URL; never the pixels).
    ``content_hash`` identifies the bytes it was made from, so unchanged inputs
    are skipped. ``thumb`` references a thumbnail in the index's blob store by
    content hash. ``metadata`` holds typed fields where they matter (caption,
    price, category, tags, width, height) and free-form values otherwise.
    ``role`` says what a text item is to its ``parent`` (see :data:`Role`).
    ``context`` says where the item sits, for search: its document's title on the first
    line, then its section path. It is full-text indexed with the text, never shown or
    sent to a model (the embedded text stays clean: a prefix there hurt ranking).
    """

    id: str
    kind: Kind
    source: str
    content_hash: str = ""
    parent: str | None = None
    role: Role | None = None
    text: str | None = None
    context: str | None = None
    doc: str | None = None
    page: int | None = None
    bbox: tuple[float, float, float, float] | None = None
    thumb: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def with_(self, **changes: Any) -> Item:
        """Return a copy with some fields changed."""
        return replace(self, **changes)


@dataclass(frozen=True)
class Hit:
    """A search result: the item, its score (higher is better) and where it came from.

    ``via`` names the retrieval paths that found it (``clip``, ``text``, ``bm25``)
    and ``scores`` holds each path's own score (cosine similarity, or BM25).
    ``evidence`` lists the items that found it, best first (the chunks, tables and
    figures of a page, the caption of a picture, the photos of a product).
    """

    item: Item
    score: float
    via: tuple[str, ...] = ()
    scores: Mapping[str, float] = field(default_factory=dict)
    evidence: tuple[Item, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: id, score, kind, source and the rest of the item."""
        it = self.item
        return {
            "id": it.id,
            "score": round(float(self.score), 6),
            "kind": it.kind,
            "source": it.source,
            "parent": it.parent,
            "role": it.role,
            "text": it.text,
            "doc": it.doc,
            "page": it.page,
            "bbox": list(it.bbox) if it.bbox else None,
            "thumb": it.thumb,
            "metadata": dict(it.metadata),
            "via": list(self.via),
            "scores": {path: round(float(v), 6) for path, v in self.scores.items()},
            "evidence": [_evidence(e) for e in self.evidence],
        }


def _evidence(item: Item) -> dict[str, Any]:
    """What a result shows of an item that found it: enough to quote and to highlight it."""
    return {
        "id": item.id,
        "kind": item.kind,
        "role": item.role,
        "text": item.text,
        "page": item.page,
        "bbox": list(item.bbox) if item.bbox else None,
    }


def content_hash(data: bytes) -> str:
    """The content address used everywhere: hex SHA-256 of the bytes."""
    return hashlib.sha256(data).hexdigest()


def item_id(source: str, *parts: object) -> str:
    """A stable id for the item made from ``source`` (and a sub-part such as page 3)."""
    key = "\x1f".join([source, *map(str, parts)])
    return hashlib.sha256(key.encode()).hexdigest()[:24]
