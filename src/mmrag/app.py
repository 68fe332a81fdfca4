"""The application layer: one place that wires settings, encoders, store and pipeline.

import mmrag
index = mmrag.open("my-index")
index.add(["photos/"])
hits = index.search("a red bicycle", k=5)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from PIL import Image

from . import registry
from .blobs import BlobStore
from .config import Settings
from .errors import AnswerError, IndexError_, InputError, ModelMismatchError
from .indexer import PAGES_SPACE, Indexer, IndexReport, Progress
from .ingest.catalog import catalog_mapping
from .ingest.images import open_image
from .lock import write_lock
from .manifest import Manifest
from .meta import (
    SCHEMA_VERSION,
    chosen_models,
    chosen_pages,
    chosen_store,
    read_meta,
    recorded_store,
    write_meta,
)
from .migrate import MigrationReport, migrate_index
from .models.base import ImageTextEncoder, PageEncoder, TextEncoder
from .retrieve import products as product_search
from .retrieve.attributes import ParsedQuery, parse_query
from .retrieve.duplicates import DuplicateGroup, index_duplicates
from .retrieve.search import Searcher
from .stores.base import VectorStore
from .stores.url import parse_store_url
from .types import VISUAL_KINDS, Hit, Item, Where
from .where import describe_where, parse_where, resolve_documents
from .wiring import build_encoder, ingesters, multi_spaces, store_record, worker_pipeline

if TYPE_CHECKING:
    from .answer.types import Answer
    from .describe import DescribeReport

__all__ = [
    "SCHEMA_VERSION",
    "DuplicateGroup",
    "Index",
    "IndexReport",
    "MigrationReport",
    "ParsedQuery",
    "describe_where",
    "migrate_index",
    "open_index",
    "parse_where",
]

log = logging.getLogger(__name__)


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
        pages: PageEncoder | None = None,
    ) -> None:
        self.settings = settings
        #: The late-interaction page encoder (None: the index has no pages path).
        self.pages = pages
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
        catalog_map: Mapping[str, str] | None = None,
        wait: float = 0.0,
        ray: str | None = None,
    ) -> IndexReport:
        """Index files, folders, globs or URLs; unchanged sources are skipped.

        ``catalog_map`` maps catalog fields to columns (``{"price": "cost"}``) for catalog
        files whose columns the defaults do not name. One writer at a time: another process
        writing this index makes this wait up to ``wait`` seconds, then raise
        :class:`IndexBusyError` (see :mod:`mmrag.lock`). ``ray`` (a Ray address, or
        ``"local"``) decodes and embeds on a Ray cluster; this process writes (see
        :mod:`mmrag.distributed.ray_index`).
        """
        if isinstance(targets, (str, Path)):
            targets = [targets]
        names = [str(t) for t in targets]
        with write_lock(self.path, wait=wait), catalog_mapping(self.indexer.ingesters, catalog_map):
            if ray is not None:
                from .distributed.ray_index import ray_index

                report = ray_index(
                    self.indexer,
                    names,
                    address=ray,
                    make_pipeline=partial(worker_pipeline, self.settings),
                    metadata=metadata,
                    prune=prune,
                    force=force,
                    progress=progress,
                    catalog_map=catalog_map,
                )
            else:
                report = self.indexer.run(
                    names, metadata=metadata, prune=prune, force=force, progress=progress
                )
            if report.added or report.updated or report.pruned:
                self.store.optimize()
                product_search.forget_facets(self.path)
        return report

    def prune(self, wait: float = 0.0) -> int:
        """Remove the items of indexed files that no longer exist; returns how many sources."""
        with write_lock(self.path, wait=wait):
            pruned = self.indexer.prune()
            if pruned:
                self.store.optimize()
                product_search.forget_facets(self.path)
        return pruned

    def describe(
        self, model: str | None = None, *, wait: float = 0.0, **options: Any
    ) -> DescribeReport:
        """Caption each picture with a vision-language model, as searchable text (cached).

        ``options``: ``kinds``, ``force``, ``jobs``, ``progress`` of
        :func:`mmrag.describe.describe_visuals`; ``model`` falls back to ``answer_model``.
        """
        from .describe import describe_visuals

        with write_lock(self.path, wait=wait):
            report = describe_visuals(
                self.settings, self.store, self.text, self.load_image, model, **options
            )
            if report.written or report.removed:
                self.store.optimize()
        return report

    # -- reading --------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        where: Where | None = None,
        min_score: float | None = None,
        paths: Sequence[str] | None = None,
        parse: bool | None = None,
    ) -> list[Hit]:
        """Text query -> images and text, fused across retrieval paths.

        On a product index (``parse`` None) or with ``parse=True`` a price range and facet
        values in the query become filters and boosts (:meth:`parse_query`); ``where`` keys
        win over parsed ones. A price bound is checked on each hit's product as well.
        """
        floor = self.settings.min_score if min_score is None else min_score
        where = self._documents_checked(where)
        parsed = self.parse_query(query) if parse is not False else None

        def run(text: str, fetch: int, filters: Where | None) -> list[Hit]:
            return self.searcher.search(text, k=fetch, where=filters, min_score=floor, paths=paths)

        return product_search.parsed_search(run, self.store, query, k, where, parsed)

    def parse_query(self, query: str) -> ParsedQuery | None:
        """The query's price range and facet values (None on an index without products)."""
        facets = self.facets()
        return parse_query(query, facets) if facets.get("products") else None

    def facets(self) -> dict[str, Any]:
        """Facet values of the index's products (colours, categories) and how many products."""
        return product_search.load_facets(self.store, self.path)

    def similar_products(self, item_id: str, *, k: int = 10) -> list[Hit]:
        """Other products like the one ``item_id`` is (or is a photo of); never its own photos."""
        return product_search.similar_products(self.store, item_id, k)

    def duplicates(
        self, *, threshold: float = 0.95, sheet_dir: Path | None = None
    ) -> list[tuple[DuplicateGroup, Path | None]]:
        """Groups of exact and near-duplicate pictures, with a contact sheet each if asked."""
        return index_duplicates(
            self.store, self.load_image, threshold=threshold, sheet_dir=sheet_dir
        )

    def products_of(self, items: Sequence[Item]) -> dict[str, Item]:
        """Each item's product (a product itself, or the product a photo or variant is of)."""
        return product_search.product_of(self.store, items)

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
        where = self._documents_checked(where)
        return self.searcher.search_by_image(
            self._query_image(image), k=k, where=where, min_score=floor, collapse=collapse
        )

    def _documents_checked(self, where: Where | None) -> Where | None:
        """``where`` with its ``doc`` values made indexed documents' names (see
        :func:`~mmrag.where.resolve_documents`); ConfigError for a name that is not there."""
        if not where or "doc" not in where:
            return where
        names = sorted({_document_name(record.source) for record in self.manifest})
        return resolve_documents(where, names)

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
        from .answer.base import attach_sources, make_answerer

        answerer = make_answerer(self.settings, model)  # fails fast on a missing key or SDK
        if images_only:
            where = {**(where or {}), "kind": sorted(VISUAL_KINDS)}
        hits = self.search(question, k=k, where=where, min_score=min_score)
        try:
            return answerer.answer(question, hits, self.load_image, stream=stream)
        except AnswerError as exc:  # the answer failed, retrieval did not: keep its sources
            attach_sources(exc, question, hits)
            raise

    def get(self, ids: Sequence[str]) -> list[Item]:
        """Items by id."""
        return self.store.get(ids)

    def sources(self) -> list[str]:
        """The indexed sources (paths or URLs), as the manifest records them."""
        return [record.source for record in self.manifest]

    def thumbnail(self, key: str) -> bytes | None:
        """A thumbnail JPEG by its blob key (an item's ``thumb``), or None if there is none."""
        try:
            return self.blobs.get("thumb", key)
        except ValueError:  # not a content hash
            return None

    def load_image(self, item: Item) -> Image.Image | None:
        """The best available picture of an item: normalised copy, original file, or thumbnail.

        Only the item's own picture: search hands a chunk's page, not the chunk.
        """
        return self.blobs.picture_of(item)

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
            "pages": meta.get("pages"),
            "spaces": dict(self.store.spaces),
            "paths": list(self.available_paths()),
            "schema": meta.get("schema"),
        }

    def close(self) -> None:
        """Release the manifest and models."""
        self.manifest.close()
        for encoder in (self.clip, self.text, self.pages):
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


