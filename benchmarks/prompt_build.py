"""Benchmark prompt building: time for 4 images, and bytes/tokens sent per image at each budget.

Run: ``PYTHONPATH=src python benchmarks/prompt_build.py [--runs 20]``. Uses 4 real photos from
``/work/shared/evaldata/coco_mini`` when present (else generated ones) plus a set of generated
12-megapixel camera-sized JPEGs, and compares ``build_prompt`` with a naive baseline in the same
process: base64 of each original file with no downscaling.
"""

from __future__ import annotations

import argparse
import base64
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from mmrag.answer.prompt import build_prompt
from mmrag.types import Hit, Item

COCO = Path("/work/shared/evaldata/coco_mini")
BUDGETS = [256 * 256, 512 * 512, 768 * 768, 1024 * 1024]


def generated_photos(directory: Path, size: tuple[int, int], count: int = 4) -> list[Path]:
    """JPEGs with gradients and noise, roughly as hard to code as camera photos."""
    paths = []
    w, h = size
    gradient = Image.linear_gradient("L").resize(size)
    for k in range(count):
        noise = Image.frombytes("L", size, os.urandom(w * h)).point(lambda v: v // 3)
        image = Image.merge("RGB", (gradient, noise, gradient.rotate(90 * k, expand=False)))
        path = directory / f"photo{k}_{w}x{h}.jpg"
        image.save(path, quality=90)
        paths.append(path)
    return paths


def coco_photos() -> list[Path]:
    """Four real COCO photos, if the evaluation data is present."""
    found = sorted(COCO.rglob("*.jpg"))[:4] if COCO.exists() else []
    return found if len(found) == 4 else []


def timed(fn: Callable[[], object], runs: int) -> float:
    """Median wall milliseconds of ``runs`` calls (after one warm-up)."""
    return timed_both(fn, runs)[0]


def timed_both(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds (all threads) of ``runs`` calls; CPU time is what a busy
    shared machine cannot inflate."""
    fn()
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def openai_tokens(size: tuple[int, int], detail: str) -> int:
    """OpenAI's documented image cost: low = 85; high = 85 + 170 per 512 tile after its resizing."""
    if detail == "low":
        return 85
    w, h = size
    scale = min(1.0, 2048 / max(w, h))
    w, h = w * scale, h * scale
    scale = min(1.0, 768 / min(w, h))
    w, h = w * scale, h * scale
    return 85 + 170 * math.ceil(w / 512) * math.ceil(h / 512)


def anthropic_tokens(size: tuple[int, int]) -> int:
    """Anthropic's documented estimate, w*h/750, after its own cap of 1568 px on the long edge."""
    w, h = size
    scale = min(1.0, 1568 / max(w, h))
    return round((w * scale) * (h * scale) / 750)


def bench_set(name: str, paths: list[Path], runs: int) -> None:
    """Print build time vs the naive baseline, then bytes and tokens per budget."""
    items = [Item(id=str(i), kind="image", source=str(p)) for i, p in enumerate(paths)]
    hits = [Hit(item, 1.0) for item in items]
    by_id = {item.id: Path(item.source) for item in items}

    def load(item: Item) -> Image.Image:
        return Image.open(by_id[item.id])

    def naive() -> list[str]:
        return [base64.b64encode(p.read_bytes()).decode() for p in paths]

    sizes = [Image.open(p).size for p in paths]
    print(f"\n== {name}: 4 images, {sizes[0][0]}x{sizes[0][1]} (first) ==")
    ms, cpu = timed_both(lambda: build_prompt("q", hits, load, image_budget=512 * 512), runs)
    print(f"build_prompt @512x512 budget: {ms:7.1f} ms wall, {cpu:7.1f} ms CPU (target <= 100 ms)")
    ms, cpu = timed_both(naive, runs)
    print(f"naive base64 of originals:    {ms:7.1f} ms wall, {cpu:7.1f} ms CPU")
    raw = sum(p.stat().st_size for p in paths) / len(paths)
    print(
        f"{'budget':>10} {'size (avg)':>12} {'jpeg B':>9} {'b64 B':>9} "
        f"{'oai low':>8} {'oai high':>9} {'claude':>7} {'ms':>7}"
    )
    for budget in BUDGETS:
        prompt = build_prompt("q", hits, load, image_budget=budget)
        images = prompt.images
        w = statistics.mean(i.size[0] for i in images)
        h = statistics.mean(i.size[1] for i in images)
        jpeg = statistics.mean(len(s.image or b"") for s in prompt.sources)
        b64 = statistics.mean(len(i.b64) for i in images)
        high = statistics.mean(openai_tokens(i.size, "high") for i in images)
        claude = statistics.mean(anthropic_tokens(i.size) for i in images)
        ms = timed(
            lambda b=budget: build_prompt("q", hits, load, image_budget=b), max(3, runs // 4)
        )
        side = int(math.sqrt(budget))
        print(
            f"{side:>5}x{side:<4} {w:6.0f}x{h:<5.0f} {jpeg:9.0f} {b64:9.0f} {85:8d} {high:9.0f} "
            f"{claude:7.0f} {ms:7.1f}"
        )
    size = sizes[0]
    print(
        f"{'original':>10} {size[0]:6d}x{size[1]:<5d} {raw:9.0f} {raw * 4 / 3:9.0f} {85:8d} "
        f"{openai_tokens(size, 'high'):9d} {anthropic_tokens(size):7d}   (naive: whole file)"
    )


def main() -> None:
    """Run the benchmark on real photos (if present) and on 12-megapixel JPEGs."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    print(f"CPU cores: {os.cpu_count()}, Pillow {Image.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        real = coco_photos()
        if real:
            bench_set("COCO photos", real, args.runs)
        else:
            bench_set(
                "generated 640x480 photos", generated_photos(Path(tmp), (640, 480)), args.runs
            )
        bench_set(
            "generated 12 MP camera JPEGs", generated_photos(Path(tmp), (4000, 3000)), args.runs
        )


if __name__ == "__main__":
    main()
