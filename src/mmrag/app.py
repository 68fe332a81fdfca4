"""The application layer: one place that wires settings, encoders, store and pipeline.

import mmrag
index = mmrag.open("my-index")
index.add(["photos/"])
hits = index.search("a red bicycle", k=5)
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from .blobs import BlobStore
from .config import Settings
from .errors import ConfigError, IndexError_, InputError, ModelMismatchError
from .indexer import Indexer, IndexReport, Progress
from .ingest.base import Ingester
from .ingest.images import open_image
from .manifest import Manifest
from .models.base import ImageTextEncoder, TextEncoder
from .retrieve.search import Searcher
from .stores.base import VectorStore
from .types import VISUAL_KINDS, Hit, Item, Where

if TYPE_CHECKING:
    from .answer.types import Answer

__all__ = ["SCHEMA_VERSION", "Index", "open_index"]

log = logging.getLogger(__name__)

#: 2: items carry a typed ``role`` (caption, ocr, chunk, ...), a column of its own.
SCHEMA_VERSION = 2
_META = "mmrag.json"
#: ``--model none`` builds an index without CLIP (text paths only).
NO_CLIP = ("none", "")


class Index:
    """An index on disk: add sources, search by text or image, ask questions."""

    def __init__(
        self,
        settings: Settings,
        store: VectorStore,
        clip: ImageTextEncoder | None,
        text: TextEncoder,
        ingesters: Sequence[Ingester] = (),
    ) -> None:
        self.settings = settings
        self.path = settings.index
        self.store = store
        self.clip = clip
        self.text = text
        self.blobs = BlobStore(self.path / "blobs")
        self.manifest = Manifest(self.path / "manifest.sqlite")
        self.indexer = Indexer(store, self.blobs, self.manifest, clip, text, settings, ingesters)
        self.searcher = Searcher(store, clip, text)

    # -- writing ------------------------------------------------------------

    def add(
        self,
        targets: str | Path | Iterable[str | Path],
        *,
        metadata: Mapping[str, Any] | None = None,
        prune: bool = False,
        force: bool = False,
        progress: Progress | None = None,
    ) -> IndexReport:
        """Index files, folders, globs or URLs; unchanged sources are skipped."""
        if isinstance(targets, (str, Path)):
            targets = [targets]
        report = self.indexer.run(
            [str(t) for t in targets],
            metadata=metadata,
            prune=prune,
            force=force,
            progress=progress,
        )
        if report.added or report.updated or report.pruned:
            self.store.optimize()
        return report

    def prune(self) -> int:
        """Remove the items of indexed files that no longer exist; returns how many sources."""
        pruned = self.indexer.prune()
        if pruned:
            self.store.optimize()
        return pruned

    # -- reading --------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        where: Where | None = None,
        min_score: float | None = None,
        paths: Sequence[str] | None = None,
    ) -> list[Hit]:
        """Text query -> images and text, fused across retrieval paths."""
        floor = self.settings.min_score if min_score is None else min_score
        return self.searcher.search(query, k=k, where=where, min_score=floor, paths=paths)

    def search_by_image(
        self,
        image: str | Path | bytes | Image.Image,
        *,
        k: int = 10,
        where: Where | None = None,
        min_score: float | None = None,
        collapse: bool = False,
    ) -> list[Hit]:
        """Reverse image search: the visual items most like ``image``."""
        floor = self.settings.min_score if min_score is None else min_score
        return self.searcher.search_by_image(
            self._query_image(image), k=k, where=where, min_score=floor, collapse=collapse
        )

    def ask(
        self,
        question: str,
        *,
        k: int = 5,
        model: str | None = None,
        where: Where | None = None,
        images_only: bool = False,
        min_score: float | None = None,
        stream: Callable[[str], None] | None = None,
    ) -> Answer:
        """Retrieve for ``question``; a model (or the offline answerer) answers with citations."""
        from .answer.base import make_answerer

        answerer = make_answerer(self.settings, model)  # fails fast on a missing key or SDK
        if images_only:
            where = {**(where or {}), "kind": sorted(VISUAL_KINDS)}
        hits = self.search(question, k=k, where=where, min_score=min_score)
        return answerer.answer(question, hits, self.load_image, stream=stream)

    def get(self, ids: Sequence[str]) -> list[Item]:
        """Items by id."""
        return self.store.get(ids)

    def thumbnail(self, item: Item) -> bytes | None:
        """The item's thumbnail JPEG, if the index has one."""
        return self.blobs.get("thumb", item.thumb) if item.thumb else None

    def load_image(self, item: Item) -> Image.Image | None:
        """The best available picture of an item: normalised copy, original file, or thumbnail."""
        target = item
        if item.kind in ("text", "product") and item.parent:
            parents = self.store.get([item.parent])
            target = parents[0] if parents else item
        for data in self._image_bytes(target):
            try:
                image = Image.open(io.BytesIO(data))
                image.load()
                return image
            except (OSError, ValueError):
                continue
        return None

    def _image_bytes(self, item: Item) -> Iterable[bytes]:
        if item.thumb:
            full = self.blobs.get("full", item.thumb)
            if full:
                yield full
        if item.kind == "image" and "://" not in item.source:
            original = _read_or_none(Path(item.source))
            if original:
                yield original
        if item.thumb:
            thumb = self.blobs.get("thumb", item.thumb)
            if thumb:
                yield thumb

    def stats(self) -> dict[str, Any]:
        """Counts by kind, sources, models and location."""
        meta = read_meta(self.path) or {}
        kinds = {kind: self.store.count({"kind": kind}) for kind in _KINDS}
        return {
            "index": str(self.path),
            "items": self.store.count(),
            "kinds": {kind: n for kind, n in kinds.items() if n},
            "sources": len(self.manifest),
            "clip_model": meta.get("clip_model"),
            "text_model": meta.get("text_model"),
            "spaces": dict(self.store.spaces),
            "paths": list(self.searcher.available_paths()),
            "schema": meta.get("schema"),
        }

    def close(self) -> None:
        """Release the manifest and models."""
        self.manifest.close()
        for encoder in (self.clip, self.text):
            release = getattr(encoder, "release", None)
            if callable(release):
                release()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _query_image(self, image: str | Path | bytes | Image.Image) -> Image.Image:
        if isinstance(image, Image.Image):
            return image
        if isinstance(image, (str, Path)):
            name = str(image)
            try:
                data = Path(name).read_bytes()
            except OSError as exc:
                raise InputError(name, f"cannot read image: {exc.strerror or exc}") from None
        else:
            name, data = "<query image>", image
        return open_image(data, name, max_pixels=self.settings.max_image_pixels)


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


