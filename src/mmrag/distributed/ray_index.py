"""``mmrag index --ray``: decode and embed on a Ray cluster, write from the calling process.

The calling process (the driver) lists the sources and skips unchanged ones exactly as
the single-process indexer does (:meth:`~mmrag.indexer.Indexer.pending`); Ray Data
splits the rest into batches and runs them on an actor pool (``map_batches`` with
:class:`~mmrag.distributed.worker.EmbedBatches`: one model load per actor, one GPU per
actor where the cluster has GPUs). Each batch's items, vectors and pictures come back and
the driver writes them as the single-process path does (blobs first, then
:meth:`~mmrag.indexer.Indexer.write`: store, stale items, manifest) as results stream
in, in the single-process path's flush sizes. So ids, blobs and manifest are the same,
and an interrupted run resumes: written sources are current in the manifest and are
skipped unread.

A batch whose actor call raises is retried by Ray (up to :data:`BATCH_RETRIES` times;
an actor that dies is restarted); per-source failures never fail a batch, they are
reported like in a single-process run. Workers need the sources at the same paths (a
shared filesystem) or as URLs, and mmrag's dependencies installed; mmrag's own code is
shipped with the job (``runtime_env`` ``py_modules``).

Example::

    report = ray_index(indexer, ["photos/"], address="local", make_pipeline=factory)
"""

from __future__ import annotations

import contextlib
import logging
import math
import pickle
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DependencyError, MmragError
from ..indexer import Indexer, IndexReport, Progress, Work
from ..ingest.sources import Source
from .worker import BatchResult, EmbedBatches, PipelineFactory

__all__ = ["BATCH_RETRIES", "ray_index"]

log = logging.getLogger(__name__)

_PACKAGE_DIR = Path(__file__).resolve().parents[1]
#: Retries of a batch whose actor call raised (on top of the first try).
BATCH_RETRIES = 3


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise DependencyError("ray[data]", "ray", "Indexing on a Ray cluster") from e
    return ray


def ray_index(
    indexer: Indexer,
    targets: Iterable[str],
    *,
    address: str,
    make_pipeline: PipelineFactory,
    metadata: Mapping[str, Any] | None = None,
    prune: bool = False,
    force: bool = False,
    progress: Progress | None = None,
    catalog_map: Mapping[str, str] | None = None,
    sources_per_batch: int | None = None,
    cpus_per_actor: float = 1.0,
    udf: type[EmbedBatches] = EmbedBatches,
) -> IndexReport:
    """Index ``targets`` on the Ray cluster at ``address`` (``local``: start one here).

    Returns the same :class:`IndexReport` as :meth:`Indexer.run`. ``udf`` is the actor
    class (tests pass one that fails).
    """
    ray = _import_ray()
    started = time.perf_counter()
    targets = list(targets)
    report = indexer.new_report()
    sources, todo = indexer.pending(targets, report, force)
    errors = report.failed
    if todo:
        per_batch = sources_per_batch or indexer.settings.batch_size
        udf_args = {
            "make_pipeline": make_pipeline,
            "force": force,
            "metadata": dict(metadata or {}),
            "catalog_map": dict(catalog_map or {}),
        }
        writer = _Writer(indexer, report)
        with _session(ray, address), writer:
            for result in _run(ray, indexer, todo, per_batch, cpus_per_actor, udf, udf_args):
                writer.add(result)
                if progress:
                    progress(report.processed - errors, len(sources))
    if progress:
        progress(len(sources), len(sources))
    if prune:
        report.pruned = indexer.prune(targets)
    report.seconds = time.perf_counter() - started
    return report


@contextlib.contextmanager
def _session(ray: Any, address: str) -> Iterator[None]:
    """Connect to (or start) Ray unless this process is connected already; disconnect after."""
    if ray.is_initialized():  # a caller (a notebook, a test) manages the session
        yield
        return
    options: dict[str, Any] = {
        # Ship this mmrag (its package directory) to the workers: they import it ahead of
        # any installed copy.
        "runtime_env": {"py_modules": [str(_PACKAGE_DIR)]},
        "log_to_driver": False,  # keep the CLI's output what a single-process run prints
        "include_dashboard": False,
        "logging_level": logging.WARNING,
    }
    try:
        with warnings.catch_warnings():
            # Ray starts its processes with fork+exec; LanceDB's warning about forking a
            # process that holds its runtime concerns children that run on without exec.
            warnings.filterwarnings("ignore", message="lancedb fork support is experimental")
            if address == "local":
                ray.init(**options)
            else:
                ray.init(address=address, **options)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise ConfigError(f"cannot connect to the Ray cluster at {address!r}: {e}") from e
    try:
        yield
    finally:
        ray.shutdown()


