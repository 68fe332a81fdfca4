"""Move an index to another store (LanceDB <-> Qdrant) without re-embedding.

Items and their stored vectors are read from the index's store and written to the target
in batches, then the copy is verified (counts in all and by kind, a sample of stored
vectors, and a sample of searches run on both stores) and only then does the index record
the target as its store (``mmrag.json``). Blobs and the manifest stay in the index
directory, which the new store is used from, so they need no copy; the migration checks
that every picture an item points at is there.

Resumable: ``<index>/migrate.json`` records the target and how many items (in id order)
are copied; it is written before the first write and after every batch, so a run killed
at any point continues where the record says (writes are upserts by id: a batch copied
twice is copied once). The index's write lock is held throughout, so the source does not
change under the copy. The old store is left as it was: drop it once satisfied::

    report = migrate_index(Settings(index=Path("idx")), "qdrant://db1:6333/photos")
    report.verified, report.copied
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import registry
from .blobs import BlobStore
from .config import Settings
from .errors import ConfigError, IndexError_, StoreError
from .lock import write_lock
from .meta import SCHEMA_VERSION, chosen_store, read_meta, write_meta
from .stores.base import VectorStore
from .stores.url import StoreURL, parse_store_url
from .types import Item

__all__ = ["PROGRESS_NAME", "MigrationReport", "migrate_index", "verify_copy"]

#: The progress record beside ``mmrag.json``.
PROGRESS_NAME = "migrate.json"
#: Kinds counted one by one when verifying.
_KINDS = ("image", "page", "figure", "slide", "text", "product")


@dataclass
class MigrationReport:
    """What a migration did and how the copy was checked."""

    source: str
    target: str
    items: int = 0
    #: Items written by this run (less than ``items`` when it resumed).
    copied: int = 0
    resumed_from: int = 0
    batches: int = 0
    #: Blob keys items point at that the index directory does not hold.
    missing_blobs: int = 0
    verification: dict[str, Any] = field(default_factory=dict)
    verified: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-safe data (the CLI's ``--json``)."""
        return asdict(self)


def migrate_index(
    settings: Settings,
    to: str,
    *,
    batch_size: int = 500,
    sample: int = 32,
    k: int = 10,
    wait: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
) -> MigrationReport:
    """Copy the index at ``settings.index`` into the store ``to``, verify, and switch to it.

    Raises StoreError (the index keeps its old store) when the copy does not verify.
    """
    started = time.perf_counter()
    root = settings.index
    meta = read_meta(root)
    if meta is None:
        raise IndexError_(f"no index at {root}: nothing to migrate")
    if meta.get("schema") != SCHEMA_VERSION or not meta.get("spaces"):
        raise IndexError_(
            f"index {root} has schema {meta.get('schema')}; migrate reads {SCHEMA_VERSION}"
        )
    spaces: dict[str, int] = dict(meta["spaces"])
    src_url = parse_store_url(chosen_store(settings, meta), default_dir=root / "store").absolute()
    dst_url = parse_store_url(to, default_dir=root / "store").absolute()
    if dst_url == src_url:
        raise ConfigError(f"the index already uses {dst_url.to_url()}: nothing to migrate")
    report = MigrationReport(src_url.to_url(), dst_url.to_url())
    with write_lock(root, wait=wait):
        source = _open(src_url, spaces, settings)
        try:
            target = _open(dst_url, spaces, settings)
            try:
                _copy_all(root, source, target, report, batch_size, progress)
                target.optimize()  # build the target's indexes before it serves anything
                report.verification = verify_copy(source, target, _sample_ids(source, sample), k)
                report.verified = bool(report.verification["ok"])
            finally:
                _close(target)
        finally:
            _close(source)
        report.seconds = time.perf_counter() - started
        if not report.verified:
            raise StoreError(
                f"the copy in {report.target} did not verify ({report.verification['problems']}); "
                f"the index still uses {report.source}"
            )
        write_meta(root, {**meta, "store": report.target})
        (root / PROGRESS_NAME).unlink(missing_ok=True)
    return report


def _open(url: StoreURL, spaces: Mapping[str, int], settings: Settings) -> VectorStore:
    """A store by URL through the registry (never overwriting what it holds)."""
    factory = registry.stores.load(url.scheme)
    store: VectorStore = factory(url, spaces, overwrite=False, settings=settings)
    return store


def _close(store: VectorStore) -> None:
    close = getattr(store, "close", None)  # Qdrant local mode locks its folder until closed
    if callable(close):
        close()


