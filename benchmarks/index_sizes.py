"""Bytes per item by kind: LanceDB on disk, Qdrant payload, blobs, manifest (for docs/scaling.md).

Run from the repo root: ``.venv/bin/python benchmarks/index_sizes.py [--n 5000]``.

Items are made as the ingesters make them (ids, hashes, typed metadata, 800-character
chunks with their document context) with ViT-B/32 (512-d) and MiniLM (384-d) vectors,
written and optimised (indexes built) in a LanceDB store per kind; the store's directory
size over the item count is the figure. Blob sizes come from real photos (coco_mini
thumbnails) and real PDF pages (rendered at the full-copy size), when the evaluation data
is present. The baseline in the same run is the raw float32 vector size of each kind.
"""

from __future__ import annotations

import glob
import io
import json
import os
import sqlite3
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_common import cpu_model  # noqa: E402

EVAL = REPO.parent / "shared" / "evaldata"


def du(path: Path) -> int:
    """Bytes of every file under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def items_of(kind: str, n: int) -> tuple[list, dict[str, np.ndarray]]:
    """``n`` items of ``kind`` shaped like the ingesters' output, with unit vectors."""
    from mmrag.types import Item

    rng = np.random.default_rng(0)
    words = [
        "torque",
        "pump",
        "bolt",
        "housing",
        "seal",
        "pressure",
        "valve",
        "flange",
        "gasket",
        "motor",
    ]
    out, clip, text = (
        [],
        np.full((n, 512), np.nan, np.float32),
        np.full((n, 384), np.nan, np.float32),
    )
    for i in range(n):
        h = f"{rng.integers(2**62):016x}" * 4
        if kind == "image":
            out.append(
                Item(
                    id=h[:24],
                    kind="image",
                    source=f"/data/photos/{i:07d}.jpg",
                    content_hash=h,
                    thumb=h,
                    metadata={
                        "width": 640,
                        "height": 480,
                        "caption": "a red bicycle leaning on a wall",
                    },
                )
            )
            clip[i] = rng.standard_normal(512)
        elif kind == "page":
            out.append(
                Item(
                    id=h[:24],
                    kind="page",
                    source="/data/docs/report.pdf",
                    parent=h[24:48],
                    content_hash=h,
                    thumb=h,
                    doc="report.pdf",
                    page=i % 300 + 1,
                    metadata={"title": "Annual report 2018"},
                )
            )
            clip[i] = rng.standard_normal(512)
        else:
            chunk = " ".join(rng.choice(words, 130))[:800]
            out.append(
                Item(
                    id=h[:24],
                    kind="text",
                    source="/data/docs/report.pdf",
                    parent=h[24:48],
                    role="chunk",
                    text=chunk,
                    doc="report.pdf",
                    page=i % 300 + 1,
                    context="Annual report 2018; Item 8. Financial Statements",
                )
            )
            text[i] = rng.standard_normal(384)
    vectors = {"clip": clip, "text": text}
    for v in vectors.values():
        v /= np.linalg.norm(v, axis=1, keepdims=True)
    return out, vectors  # fmt: skip


def store_sizes(n: int, scratch: Path) -> None:
    """LanceDB bytes per item and Qdrant payload bytes per item, by kind."""
    from mmrag.stores.lance import LanceStore
    from mmrag.stores.records import item_to_record

    for kind in ("image", "page", "text"):
        items, vectors = items_of(kind, n)
        store = LanceStore(scratch / kind, {"clip": 512, "text": 384})
        for lo in range(0, n, 1000):
            store.upsert(items[lo : lo + 1000], {s: v[lo : lo + 1000] for s, v in vectors.items()})
        store.optimize()
        raw = (512 if kind != "text" else 384) * 4
        payload = np.mean([len(json.dumps(item_to_record(it))) for it in items[:500]])
        print(f"{kind:6} LanceDB {du(scratch / kind) / n:7.0f} B/item (raw vector {raw} B); "
              f"Qdrant payload (JSON) {payload:5.0f} B/item")  # fmt: skip


def blob_sizes(scratch: Path) -> None:
    """Thumbnail bytes per photo and full-copy bytes per rendered page, from real files."""
    from PIL import Image

    from mmrag.blobs import FULL_SIDE, BlobStore

    blobs = BlobStore(scratch / "blobs")
    photos = sorted(glob.glob(str(EVAL / "coco_mini" / "*2017" / "*.jpg")))[:100]
    if photos:
        sizes = [blobs.put_image("thumb", f"{i:064x}", Image.open(p), 256).stat().st_size
                 for i, p in enumerate(photos)]  # fmt: skip
        originals = np.mean([os.path.getsize(p) for p in photos])
        print(f"thumb  {np.mean(sizes):7.0f} B/photo (256 px, q85; originals {originals:.0f} B, "
              f"not copied) over {len(photos)} coco_mini photos")  # fmt: skip
    pdfs = sorted(glob.glob(str(EVAL / "pdfs_real" / "**" / "*.pdf"), recursive=True))[:3]
    try:
        import pymupdf
    except ImportError:
        pdfs = []
    full: list[int] = []
    for pdf in pdfs:
        with pymupdf.open(pdf) as doc:
            for page in list(doc)[:10]:
                zoom = FULL_SIDE / max(page.rect.width, page.rect.height)
                pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom))
                image = Image.open(io.BytesIO(pix.tobytes("png")))
                full.append(blobs.put_image("full", f"{len(full) + 1000:064x}", image, FULL_SIDE)
                            .stat().st_size)  # fmt: skip
    if full:
        print(f"full   {np.mean(full):7.0f} B/page ({FULL_SIDE} px, q85) over {len(full)} pages "
              f"of {len(pdfs)} pdfs_real documents; a page also has a thumb")  # fmt: skip


def manifest_size(scratch: Path) -> None:
    """Manifest bytes per source (a photo with two items: the image and its caption)."""
    from mmrag.manifest import Manifest, SourceRecord

    m = Manifest(scratch / "manifest.sqlite")
    m.put_many([SourceRecord(f"/data/photos/{i:07d}.jpg", f"{i:064x}", 123456, 10**18,
                             (f"{i:024x}", f"{i + 1:024x}")) for i in range(20_000)])  # fmt: skip
    m.close()
    with sqlite3.connect(scratch / "manifest.sqlite") as db:
        db.execute("VACUUM")
    print(f"manifest {(scratch / 'manifest.sqlite').stat().st_size / 20_000:5.0f} B/source")


def main() -> None:
    """Print every figure with the CPU and the load."""
    n = int(sys.argv[sys.argv.index("--n") + 1]) if "--n" in sys.argv else 5000
    print(f"CPU: {cpu_model()}; load {os.getloadavg()}; {n} items per kind")
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        store_sizes(n, scratch)
        blob_sizes(scratch)
        manifest_size(scratch)


if __name__ == "__main__":
    main()
