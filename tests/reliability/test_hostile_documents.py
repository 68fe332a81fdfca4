"""Hostile documents and catalogs, generated here, each indexed in a child process whose
time and peak memory (``resource.getrusage``) are measured and bounded:

* a 1,000-page PDF: pages past ``MMRAG_MAX_PDF_PAGES`` are skipped and counted, the rest
  indexed (the full 1,000 pages under the default cap: the ``slow`` test);
* a PPTX zip bomb: refused from the sizes its zip declares, before anything is decompressed;
* catalog rows with injection-like strings in every field: indexed as plain data, or refused
  per row, never breaking a filter or the store.

Each bad input is one clear error (or one counted skip) naming it; the rest of the run goes on.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from reliability_helpers import measured_index

import mmrag
from mmrag.errors import ConfigError

pytestmark = [pytest.mark.reliability, pytest.mark.integration]
pymupdf = pytest.importorskip("pymupdf")

#: Bounds of each measured run: the child's wall time, and its peak resident memory over
#: that of a baseline child that indexes one photo (models and store loaded: ~0.85 GB here).
MAX_SECONDS = 120
MAX_GROWTH_MB = 500


@pytest.fixture(scope="module")
def baseline_mb(tmp_path_factory: pytest.TempPathFactory, tiny_clip: Path) -> int:
    """The peak memory of indexing one photo in a child, the same way as the runs below."""
    root = tmp_path_factory.mktemp("baseline")
    _, run = measured_index([_photo(root / "one.png")], root / "idx", tiny_clip)
    print(f"baseline, one photo: {run}")
    return int(run["peak_mb"])


def _bounded(run: dict[str, Any], baseline_mb: int, seconds: float = MAX_SECONDS) -> None:
    assert run["seconds"] < seconds and run["peak_mb"] < baseline_mb + MAX_GROWTH_MB, run


def _manual(path: Path, pages: int) -> Path:
    """A ``pages``-page text manual, a heading and a paragraph of steps on every page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = pymupdf.open()
    for p in range(pages):
        page = doc.new_page(width=595, height=842)
        page.insert_text((50, 60), f"Section {p // 50}: page {p + 1}", fontsize=16)
        steps = " ".join(f"Step {p}-{i}: torque bolt {i} to {10 + i} Nm." for i in range(12))
        page.insert_textbox(pymupdf.Rect(50, 90, 545, 800), steps, fontsize=10)
    doc.save(path, garbage=3, deflate=True)
    doc.close()
    return path


def _photo(path: Path, colour: tuple[int, int, int] = (200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 48), colour).save(path)
    return path


def _pages(index_dir: Path, model: Path) -> int:
    with mmrag.open(index_dir, model=str(model), create=False) as index:
        return int(index.store.count({"kind": "page"}))


def test_a_1000_page_pdf_past_the_page_cap_is_capped_and_counted(
    tmp_path: Path, tiny_clip: Path, baseline_mb: int
) -> None:
    manual = _manual(tmp_path / "in" / "manual.pdf", 1000)
    good = _photo(tmp_path / "in" / "good.png")
    report, run = measured_index(
        [manual, good], tmp_path / "idx", tiny_clip, MMRAG_MAX_PDF_PAGES="50"
    )
    print(f"1,000 pages, cap 50: {run}")  # shown with -s: the bounds the README states
    assert run["code"] == 3 and report["added"] == 2 and report["failed"] == 0
    assert report["partial"] == 1  # the manual, indexed in part: the loss is counted
    [skipped] = report["skipped"]
    assert skipped["part"] == "pages 51-1000" and "MMRAG_MAX_PDF_PAGES" in skipped["reason"]
    assert _pages(tmp_path / "idx", tiny_clip) == 50
    _bounded(run, baseline_mb)


@pytest.mark.slow
def test_a_1000_page_pdf_indexes_whole_under_the_default_cap(
    tmp_path: Path, tiny_clip: Path, baseline_mb: int
) -> None:
    manual = _manual(tmp_path / "in" / "manual.pdf", 1000)
    report, run = measured_index([manual], tmp_path / "idx", tiny_clip, timeout=900)
    print(f"1,000 pages: {run}")  # shown with -s: the bounds the README states
    assert run["code"] == 0 and report["added"] == 1 and not report["skipped"]
    assert _pages(tmp_path / "idx", tiny_clip) == 1000
    _bounded(run, baseline_mb, seconds=600)


# --- a PPTX zip bomb ----------------------------------------------------------------------


def _deck(title: str) -> bytes:
    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = title
    slide.placeholders[1].text = f"{title}: the pump is serviced every 500 hours."
    buffer = io.BytesIO()
    deck.save(buffer)
    return buffer.getvalue()


def _bomb(deck: bytes, megabytes: int) -> bytes:
    """``deck`` plus a media member of ``megabytes`` MB of zeros (about 1 MB compressed)."""
    buffer = io.BytesIO(deck)
    chunk = b"\0" * (1 << 20)
    with (
        zipfile.ZipFile(buffer, "a", zipfile.ZIP_DEFLATED) as archive,
        archive.open("ppt/media/image99.png", "w", force_zip64=True) as member,
    ):
        for _ in range(megabytes):
            member.write(chunk)
    return buffer.getvalue()