def _copy_all(
    root: Path,
    source: VectorStore,
    target: VectorStore,
    report: MigrationReport,
    batch_size: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Copy every item in id order, from where the progress record says, recording as it goes."""
    ids = sorted(item.id for item in source.find({}))
    report.items = len(ids)
    done = _resume_point(root, report, len(ids), target)
    report.resumed_from = done
    blobs = BlobStore(root / "blobs")
    _save_progress(root, report, done)  # before the first write: a crash now is a resume
    for lo in range(done, len(ids), batch_size):
        chunk = ids[lo : lo + batch_size]
        items = source.get(chunk)
        target.upsert(items, _vectors(source, items))
        report.missing_blobs += sum(1 for it in items if it.thumb and not _has_blob(blobs, it))
        report.copied += len(items)
        report.batches += 1
        _save_progress(root, report, lo + len(chunk))
        if progress:
            progress(lo + len(chunk), len(ids))


def _resume_point(root: Path, report: MigrationReport, total: int, target: VectorStore) -> int:
    """How many items (in id order) a previous run copied; 0 for a fresh start."""
    try:
        record = json.loads((root / PROGRESS_NAME).read_text())
    except FileNotFoundError:
        record = None
    except (OSError, ValueError) as exc:
        raise IndexError_(f"migration record {root / PROGRESS_NAME} is unreadable: {exc}") from None
    ours = record is not None and (record.get("source"), record.get("target")) == (
        report.source,
        report.target,
    )
    if ours and record is not None and record.get("total") == total:
        return min(int(record.get("done", 0)), total)
    held = target.count()
    if held and not ours:
        raise ConfigError(
            f"{report.target} already holds {held} items; migrate into an empty store"
        )
    if held:  # our own partial copy of a source that changed since: start it again
        drop = getattr(target, "drop", None)
        if not callable(drop):
            raise StoreError(f"cannot empty {report.target} to restart the migration")
        drop()
    return 0


def _save_progress(root: Path, report: MigrationReport, done: int) -> None:
    record = {"source": report.source, "target": report.target, "total": report.items, "done": done}
    tmp = root / (PROGRESS_NAME + ".tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(root / PROGRESS_NAME)  # atomic: a kill leaves the old record or the new


def _vectors(store: VectorStore, items: Sequence[Item]) -> dict[str, np.ndarray]:
    """The items' stored vectors per space, NaN rows where an item has none."""
    ids = [it.id for it in items]
    out = {}
    for space, dim in store.spaces.items():
        found = store.get_vectors(space, ids)
        arr = np.full((len(ids), dim), np.nan, dtype=np.float32)
        for row, item_id in enumerate(ids):
            if item_id in found:
                arr[row] = found[item_id]
        out[space] = arr
    return out


def _has_blob(blobs: BlobStore, item: Item) -> bool:
    try:
        return blobs.has("thumb", item.thumb or "")
    except ValueError:  # not a content hash: nothing of ours to check
        return True


def _sample_ids(store: VectorStore, n: int) -> list[str]:
    """Up to ``n`` ids spread evenly over the id order (the same on every run)."""
    ids = sorted(item.id for item in store.find({}))
    step = max(1, len(ids) // max(n, 1))
    return ids[::step][:n]


def verify_copy(
    source: VectorStore, target: VectorStore, ids: Sequence[str], k: int = 10
) -> dict[str, Any]:
    """Counts, sampled vectors and sampled searches compared between two stores.

    Each sampled item's stored vector is searched with on both stores. ``ok`` needs equal
    counts (in all and by kind), every sampled vector copied (cosine >= 0.9999) and found
    first by itself on the target (score >= 0.999; a duplicate may tie it), and the top
    ``k`` lists to share at least half their ids on average. That last bar is low on
    purpose: an ANN index (LanceDB's IVF_SQ above a few thousand rows) is compared with an
    exact scan or with another index trained on the same rows, and its recall, not the
    copy, sets the overlap (0.83 on 10k uniform random 32-d vectors, 1.0 between exact
    scans); ``identical`` and ``mean_overlap`` say how close they came.
    """
    counts = {"all": (source.count(), target.count())}
    for kind in _KINDS:
        counts[kind] = (source.count({"kind": kind}), target.count({"kind": kind}))
    problems = [f"{name}: {a} vs {b}" for name, (a, b) in counts.items() if a != b]
    searches = _compare_searches(source, target, ids, k)
    if searches["min_vector_cosine"] < 0.9999:
        problems.append(f"a copied vector differs (cosine {searches['min_vector_cosine']})")
    if searches["not_found_by_itself"]:
        problems.append(f"{searches['not_found_by_itself']} copied items not found by their vector")
    if searches["mean_overlap"] < 0.5:
        problems.append(f"searches agree on only {searches['mean_overlap']} of their top {k}")
    return {
        "ok": not problems,
        "problems": "; ".join(problems),
        "counts": {name: a for name, (a, _) in counts.items() if a},
        **searches,
    }


def _compare_searches(
    source: VectorStore, target: VectorStore, ids: Sequence[str], k: int
) -> dict[str, Any]:
    """Each sampled item's stored vector, compared and searched with on both stores."""
    queries = identical = lost = 0
    overlaps: list[float] = []
    min_cos = 1.0
    for space in source.spaces:
        theirs = target.get_vectors(space, ids)
        for item_id, vec in source.get_vectors(space, ids).items():
            other = theirs.get(item_id)
            min_cos = min(min_cos, 0.0 if other is None else _cosine(vec, other))
            a, b = source.query(space, vec, k), target.query(space, vec, k)
            ids_a, ids_b = [h.item.id for h in a], [h.item.id for h in b]
            same_scores = len(a) == len(b) and all(
                abs(x.score - y.score) < 1e-4 for x, y in zip(a, b, strict=True)
            )
            queries += 1
            lost += not b or b[0].score < 0.999
            identical += ids_a == ids_b or same_scores
            overlaps.append(len(set(ids_a) & set(ids_b)) / max(len(ids_a), 1))
    return {
        "queries": queries,
        "identical": identical,
        "mean_overlap": round(float(np.mean(overlaps)), 4) if overlaps else 1.0,
        "min_vector_cosine": round(min_cos, 6),
        "not_found_by_itself": lost,
    }


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(a @ b) / (na * nb) if na and nb else 0.0
