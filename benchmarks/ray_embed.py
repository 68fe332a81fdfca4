"""Images/s indexed single-process vs on local Ray, on the same cores, and how to extrapolate.

Run from the repo root: ``.venv/bin/python benchmarks/ray_embed.py`` (``--limit 96`` photos
of coco_mini, or generated ones when the evaluation data is absent; ``--two-node`` adds a
two-node cluster started on this machine with ``ray start``).

All runs index the same photos into fresh indexes with the real ViT-B/32 architecture
(random weights: same FLOPs) and MiniLM, OCR off:

(a) single process: ``Index.add`` (the baseline: decode pool + one encoder);
(b) local Ray, ``ray.init(num_cpus=CORES)`` in this process: ``Index.add(ray="local")``
    with one actor per core, timed with and without Ray's start-up;
(c) with ``--two-node``: a head and a worker raylet (``ray start``, one CPU each) on this
    machine, the run connecting to the head's address.

Ray's overhead is stated as it is: start-up (``ray.init`` or the cluster), actor creation
and model load per actor, and the per-batch round trip; the figures say where a cluster
pays. The driver's write rate (blobs, store upsert, manifest) is measured separately: it
is the ceiling of any cluster size, since one process writes.

Extrapolation to N nodes (printed at the end): per-node rate r (b, without start-up, per
core times cores per node), scaling efficiency e (c vs b when run; else assumed 0.9), and
the driver's write ceiling w: images/s(N) ~= min(N * r * e, w); wall time for S images
~= start-up + actor start + S / images/s(N).
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_common import cpu_model  # noqa: E402

COCO = REPO.parent / "shared" / "evaldata" / "coco_mini"


def load1() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def say(text: str) -> None:
    """One result line, with the load beside it."""
    print(f"{text}   [load {load1():.2f}]", flush=True)


def photos(limit: int, scratch: Path) -> list[str]:
    """``limit`` coco_mini photos, or generated photos where the data is absent."""
    found = sorted(glob.glob(str(COCO / "*2017" / "*.jpg")))[:limit]
    if len(found) >= limit:
        return found
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for i in range(limit):
        path = scratch / f"gen{i:04d}.jpg"
        pixels = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path, quality=90)
        out.append(str(path))
    return out


def timed(run: Callable[[], Any]) -> tuple[Any, float]:
    """``run()`` and its wall time in seconds."""
    start = time.perf_counter()
    result = run()
    return result, time.perf_counter() - start


def clip_vectors(root: Path, opts: dict[str, Any]) -> dict[str, np.ndarray]:
    """The stored CLIP vectors of an index, by id."""
    import mmrag

    with mmrag.open(root, **opts) as index:
        ids = [item.id for item in index.store.find({"kind": "image"})]
        return index.store.get_vectors("clip", ids)


def agreement(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """The least cosine between the two indexes' vectors of the same item."""
    assert a.keys() == b.keys(), "the two paths stored different items"
    return min(float(a[k] @ b[k] / np.linalg.norm(a[k]) / np.linalg.norm(b[k])) for k in a)


def run_ray(files: list[str], root: Path, opts: dict[str, Any], address: str) -> dict[str, Any]:
    """Index on Ray at ``address``; wall time, and the driver's time spent writing."""
    import mmrag
    from mmrag.distributed import ray_index as ri
    from mmrag.indexer import Indexer

    spent = [0.0]
    busy = [0.0]  # seconds the actors spent on batches, summed (each actor has one CPU)
    add, write = ri._Writer.add, Indexer.write

    def timed_add(self: Any, result: Any) -> None:
        busy[0] += result.seconds
        add(self, result)

    def timed_write(self: Any, *args: Any) -> None:
        t = time.perf_counter()
        write(self, *args)
        spent[0] += time.perf_counter() - t

    ri._Writer.add, Indexer.write = timed_add, timed_write  # type: ignore[method-assign]
    try:
        with mmrag.open(root, **opts) as index:
            report, seconds = timed(lambda: index.add(files, ray=address))
    finally:
        ri._Writer.add, Indexer.write = add, write  # type: ignore[method-assign]
    # Steady state per actor: images over the time the actors spent on batches, which
    # leaves out Ray's start-up, actor creation, model loads and the round trips.
    steady = len(files) / busy[0] if busy[0] else float("nan")
    return {"report": report, "seconds": seconds, "write_s": spent[0], "steady": steady}


