"""Product search on a real catalog: product-level recall@10, with and without query parsing.

Indexes ``products.jsonl`` and ``color_variants.jsonl`` of the Magento Luma sample catalog
together and asks two query sets:

* names: each product's name -> that product;
* colour + category: "orange hoodie" -> every product with an orange variant whose category
  or name is a hoodie (recall over min(relevant, 10)).

A hit counts as its product (a photo or a variant stands for the product it is of); the
first 10 distinct products of the top 50 hits are scored. Prints recall, p50 latency, the
CPU model and the load. Run::

    PYTHONPATH=src python benchmarks/catalog_search.py [--data DIR] [--model none]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench_common import cpu_model

from mmrag import app

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "evaldata" / "magento_luma_catalog"
#: Query noun -> the category segments that make a product one.
NOUNS = {
    "hoodie": ("Hoodies & Sweatshirts",),
    "sweatshirt": ("Hoodies & Sweatshirts",),
    "tee": ("Tees",),
    "tank": ("Tanks", "Bras & Tanks"),
    "bra": ("Bras & Tanks",),
    "jacket": ("Jackets",),
    "pants": ("Pants",),
    "shorts": ("Shorts",),
}


def load(path: Path) -> list[dict]:
    """A JSON Lines file as dicts."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def colour_queries(products: list[dict], variants: list[dict]) -> list[tuple[str, set[str]]]:
    """("orange hoodie", {skus}) for every colour and noun some product has together."""
    by_sku = {p["sku"]: p for p in products}
    out = []
    colours = sorted({v["color"] for v in variants})
    for colour in colours:
        for noun, segments in NOUNS.items():
            relevant = set()
            for v in variants:
                p = by_sku.get(v["parent_sku"])
                if v["color"] != colour or p is None:
                    continue
                if any(s in p["categories"] for s in segments) or noun in p["name"].lower():
                    relevant.add(p["sku"])
            if relevant:
                out.append((f"{colour.lower()} {noun}", relevant))
    return out


def run(
    index: app.Index, queries: Sequence[tuple[str, set[str]]], parse: bool
) -> tuple[float, float]:
    """Mean recall@10 over product skus and p50 latency (ms)."""
    recalls, times = [], []
    for text, relevant in queries:
        started = time.perf_counter()
        hits = index.search(text, k=50, parse=parse, min_score=0.0)
        times.append((time.perf_counter() - started) * 1000)
        products = index.products_of([h.item for h in hits])
        ranked: list[str] = []
        for hit in hits:
            product = products.get(hit.item.id)
            sku = product.metadata.get("sku") if product else None
            if sku and sku not in ranked:
                ranked.append(sku)
        found = len(relevant & set(ranked[:10]))
        recalls.append(found / min(len(relevant), 10))
    return statistics.mean(recalls), statistics.median(times)


def report(name: str, measure: Callable[[bool], tuple[float, float]]) -> None:
    """One query set with parsing off (the baseline) and on."""
    for parse in (False, True):
        recall, p50 = measure(parse)
        load1 = os.getloadavg()[0]
        figures = f"recall@10={recall:.3f}  p50={p50:.1f} ms  load={load1:.2f}"
        print(f"{name:<16} parse={parse!s:<5} {figures}")


def main() -> None:
    """Index the catalog and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--model", default="none", help="CLIP model ('none': text paths only)")
    args = parser.parse_args()
    products = load(args.data / "products.jsonl")
    variants = load(args.data / "color_variants.jsonl")
    print(f"CPU: {cpu_model()}  load: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        index = app.open_index(Path(tmp) / "idx", model=args.model)
        started = time.perf_counter()
        rep = index.add([args.data / "products.jsonl", args.data / "color_variants.jsonl"])
        print(
            f"indexed {rep.items} items in {time.perf_counter() - started:.1f} s "
            f"({len(rep.skipped)} rows skipped, {rep.failed} files failed); CLIP: {args.model}"
        )
        names = [(p["name"], {p["sku"]}) for p in products]
        colours = colour_queries(products, variants)
        print(f"{len(names)} name queries, {len(colours)} colour+category queries")
        report("names", lambda parse: run(index, names, parse))
        report("colour+category", lambda parse: run(index, colours, parse))
        index.close()


if __name__ == "__main__":
    main()