def _document_name(source: str) -> str:
    """The ``doc`` name of a source: its file name (of the URL's path for a URL)."""
    if "://" in source:
        return PurePosixPath(urlsplit(source).path).name
    return Path(source).name


_KINDS = ("image", "page", "figure", "slide", "text", "product")


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
    store_url = parse_store_url(chosen_store(settings, meta), default_dir=root / "store")
    explicit = {"model", "text_model"} & (settings.model_fields_set | set(overrides))
    clip_model, text_model, mismatch = chosen_models(settings, meta, explicit)
    explicit_pages = "page_model" in (settings.model_fields_set | set(overrides))
    page_config, pages_mismatch = chosen_pages(settings, meta, explicit_pages)
    if (mismatch or pages_mismatch) and not reembed:
        assert meta is not None
        raise ModelMismatchError(
            f"index {root} was built with CLIP model {meta.get('clip_model')!r}, text model "
            f"{meta.get('text_model')!r} and pages {meta.get('pages')!r}; you asked for "
            f"{clip_model!r} / {text_model!r} / {page_config!r}. Re-embed deliberately with "
            "--reembed (Index: reembed=True), or use the recorded model."
        )
    mismatch = mismatch or pages_mismatch
    clip: ImageTextEncoder | None = build_encoder(
        registry.image_text_encoders, clip_model, settings
    )
    text: TextEncoder = build_encoder(registry.text_encoders, text_model, settings)
    spaces = {"text": text.dim}
    if clip is not None:
        spaces = {"clip": clip.dim, **spaces}
    if page_config is not None:  # the recorded memory controls, unless asked otherwise
        settings = settings.model_copy(
            update={
                "page_pool": page_config["pool"],
                "page_first_stage": page_config["first_stage"],
            }
        )
    pages = build_encoder(registry.page_encoders, (page_config or {}).get("model"), settings)
    root.mkdir(parents=True, exist_ok=True)
    factory = registry.stores.load(store_url.scheme)
    # Only an index with pages passes multi_spaces, so stores without the capability still open.
    extra = {"multi_spaces": multi_spaces(pages, settings)} if pages is not None else {}
    store: VectorStore = factory(store_url, spaces, overwrite=mismatch, settings=settings, **extra)
    new_meta: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "clip_model": clip_model,
        "text_model": text_model,
        "spaces": spaces,
        # A store given by path is recorded absolute; the default stays "lance" (under the
        # index directory, wherever it is moved).
        "store": recorded_store(meta, store_record(store_url, root)),
    }
    if page_config is not None:
        new_meta["pages"] = {**page_config, "dim": pages.dim, "space": PAGES_SPACE}
    if meta != new_meta:
        write_meta(root, new_meta)
    chosen = {"model": clip_model or "none", "text_model": text_model}
    index = _assemble(settings.model_copy(update=chosen), store, clip, text, pages)
    if mismatch:
        _reembed(index)
    return index


def _assemble(
    settings: Settings,
    store: VectorStore,
    clip: ImageTextEncoder | None,
    text: TextEncoder,
    pages: PageEncoder | None = None,
) -> Index:
    """The Index over one store and its encoders, with blobs, manifest, pipeline and search."""
    blobs = BlobStore(settings.index / "blobs")
    manifest = Manifest(settings.index / "manifest.sqlite")
    indexer = Indexer(store, blobs, manifest, clip, text, settings, ingesters(), pages=pages)
    return Index(
        settings,
        store=store,
        clip=clip,
        text=text,
        blobs=blobs,
        manifest=manifest,
        indexer=indexer,
        searcher=Searcher(store, clip, text, pages=pages),
        pages=pages,
    )


def _reembed(index: Index) -> None:
    """Re-index every recorded source with the index's current models."""
    sources = [record.source for record in index.manifest]
    index.manifest.clear()
    if sources:
        index.add(sources, force=True)
