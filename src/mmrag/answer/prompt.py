"""Build one provider-neutral multimodal prompt: the question and numbered sources [1]..[k].

Each source carries its location label, text/caption and, when ``load_image`` returns one, its
image downscaled to a pixel budget and JPEG-encoded. Clients translate :class:`Prompt` into their
wire format (``openai_chat.to_messages``, ``anthropic_messages.to_messages``)::

    prompt = build_prompt("What colour is the shoe?", hits, load_image, image_budget=512 * 512)
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from PIL import Image

from ..types import Hit, Item
from .types import Source, location_label

__all__ = [
    "SYSTEM_PROMPT",
    "Detail",
    "ImagePart",
    "LoadImage",
    "Part",
    "Prompt",
    "TextPart",
    "build_prompt",
    "encode_image",
    "fit_to_budget",
]

log = logging.getLogger(__name__)

Detail = Literal["low", "high", "auto"]
#: Returns an item's image (a fresh object: JPEGs not yet decoded are decoded at reduced
#: scale in place), or None when it has none. Search hands pages, not their chunks, so no
#: loader has to look parents up.
LoadImage = Callable[[Item], Image.Image | None]

SYSTEM_PROMPT = (
    "You answer questions using only the numbered sources you are given (text and images).\n"
    "- Cite the sources that support each statement with their numbers in square brackets, "
    "for example [1] or [2, 3]. Cite only numbers that appear in the sources list.\n"
    "- If the sources do not contain the answer, say plainly that the sources do not contain it "
    "and, if useful, what they do show. Do not guess or use outside knowledge.\n"
    "- Be concise and answer in the language of the question."
)

# Keep each source's text short enough that k sources fit comfortably in any model's context.
DEFAULT_MAX_TEXT_CHARS = 1500
# Metadata shown to the model as "Key: value" lines, in this order, when present.
_META_FIELDS = ("caption", "name", "price", "currency", "category", "brand", "tags", "url")


@dataclass(frozen=True)
class TextPart:
    """A run of text in the user message."""

    text: str


@dataclass(frozen=True)
class ImagePart:
    """An encoded image in the user message; ``b64`` is the base64 of ``mime`` bytes."""

    b64: str
    mime: str
    detail: Detail
    size: tuple[int, int]

    @property
    def data_url(self) -> str:
        """The image as a ``data:`` URL (OpenAI's ``image_url``)."""
        return f"data:{self.mime};base64,{self.b64}"


Part = TextPart | ImagePart


@dataclass(frozen=True)
class Prompt:
    """A system prompt plus one user message made of parts, and the sources it numbers."""

    system: str
    parts: tuple[Part, ...]
    sources: tuple[Source, ...]
    question: str

    @property
    def images(self) -> tuple[ImagePart, ...]:
        """The image parts, in order."""
        return tuple(p for p in self.parts if isinstance(p, ImagePart))


def fit_to_budget(size: tuple[int, int], budget: int) -> tuple[int, int]:
    """The largest same-aspect size with at most ``budget`` pixels (never upscales)."""
    w, h = size
    if w * h <= budget:
        return w, h
    scale = math.sqrt(budget / (w * h))
    return max(1, int(w * scale)), max(1, int(h * scale))


def _flatten(img: Image.Image) -> Image.Image:
    """An RGB or L image; transparency is composited on white because JPEG has no alpha."""
    if img.mode in ("RGB", "L"):
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def encode_image(
    img: Image.Image, budget: int, *, quality: int = 80
) -> tuple[bytes, tuple[int, int]]:
    """Downscale ``img`` to ``budget`` pixels (aspect kept) and encode it as JPEG."""
    target = fit_to_budget(img.size, budget)
    if target != img.size:
        # For a not-yet-decoded JPEG, draft() makes the decoder itself shrink by 1/2..1/8,
        # which is most of the speed-up on camera photos; it is a no-op for other images.
        img.draft(None, target)
        # Bilinear (antialiased in Pillow) is ~40% cheaper than bicubic and looks the same to a VLM.
        img = img.resize(target, Image.Resampling.BILINEAR, reducing_gap=2.0)
    img = _flatten(img)
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue(), img.size


def _load_and_encode(
    item: Item, load_image: LoadImage, budget: int, quality: int
) -> tuple[bytes, tuple[int, int]] | None:
    """The item's image encoded for the prompt, or None when it has none or it cannot be read."""
    try:
        img = load_image(item)
        if img is None:
            return None
        return encode_image(img, budget, quality=quality)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        # A broken image must not sink the answer: the source still goes in with its text.
        log.warning("image for %s skipped: %s", item.source, exc)
        return None


def _source_text(hit: Hit, max_chars: int) -> str:
    """The text shown for one source: selected metadata fields, then its text: the item's
    own, else the passages that found it (a page's best chunks and tables), best first."""
    item = hit.item
    lines = []
    text = (item.text or "").strip() or _evidence_text(hit)
    for key in _META_FIELDS:
        value = item.metadata.get(key)
        if value in (None, "", [], ()) or (isinstance(value, str) and value.strip() == text):
            continue  # empty, or the item's own text again (an image's caption is both)
        if isinstance(value, (list, tuple, set, frozenset)):
            value = ", ".join(map(str, value))
        lines.append(f"{key.capitalize()}: {value}")
    if text:
        if len(text) > max_chars:
            text = text[:max_chars].rsplit(" ", 1)[0] + " …"
        lines.append(text)
    return "\n".join(lines)


def _unique_hits(hits: Sequence[Hit], limit: int | None) -> list[Hit]:
    """Hits in rank order with repeated item ids dropped, at most ``limit`` of them."""
    seen: set[str] = set()
    unique = []
    for hit in hits:
        if hit.item.id not in seen:
            seen.add(hit.item.id)
            unique.append(hit)
    return unique[:limit] if limit is not None else unique


def _evidence_text(hit: Hit) -> str:
    """The texts of a hit's evidence, best first, each once."""
    texts = dict.fromkeys((e.text or "").strip() for e in hit.evidence if e.kind == "text")
    return "\n…\n".join(t for t in texts if t)


def _encode_all(
    items: Sequence[Item], load_image: LoadImage | None, budget: int, quality: int
) -> list[tuple[bytes, tuple[int, int]] | None]:
    """Encode every item's image; several at once because Pillow releases the GIL while coding."""
    if load_image is None:
        return [None] * len(items)

    def one(item: Item) -> tuple[bytes, tuple[int, int]] | None:
        return _load_and_encode(item, load_image, budget, quality)

    if len(items) < 2:
        return [one(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(8, len(items))) as pool:
        return list(pool.map(one, items))


def build_prompt(
    question: str,
    hits: Sequence[Hit],
    load_image: LoadImage | None,
    *,
    image_budget: int = 512 * 512,
    detail: Detail = "low",
    max_sources: int | None = None,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    jpeg_quality: int = 80,
    system: str = SYSTEM_PROMPT,
) -> Prompt:
    """The question plus numbered sources (label, text, downscaled image) as one neutral prompt."""
    unique = _unique_hits(hits, max_sources)
    items = [hit.item for hit in unique]
    encoded = _encode_all(items, load_image, image_budget, jpeg_quality)
    parts: list[Part] = [TextPart(f"Question: {question}\n\nSources:")]
    if not items:
        parts[0] = TextPart(f"Question: {question}\n\nSources: none were retrieved.")
    sources: list[Source] = []
    first_with: dict[str, int] = {}  # image digest -> number of the source that carried it
    for n, (hit, image) in enumerate(zip(unique, encoded, strict=True), start=1):
        item = hit.item
        label = location_label(item)
        body = _source_text(hit, max_text_chars)
        header = f"[{n}] {label} ({item.kind})"
        same_as = None
        if image is not None:
            # A text chunk and its page often share one page image: send it once, refer back.
            digest = hashlib.blake2b(image[0], digest_size=16).hexdigest()
            same_as = first_with.get(digest)
            if same_as is None:
                first_with[digest] = n
            else:
                header += f" — same image as [{same_as}]"
        parts.append(TextPart(f"{header}\n{body}" if body else header))
        if image is not None and same_as is None:
            b64 = base64.b64encode(image[0]).decode("ascii")
            parts.append(ImagePart(b64=b64, mime="image/jpeg", detail=detail, size=image[1]))
        sources.append(
            Source(
                n=n,
                item=item,
                label=label,
                text=body,
                image=image[0] if image else None,
                mime="image/jpeg" if image else None,
                size=image[1] if image else None,
                same_image_as=same_as,
            )
        )
    parts.append(
        TextPart(
            f"Question: {question}\n"
            "Answer from the sources above, citing them as [n]. If they do not contain the answer, "
            "say so."
        )
    )
    return Prompt(system=system, parts=tuple(parts), sources=tuple(sources), question=question)
