"""Product catalogs: rows -> products, variants and photos; price bounds; bad rows; re-indexing."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

import mmrag
from conftest import draw_photo
from mmrag.types import Item, Range

CATEGORIES = ["Shoes", "Bags", "Jackets"]
COLOURS = ["red", "green", "blue", "yellow", "black", "white"]


def catalog_rows() -> list[dict[str, Any]]:
    """Twelve priced products (one photo each) and three colour variants of two of them."""
    rows: list[dict[str, Any]] = []
    for i in range(12):
        colour = COLOURS[i % len(COLOURS)]
        category = CATEGORIES[i % len(CATEGORIES)]
        rows.append(
            {
                "sku": f"P{i:02d}",
                "name": f"{colour.title()} {category[:-1].lower()} model {i}",
                "category": category,
                "price": 15.0 + 17.5 * i,
                "color": colour.title(),
                "tags": "sale|new" if i % 2 else "new",
                "description": f"A {colour} {category[:-1].lower()} for every day.",
                "images": f"img/p{i:02d}.png",
            }
        )
    for parent, colour in (("P00", "Blue"), ("P00", "Green"), ("P03", "White")):
        name = next(r["name"] for r in rows if r["sku"] == parent)
        image = f"img/{parent.lower()}-{colour.lower()}.png"
        rows.append({"parent_sku": parent, "name": name, "color": colour, "images": image})
    return rows


def write_images(folder: Path, rows: list[dict[str, Any]]) -> None:
    """Draw every photo the rows name, in the colour of the row."""
    (folder / "img").mkdir(parents=True, exist_ok=True)
    for row in rows:
        draw_photo(row["color"].lower()).save(folder / row["images"])


def write_catalog(folder: Path, rows: list[dict[str, Any]], suffix: str = ".jsonl") -> Path:
    """The rows as a catalog file of the given kind, with their photos beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    write_images(folder, rows)
    path = folder / f"products{suffix}"
    columns = sorted({key for row in rows for key in row})
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    elif suffix == ".csv":
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, columns)
            writer.writeheader()
            writer.writerows(rows)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({c: [_cell(row.get(c)) for row in rows] for c in columns})
        pq.write_table(table, path)
    return path


def _cell(value: Any) -> Any:
    return None if value is None else str(value) if not isinstance(value, float) else value


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    return write_catalog(tmp_path / "shop", catalog_rows())


@pytest.fixture
def shop(tmp_path: Path, catalog: Path, tiny_clip: Path) -> mmrag.Index:
    index = mmrag.open(tmp_path / "idx", model=str(tiny_clip), ocr=False)
    report = index.add(catalog)
    assert report.failed == 0 and not report.skipped
    yield index
    index.close()


def _by_kind(index: mmrag.Index) -> dict[str, list[Item]]:
    items = index.store.find({"kind": ["product", "image"]})
    out: dict[str, list[Item]] = {}
    for item in items:
        out.setdefault(item.kind, []).append(item)
    return out


def test_rows_become_products_with_variants_and_photos_under_them(shop: mmrag.Index) -> None:
    kinds = _by_kind(shop)
    products = {i.id: i for i in kinds["product"]}
    top = [p for p in products.values() if p.parent is None]
    variants = [p for p in products.values() if p.parent is not None]
    assert len(top) == 12 and len(variants) == 3 and len(kinds["image"]) == 15
    p00 = next(p for p in top if p.metadata["sku"] == "P00")
    assert p00.metadata["price"] == 15.0 and p00.metadata["category"] == "Shoes"
    assert p00.metadata["colors"] == ["Red", "Blue", "Green"]  # its own, then its variants'
    assert "Red shoe model 0" in (p00.text or "")
    for variant in variants:
        parent = products[variant.parent or ""]
        assert variant.metadata["variant"] is True
        assert variant.metadata["price"] == parent.metadata["price"]  # inherited
        assert len(variant.metadata["colors"]) == 1
    for image in kinds["image"]:
        owner = products[image.parent or ""]
        assert image.metadata["price"] == owner.metadata["price"]
        assert image.metadata["colors"] == owner.metadata["colors"]
        assert image.thumb and Path(image.source).is_file()


