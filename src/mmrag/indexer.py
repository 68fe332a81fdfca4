"""The indexing pipeline: sources -> (decode pool) -> ingesters -> encode -> write.

What a source becomes is its ingester's business (:mod:`mmrag.ingest`); this module only
moves sources along: it expands targets, skips what did not change, reads or fetches the
bytes, has image files decoded in worker processes while the main process encodes, writes
each picture's blobs as it arrives (:mod:`mmrag.blobs`), and writes items and vectors to
the store in batches, then the manifest.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image

from .blobs import FULL_SIDE, BlobStore
from .config import Settings
from .errors import InputError
from .imaging import preprocess_image
from .ingest.base import Extracted, Ingester, SourceData, pick_ingester
from .ingest.decode import DecodeFailure, DecodeTask, decode_bytes
from .ingest.fetch import fetch_url
from .ingest.pool import decode_all
from .ingest.report import IndexReport
from .ingest.sources import Source, expand_sources
from .manifest import FileStat, Manifest, SourceRecord, file_stat
from .models.base import ImageTextEncoder, PageEncoder, TextEncoder
from .stores.base import MultiVectorStore, VectorStore
from .stores.multivector import pool_tokens
from .types import VISUAL_KINDS, Item, content_hash

__all__ = ["PAGES_SPACE", "PAGE_KINDS", "IndexReport", "Indexer", "Progress", "Work"]

log = logging.getLogger(__name__)

#: The multi-vector space page encoders write, and the kinds they embed.
PAGES_SPACE = "pages"
PAGE_KINDS = frozenset({"page", "slide", "image"})

#: Called with (sources done, sources in all) as a run goes.
Progress = Callable[[int, int], None]


@dataclass
class Work:
    """The items made from one source, waiting to be embedded and written (``pixels``:
    model input by item id, dropped once embedded)."""

    source: str
    hash: str
    #: The file's stat when its bytes were read: a file changed since is indexed again.
    stat: FileStat
    items: list[Item] = field(default_factory=list)
    pixels: dict[str, np.ndarray] = field(default_factory=dict)
    #: Page images waiting for the page encoder, and the multi-vectors it made.
    page_queue: list[tuple[str, Image.Image]] = field(default_factory=list)
    multivectors: dict[str, np.ndarray] = field(default_factory=dict)


class Indexer:
    """Indexes sources into a store; skips what did not change.

    indexer = Indexer(store, blobs, manifest, clip, text, settings, ingesters)
    report = indexer.run(["photos/", "manual.pdf"])
    """

    def __init__(
        self,
        store: VectorStore,
        blobs: BlobStore,
        manifest: Manifest,
        clip: ImageTextEncoder | None,
        text: TextEncoder,
        settings: Settings,
        ingesters: Sequence[Ingester] = (),
        *,
        pages: PageEncoder | None = None,
    ) -> None:
        self.store = store
        #: The late-interaction encoder for page, slide and image items (None: off).
        self.pages = pages
        self.blobs = blobs
        self.manifest = manifest
        self.clip = clip
        self.text = text
        self.settings = settings
        self.ingesters = list(ingesters)
        self.image_size = clip.image_size if clip is not None else 224

    @property
    def suffixes(self) -> frozenset[str]:
        """Every file suffix this indexer can take."""
        return frozenset().union(*(ingester.suffixes for ingester in self.ingesters))

    def run(
        self,
        targets: Iterable[str],
        *,
        metadata: Mapping[str, Any] | None = None,
        prune: bool = False,
        force: bool = False,
        progress: Progress | None = None,
    ) -> IndexReport:
        """Index ``targets`` (files, folders, globs, URLs); see :class:`IndexReport`."""
        started = time.perf_counter()
        targets = list(targets)
        report = self.new_report()
        sources, todo = self.pending(targets, report, force)
        errors = report.failed
        batch: list[Work] = []
        for work in self.works(todo, report, force, metadata):
            batch.append(work)
            if sum(len(w.items) for w in batch) >= max(self.settings.batch_size * 4, 64):
                self._flush(batch, report)
                batch = []
                if progress:
                    progress(report.processed - errors, len(sources))
        self._flush(batch, report)
        if progress:
            progress(len(sources), len(sources))
        if prune:
            report.pruned = self.prune(targets)
        report.seconds = time.perf_counter() - started
        return report

    # -- sources -> items ---------------------------------------------------

    def new_report(self) -> IndexReport:
        """An empty report naming the retrieval paths this indexer embeds for."""
        return IndexReport(paths={"clip": self.clip is not None, "text": True})

    def pending(
        self, targets: list[str], report: IndexReport, force: bool
    ) -> tuple[list[Source], list[Source]]:
        """The sources ``targets`` name, and those of them to (re)index; bad targets recorded."""
        sources, errors = expand_sources(targets, self.suffixes)
        for error in errors:
            report.fail(error.source, error.reason)
        # A file with the size and mtime it was indexed with is skipped unread.
        todo = [s for s in sources if force or s.is_url or not self.manifest.is_current(s.location)]
        report.unchanged += len(sources) - len(todo)
        return sources, todo

    def works(
        self,
        sources: list[Source],
        report: IndexReport,
        force: bool,
        metadata: Mapping[str, Any] | None = None,
    ) -> Iterator[Work]:
        """The items of each changed source (pictures written as blobs), with ``metadata``."""
        extra = dict(metadata or {})
        for work in self._produce(sources, report, force):
            if extra:
                work.items = [i.with_(metadata={**i.metadata, **extra}) for i in work.items]
            yield work

    def _produce(self, sources: list[Source], report: IndexReport, force: bool) -> Iterator[Work]:
        """The work of each changed source: files the pool decodes first, then the rest."""
        pooled = [source for source in sources if self._pooled(source)]
        workers = self.settings.workers or os.cpu_count() or 1
        window = max(self.settings.batch_size * 4, workers * 8)
        tasks = [self._task(source.location) for source in pooled]
        for result in decode_all(tasks, workers, window):
            if isinstance(result, DecodeFailure):
                report.fail(result.source, result.reason)
            else:
                decoded = SourceData(result.source, result.hash, decoded=result)
                yield from self._ingest(decoded, report, force)
        for source in sources:
            if not self._pooled(source):
                yield from self._ingest(source, report, force)

    def _ingest(
        self, source: Source | SourceData, report: IndexReport, force: bool
    ) -> Iterator[Work]:
        """One source's work, if its bytes changed; a failure is recorded, never raised."""
        name = source.name if isinstance(source, SourceData) else source.location
        try:
            data = source if isinstance(source, SourceData) else self._load(source)
            if not force and self.manifest.same_bytes(name, data.hash):
                report.unchanged += 1
                return
            work = self._extract(data, report)
        except InputError as exc:
            report.fail(exc.source, exc.reason)
            return
        except Exception as exc:  # one bad source must not stop the run
            log.exception("ingesting %s failed", name)
            report.fail(name, f"{type(exc).__name__}: {exc}")
            return
        yield work

    def _load(self, source: Source) -> SourceData:
        """A file's bytes or a URL's download."""
        if not source.is_url:
            return SourceData.read(source.location)
        data, content_type = fetch_url(source.location, self.settings)
        return SourceData(source.location, content_hash(data), data, content_type)

    def _extract(self, data: SourceData, report: IndexReport) -> Work:
        """The source's items from its ingester, pictures written, warnings reported."""
        ingester = pick_ingester(self.ingesters, data.suffix, data.content_type)
        if ingester is None:
            raise InputError(data.name, f"no ingester for {data.content_type or data.suffix}")
        if ingester.decode and data.decoded is None:  # downloaded image bytes
            data = replace(data, decoded=decode_bytes(data.data, self._task(data.name)))
        work = Work(data.name, data.hash, file_stat(data.name))
        for out in ingester.extract(data, self.settings):
            if isinstance(out, Extracted):
                work.items.append(self._adopt(out, work))
            else:
                report.note(out)
        if not work.items:
            raise InputError(data.name, "nothing to index in this document")
        self._encode_pages(work)
        return work

    def _pooled(self, source: Source) -> bool:
        """Whether the decode pool decodes this source: a file of an ingester that decodes."""
        ingester = pick_ingester(self.ingesters, source.suffix)
        return not source.is_url and ingester is not None and ingester.decode

    def _task(self, location: str) -> DecodeTask:
        s = self.settings
        return DecodeTask(
            location, self.image_size, s.thumb_size, s.max_image_pixels, s.ocr, s.ocr_engine
        )

    def _adopt(self, out: Extracted, work: Work) -> Item:
        """The item, its picture (if any) made into model pixels and written as blobs."""
        item = out.item
        if item.kind not in VISUAL_KINDS:
            return item
        self._queue_page(out, work)
        if out.decoded is not None:  # the decode pool made the pixels and the thumbnail
            work.pixels[item.id] = out.decoded.pixels
        elif out.image is not None:
            work.pixels[item.id] = preprocess_image(out.image, self.image_size, draft=False)
        else:
            return item  # a slide that was not rendered
        self._write_blobs(item.content_hash, out)
        return item.with_(thumb=item.content_hash)

    def _write_blobs(self, key: str, out: Extracted) -> None:
        """The one place pictures are written (keys and kinds: :mod:`mmrag.blobs`).

        Now, not at flush: holding every page image of a 600-page manual until its last
        page costs gigabytes.
        """
        if out.decoded is not None:
            self.blobs.put("thumb", key, out.decoded.thumb_jpeg)
        elif out.image is not None:
            self.blobs.put_image("thumb", key, out.image, self.settings.thumb_size)
            self.blobs.put_image("full", key, out.image, FULL_SIDE)

    def _queue_page(self, out: Extracted, work: Work) -> None:
        """Queue a page, slide or image for the page encoder, encoding a full batch at once.

        Encoded as they come, not at flush: a 600-page manual's page images would not fit.
        """
        if self.pages is None or out.item.kind not in PAGE_KINDS:
            return
        image = out.image
        if image is None and out.decoded is not None and "://" not in out.item.source:
            image = _open_image(out.item.source)  # the pool kept only CLIP-sized pixels
        if image is None:
            return
        work.page_queue.append((out.item.id, image))
        if len(work.page_queue) >= self.settings.page_batch_size:
            self._encode_pages(work)

    def _encode_pages(self, work: Work) -> None:
        """The queued page images into (pooled) multi-vectors."""
        if self.pages is None or not work.page_queue:
            return
        ids, images = zip(*work.page_queue, strict=True)
        work.page_queue.clear()
        factor = self.settings.page_pool
        for item_id, vectors in zip(ids, self.pages.encode_pages(images), strict=True):
            work.multivectors[item_id] = pool_tokens(vectors, factor) if factor > 1 else vectors

    # -- items -> vectors -> store --------------------------------------------

    def _flush(self, batch: list[Work], report: IndexReport) -> None:
        if batch:
            self.write(batch, self.embed(batch), report)

    def embed(self, batch: list[Work]) -> dict[str, np.ndarray]:
        """The vectors of the batch's items, in order, per space (NaN rows: none there)."""
        items = [item for work in batch for item in work.items]
        vectors: dict[str, np.ndarray] = {}
        if self.clip is not None:
            vectors["clip"] = self._clip_vectors(items, batch)
        vectors["text"] = self._text_vectors(items)
        return vectors

    def write(self, batch: list[Work], vectors: dict[str, np.ndarray], report: IndexReport) -> None:
        """Store the batch's items and vectors, drop their sources' stale items, record them."""
        items = [item for work in batch for item in work.items]
        olds = {work.source: self.manifest.get(work.source) for work in batch}
        self.store.upsert(items, vectors)
        multivectors = {key: mv for work in batch for key, mv in work.multivectors.items()}
        if multivectors and isinstance(self.store, MultiVectorStore):
            self.store.set_multivectors(PAGES_SPACE, multivectors)
        stale = [
            old_id
            for work in batch
            if (old := olds[work.source]) is not None
            for old_id in set(old.items) - {item.id for item in work.items}
        ]
        if stale:
            self.store.delete(stale)
        self.manifest.put_many(
            [SourceRecord(w.source, w.hash, *w.stat, tuple(i.id for i in w.items)) for w in batch]
        )
        report.updated += sum(olds[work.source] is not None for work in batch)
        report.added += sum(olds[work.source] is None for work in batch)
        report.items += len(items)

    def _clip_vectors(self, items: list[Item], batch: list[Work]) -> np.ndarray:
        assert self.clip is not None
        pixels = {key: px for work in batch for key, px in work.pixels.items()}
        out = np.full((len(items), self.clip.dim), np.nan, dtype=np.float32)
        rows = [i for i, item in enumerate(items) if item.id in pixels]
        if rows:
            out[rows] = self.clip.encode_pixels(np.stack([pixels[items[i].id] for i in rows]))
        return out

    def _text_vectors(self, items: list[Item]) -> np.ndarray:
        out = np.full((len(items), self.text.dim), np.nan, dtype=np.float32)
        rows = [i for i, item in enumerate(items) if item.kind in ("text", "product") and item.text]
        if rows:
            out[rows] = self.text.encode([items[i].text or "" for i in rows])
        return out

    # -- pruning --------------------------------------------------------------

    def prune(self, targets: Iterable[str] | None = None) -> int:
        """Remove the items of indexed files that no longer exist (under ``targets`` if given)."""
        gone = self.manifest.missing(targets or ())
        ids = [item for record in gone for item in record.items]
        if ids:
            self.store.delete(ids)
        self.manifest.remove([record.source for record in gone])
        return len(gone)


def _open_image(path: str) -> Image.Image | None:
    """A local image file, fully read (None when it cannot be: the item keeps its CLIP path)."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
