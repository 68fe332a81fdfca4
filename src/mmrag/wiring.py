"""Building backends from settings: encoders, ingesters, the store's record, a worker's pipeline.

The pieces :func:`mmrag.app.open_index` assembles an index from (and a Ray worker its
pipeline from), every backend found through :mod:`mmrag.registry` by name::

    clip = build_encoder(registry.image_text_encoders, "openai/clip-vit-base-patch32", settings)
    pipeline = worker_pipeline(settings, blobs, manifest)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, cast

from . import registry
from .blobs import BlobStore
from .config import Settings
from .distributed.worker import NoStore
from .errors import DependencyError
from .indexer import PAGES_SPACE, Indexer
from .ingest.base import Ingester
from .manifest import Manifest
from .meta import NO_CLIP
from .models.base import PageEncoder
from .stores.base import MultiSpace, VectorStore
from .stores.url import StoreURL

__all__ = ["build_encoder", "ingesters", "multi_spaces", "store_record", "worker_pipeline"]

log = logging.getLogger(__name__)


def store_record(url: StoreURL, root: Path) -> str:
    """How ``mmrag.json`` names the store an index was created in."""
    if url.scheme == "lance" and url.collection is None and url.location == str(root / "store"):
        return "lance"
    return url.absolute().to_url()


def multi_spaces(pages: PageEncoder, settings: Settings) -> dict[str, MultiSpace]:
    """The store's multi-vector space for the page encoder, with its first stage."""
    space = MultiSpace(pages.dim, settings.page_first_stage, settings.page_rerank)
    return {PAGES_SPACE: space}


def worker_pipeline(settings: Settings, blobs: BlobStore, manifest: Manifest) -> Indexer:
    """The indexing pipeline as a Ray worker runs it: the index's models, no store.

    ``settings`` are the index's (models as chosen); decoding runs inline (the cluster
    is the parallelism) and no ONNX query tower is exported (workers answer no queries).
    """
    settings = settings.model_copy(update={"workers": 1, "onnx_cache": None})
    clip_spec = None if settings.model.strip().lower() in NO_CLIP else settings.model
    clip = build_encoder(registry.image_text_encoders, clip_spec, settings)
    text = build_encoder(registry.text_encoders, settings.text_model, settings)
    store = cast(VectorStore, NoStore())
    return Indexer(store, blobs, manifest, clip, text, settings, ingesters())


def ingesters() -> list[Ingester]:
    """Every registered ingester whose optional dependencies are installed."""
    found: list[Ingester] = []
    for name in registry.ingesters.names():
        try:
            found.append(registry.ingesters.create(name))
        except DependencyError as exc:
            log.debug("%s ingestion unavailable: %s", name, exc)
    return found


def build_encoder(backends: registry.Registry[Any], spec: str | None, settings: Settings) -> Any:
    """The encoder ``[BACKEND:]MODEL`` names, from its backend's ``from_settings``."""
    if spec is None:
        return None
    backend, model = backends.split(spec)
    return backends.load(backend)(model, settings)
