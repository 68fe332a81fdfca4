"""What a Ray actor runs: the indexer's own pieces on a batch of sources, with no store.

An actor builds one pipeline (:class:`~mmrag.indexer.Indexer` with the index's models,
loaded once) and, per call, reads, decodes, ingests and embeds a batch of sources exactly
as the single-process path does. It writes nothing: pictures are collected
(:class:`CollectedBlobs`), and the items, vectors, blobs and the batch's report go back
to the calling process, which writes them through the index's store and manifest.
The manifest is not reachable from a worker node, so the driver sends each source's
recorded content hash along (:class:`KnownHashes`).
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..blobs import BlobStore
from ..errors import StoreError
from ..indexer import Indexer, IndexReport, Work
from ..ingest.catalog import catalog_mapping
from ..ingest.sources import Source, is_url
from ..manifest import Manifest

__all__ = [
    "BatchResult",
    "CollectedBlobs",
    "EmbedBatches",
    "KnownHashes",
    "NoStore",
    "PipelineFactory",
]

#: Builds the worker's pipeline from the blob collector and the hash stand-in.
PipelineFactory = Callable[[BlobStore, Manifest], Indexer]


@dataclass
class BatchResult:
    """One batch's output: what the driver writes, and what it reports."""

    works: list[Work]
    #: Per space, one row per item of ``works`` in order (NaN: no vector there).
    vectors: dict[str, np.ndarray]
    #: (kind, key, JPEG bytes) of every picture the batch's items point at.
    blobs: list[tuple[str, str, bytes]]
    report: IndexReport
    #: (source, hash) of sources whose bytes had not changed since they were indexed.
    unchanged: list[tuple[str, str]] = field(default_factory=list)
    #: Wall time the actor spent on the batch (read, decode, ingest, embed).
    seconds: float = 0.0


class CollectedBlobs(BlobStore):
    """A blob store that keeps what is put in memory, for the driver to write."""

    def __init__(self) -> None:
        super().__init__(Path("blobs"))  # paths are named, never touched
        self.held: dict[tuple[str, str], bytes] = {}

    def has(self, kind: str, key: str) -> bool:
        """Whether this batch already holds the blob."""
        return (kind, key) in self.held

    def put(self, kind: str, key: str, data: bytes) -> Path:
        """Keep the bytes (the first copy of a key wins, as on disk)."""
        self.held.setdefault((kind, key), data)
        return self.path(kind, key)

    def take(self) -> list[tuple[str, str, bytes]]:
        """Everything held, emptied for the next batch."""
        out = [(kind, key, data) for (kind, key), data in self.held.items()]
        self.held.clear()
        return out


class KnownHashes:
    """Stands in for the manifest on a worker: the recorded hash of each source of a batch."""

    def __init__(self) -> None:
        self.hashes: dict[str, str] = {}
        self.unchanged: list[tuple[str, str]] = []

    def reset(self, hashes: Mapping[str, str]) -> None:
        """Start a batch with these sources' recorded hashes ('' for a new source)."""
        self.hashes = {source: h for source, h in hashes.items() if h}
        self.unchanged = []

    def same_bytes(self, source: str, digest: str) -> bool:
        """True when ``source`` was indexed from these bytes (the driver records its stat)."""
        same = self.hashes.get(source) == digest
        if same:
            self.unchanged.append((source, digest))
        return same

    def __getattr__(self, name: str) -> Any:
        raise StoreError(f"a Ray worker has no manifest ({name}); the calling process keeps it")


class NoStore:
    """The store of a worker's pipeline: there is none; the calling process writes."""

    def __getattr__(self, name: str) -> Any:
        raise StoreError(f"a Ray worker writes no store ({name}); the calling process does")


class EmbedBatches:
    """The Ray Data UDF: one pipeline per actor, one batch of sources per call.

    ``batch`` columns: ``source`` (location) and ``known`` (recorded hash or '');
    the output is one row whose ``result`` is the pickled :class:`BatchResult`.
    """

    def __init__(
        self,
        make_pipeline: PipelineFactory,
        force: bool = False,
        metadata: Mapping[str, Any] | None = None,
        catalog_map: Mapping[str, str] | None = None,
    ) -> None:
        self.blobs = CollectedBlobs()
        self.known = KnownHashes()
        self.indexer = make_pipeline(self.blobs, cast(Manifest, self.known))
        threads = _assigned_cpus()
        if threads and self.indexer.clip is not None and hasattr(self.indexer.clip, "num_threads"):
            # Torch may take every free core; an actor gets the CPUs Ray gave it.
            self.indexer.clip.num_threads = threads
        self.force = force
        self.metadata = dict(metadata or {})
        self.catalog_map = dict(catalog_map or {})

    def __call__(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Ray Data's entry point (numpy batch format)."""
        result = self.run([str(s) for s in batch["source"]], [str(h) for h in batch["known"]])
        return {"result": np.array([pickle.dumps(result)], dtype=object)}

    def run(self, locations: list[str], known: list[str]) -> BatchResult:
        """Ingest and embed ``locations`` as the single-process indexer does."""
        started = time.perf_counter()
        self.blobs.take()  # a retried batch starts clean
        self.known.reset(dict(zip(locations, known, strict=True)))
        report = self.indexer.new_report()
        sources = [Source(loc, is_url(loc)) for loc in locations]
        with catalog_mapping(self.indexer.ingesters, self.catalog_map):
            works = list(self.indexer.works(sources, report, self.force, self.metadata))
        vectors = self.indexer.embed(works) if works else {}
        for work in works:
            work.pixels = {}  # model input: not worth shipping back
        return BatchResult(
            works,
            vectors,
            self.blobs.take(),
            report,
            self.known.unchanged,
            time.perf_counter() - started,
        )


def _assigned_cpus() -> int:
    """Whole CPUs Ray assigned this actor (0 outside Ray)."""
    try:
        import ray

        return int(ray.get_runtime_context().get_assigned_resources().get("CPU", 0))
    except Exception:  # not in a Ray worker
        return 0
