"""Plain data of the answer layer: the sources sent, the citations found, usage and the answer."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from ..types import Item

__all__ = ["Answer", "Citation", "Source", "Usage", "location_label"]

_FIGURE_IN_CAPTION = re.compile(r"^\s*(fig(?:ure)?\.?\s*\d+[a-z]?)", re.IGNORECASE)


def _basename(path: str) -> str:
    """The last path segment of a file path or URL (URLs keep their host when the path is bare)."""
    if "://" in path:
        parts = urlsplit(path)
        name = PurePosixPath(parts.path).name
        return name or parts.netloc or path
    return PurePosixPath(path.replace("\\", "/")).name or path


def _price(meta: Any) -> str | None:
    """The product price as "$89.00" (or "89.00 EUR" for another currency), if it is a number."""
    price = meta.get("price")
    if price is None:
        return None
    try:
        value = float(price)
    except (TypeError, ValueError):
        return str(price)
    currency = str(meta.get("currency") or "USD").upper()
    return f"${value:,.2f}" if currency == "USD" else f"{value:,.2f} {currency}"


def _figure(item: Item) -> str | None:
    """A figure's printed label ("Figure 3") from metadata or the start of its caption."""
    meta = item.metadata
    number = meta.get("figure")
    if number not in (None, ""):
        return f"Figure {number}"
    match = _FIGURE_IN_CAPTION.match(str(meta.get("caption") or ""))
    if match:
        return re.sub(r"^fig(?:ure)?\.?\s*", "Figure ", match.group(1), flags=re.IGNORECASE)
    return None


def location_label(item: Item) -> str:
    """Where an item lives, for people: "report.pdf p.7, Figure 3", "Trail Shoe — $89.00"."""
    meta = item.metadata
    if item.kind == "product":
        name = str(
            meta.get("name") or meta.get("title") or (item.text or "").split("\n")[0]
        ).strip()
        name = name[:80] or _basename(item.source)
        price = _price(meta)
        return f"{name} — {price}" if price else name
    label = _basename(item.doc or item.source)
    if item.page is not None:
        label += f" slide {item.page}" if item.kind == "slide" else f" p.{item.page}"
    if item.kind == "figure":
        figure = _figure(item)
        label += f", {figure}" if figure else ", figure"
    return label


@dataclass(frozen=True)
class Source:
    """One numbered source as sent to the model: its item, text, image bytes and location label."""

    n: int
    item: Item
    label: str
    text: str = ""
    image: bytes | None = None
    mime: str | None = None
    size: tuple[int, int] | None = None
    #: The number of an earlier source whose identical image this one shares (not re-sent).
    same_image_as: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; the image is summarised (mime, size, bytes), never inlined."""
        return {
            "n": self.n,
            "id": self.item.id,
            "kind": self.item.kind,
            "source": self.item.source,
            "label": self.label,
            "text": self.text,
            "image": (
                {
                    "mime": self.mime,
                    "width": self.size[0],
                    "height": self.size[1],
                    "bytes": len(self.image),
                }
                if self.image is not None and self.size
                else None
            ),
            "same_image_as": self.same_image_as,
        }


@dataclass(frozen=True)
class Citation:
    """A [n] marker in the answer, resolved to the item it points at."""

    n: int
    item_id: str
    kind: str
    source: str
    label: str
    doc: str | None = None
    page: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "n": self.n,
            "id": self.item_id,
            "kind": self.kind,
            "source": self.source,
            "doc": self.doc,
            "page": self.page,
            "label": self.label,
        }


@dataclass(frozen=True)
class Usage:
    """Tokens the API reported, and a cost estimate in USD for models with a known price."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
        }


@dataclass(frozen=True)
class Answer:
    """The model's answer with its citations, the sources it was shown, the model and usage."""

    text: str
    citations: tuple[Citation, ...] = ()
    sources: tuple[Source, ...] = ()
    model: str = ""
    usage: Usage = field(default_factory=Usage)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (images summarised, not inlined)."""
        return {
            "text": self.text,
            "model": self.model,
            "citations": [c.to_dict() for c in self.citations],
            "sources": [s.to_dict() for s in self.sources],
            "usage": self.usage.to_dict(),
        }
