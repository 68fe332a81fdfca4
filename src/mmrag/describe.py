"""Captions -> text as a retrieval path: a vision-language model describes each picture.

Every visual item (images and figures by default) is sent alone to an answer client
(``registry.answerers``: OpenAI chat, Anthropic, any OpenAI-compatible server) with a
request for a one-sentence caption. The caption becomes a ``role="caption"`` text item
under its picture, so the text and BM25 paths find the picture by what it shows and
search folds the hit into it, as it does for sidecar captions. Captions are cached by
(content hash, model) in ``<index>/descriptions.sqlite``, so each picture is paid for
once per model, even after a re-index; a failed call is counted, named, and retried on
the next run (nothing is cached for it)::

    report = describe_visuals(settings, store, text_encoder, index.load_image, "gpt-4o-mini")
    report.described, report.cached, report.failed
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .answer.base import Answerer, make_answerer, resolve_model
from .config import Settings
from .errors import ConfigError, InputError, MmragError
from .ingest.items import caption_item, part_hash
from .models.base import TextEncoder
from .stores.base import VectorStore
from .types import VISUAL_KINDS, Hit, Item, item_id

__all__ = [
    "CACHE_NAME",
    "DEFAULT_KINDS",
    "DESCRIBE_PROMPT",
    "DescribeReport",
    "DescriptionCache",
    "clean_caption",
    "describe_visuals",
]

log = logging.getLogger(__name__)

CACHE_NAME = "descriptions.sqlite"
#: Pages and slides carry their own text already (and a 600-page manual would cost 600
#: calls), so by default only pictures are described; ``kinds`` widens it.
DEFAULT_KINDS: tuple[str, ...] = ("image", "figure")
DESCRIBE_PROMPT = (
    "Write one caption for source [1] as a person searching for this picture would "
    "describe it: what it shows, the main objects, colours, setting and any readable text. "
    "One or two sentences, no preamble, no citation numbers."
)
#: Written to the store this many captions at a time, so a long run loses little if stopped.
_BATCH = 32
# A model's citation markers ("[1]", "[1, 2]") and quoting around the whole caption.
_CITATION = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
_PREFIX = re.compile(r"^(?:caption|description)\s*:\s*", re.IGNORECASE)

LoadImage = Callable[[Item], Image.Image | None]
Progress = Callable[[int, int], None]


@dataclass
class DescribeReport:
    """What a run did: captions asked for, taken from the cache, already current, failed."""

    model: str
    pictures: int = 0
    described: int = 0
    cached: int = 0
    current: int = 0
    removed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def written(self) -> int:
        """Captions written to the store in this run."""
        return self.described + self.cached

    def fail(self, source: str, reason: str) -> None:
        """Record one picture the model could not describe (retried on the next run)."""
        self.failed.append((source, reason))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary, every failure named."""
        return {
            "model": self.model,
            "pictures": self.pictures,
            "described": self.described,
            "cached": self.cached,
            "current": self.current,
            "removed": self.removed,
            "failed": len(self.failed),
            "errors": [{"path": path, "reason": reason} for path, reason in self.failed],
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "seconds": round(self.seconds, 3),
        }


class DescriptionCache:
    """Captions by (content hash, model) in a small SQLite file; survives re-indexing."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS descriptions (content_hash TEXT NOT NULL, "
            "model TEXT NOT NULL, caption TEXT NOT NULL, created REAL NOT NULL, "
            "PRIMARY KEY (content_hash, model))"
        )

    def get(self, content_hash: str, model: str) -> str | None:
        """The cached caption, or None."""
        row = self._db.execute(
            "SELECT caption FROM descriptions WHERE content_hash = ? AND model = ?",
            (content_hash, model),
        ).fetchone()
        return str(row[0]) if row else None

    def put(self, content_hash: str, model: str, caption: str) -> None:
        """Keep a caption at once: it was paid for, whatever happens to the run later."""
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO descriptions VALUES (?, ?, ?, ?)",
                (content_hash, model, caption, time.time()),
            )

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def clean_caption(text: str) -> str:
    """The model's reply as a caption: citation markers, a "Caption:" prefix, quotes gone."""
    text = _CITATION.sub("", text).strip()
    text = _PREFIX.sub("", text).strip().strip('"“”').strip()
    return " ".join(text.split())


def model_key(settings: Settings, model: str | None) -> str:
    """The cache's name for a model spec: ``provider:model`` (ConfigError without a VLM)."""
    spec = model if model is not None else settings.answer_model
    if spec is None or not spec.strip():
        raise ConfigError(
            "describe needs a vision-language model: pass --llm (gpt-4o-mini, claude-..., "
            "http://host:port/v1#model) or set MMRAG_ANSWER_MODEL"
        )
    provider, name, _ = resolve_model(spec, settings)
    if provider == "extractive":
        raise ConfigError("describe needs a vision-language model, not the extractive answerer")
    return f"{provider}:{name}"