def test_a_pptx_zip_bomb_is_refused_before_it_is_unpacked(
    tmp_path: Path, tiny_clip: Path, baseline_mb: int
) -> None:
    pytest.importorskip("pptx")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.pptx").write_bytes(_deck("Pump service"))
    bomb = _bomb(_deck("Bomb"), 1024)  # 1 GB of zeros in about 1 MB
    assert len(bomb) < 2 << 20
    (folder / "bomb.pptx").write_bytes(bomb)
    report, run = measured_index([folder], tmp_path / "idx", tiny_clip, MMRAG_WORKERS="1")
    print(f"PPTX zip bomb: {run}")
    failed = {Path(e["path"]).name: e["reason"] for e in report["errors"]}
    assert set(failed) == {"bomb.pptx"} and "zip bomb" in failed["bomb.pptx"], failed
    assert "image99.png" in failed["bomb.pptx"]  # names the member, and why
    assert report["added"] == 1  # the good deck
    # Unpacking the bomb would have cost a GB on its own.
    _bounded(run, baseline_mb)


# --- catalog rows with injection-like strings in every field -------------------------------

LONG = " ".join(["long"] * 40_000)  # 200,000 characters
HOSTILE = (
    "x' OR '1'='1",
    "'); DROP TABLE items; --",
    'kind = "image" OR 1=1',
    "category=shoes AND price<0",
    "<script>alert(1)</script><img src=x onerror=alert(2)>",
    "../../../../etc/passwd",
    "nul\x00byte",
    "{0}%s%n${jndi:ldap://127.0.0.1/a}",
    "\\'; \\\\ \" ` $(rm -rf /)",
    LONG,
)


def _hostile_rows(folder: Path) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """One row per hostile string, in every field (a real photo each), and rows whose image
    or price is hostile: those must be refused one by one, each with its reason."""
    rows: list[dict[str, Any]] = []
    for i, text in enumerate(HOSTILE):
        _photo(folder / f"img/p{i}.png", (20 * i, 100, 200 - 10 * i))
        rows.append(
            {
                "sku": f"{text}#{i}",
                "name": text,
                "category": text,
                "price": 10 + i,
                "currency": text[:3],
                "color": text,
                "tags": text,
                "description": text,
                "images": f"img/p{i}.png",
                text[:40] or "empty": text,  # a hostile column name, as a free attribute
            }
        )
    refused = {
        "../" * 30 + "etc/passwd": "not a recognised image",  # read like any path: no picture
        "/dev/zero": "not a regular file",  # never read: it would never end
        "img/nul\x00byte.png": "embedded null byte",
        "img/missing.png": "No such file",
    }
    for j, ref in enumerate(refused):
        rows.append({"sku": f"bad-image-{j}", "name": "Refused", "price": 1, "images": ref})
    price = "1; DROP TABLE items"
    rows.append({"sku": "bad-price", "name": "P", "price": price, "images": "img/p0.png"})
    return rows, {**refused, "price": "not a number"}


def test_catalog_rows_with_injection_strings_are_data_or_refused_per_row(
    tmp_path: Path, tiny_clip: Path, baseline_mb: int
) -> None:
    folder = tmp_path / "shop"
    rows, refused = _hostile_rows(folder)
    catalog = folder / "products.jsonl"
    catalog.write_text("".join(json.dumps(row) + "\n" for row in rows))
    good = _photo(tmp_path / "good.png")
    report, run = measured_index([catalog, good], tmp_path / "idx", tiny_clip)
    print(f"hostile catalog rows: {run}")
    assert run["code"] == 3 and report["added"] == 2 and report["failed"] == 0, report
    reasons = [s["reason"] for s in report["skipped"]]
    assert len(reasons) == len(refused)  # one counted skip per refused row, each saying why
    for why in refused.values():
        assert any(why in reason for reason in reasons), (why, reasons)
    _bounded(run, baseline_mb)
    with mmrag.open(tmp_path / "idx", model=str(tiny_clip), create=False) as index:
        products = index.store.find({"kind": "product"})
        assert sorted(p.metadata["name"] for p in products) == sorted(HOSTILE)  # as data
        for product in products:
            # A filter on a hostile value finds its own row, and only it (never all rows), or
            # is refused with a clear error (a NUL cannot be written in a Lance SQL filter).
            meta = product.metadata
            for field in ("name", "category", "currency"):
                where = {"kind": "product", field: meta[field]}
                try:
                    found = [item.id for item in index.store.find(where)]
                except ConfigError as exc:
                    assert "\x00" in meta[field] and "NUL" in str(exc)
                    continue
                assert found == [product.id], (field, meta[field][:40])
            hits = index.search("a product", k=50, where={"name": meta["name"]})
            assert {hit.item.metadata["name"] for hit in hits} == {meta["name"]}
        assert not index.store.find({"category": "x' OR '1'='1' OR category='"})
        assert index.store.count() == len(index.get([i for r in index.manifest for i in r.items]))