@pytest.mark.parametrize("query", ["red shoe", "a bag", "jacket for winter", "model 7", "blue"])
@pytest.mark.parametrize("bound", [Range(lte=60), Range(gt=100), Range(gte=40, lte=120)])
def test_a_price_bound_is_never_violated(shop: mmrag.Index, query: str, bound: Range) -> None:
    hits = shop.search(query, k=30, where={"price": bound}, min_score=-1.0)
    assert hits, "the bound leaves products to find"
    products = shop.products_of([h.item for h in hits])
    for hit in hits:
        price = products[hit.item.id].metadata["price"]
        assert (bound.lte is None or price <= bound.lte) and (bound.gt is None or price > bound.gt)
        assert bound.gte is None or price >= bound.gte


def test_a_price_in_the_query_is_parsed_and_held(shop: mmrag.Index) -> None:
    parsed = shop.parse_query("bag under $60")
    assert parsed is not None and parsed.where == {"price": Range(lt=60.0)}
    hits = shop.search("bag under $60", k=30, min_score=-1.0)
    prices = [p.metadata["price"] for p in shop.products_of([h.item for h in hits]).values()]
    assert prices and max(prices) < 60
    unparsed = shop.search("bag under $60", k=30, min_score=-1.0, parse=False)
    everything = shop.products_of([h.item for h in unparsed]).values()
    assert max(p.metadata["price"] for p in everything) >= 60  # the parse made the difference


def test_an_explicit_where_wins_over_the_parsed_one(shop: mmrag.Index) -> None:
    hits = shop.search("shoe under $30", k=30, where={"price": Range(gte=100)}, min_score=-1.0)
    prices = {p.metadata["price"] for p in shop.products_of([h.item for h in hits]).values()}
    assert prices and min(prices) >= 100