def _pool(ray: Any, cpus_per_actor: float, batches: int) -> dict[str, Any]:
    """Actor pool size and per-actor resources: one actor per GPU, else per ``cpus_per_actor``."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if gpus:
        return {"size": min(gpus, batches), "num_gpus": 1, "num_cpus": cpus_per_actor}
    cpus = float(resources.get("CPU", 1))
    size = max(1, min(int(cpus // cpus_per_actor), batches))
    return {"size": size, "num_gpus": 0, "num_cpus": cpus_per_actor}


def _run(
    ray: Any,
    indexer: Indexer,
    todo: list[Source],
    per_batch: int,
    cpus_per_actor: float,
    udf: type[EmbedBatches],
    udf_args: dict[str, Any],
) -> Iterator[BatchResult]:
    """The batches' results as the actor pool finishes them (in no particular order)."""
    rows = []
    for source in todo:
        record = indexer.manifest.get(source.location)
        rows.append({"source": source.location, "known": record.hash if record else ""})
    batches = math.ceil(len(rows) / per_batch)
    pool = _pool(ray, cpus_per_actor, batches)
    ctx = ray.data.DataContext.get_current()
    saved = (ctx.actor_task_retry_on_errors, ctx.enable_progress_bars)
    # An exception in a batch is retried (Ray's own retry_exceptions on actor tasks).
    ctx.actor_task_retry_on_errors, ctx.enable_progress_bars = True, False
    try:
        with warnings.catch_warnings():
            # Ray 2.60 names no parameter for these two and deprecates passing them as remote
            # args; without them Ray Data retries a failing batch (and restarts) forever.
            warnings.filterwarnings("ignore", message=".*ray_remote_args.* is deprecated")
            ds = ray.data.from_items(rows, override_num_blocks=batches).map_batches(
                udf,
                fn_constructor_kwargs=udf_args,
                batch_size=per_batch,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=pool["size"]),
                num_cpus=pool["num_cpus"],
                num_gpus=pool["num_gpus"],
                max_task_retries=BATCH_RETRIES,
                max_restarts=BATCH_RETRIES,
            )
        for row in ds.iter_rows():
            yield pickle.loads(row["result"])
    except MmragError:
        raise
    except Exception as e:  # Ray wraps the worker's error; what was written stays written
        raise MmragError(
            f"a batch failed on the Ray cluster after {BATCH_RETRIES} retries: {e}; "
            "run the same command again to resume"
        ) from e
    finally:
        ctx.actor_task_retry_on_errors, ctx.enable_progress_bars = saved


class _Writer:
    """Writes batch results as the single-process indexer does, in its flush sizes.

    Pictures and the report are taken at once; items wait until a flush's worth has come
    (the single-process rule: ``4 x batch_size`` items, at least 64), because each write
    is a store commit and a manifest transaction, which small Ray batches would multiply.
    Leaving the ``with`` block writes what is waiting, on errors too: it is embedded.
    """

    def __init__(self, indexer: Indexer, report: IndexReport) -> None:
        self.indexer = indexer
        self.report = report
        self.flush_items = max(indexer.settings.batch_size * 4, 64)
        self.works: list[Work] = []
        self.vectors: list[dict[str, np.ndarray]] = []

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()

    def add(self, result: BatchResult) -> None:
        """Take one batch's result: pictures and report now, items at the next flush."""
        for kind, key, data in result.blobs:  # pictures before the items that point at them
            self.indexer.blobs.put(kind, key, data)
        for source, digest in result.unchanged:
            self.indexer.manifest.same_bytes(source, digest)  # records the file's new stat
        part = result.report
        self.report.unchanged += part.unchanged
        for error in part.errors:
            self.report.fail(error["path"], error["reason"])
        self.report.skipped.extend(part.skipped)
        self.report.warn(part.warnings)
        if result.works:
            self.works.extend(result.works)
            self.vectors.append(result.vectors)
        if sum(len(w.items) for w in self.works) >= self.flush_items:
            self.flush()

    def flush(self) -> None:
        """Write the waiting items: store, stale items, manifest (:meth:`Indexer.write`)."""
        if not self.works:
            return
        vectors = {s: np.concatenate([v[s] for v in self.vectors]) for s in self.vectors[0]}
        self.indexer.write(self.works, vectors, self.report)
        self.works, self.vectors = [], []