def describe_visuals(
    settings: Settings,
    store: VectorStore,
    text: TextEncoder,
    load_image: LoadImage,
    model: str | None = None,
    *,
    kinds: Sequence[str] = DEFAULT_KINDS,
    force: bool = False,
    jobs: int = 4,
    progress: Progress | None = None,
) -> DescribeReport:
    """Caption every visual item of ``kinds`` that has no current caption from ``model``.

    The caller holds the index's write lock. ``force`` asks the model again even for
    pictures with a cached caption.
    """
    unknown = sorted(set(kinds) - VISUAL_KINDS)
    if unknown:
        raise ConfigError(f"describe takes visual kinds {sorted(VISUAL_KINDS)}, not {unknown}")
    key = model_key(settings, model)
    answerer = make_answerer(settings, model)  # fails fast on a missing key or SDK
    started = time.perf_counter()
    report = DescribeReport(model=key)
    visuals = store.find({"kind": sorted(VISUAL_KINDS)})
    existing = _descriptions(store)
    report.removed = _remove_orphans(store, existing, {item.id for item in visuals})
    chosen = sorted((v for v in visuals if v.kind in kinds), key=lambda v: (v.source, v.id))
    report.pictures = len(chosen)
    todo = [v for v in chosen if force or not _is_current(existing.get(v.id), v, key)]
    report.current = len(chosen) - len(todo)
    cache = DescriptionCache(settings.index / CACHE_NAME)
    try:
        writer = _Writer(store, text, key)
        captions = _captions(todo, cache, key, answerer, load_image, report, force, jobs, progress)
        for item, caption in captions:
            writer.add(item, caption)
        writer.flush()
    finally:
        cache.close()
    report.seconds = time.perf_counter() - started
    return report


def _descriptions(store: VectorStore) -> dict[str, Item]:
    """Generated captions already in the store, by the id of the picture they describe."""
    found = store.find({"role": "caption"})
    return {c.parent: c for c in found if c.parent and "described_by" in c.metadata}


def _remove_orphans(store: VectorStore, existing: dict[str, Item], alive: set[str]) -> int:
    """Delete captions whose picture is gone (pruned, or re-indexed under another id)."""
    orphans = [caption.id for parent, caption in existing.items() if parent not in alive]
    if orphans:
        store.delete(orphans)
    return len(orphans)


def _is_current(caption: Item | None, picture: Item, key: str) -> bool:
    """Whether ``caption`` describes these very pixels with this model."""
    if caption is None:
        return False
    meta = caption.metadata
    return meta.get("described_by") == key and meta.get("described_hash") == picture.content_hash


def _captions(
    todo: Sequence[Item],
    cache: DescriptionCache,
    key: str,
    answerer: Answerer,
    load_image: LoadImage,
    report: DescribeReport,
    force: bool,
    jobs: int,
    progress: Progress | None,
) -> Iterable[tuple[Item, str]]:
    """(picture, caption) for each picture: from the cache, else from the model, in threads.

    The model calls wait on the network, so ``jobs`` of them run at once; results are
    handled here, in the calling thread, which alone touches the cache and the report.
    """
    asked: list[Item] = []
    for item in todo:
        cached = None if force else cache.get(item.content_hash, key)
        if cached is not None:
            report.cached += 1
            yield item, cached
        else:
            asked.append(item)
    done = len(todo) - len(asked)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(_ask, answerer, item, load_image): item for item in asked}
        for future in as_completed(futures):
            item, done = futures[future], done + 1
            if progress:
                progress(done, len(todo))
            try:
                caption, tokens_in, tokens_out = future.result()
            except Exception as exc:  # one picture must not stop the run
                report.fail(item.source, _reason(exc, item))
                continue
            cache.put(item.content_hash, key, caption)
            report.described += 1
            report.input_tokens += tokens_in
            report.output_tokens += tokens_out
            yield item, caption


def _reason(exc: Exception, item: Item) -> str:
    """Why a picture failed, for the report (an unexpected error is logged with its trace)."""
    if isinstance(exc, InputError):
        return exc.reason
    if isinstance(exc, MmragError):  # the model's API failed: its message names the status
        return str(exc)
    log.error("describing %s failed", item.source, exc_info=exc)
    return f"{type(exc).__name__}: {exc}"


def _ask(answerer: Answerer, item: Item, load_image: LoadImage) -> tuple[str, int, int]:
    """One model call for one picture: (caption, input tokens, output tokens).

    The model sees the pixels only: no file name, path or metadata that could give the
    answer away (a CIFAR file named ``cat_0001.png`` must not make a "cat" caption).
    """
    bare = Item(id=item.id, kind=item.kind, source="picture", content_hash=item.content_hash)
    picture = load_image(item)
    if picture is None:
        raise InputError(item.source, "no picture stored for this item")
    answer = answerer.answer(DESCRIBE_PROMPT, [Hit(bare, 1.0)], lambda _: picture)
    caption = clean_caption(answer.text)
    if not caption:
        raise InputError(item.source, "the model returned an empty caption")
    usage = answer.usage
    tokens_in = (usage.input_tokens or 0) if usage else 0
    tokens_out = (usage.output_tokens or 0) if usage else 0
    return caption, tokens_in, tokens_out


class _Writer:
    """Caption items with their text vectors, upserted in batches."""

    def __init__(self, store: VectorStore, text: TextEncoder, key: str) -> None:
        self.store, self.text, self.key = store, text, key
        self.items: list[Item] = []

    def add(self, picture: Item, caption: str) -> None:
        """Queue the caption of ``picture``; writes a batch when full."""
        self.items.append(description_item(picture, caption, self.key))
        if len(self.items) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        """Write the queued captions."""
        if not self.items:
            return
        vectors = self.text.encode([item.text or "" for item in self.items])
        self.store.upsert(self.items, {"text": np.asarray(vectors, dtype=np.float32)})
        self.items = []


def description_item(picture: Item, caption: str, key: str) -> Item:
    """A generated caption as a text item under its picture, with the model that wrote it."""
    # Filters hold on whichever item matched (a product photo's price, category), so the
    # caption carries its picture's metadata, less what describes the picture itself.
    inherited = {
        k: v for k, v in picture.metadata.items() if k not in ("caption", "width", "height")
    }
    meta = {**inherited, "described_by": key, "described_hash": picture.content_hash}
    out = caption_item(
        picture, caption, item_id(picture.id, "description"), metadata=meta, thumb=picture.thumb
    )
    return out.item.with_(content_hash=part_hash(picture.content_hash, "description", key))
