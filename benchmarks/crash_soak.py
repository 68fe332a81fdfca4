"""kill -9 soak: SIGKILL `mmrag index` at random points of a long run, then compare to a clean run.

Run: ``PYTHONPATH=src python benchmarks/crash_soak.py --images 400 --pdfs 20 --catalogs 8
--kills 10``.

It writes a corpus of captioned PNGs, small PDFs and product catalogs (JSON Lines, 20 rows with
a photo each, in their own folders: their photos are indexed as images too), indexes it once
without crashes (the baseline, in this process's child), then runs ``mmrag index`` again and
again on a second index, killing each run (SIGKILL) at a random moment, until ``--kills``
kills landed; a last run finishes. It prints: kills, orphaned processes found after each kill,
sources each run re-did, items lost, extra ids, duplicate rows, whether search results match,
the peak RSS of any run (VmHWM, polled), wall time of the clean run against the crashed
series, the CPU model and the load average. Uses a tiny random CLIP (mmrag.testing) and
MiniLM, offline.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import cpu_model
from PIL import Image, ImageDraw

QUERIES = ("a red circle", "maintenance step 12", "picture 40", "document 3 page 1", "Lamp 105")


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus"


def catalog(folder: Path, number: int, rows: int = 20) -> None:
    """A JSON Lines catalog of ``rows`` priced products, each with its own photo."""
    (folder / "img").mkdir(parents=True)
    lines = []
    for i in range(rows):
        n = number * 100 + i
        colour = ((n * 37) % 256, (n * 91) % 256, (n * 53) % 256)
        Image.new("RGB", (48 + i % 5, 40), colour).save(folder / f"img/p{i:03d}.png")
        kind = ("Shoe", "Bag", "Jacket", "Lamp")[n % 4]
        row = {"sku": f"S{n}", "name": f"{kind} {n}", "category": f"{kind}s", "price": 10 + n % 90}
        lines.append(json.dumps({**row, "images": f"img/p{i:03d}.png"}))
    (folder / "products.jsonl").write_text("\n".join(lines) + "\n")


def corpus(root: Path, images: int, pdfs: int, catalogs: int = 0) -> Path:
    import pymupdf

    root.mkdir(parents=True)
    for c in range(catalogs):
        catalog(root / f"shop{c:02d}", c)
    for i in range(images):
        colour = ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)
        image = Image.new("RGB", (64 + i % 7, 48 + i % 5), (250, 250, 250))
        (ImageDraw.Draw(image).ellipse if i % 2 else ImageDraw.Draw(image).rectangle)(
            (8, 8, 50, 40), fill=colour
        )
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        (root / f"img{i:05d}.png").write_bytes(buffer.getvalue())
        (root / f"img{i:05d}.txt").write_text(f"picture {i}: a shape in colour {colour}")
    for d in range(pdfs):
        doc = pymupdf.open()
        for p in range(3):
            doc.new_page(width=300, height=200).insert_text((20, 40), f"Document {d} page {p}.")
        doc.save(root / f"doc{d:03d}.pdf")
        doc.close()
    return root


def start(root: Path, index: Path, model: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MMRAG_OCR": "0"}
    command = [sys.executable, "-m", "mmrag", "index", str(root), "--index", str(index)]
    command += ["--model", str(model), "--json", "--no-progress"]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )


def tree(pid: int) -> set[int]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except OSError:
                continue
            kids.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in kids.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def rss_mb(pids: set[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def living(pids: set[int]) -> set[int]:
    out = set()
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
                out.add(pid)
        except OSError:
            pass
    return out


def sources(index: Path) -> int:
    try:
        with sqlite3.connect(f"file:{index / 'manifest.sqlite'}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT count(*) FROM sources").fetchone()[0])
    except sqlite3.Error:
        return 0


def snapshot(index: Path) -> dict[str, object]:
    import mmrag

    with mmrag.open(index, create=False) as opened:
        ids = {i for record in opened.manifest for i in record.items}
        return {
            "ids": ids,
            "rows": opened.store.count(),
            "search": {q: [h.item.id for h in opened.search(q, k=10)] for q in QUERIES},
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--pdfs", type=int, default=20)
    parser.add_argument("--catalogs", type=int, default=8)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from mmrag.testing import make_tiny_clip

    rng = random.Random(args.seed)
    print(f"cpu: {cpu_model()}; {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        root = corpus(Path(tmp) / "c", args.images, args.pdfs, args.catalogs)
        model = make_tiny_clip(Path(tmp) / "clip")
        started = time.perf_counter()
        clean = start(root, Path(tmp) / "clean", model)
        clean.communicate()
        clean_s = time.perf_counter() - started
        crashed, kills, orphans, peak, redone = Path(tmp) / "crashed", 0, 0, 0.0, []
        started = time.perf_counter()
        while kills < args.kills:
            before = sources(crashed)
            run = start(root, crashed, model)
            # Half the kills land during start-up or decoding, half just after a batch landed
            # (inside the next flush): a random moment in whichever window was drawn.
            after_batch = rng.random() < 0.5
            deadline = time.monotonic() + (600 if after_batch else rng.uniform(1.0, 6.0))
            while time.monotonic() < deadline and run.poll() is None:
                peak = max(peak, rss_mb({run.pid} | tree(run.pid)))
                if after_batch and sources(crashed) > before:
                    time.sleep(rng.uniform(0.0, 1.5))
                    break
                time.sleep(0.1)
            if run.poll() is not None:
                redone.append(json.loads(run.communicate()[0].splitlines()[-1])["added"])
                break  # finished before the kill: the corpus is done
            family = tree(run.pid)
            run.send_signal(signal.SIGKILL)
            run.communicate()
            time.sleep(2.0)  # workers poll their parent every 0.5 s
            orphans += len(living(family))
            kills += 1
            print(f"kill {kills}: manifest {before} -> {sources(crashed)} sources ({load()})")
        final = start(root, crashed, model)
        report = json.loads(final.communicate()[0].splitlines()[-1])
        crashed_s = time.perf_counter() - started
        want, got = snapshot(Path(tmp) / "clean"), snapshot(crashed)
        lost = len(want["ids"] - got["ids"])  # type: ignore[operator]
        extra = len(got["ids"] - want["ids"])  # type: ignore[operator]
        duplicates = int(got["rows"]) - len(got["ids"])  # type: ignore[arg-type, call-overload]
        print(
            f"kills {kills}, orphans {orphans}, final run: added {report['added']}, "
            f"unchanged {report['unchanged']}, updated {report['updated']}, "
            f"failed {report['failed']}"
        )
        print(
            f"items lost {lost}, extra {extra}, duplicate rows {duplicates}, "
            f"search identical {got['search'] == want['search']}, peak RSS {peak:.0f} MB"
        )
        print(f"clean run {clean_s:.1f} s (baseline); crashed series {crashed_s:.1f} s  ({load()})")


if __name__ == "__main__":
    main()
