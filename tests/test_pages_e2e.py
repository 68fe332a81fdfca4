"""Late-interaction pages inside the real index: tiny random ColQwen2 on a generated PDF."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

import mmrag
from mmrag.errors import ModelMismatchError
from mmrag.stores.multivector import maxsim_many

pymupdf = pytest.importorskip("pymupdf")
pytestmark = pytest.mark.integration

TOPICS = ["Quarterly revenue by region", "Pump maintenance schedule", "Employee headcount chart"]


@pytest.fixture(scope="module")
def colqwen2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmrag.testing import make_tiny_colqwen2

    return make_tiny_colqwen2(tmp_path_factory.mktemp("colqwen2"))


def write_pdf(path: Path, topics: list[str]) -> Path:
    """One page per topic: a heading, a paragraph and a coloured bar chart."""
    doc = pymupdf.open()
    for i, topic in enumerate(topics):
        page = doc.new_page(width=300, height=400)
        page.insert_text((30, 50), topic, fontsize=16)
        page.insert_textbox(pymupdf.Rect(30, 70, 270, 200), f"{topic}. " * 6, fontsize=9)
        for j in range(4):
            height = 20 + 25 * ((i + j) % 4)
            rect = pymupdf.Rect(40 + 50 * j, 380 - height, 80 + 50 * j, 380)
            page.draw_rect(rect, color=None, fill=(0.2 * j, 0.3 + 0.2 * i, 0.9 - 0.2 * j))
    doc.save(path)
    return path


def write_scan(path: Path) -> Path:
    """A document image (a scanned form, say)."""
    image = Image.new("RGB", (160, 200), (250, 250, 250))
    ImageDraw.Draw(image).rectangle([20, 30, 140, 60], fill=(10, 10, 10))
    image.save(path)
    return path


def open_index(root: Path, clip: Path, pages: Path | None, **settings: Any) -> Any:
    opts: dict[str, Any] = {"model": str(clip), "ocr": False, "page_precision": "fp32"}
    if pages is not None:
        opts["page_model"] = str(pages)
    return mmrag.open(root / "idx", **opts, **settings)


def page_ids(index: Any) -> list[str]:
    return sorted(item.id for item in index.store.find({"kind": ["page", "image", "slide"]}))


def test_pages_are_embedded_searched_and_fused(
    tmp_path: Path, tiny_clip: Path, colqwen2: Path
) -> None:
    pdf = write_pdf(tmp_path / "report.pdf", TOPICS)
    scan = write_scan(tmp_path / "scan.png")
    with open_index(tmp_path, tiny_clip, colqwen2) as index:
        report = index.add([pdf, scan])
        assert report.added == 2 and not report.failed
        assert "pages" in index.available_paths()
        ids = page_ids(index)
        stored = index.store.get_multivectors("pages", [*ids, "nope"])
        assert set(stored) == set(ids) and len(ids) == 4  # 3 pages and the scan
        texts = [it.id for it in index.store.find({"kind": "text"})]
        assert texts and index.store.get_multivectors("pages", texts) == {}
        # The pages path ranks by exact MaxSim of the query's vectors against the pages'.
        query = "revenue by region"
        hits = index.search(query, k=4, paths=["pages"])
        q = index.pages.encode_queries([query])[0]
        want = maxsim_many(q, [stored[i] for i in ids])
        order = [ids[i] for i in np.argsort(-want, kind="stable")]
        assert [h.item.id for h in hits] == order
        assert np.allclose([h.score for h in hits], np.sort(want)[::-1], atol=1e-4)
        # Filters apply on the path; and the default search fuses it with the others.
        only_pdf = index.search(query, k=10, paths=["pages"], where={"doc": "report.pdf"})
        assert {h.item.kind for h in only_pdf} == {"page"} and len(only_pdf) == 3
        fused = index.search(query, k=10)
        assert any("pages" in h.via for h in fused)
        meta = json.loads((tmp_path / "idx" / "mmrag.json").read_text())
        assert meta["pages"] == {
            "model": str(colqwen2), "pool": 1, "first_stage": "none", "dim": 16, "space": "pages"
        }  # fmt: skip


def test_pages_follow_incremental_indexing_and_deletion(
    tmp_path: Path, tiny_clip: Path, colqwen2: Path
) -> None:
    pdf = write_pdf(tmp_path / "report.pdf", TOPICS)
    with open_index(tmp_path, tiny_clip, colqwen2) as index:
        index.add([pdf])
        before = index.store.get_multivectors("pages", page_ids(index))
        assert index.add([pdf]).unchanged == 1
        write_pdf(pdf, TOPICS[:2])  # the third page is gone
        index.add([pdf])
        ids = page_ids(index)
        after = index.store.get_multivectors("pages", ids)
        assert len(ids) == 2 and set(after) == set(ids)
        assert all(np.allclose(after[i], before[i], atol=1e-5) for i in ids)
        pdf.unlink()
        index.prune()
        assert index.store.get_multivectors("pages", list(before)) == {}
        assert index.search("revenue", k=3, paths=["pages"]) == []


def test_the_index_records_its_page_settings_and_a_change_needs_a_reembed(
    tmp_path: Path, tiny_clip: Path, colqwen2: Path
) -> None:
    pdf = write_pdf(tmp_path / "report.pdf", TOPICS)
    with open_index(tmp_path, tiny_clip, colqwen2) as index:
        index.add([pdf])
        full = index.store.get_multivectors("pages", page_ids(index))
    with open_index(tmp_path, tiny_clip, None) as index:  # recorded model and settings
        assert index.pages is not None and "pages" in index.available_paths()
    with pytest.raises(ModelMismatchError, match="pages"):
        open_index(tmp_path, tiny_clip, colqwen2, page_pool=2)
    with open_index(
        tmp_path, tiny_clip, colqwen2, page_pool=2, page_first_stage="binary", reembed=True
    ) as index:
        pooled = index.store.get_multivectors("pages", page_ids(index))
        assert set(pooled) == set(full)
        assert all(len(pooled[i]) == -(-len(full[i]) // 2) for i in full)
        assert index.search("pump maintenance", k=2, paths=["pages"])
        assert index.stats()["pages"]["first_stage"] == "binary"


def test_pages_work_on_the_qdrant_store_too(
    tmp_path: Path, tiny_clip: Path, colqwen2: Path
) -> None:
    pytest.importorskip("qdrant_client")
    pdf = write_pdf(tmp_path / "report.pdf", TOPICS)
    store = f"qdrant+local:{tmp_path / 'q'}#pages"
    with open_index(tmp_path, tiny_clip, colqwen2, store=store) as index:
        index.add([pdf])
        assert len(index.store.get_multivectors("pages", page_ids(index))) == 3
        hits = index.search("headcount", k=3, paths=["pages"], where={"page": 2})
        assert [h.item.page for h in hits] == [2]
