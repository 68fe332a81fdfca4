"""The catalog through the CLI: index with a column mapping, search with and without parsing."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from mmrag.cli import main
from test_catalog import catalog_rows, write_images

pytestmark = pytest.mark.integration


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    out, _ = capsys.readouterr()
    return code, out


def test_index_and_search_a_catalog(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{k if k != "price" else "cost": v for k, v in r.items()} for r in catalog_rows()]
    folder = tmp_path / "shop"
    write_images(folder, rows)
    path = folder / "products.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, sorted({k for r in rows for k in r}))
        writer.writeheader()
        writer.writerows(rows)
    opts = ["--index", str(tmp_path / "idx"), "--model", "none"]
    code, out = run(capsys, "index", str(path), *opts, "--catalog-map", "price=cost", "--json")
    assert code == 0 and json.loads(out)["failed"] == 0

    code, out = run(capsys, "search", "shoe under $60", *opts, "--json", "-k", "20")
    result = json.loads(out)
    assert result["parsed"] == {
        "query": "shoe",
        "where": {"price": {"lt": 60.0}},
        "prefer": {},
        "boosts": {"categories": ["Shoes"]},
    }
    products = [r for r in result["results"] if r["kind"] == "product"]
    assert products and all(r["metadata"]["price"] < 60 for r in products)
    assert {"sku", "name", "price", "category", "colors"} <= products[0]["metadata"].keys()

    code, out = run(capsys, "search", "shoe under $60", *opts, "--json", "-k", "20", "--no-parse")
    result = json.loads(out)
    assert "parsed" not in result
    assert any(r["metadata"].get("price", 0) >= 60 for r in result["results"])

    code, out = run(capsys, "search", "green shoe", *opts)
    assert code == 0 and out.startswith('parsed: {"query": "shoe", "where": {"colors": "Green"}')

    asked = products[0]["id"]
    code, out = run(capsys, "similar", "--item", asked, *opts, "--json", "-k", "4")
    similar = json.loads(out)["results"]
    assert code == 0 and len(similar) == 4
    assert all(r["kind"] == "product" and r["id"] != asked for r in similar)


def test_a_bad_catalog_mapping_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["index", str(tmp_path), "--index", str(tmp_path / "i"), "--catalog-map", "x"])
    assert code == 2