def test_a_colour_filter_keeps_only_products_with_that_colour(shop: mmrag.Index) -> None:
    parsed = shop.parse_query("green shoe")
    assert parsed is not None and parsed.where == {"colors": "Green"}  # every product has one
    assert parsed.query == "shoe"
    hits = shop.search("green shoe", k=20, min_score=-1.0)
    for product in shop.products_of([h.item for h in hits]).values():
        assert "Green" in product.metadata["colors"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_csv_jsonl_and_parquet_give_the_same_index(
    tmp_path: Path, tiny_clip: Path, suffix: str
) -> None:
    contents = []
    for kind in (".jsonl", suffix):
        path = write_catalog(tmp_path / kind.strip("."), catalog_rows(), kind)
        with mmrag.open(tmp_path / f"idx{kind}", model=str(tiny_clip), ocr=False) as index:
            index.add(path)
            items = index.store.find({"kind": ["product", "image"]})
        # Ids name the catalog's folder, so compare everything else.
        meta = [{k: v for k, v in i.metadata.items() if k != "product"} for i in items]
        contents.append(
            sorted(
                (i.kind, i.text or "", json.dumps(m, sort_keys=True), i.content_hash)
                for i, m in zip(items, meta, strict=True)
            )
        )
    assert len(contents[0]) == 30 and contents[0] == contents[1]


def test_a_changed_row_updates_only_its_product(shop: mmrag.Index, catalog: Path) -> None:
    before = {i.id: i for i in shop.store.find({"kind": ["product", "image"]})}
    rows = catalog_rows()
    rows[5]["price"] = 999.0
    catalog.write_text("".join(json.dumps(row) + "\n" for row in rows))
    report = shop.add(catalog)
    assert report.updated == 1
    after = {i.id: i for i in shop.store.find({"kind": ["product", "image"]})}
    assert after.keys() == before.keys()
    changed = {i for i in after if after[i] != before[i]}
    assert changed and all(after[i].metadata.get("sku") == "P05" for i in changed)
    assert {after[i].kind for i in changed} == {"product", "image"}  # its photo's copy too
    hits = shop.search("model 5", k=30, where={"price": Range(lte=200)}, min_score=-1.0)
    assert all(
        p.metadata["sku"] != "P05" for p in shop.products_of([h.item for h in hits]).values()
    )


def test_bad_rows_are_reported_with_file_row_and_reason(tmp_path: Path) -> None:
    rows = catalog_rows()[:4]
    folder = tmp_path / "shop"
    write_images(folder, rows)
    (folder / "img" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    bad = [
        {"sku": "B1", "price": 10, "images": "img/p00.png"},  # no name
        {"sku": "B2", "name": "Odd", "price": "ten dollars", "images": "img/p00.png"},
        {"sku": "B3", "name": "Lost", "price": 5, "images": "img/missing.png"},
        {"sku": "B4", "name": "Broken", "price": 5, "images": "img/broken.png"},
        {"sku": "B5", "name": "Bare", "price": 5},
    ]
    path = folder / "products.jsonl"
    lines = [json.dumps(r) for r in rows[:2] + bad + rows[2:]] + ["{not json"]
    path.write_text("\n".join(lines) + "\n")
    with mmrag.open(tmp_path / "idx", model="none", ocr=False) as index:
        report = index.add(path)
        assert report.failed == 0
        skipped = {s.part: s.reason for s in report.skipped}
        assert all(s.source == str(path) for s in report.skipped)
        assert set(skipped) == {"row 3", "row 4", "row 5", "row 6", "row 7", "row 10"}
        assert skipped["row 3"] == "no name"
        assert "not a number" in skipped["row 4"]
        assert "no usable image" in skipped["row 5"] and "missing.png" in skipped["row 5"]
        assert "no usable image" in skipped["row 6"]
        assert skipped["row 7"] == "no image"
        assert "JSON" in skipped["row 10"]
        skus = {i.metadata["sku"] for i in index.store.find({"kind": "product"})}
        assert skus == {"P00", "P01", "P02", "P03"}


def test_columns_can_be_mapped(tmp_path: Path) -> None:
    rows = [
        {
            "code": r["sku"],
            "title": r["name"],
            "cost": r["price"],
            "pic": r["images"],
            "color": "Red",
        }
        for r in catalog_rows()[:3]
    ]
    folder = tmp_path / "shop"
    write_images(folder, [{**r, "images": r["pic"]} for r in rows])
    path = folder / "items.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with mmrag.open(tmp_path / "idx", model="none", ocr=False) as index:
        report = index.add(path, catalog_map={"id": "code", "price": "cost", "image": "pic"})
        assert not report.skipped
        products = index.store.find({"kind": "product"})
    assert sorted(p.metadata["code"] for p in products) == ["P00", "P01", "P02"]
    assert sorted(p.metadata["price"] for p in products) == [15.0, 32.5, 50.0]


def test_similar_products_are_other_products_never_its_own_photos(shop: mmrag.Index) -> None:
    kinds = _by_kind(shop)
    p00 = next(p for p in kinds["product"] if p.metadata.get("sku") == "P00" and not p.parent)
    photo = next(i for i in kinds["image"] if i.parent == p00.id)
    own = {p00.id} | {p.id for p in kinds["product"] if p.parent == p00.id}
    for asked in (p00.id, photo.id):
        hits = shop.similar_products(asked, k=5)
        assert len(hits) == 5
        assert all(h.item.kind == "product" and h.item.parent is None for h in hits)
        assert not own & {h.item.id for h in hits}
        assert len({h.item.id for h in hits}) == 5
    text_twin = shop.similar_products(p00.id, k=3)[0].item.metadata["name"]
    assert "shoe" in text_twin  # the nearest text is another shoe, not a bag


def test_similar_products_of_an_unknown_id_is_an_input_error(shop: mmrag.Index) -> None:
    with pytest.raises(mmrag.InputError):
        shop.similar_products("nope")
