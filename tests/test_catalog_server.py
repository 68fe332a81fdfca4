"""The catalog over HTTP: parsed product search, product thumbnails, similar products, cards."""

from __future__ import annotations

from pathlib import Path

import pytest

import mmrag
from test_catalog import catalog_rows, write_catalog

pytestmark = pytest.mark.integration


def test_product_search_similar_and_cards(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from mmrag.server import create_app

    path = write_catalog(tmp_path / "shop", catalog_rows())
    with mmrag.open(tmp_path / "idx", model="none", ocr=False) as index:
        index.add(path)
        client = TestClient(create_app(index))
        found = client.get("/api/search", params={"q": "shoe under $60", "k": 10}).json()
        assert found["parsed"]["where"] == {"price": {"lt": 60.0}}
        products = [r for r in found["results"] if r["kind"] == "product"]
        assert products and all(r["metadata"]["price"] < 60 for r in products)
        thumb = client.get(f"/api/thumbs/{products[0]['thumb']}")
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        unparsed = client.get("/api/search", params={"q": "shoe", "parse": "false"}).json()
        assert "parsed" not in unparsed

        asked = products[0]["id"]
        similar = client.get(f"/api/items/{asked}/similar", params={"k": 4}).json()["results"]
        assert len(similar) == 4
        assert all(r["kind"] == "product" and r["id"] != asked for r in similar)
        assert client.get(f"/api/items/{'0' * 24}/similar").status_code == 404  # no such item

        page = client.get("/").text
        assert "productInfo" in page and "swatch" in page
