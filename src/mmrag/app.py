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

from . import registry
from .blobs import BlobStore
from .config import Settings
from .errors import DependencyError, IndexError_, InputError, ModelMismatchError
from .indexer import Indexer, IndexReport, Progress
from .ingest.base import Ingester
from .ingest.images import open_image
from .lock import write_lock
from .manifest import Manifest
from .models.base import ImageTextEncoder, TextEncoder
from .retrieve.search import Searcher
from .stores.base import VectorStore
from .stores.url import parse_store_url
from .types import VISUAL_KINDS, Hit, Item, Where
from .where import describe_where, parse_where

if TYPE_CHECKING:
    from .answer.types import Answer

__all__ = [
    "SCHEMA_VERSION",
    "Index",
    "IndexReport",
    "describe_where",
    "open_index",
    "parse_where",
]

log = logging.getLogger(__name__)

#: 2: items carry a typed ``role`` (caption, ocr, chunk, ...), a column of its own.
SCHEMA_VERSION = 2
_META = "mmrag.json"
#: ``--model none`` builds an index without CLIP (text paths only).
NO_CLIP = ("none", "")


class Index:
    """An index on disk: add sources, search by text or image, ask questions.

    Built by :func:`open_index`, which wires every collaborator; faces (CLI, HTTP)
    use only the methods here, never the collaborators themselves.
    """

    #: The ``--where`` syntax: ``["category=shoes", "price<200"]`` -> a filter.
    parse_where = staticmethod(parse_where)

    def __init__(
        self,
        settings: Settings,
        *,
        store: VectorStore,
        clip: ImageTextEncoder | None,
        text: TextEncoder,
        blobs: BlobStore,
        manifest: Manifest,
        indexer: Indexer,
        searcher: Searcher,
    ) -> None:
        self.settings = settings
        self.path = settings.index
        self.store = store
        self.clip = clip
        self.text = text
        self.blobs = blobs
        self.manifest = manifest
        self.indexer = indexer
        self.searcher = searcher

    # -- writing ------------------------------------------------------------

    def add(
        self,
        targets: str | Path | Iterable[str | Path],
        *,
        metadata: Mapping[str, Any] | None = None,
        prune: bool = False,
        force: bool = False,
        progress: Progress | None = None,
        wait: float = 0.0,
    ) -> IndexReport:
        """Index files, folders, globs or URLs; unchanged sources are skipped.

        One writer at a time: another process writing this index makes this wait up to
        ``wait`` seconds, then raise :class:`IndexBusyError` (see :mod:`mmrag.lock`).
        """
        if isinstance(targets, (str, Path)):
            targets = [targets]
        with write_lock(self.path, wait=wait):
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

    def prune(self, wait: float = 0.0) -> int:
        """Remove the items of indexed files that no longer exist; returns how many sources."""
        with write_lock(self.path, wait=wait):
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

    def similar_to(
        self,
        item_id: str,
        *,
        k: int = 10,
        where: Where | None = None,
        min_score: float | None = None,
        collapse: bool = False,
    ) -> list[Hit]:
        """The visual items most like an indexed one, by its stored CLIP vector (no re-encoding)."""
        vectors = self.store.get_vectors("clip", [item_id]) if "clip" in self.store.spaces else {}
        if item_id not in vectors:
            raise InputError(item_id, "no indexed item with an image vector")
        floor = self.settings.min_score if min_score is None else min_score
        return self.searcher.search_by_vector(
            vectors[item_id], k=k, where=where, min_score=floor, collapse=collapse
        )

    def available_paths(self) -> tuple[str, ...]:
        """The retrieval paths a text query runs on this index (``clip``, ``text``, ``bm25``)."""
        return self.searcher.available_paths()

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

    def thumbnail(self, key: str) -> bytes | None:
        """A thumbnail JPEG by its blob key (an item's ``thumb``), or None if there is none."""
        try:
            return self.blobs.get("thumb", key)
        except ValueError:  # not a content hash
            return None

    def load_image(self, item: Item) -> Image.Image | None:
        """The best available picture of an item: normalised copy, original file, or thumbnail.

        Only the item's own picture: the page of a text hit comes as ``Hit.parent_item``.
        """
        for data in self._image_bytes(item):
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
            "paths": list(self.available_paths()),
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