def two_node(files: list[str], root: Path, opts: dict[str, Any]) -> dict[str, Any] | None:
    """A head and a worker raylet on this machine (one CPU each), started with ``ray start``."""
    ray_cli = str(Path(sys.executable).with_name("ray"))
    port = 6391
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    head = [
        ray_cli,
        "start",
        "--head",
        f"--port={port}",
        "--num-cpus=1",
        "--include-dashboard=false",
    ]
    worker = [ray_cli, "start", f"--address=127.0.0.1:{port}", "--num-cpus=1"]
    try:
        _, up = timed(
            lambda: [
                subprocess.run(c, env=env, check=True, capture_output=True) for c in (head, worker)
            ]
        )
        say(f"(c) two-node cluster up (ray start x2): {up:.1f} s")
        return run_ray(files, root, opts, f"127.0.0.1:{port}") | {"startup": up}
    except (subprocess.CalledProcessError, OSError) as e:
        print(f"(c) two-node cluster failed to start: {e}")
        return None
    finally:
        subprocess.run([ray_cli, "stop", "--force"], env=env, capture_output=True)


def main() -> None:
    """Run (a), (b) and optionally (c); print figures and the extrapolation."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=96, help="photos to index")
    parser.add_argument("--two-node", action="store_true", help="also a two-node local cluster")
    parser.add_argument("--batch", type=int, default=8, help="sources per Ray batch")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cores = len(os.sched_getaffinity(0))
    print(f"CPU: {cpu_model()}, {cores} cores; load {os.getloadavg()}")
    import mmrag
    from mmrag.testing import make_random_clip

    scratch = Path(tempfile.mkdtemp(prefix="ray-embed-"))
    try:
        files = photos(args.limit, scratch)
        model = make_random_clip(scratch / "b32")
        # Batches of 8 sources, so that a run of ~100 photos has enough batches to spread.
        opts = {"model": str(model), "ocr": False, "batch_size": args.batch}
        n = len(files)
        print(f"{n} photos, ViT-B/32 (random weights), MiniLM, OCR off")

        with mmrag.open(scratch / "warm", **opts) as index:  # caches (ONNX export) warm once
            index.add(files[:4])
        with mmrag.open(scratch / "single", **opts) as index:
            single, t_single = timed(lambda: index.add(files))
        say(f"(a) single process: {t_single:.1f} s, {n / t_single:.2f} images/s")

        import ray

        shipped = {"py_modules": [str(REPO / "src" / "mmrag")]}
        start = {"num_cpus": cores, "include_dashboard": False, "logging_level": "WARNING"}
        _, t_init = timed(lambda: ray.init(runtime_env=shipped, **start))
        say(f"(b) ray.init(num_cpus={cores}): {t_init:.1f} s")
        local = run_ray(files, scratch / "ray", opts, "local")
        warm = run_ray(files, scratch / "ray2", opts, "local")  # Ray up, new actors
        ray.shutdown()
        for name, r in (("first run", local), ("second run", warm)):
            say(f"(b) local Ray, {cores} actors, {name}: {r['seconds']:.1f} s, "
                f"{n / r['seconds']:.2f} images/s; with ray.init {n / (r['seconds'] + t_init):.2f}"
                f" images/s; per actor busy {r['steady']:.2f} images/s; "
                f"driver writing {r['write_s']:.2f} s")  # fmt: skip
        cos = agreement(clip_vectors(scratch / "single", opts), clip_vectors(scratch / "ray", opts))
        print(f"    same items as (a): {single.items == local['report'].items}; "
              f"least CLIP cosine vs (a): {cos:.6f}")  # fmt: skip

        two = two_node(files, scratch / "two", opts) if args.two_node else None
        if two:
            rate = n / two["seconds"]
            say(f"(c) two nodes x 1 CPU: {two['seconds']:.1f} s, {rate:.2f} images/s, per actor "
                f"busy {two['steady']:.2f} images/s (+{two['startup']:.1f} s start)")  # fmt: skip

        per_core = warm["steady"]  # one actor per core
        write_ceiling = n / warm["write_s"] if warm["write_s"] else float("inf")
        # Capped at 1: above it is noise from the other jobs on a shared machine.
        eff = min(1.0, two["steady"] / warm["steady"]) if two else 0.9
        print(
            f"\nRay overhead here: start {t_init:.1f} s, then (b) ran at "
            f"{(n / warm['seconds']) / (n / t_single):.2f}x the single process on the same cores."
        )
        print(
            f"Extrapolation: r = {per_core:.2f} images/s per core (b, second run), "
            f"e = {eff:.2f} ({'measured, (c)/(b)' if two else 'assumed'}), "
            f"driver write ceiling w = {write_ceiling:.0f} images/s."
        )
        for nodes, cores_per in ((4, 16), (16, 16), (64, 16)):
            rate = min(nodes * cores_per * per_core * eff, write_ceiling)
            print(f"  {nodes} nodes x {cores_per} cores: ~{rate:.0f} images/s, "
                  f"1M images in ~{1e6 / rate / 3600:.1f} h")  # fmt: skip
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
