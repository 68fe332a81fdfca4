"""What an index records about itself (``mmrag.json``): schema version and the models that
built it, and which models to open it with.

meta = read_meta(Path("my-index"))        # None for a new index
clip, text, mismatch = chosen_models(settings, meta, explicit={"model"})
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import registry
from .config import Settings
from .errors import IndexError_

__all__ = [
    "NO_CLIP",
    "SCHEMA_VERSION",
    "chosen_models",
    "chosen_pages",
    "chosen_store",
    "read_meta",
    "recorded_store",
    "write_meta",
]

#: 2: items carry a typed ``role`` (caption, ocr, chunk, ...), a column of its own.
#: 3: items carry their ``context``; full text indexes ``search_text`` (context + text).
SCHEMA_VERSION = 3
_META = "mmrag.json"
#: ``--model none`` builds an index without CLIP (text paths only).
NO_CLIP = ("none", "")


def read_meta(path: Path) -> dict[str, Any] | None:
    """The index's recorded models and schema, or None for a new index."""
    try:
        return json.loads((path / _META).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise IndexError_(f"index metadata {path / _META} is unreadable: {exc}") from None


def write_meta(path: Path, meta: Mapping[str, Any]) -> None:
    """Record ``meta`` atomically (written aside, then renamed)."""
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / (_META + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2))
    tmp.replace(path / _META)


def chosen_models(
    settings: Settings, meta: Mapping[str, Any] | None, explicit: set[str]
) -> tuple[str | None, str, bool]:
    """The (CLIP, text) model specs to use, and whether they differ from the recorded ones."""
    clip = _clip_spec(_chosen(settings.model, meta, "clip_model", "model" in explicit))
    asked = _chosen(settings.text_model, meta, "text_model", "text_model" in explicit)
    text = registry.text_encoders.canonical(asked or settings.text_model)
    if meta is None:
        return clip, text, False
    recorded = (_clip_spec(meta.get("clip_model")), _text_spec(meta.get("text_model")))
    return clip, text, recorded != (clip, text)


def chosen_store(settings: Settings, meta: Mapping[str, Any] | None) -> str:
    """The store URL to open: one set explicitly (argument or ``MMRAG_STORE``) wins, then
    the one the index records (``mmrag migrate`` switches it), then the default."""
    explicit = {"store", "qdrant_url"} & settings.model_fields_set
    if meta is not None and meta.get("store") and not explicit:
        return str(meta["store"])
    return settings.store_url()


def recorded_store(meta: Mapping[str, Any] | None, url: str) -> str:
    """What ``mmrag.json`` records as the store: the recorded one if any, else ``url``."""
    if meta is not None and meta.get("store"):
        return str(meta["store"])
    return url


def _clip_spec(spec: str | None) -> str | None:
    """The CLIP model spec as recorded; None for a text-only index."""
    if spec is None or spec.strip().lower() in NO_CLIP:
        return None
    return registry.image_text_encoders.canonical(spec)


def _text_spec(spec: str | None) -> str | None:
    """The text model spec as recorded."""
    return None if spec is None else registry.text_encoders.canonical(spec)


def _chosen(asked: str, meta: Mapping[str, Any] | None, key: str, explicit: bool) -> str | None:
    """The recorded model unless one was asked for explicitly (or the index is new)."""
    if meta is not None and not explicit:
        return meta.get(key)
    return asked


def chosen_pages(
    settings: Settings, meta: Mapping[str, Any] | None, explicit: bool
) -> tuple[dict[str, Any] | None, bool]:
    """The page model with its memory controls (``{"model", "pool", "first_stage"}``, None
    when off), and whether it differs from what the index recorded under ``pages``.

    Without an explicit ``page_model`` an existing index keeps what it recorded; the
    query-time ``rerank`` is not recorded (it changes no stored data).
    """
    recorded = meta.get("pages") if meta is not None else None
    recorded = {k: recorded[k] for k in _PAGE_KEYS if k in recorded} if recorded else None
    if meta is not None and not explicit:
        return recorded, False
    if settings.page_model is None:
        asked = None
    else:
        model = registry.page_encoders.canonical(settings.page_model)
        asked = {
            "model": model,
            "pool": settings.page_pool,
            "first_stage": settings.page_first_stage,
        }
    return asked, meta is not None and asked != recorded


_PAGE_KEYS = ("model", "pool", "first_stage")
