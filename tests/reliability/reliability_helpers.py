"""Shared by the reliability tests: a mixed corpus, the CLI in a child process, process trees."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw


def make_mixed_corpus(root: Path, images: int, pdfs: int, pages: int = 3) -> Path:
    """``images`` captioned pictures (distinct colours and shapes) and ``pdfs`` small PDFs."""
    import pymupdf

    root.mkdir(parents=True, exist_ok=True)
    for i in range(images):
        colour = ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)
        image = Image.new("RGB", (64 + i % 7, 48 + i % 5), (250, 250, 250))
        draw = ImageDraw.Draw(image)
        box = (8 + i % 9, 8 + i % 4, 50, 40)
        (draw.ellipse if i % 2 else draw.rectangle)(box, fill=colour)
        (root / f"img{i:04d}.png").write_bytes(_png(image))
        (root / f"img{i:04d}.txt").write_text(f"picture {i}: a shape in colour {colour}")
    for d in range(pdfs):
        doc = pymupdf.open()
        for p in range(pages):
            page = doc.new_page(width=300, height=200)
            page.insert_text((20, 40), f"Document {d} page {p}: maintenance step {d * 10 + p}.")
        doc.save(root / f"doc{d:02d}.pdf")
        doc.close()
    return root


CATEGORIES = ("Shoes", "Bags", "Jackets", "Lamps")


def make_catalogs(root: Path, catalogs: int, products: int, variants: int = 2) -> list[Path]:
    """``catalogs`` product catalogs, each in its own folder with its photos (the first a CSV,
    the rest JSON Lines): ``products`` priced products and ``variants`` colour variants each."""
    import csv
    import json

    files = []
    for c in range(catalogs):
        folder = root / f"shop{c:02d}"
        (folder / "img").mkdir(parents=True, exist_ok=True)
        rows: list[dict[str, object]] = []
        for i in range(products + variants):
            n = c * 100 + i
            colour = ((n * 37) % 256, (n * 91) % 256, (n * 53) % 256)
            image = Image.new("RGB", (48 + i % 5, 40 + i % 3), colour)
            ImageDraw.Draw(image).ellipse((6, 6, 30 + i % 9, 30), fill=(255 - colour[0], 90, 40))
            (folder / f"img/p{i:03d}.png").write_bytes(_png(image))
            category = CATEGORIES[n % len(CATEGORIES)]
            row: dict[str, object] = {
                "sku": f"S{c:02d}-{i:03d}",
                "name": f"{category[:-1]} model {n} in colour {colour}",
                "category": category,
                "price": 10 + n % 90,
                "color": ("Red", "Green", "Blue", "Black")[n % 4],
                "description": f"Catalog {c} product {i}: a {category.lower()} item.",
                "images": f"img/p{i:03d}.png",
            }
            if i >= products:  # a variant of an earlier product of this catalog
                row = {**row, "sku": "", "parent_sku": f"S{c:02d}-{i - products:03d}"}
            rows.append(row)
        if c == 0:
            path = folder / "products.csv"
            with path.open("w", newline="") as fh:
                writer = csv.DictWriter(fh, sorted({k for r in rows for k in r}))
                writer.writeheader()
                writer.writerows(rows)
        else:
            path = folder / "products.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        files.append(path)
    return files


def _png(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for ``python -m mmrag`` in a child: offline, OCR off, this checkout."""
    src = str(Path(__file__).resolve().parents[2] / "src")
    path = os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return {**env, "MMRAG_OCR": "0", **extra}


def start_index(targets: list[Path], index: Path, model: Path, **env: str) -> subprocess.Popen[str]:
    """``mmrag index TARGETS --json`` in a child process."""
    command = [sys.executable, "-m", "mmrag", "index", *map(str, targets)]
    command += ["--index", str(index), "--model", str(model), "--json", "--no-progress"]
    return subprocess.Popen(
        command,
        env=cli_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


#: Runs ``mmrag ARGS`` in this child and prints, last, its exit code, wall time and peak
#: memory in MB: the child's own high-water mark (VmHWM; getrusage's ru_maxrss would also
#: count the test process it was forked from, which Linux carries across exec) and
#: ``ru_maxrss`` of its largest child (a decode worker).
_MEASURED = """
import json, resource, sys, time
from mmrag.cli import main
started = time.monotonic()
code = main(sys.argv[1:])
status = open("/proc/self/status").read().split("VmHWM:")[1].split()
print(json.dumps({"code": code, "seconds": round(time.monotonic() - started, 1),
                  "peak_mb": int(status[0]) // 1024,
                  "children_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
                  // 1024}))
"""


def measured_index(
    targets: list[Path], index: Path, model: Path, timeout: float = 300, **env: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``mmrag index TARGETS --json`` in a child: (its report, its code, time and peak RSS)."""
    command = [sys.executable, "-c", _MEASURED, "index", *map(str, targets)]
    command += ["--index", str(index), "--model", str(model), "--json", "--no-progress"]
    done = subprocess.run(
        command, env=cli_env(**env), capture_output=True, text=True, timeout=timeout, check=False
    )
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0 and len(lines) >= 2, done.stderr[-3000:]
    return json.loads(lines[-2]), json.loads(lines[-1])


def report_of(process: subprocess.Popen[str], timeout: float = 300) -> dict[str, object]:
    """The --json report of a finished ``mmrag index``."""
    out, err = process.communicate(timeout=timeout)
    assert process.returncode in (0, 3), err[-3000:]
    return dict(json.loads(out.strip().splitlines()[-1]))


def manifest_sources(index: Path) -> int:
    """How many sources the manifest records (0 before it exists); read-only, never blocks."""
    path = index / "manifest.sqlite"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.1) as db:
            return int(db.execute("SELECT count(*) FROM sources").fetchone()[0])
    except sqlite3.Error:  # not created yet, or mid-write
        return 0


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    """The pids in ``pids`` that still run (zombies count as gone)."""
    out = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(pid)
    return out
