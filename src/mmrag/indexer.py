"""The indexing pipeline: sources -> decoded items -> vectors -> store, incrementally.

Decoding runs in worker processes while the main process encodes, with a bounded
number of images in flight so memory stays flat however large the folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .blobs import BlobStore
from .config import Settings
from .errors import InputError
from .imaging import preprocess_image
from .ingest.base import Extracted, Ingester
from .ingest.fetch import fetch_url
from .ingest.images import (
    IMAGE_SUFFIXES,
    DecodedImage,
    DecodeFailure,
    DecodeTask,
    decode_image,
    decode_path,
)
from .ingest.ocr_images import lines_to_items
from .ingest.sources import Source, expand_sources
from .manifest import Manifest, SourceRecord
from .models.base import ImageTextEncoder, TextEncoder
from .stores.base import VectorStore
from .types import VISUAL_KINDS, Item, content_hash, item_id

__all__ = ["IndexReport", "Indexer"]

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
#: A file's (size, mtime_ns) as the manifest records it; (None, None) when there is none.
_FileStat = tuple[int | None, int | None]
_NO_STAT: _FileStat = (None, None)

#: Below this many images decoding runs inline: starting worker processes costs more.
_POOL_MIN_IMAGES = 24
#: Decode workers run this much nicer than the encoder. Decoding is ~10% of the CPU time of
#: an image, and torch's OpenMP threads stall at every barrier while a worker holds one of
#: their cores; at lower priority workers decode in the encoder's gaps (and in bursts while
#: the main process waits for them) instead of preempting it.
_DECODE_NICE = 10
_FULL_COPY_SIDE = 1024


@dataclass
class IndexReport:
    """What an indexing run did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    pruned: int = 0
    items: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    paths: dict[str, bool] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def processed(self) -> int:
        """Sources dealt with so far, whatever the outcome."""
        return self.added + self.updated + self.unchanged + self.failed

    def warn(self, warnings: Iterable[str]) -> None:
        """Record warnings once each (one missing OCR engine must not print a thousand times)."""
        for warning in warnings:
            if warning not in self.warnings:
                self.warnings.append(warning)

    def fail(self, source: str, reason: str) -> None:
        """Record a failed source."""
        self.failed += 1
        self.errors.append({"path": source, "reason": reason})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "pruned": self.pruned,
            "items": self.items,
            "errors": self.errors,
            "warnings": self.warnings,
            "paths": self.paths,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _Work:
    """The items made from one source, waiting to be embedded and written."""

    source: str
    hash: str
    size: int | None
    mtime_ns: int | None
    items: list[Item]
    pixels: dict[str, np.ndarray] = field(default_factory=dict)
    blobs: list[tuple[str, str, bytes]] = field(default_factory=list)


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
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.manifest = manifest
        self.clip = clip
        self.text = text
        self.settings = settings
        self.ingesters = {suffix: ing for ing in ingesters for suffix in ing.suffixes}
        self.image_size = clip.image_size if clip is not None else 224

    @property
    def suffixes(self) -> frozenset[str]:
        """Every file suffix this indexer can take."""
        return IMAGE_SUFFIXES | frozenset(self.ingesters)

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
        report = IndexReport(paths={"clip": self.clip is not None, "text": True})
        sources, errors = expand_sources(targets, self.suffixes)
        for error in errors:
            report.fail(error.source, error.reason)
        todo = self._changed(sources, report, force)
        extra = dict(metadata or {})
        batch: list[_Work] = []
        pending = 0
        for work in self._produce(todo, report, force):
            if extra:
                work.items = [i.with_(metadata={**i.metadata, **extra}) for i in work.items]
            batch.append(work)
            pending += len(work.items)
            if pending >= max(self.settings.batch_size * 4, 64):
                self._flush(batch, report)
                batch, pending = [], 0
                if progress:
                    progress(report.processed - len(errors), len(sources))
        self._flush(batch, report)
        if progress:
            progress(len(sources), len(sources))
        if prune:
            report.pruned = self.prune(targets)
        report.seconds = time.perf_counter() - started
        return report

    # -- deciding what to do ------------------------------------------------

    def _changed(self, sources: list[Source], report: IndexReport, force: bool) -> list[Source]:
        """Sources whose file stat differs from the manifest (URLs are always fetched)."""
        todo = []
        for source in sources:
            record = None if force or source.is_url else self.manifest.get(source.location)
            if record is not None and _stat(source.location) == (record.size, record.mtime_ns):
                report.unchanged += 1
                continue
            todo.append(source)
        return todo

    # -- producing items ----------------------------------------------------

    def _produce(self, sources: list[Source], report: IndexReport, force: bool) -> Iterator[_Work]:
        images = [s for s in sources if not s.is_url and s.suffix in IMAGE_SUFFIXES]
        others = [s for s in sources if s.is_url or s.suffix not in IMAGE_SUFFIXES]
        for result in self._decode_files(images):
            if isinstance(result, DecodeFailure):
                report.fail(result.source, result.reason)
            elif force or not self._same_bytes(result.source, result.hash, report):
                report.warn(result.warnings)
                yield self._image_work(result, _stat(result.source))
        for source in others:
            try:
                work = self._other_work(source, force, report)
            except InputError as exc:
                report.fail(exc.source, exc.reason)
                continue
            except Exception as exc:  # one bad document must not stop the run
                log.exception("ingesting %s failed", source.location)
                report.fail(source.location, f"{type(exc).__name__}: {exc}")
                continue
            if work is not None:
                yield work

    def _same_bytes(self, source: str, digest: str, report: IndexReport) -> bool:
        """True (and the new file stat recorded) when the source's bytes did not change."""
        record = self.manifest.get(source)
        if record is None or record.hash != digest:
            return False
        self.manifest.put(SourceRecord(source, digest, *_stat(source), record.items))
        report.unchanged += 1
        return True

    def _decode_files(self, images: list[Source]) -> Iterator[DecodedImage | DecodeFailure]:
        tasks = [
            DecodeTask(
                s.location,
                self.image_size,
                self.settings.thumb_size,
                self.settings.max_image_pixels,
                self.settings.ocr,
            )
            for s in images
        ]
        workers = self.settings.workers or os.cpu_count() or 1
        if len(tasks) < _POOL_MIN_IMAGES or workers <= 1:
            yield from map(decode_path, tasks)
            return
        context = multiprocessing.get_context("spawn")
        window = max(self.settings.batch_size * 4, workers * 8)
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_lower_priority,
            initargs=(_DECODE_NICE,),
        ) as pool:
            in_flight: list[Future[DecodedImage | DecodeFailure]] = []
            queue = iter(tasks)
            for task in queue:
                in_flight.append(pool.submit(decode_path, task))
                if len(in_flight) >= window:
                    break
            while in_flight:
                result = in_flight.pop(0).result()
                next_task = next(queue, None)
                if next_task is not None:
                    in_flight.append(pool.submit(decode_path, next_task))
                yield result

    def _image_work(self, decoded: DecodedImage, stat: _FileStat) -> _Work:
        source = decoded.source
        image_id = item_id(source)
        caption = "\n".join(decoded.texts) if decoded.texts else None
        meta: dict[str, Any] = {
            "width": decoded.width,
            "height": decoded.height,
            "format": decoded.format,
            **decoded.metadata,
        }
        if caption:
            meta["caption"] = caption
        image = Item(
            id=image_id,
            kind="image",
            source=source,
            content_hash=decoded.hash,
            text=caption,
            thumb=decoded.hash,
            metadata=meta,
        )
        work = _Work(
            source=source,
            hash=decoded.hash,
            size=stat[0],
            mtime_ns=stat[1],
            items=[image],
        )
        work.pixels[image_id] = decoded.pixels
        work.blobs.append(("thumb", decoded.hash, decoded.thumb_jpeg))
        if decoded.ocr_lines:
            found = lines_to_items(
                decoded.ocr_lines,
                image,
                id_key=(source, "ocr"),
                chunk_chars=self.settings.chunk_chars,
                scale=decoded.ocr_scale,
            )
            work.items.extend(e.item.with_(thumb=decoded.hash) for e in found)
        if caption:
            work.items.append(
                Item(
                    id=item_id(source, "caption"),
                    kind="text",
                    source=source,
                    content_hash=decoded.hash,
                    parent=image_id,
                    role="caption",
                    text=caption,
                    thumb=decoded.hash,
                    metadata=dict(decoded.metadata),
                )
            )
        return work

    def _other_work(self, source: Source, force: bool, report: IndexReport) -> _Work | None:
        """A URL or document source as work; None when its bytes did not change."""
        try:
            return self._fetch_or_read(source, force, report)
        finally:
            for ingester in set(self.ingesters.values()):
                problems = getattr(ingester, "warnings", None)
                if problems:  # pages or slides skipped inside an otherwise good document
                    report.warn(str(problem) for problem in problems)
                    problems.clear()

    def _fetch_or_read(self, source: Source, force: bool, report: IndexReport) -> _Work | None:
        if source.is_url:
            data, content_type = fetch_url(source.location, self.settings)
            if not force and self._same_bytes(source.location, content_hash(data), report):
                return None
            suffix = source.suffix
            if content_type.startswith("image/") or suffix in IMAGE_SUFFIXES:
                decoded = decode_image(
                    data,
                    source.location,
                    size=self.image_size,
                    thumb_size=self.settings.thumb_size,
                    max_pixels=self.settings.max_image_pixels,
                    ocr=self.settings.ocr,
                )
                return self._image_work(decoded, _NO_STAT)
            suffix = ".pdf" if content_type == "application/pdf" else suffix
            if suffix not in self.ingesters:
                raise InputError(source.location, f"no ingester for {content_type or suffix}")
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / f"download{suffix}"
                path.write_bytes(data)
                return self._document_work(source.location, path, data, _NO_STAT)
        path = Path(source.location)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(source.location, f"cannot read file: {exc.strerror or exc}") from None
        if not force and self._same_bytes(source.location, content_hash(data), report):
            return None
        return self._document_work(source.location, path, data, _stat(source.location))

    def _document_work(self, source: str, path: Path, data: bytes, stat: _FileStat) -> _Work:
        ingester = self.ingesters.get(path.suffix.lower())
        if ingester is None:
            raise InputError(source, f"unsupported file type '{path.suffix}'")
        digest = content_hash(data)
        work = _Work(source, digest, *stat, [])
        for extracted in ingester.extract(path, self.settings, digest):
            work.items.append(self._adopt(extracted, source, work))
        if not work.items:
            raise InputError(source, "nothing to index in this document")
        return work

    def _adopt(self, extracted: Extracted, source: str, work: _Work) -> Item:
        """Attach pixels and blobs to an extracted item; point it at the user-facing source."""
        item = extracted.item
        if item.source != source:
            item = item.with_(source=source)
        if extracted.image is not None and item.kind in VISUAL_KINDS:
            key = hashlib.sha256(f"{work.hash}:{item.id}".encode()).hexdigest()
            work.pixels[item.id] = preprocess_image(extracted.image, self.image_size, draft=False)
            # Written now, not at flush: holding every page image of a 600-page manual
            # until its last page costs gigabytes. Content-addressed, so an early or an
            # orphaned blob is harmless.
            self.blobs.put_image("thumb", key, extracted.image, self.settings.thumb_size)
            self.blobs.put_image("full", key, extracted.image, _FULL_COPY_SIDE)
            item = item.with_(thumb=key)
        return item

    # -- embedding and writing ----------------------------------------------

    def _flush(self, batch: list[_Work], report: IndexReport) -> None:
        if not batch:
            return
        items = [item for work in batch for item in work.items]
        vectors: dict[str, np.ndarray] = {}
        if self.clip is not None:
            vectors["clip"] = self._clip_vectors(items, batch)
        vectors["text"] = self._text_vectors(items)
        olds = {work.source: self.manifest.get(work.source) for work in batch}
        self.store.upsert(items, vectors)
        stale = [
            old_id
            for work in batch
            if (old := olds[work.source]) is not None
            for old_id in set(old.items) - {item.id for item in work.items}
        ]
        if stale:
            self.store.delete(stale)
        self._write_blobs(batch)
        self.manifest.put_many(
            [
                SourceRecord(w.source, w.hash, w.size, w.mtime_ns, tuple(i.id for i in w.items))
                for w in batch
            ]
        )
        for work in batch:
            old = olds[work.source]
            if old is None:
                report.added += 1
            else:
                report.updated += 1
        report.items += len(items)

    def _clip_vectors(self, items: list[Item], batch: list[_Work]) -> np.ndarray:
        assert self.clip is not None
        pixels = {key: px for work in batch for key, px in work.pixels.items()}
        out = np.full((len(items), self.clip.dim), np.nan, dtype=np.float32)
        rows = [i for i, item in enumerate(items) if item.id in pixels]
        if rows:
            stacked = np.stack([pixels[items[i].id] for i in rows])
            out[rows] = self.clip.encode_pixels(stacked)
        return out

    def _text_vectors(self, items: list[Item]) -> np.ndarray:
        out = np.full((len(items), self.text.dim), np.nan, dtype=np.float32)
        rows = [i for i, item in enumerate(items) if item.kind in ("text", "product") and item.text]
        if rows:
            out[rows] = self.text.encode([items[i].text or "" for i in rows])
        return out

    def _write_blobs(self, batch: list[_Work]) -> None:
        for work in batch:
            for kind, key, data in work.blobs:
                self.blobs.put(kind, key, data)

    # -- pruning --------------------------------------------------------------

    def prune(self, targets: Iterable[str] | None = None) -> int:
        """Remove the items of indexed files that no longer exist (under ``targets`` if given)."""
        roots = [str(Path(t).expanduser().resolve()) for t in targets or ()]
        gone = [
            record
            for record in self.manifest
            if "://" not in record.source
            and not Path(record.source).exists()
            and (not roots or any(_under(record.source, root) for root in roots))
        ]
        ids = [item for record in gone for item in record.items]
        if ids:
            self.store.delete(ids)
        self.manifest.remove([record.source for record in gone])
        return len(gone)


def _lower_priority(increment: int) -> None:
    """Decode-worker initializer: yield the CPU to the encoding process (see _DECODE_NICE)."""
    # Not permitted or not supported: decode at normal priority.
    with contextlib.suppress(OSError):
        os.nice(increment)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _stat(path: str) -> _FileStat:
    """(size, mtime in ns) of a file; (None, None) for a URL or an unreadable path."""
    try:
        stat = os.stat(path)
    except OSError:
        return _NO_STAT
    return stat.st_size, stat.st_mtime_ns