def open_index(
    path: str | Path | None = None,
    *,
    settings: Settings | None = None,
    reembed: bool = False,
    create: bool = True,
    **overrides: Any,
) -> Index:
    """Open (or create) the index at ``path``; the one place that wires its backends.

    Every backend comes from :mod:`mmrag.registry`, chosen by name in settings: the
    store by URL (``store``), the CLIP and text encoders by ``[BACKEND:]MODEL``
    (``model``, ``text_model``), and every registered ingester whose extra is installed.
    The models that built an index are recorded in it. Asking for another model
    raises :class:`ModelMismatchError` unless ``reembed=True``, which re-embeds
    every source with the new model. When no model is asked for explicitly
    (argument or ``MMRAG_MODEL``), the recorded one is used. With
    ``create=False`` a missing index is an error instead of a new one.
    """
    if path is not None:
        overrides["index"] = Path(path)
    settings = (settings or Settings()).model_copy(update=overrides)
    root = settings.index
    meta = read_meta(root)
    if meta is None and not create:
        raise IndexError_(f"no index at {root}: build one with `mmrag index PATH --index {root}`")
    if meta is not None and meta.get("schema") != SCHEMA_VERSION:
        raise IndexError_(
            f"index {root} has schema {meta.get('schema')}; this mmrag reads {SCHEMA_VERSION}"
        )
    store_url = parse_store_url(settings.store_url(), default_dir=root / "store")
    explicit = {"model", "text_model"} & (settings.model_fields_set | set(overrides))
    clip_model, text_model, mismatch = _models(settings, meta, explicit)
    if mismatch and not reembed:
        assert meta is not None
        raise ModelMismatchError(
            f"index {root} was built with CLIP model {meta.get('clip_model')!r} and text model "
            f"{meta.get('text_model')!r}; you asked for {clip_model!r} / {text_model!r}. "
            "Re-embed deliberately with --reembed (Index: reembed=True), or use the recorded model."
        )
    clip: ImageTextEncoder | None = _build_encoder(
        registry.image_text_encoders, clip_model, settings
    )
    text: TextEncoder = _build_encoder(registry.text_encoders, text_model, settings)
    spaces = {"text": text.dim}
    if clip is not None:
        spaces = {"clip": clip.dim, **spaces}
    root.mkdir(parents=True, exist_ok=True)
    factory = registry.stores.load(store_url.scheme)
    store: VectorStore = factory(store_url, spaces, overwrite=mismatch, settings=settings)
    new_meta = {
        "schema": SCHEMA_VERSION,
        "clip_model": clip_model,
        "text_model": text_model,
        "spaces": spaces,
    }
    if meta != new_meta:
        _write_meta(root, new_meta)
    index = _assemble(
        settings.model_copy(update={"model": clip_model or "none"}), store, clip, text
    )
    if mismatch:
        _reembed(index)
    return index


def _models(
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


def _assemble(
    settings: Settings, store: VectorStore, clip: ImageTextEncoder | None, text: TextEncoder
) -> Index:
    """The Index over one store and its encoders, with blobs, manifest, pipeline and search."""
    blobs = BlobStore(settings.index / "blobs")
    manifest = Manifest(settings.index / "manifest.sqlite")
    indexer = Indexer(store, blobs, manifest, clip, text, settings, _ingesters())
    return Index(
        settings,
        store=store,
        clip=clip,
        text=text,
        blobs=blobs,
        manifest=manifest,
        indexer=indexer,
        searcher=Searcher(store, clip, text),
    )


def _ingesters() -> list[Ingester]:
    """Every registered ingester whose optional dependencies are installed."""
    found: list[Ingester] = []
    for name in registry.ingesters.names():
        try:
            found.append(registry.ingesters.create(name))
        except DependencyError as exc:
            log.debug("%s ingestion unavailable: %s", name, exc)
    return found


def _clip_spec(spec: str | None) -> str | None:
    """The CLIP model spec as recorded; None for a text-only index."""
    if spec is None or spec.strip().lower() in NO_CLIP:
        return None
    return registry.image_text_encoders.canonical(spec)


def _text_spec(spec: str | None) -> str | None:
    """The text model spec as recorded."""
    return None if spec is None else registry.text_encoders.canonical(spec)


def _build_encoder(backends: registry.Registry[Any], spec: str | None, settings: Settings) -> Any:
    """The encoder ``[BACKEND:]MODEL`` names, from its backend's ``from_settings``."""
    if spec is None:
        return None
    backend, model = backends.split(spec)
    return backends.load(backend)(model, settings)


def _chosen(asked: str, meta: Mapping[str, Any] | None, key: str, explicit: bool) -> str | None:
    """The recorded model unless one was asked for explicitly (or the index is new)."""
    if meta is not None and not explicit:
        return meta.get(key)
    return asked


def _reembed(index: Index) -> None:
    """Re-index every recorded source with the index's current models."""
    sources = [record.source for record in index.manifest]
    index.manifest.clear()
    if sources:
        index.add(sources, force=True)