_KINDS = ("image", "page", "figure", "slide", "text", "product")


# -- wiring ---------------------------------------------------------------------


def read_meta(path: Path) -> dict[str, Any] | None:
    """The index's recorded models and schema, or None for a new index."""
    try:
        return json.loads((path / _META).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise IndexError_(f"index metadata {path / _META} is unreadable: {exc}") from None


def _write_meta(path: Path, meta: Mapping[str, Any]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / (_META + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2))
    tmp.replace(path / _META)


EncoderFactory = Callable[[Settings, str], ImageTextEncoder]
TextFactory = Callable[[Settings, str], TextEncoder]
StoreFactory = Callable[[Settings, Mapping[str, int], bool], VectorStore]


def _default_clip(settings: Settings, model: str) -> ImageTextEncoder:
    from .models.clip import ClipEncoder

    return ClipEncoder(
        model,
        device=settings.device,
        precision=settings.precision,
        batch_size=settings.batch_size,
        offline=settings.hf_offline,
    )


def _default_text(settings: Settings, model: str) -> TextEncoder:
    from .models.text import SentenceTextEncoder

    return SentenceTextEncoder(model, device=settings.device, offline=settings.hf_offline)


def _default_store(settings: Settings, spaces: Mapping[str, int], overwrite: bool) -> VectorStore:
    """LanceDB under the index directory, or a Qdrant collection when ``store='qdrant'``.

    ``overwrite`` starts the collection afresh (a deliberate re-embed).
    """
    if settings.store == "qdrant":
        from .stores.qdrant import QdrantStore

        if not settings.qdrant_url:
            raise ConfigError("store 'qdrant' needs MMRAG_QDRANT_URL (a URL or a local path)")
        location: Any = settings.qdrant_url
        if settings.qdrant_api_key is not None and location.startswith(("http://", "https://")):
            from qdrant_client import QdrantClient

            key = settings.qdrant_api_key.get_secret_value()
            location = QdrantClient(url=location, api_key=key)
        return QdrantStore(location, settings.qdrant_collection, spaces, overwrite=overwrite)
    from .stores.lance import LanceStore

    return LanceStore(settings.index / "store", spaces, overwrite=overwrite)


def _default_ingesters(settings: Settings) -> list[Ingester]:
    """Document ingesters whose optional dependencies are installed."""
    found: list[Ingester] = []
    try:
        from .ingest.pdf import PdfIngester

        found.append(PdfIngester())
    except ImportError:
        log.debug("PDF ingestion unavailable (pip install 'mmrag[pdf]')")
    try:
        from .ingest.pptx import PptxIngester

        found.append(PptxIngester())
    except ImportError:
        log.debug("slide ingestion unavailable (pip install 'mmrag[pptx]')")
    return found


def open_index(
    path: str | Path | None = None,
    *,
    settings: Settings | None = None,
    reembed: bool = False,
    create: bool = True,
    clip_factory: EncoderFactory = _default_clip,
    text_factory: TextFactory = _default_text,
    store_factory: StoreFactory = _default_store,
    **overrides: Any,
) -> Index:
    """Open (or create) the index at ``path``.

    The models that built an index are recorded in it. Asking for another model
    raises :class:`ModelMismatchError` unless ``reembed=True``, which re-embeds
    every source with the new model. When no model is asked for explicitly
    (argument or ``MMRAG_MODEL``), the recorded one is used. With
    ``create=False`` a missing index is an error instead of a new one.
    """
    if path is not None:
        overrides["index"] = Path(path)
    settings = (settings or Settings()).model_copy(update=overrides)
    explicit = {"model", "text_model"} & (settings.model_fields_set | set(overrides))
    root = settings.index
    meta = read_meta(root)
    if meta is None and not create:
        raise IndexError_(f"no index at {root}: build one with `mmrag index PATH --index {root}`")
    if meta is not None and meta.get("schema") != SCHEMA_VERSION:
        raise IndexError_(
            f"index {root} has schema {meta.get('schema')}; this mmrag reads {SCHEMA_VERSION}"
        )
    clip_model = _chosen(settings.model, meta, "clip_model", "model" in explicit)
    text_model = _chosen(settings.text_model, meta, "text_model", "text_model" in explicit)
    mismatch = meta is not None and (
        clip_model != meta.get("clip_model") or text_model != meta.get("text_model")
    )
    if mismatch and not reembed:
        assert meta is not None
        raise ModelMismatchError(
            f"index {root} was built with CLIP model {meta.get('clip_model')!r} and text model "
            f"{meta.get('text_model')!r}; you asked for {clip_model!r} / {text_model!r}. "
            "Re-embed deliberately with --reembed (Index: reembed=True), or use the recorded model."
        )
    clip = clip_factory(settings, clip_model) if clip_model else None
    text = text_factory(settings, text_model or settings.text_model)
    spaces = {"text": text.dim}
    if clip is not None:
        spaces = {"clip": clip.dim, **spaces}
    root.mkdir(parents=True, exist_ok=True)
    store = store_factory(settings, spaces, mismatch)
    new_meta = {
        "schema": SCHEMA_VERSION,
        "clip_model": clip_model,
        "text_model": text_model,
        "spaces": spaces,
    }
    if meta != new_meta:
        _write_meta(root, new_meta)
    index = Index(
        settings.model_copy(update={"model": clip_model or "none"}),
        store,
        clip,
        text,
        _default_ingesters(settings),
    )
    if mismatch:
        _reembed(index)
    return index


def _chosen(asked: str, meta: Mapping[str, Any] | None, key: str, explicit: bool) -> str | None:
    if meta is not None and not explicit:
        return meta.get(key)
    return None if asked.strip().lower() in NO_CLIP else asked


def _reembed(index: Index) -> None:
    """Re-index every recorded source with the index's current models."""
    sources = [record.source for record in index.manifest]
    index.manifest.clear()
    if sources:
        index.add(sources, force=True)
