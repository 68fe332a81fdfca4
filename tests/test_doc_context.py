"""Document context and tables: generated PDFs whose title, sections and tables are known."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from mmrag.config import Settings
from mmrag.ingest.base import Extracted, SourceData
from mmrag.ingest.context import SectionTracker, page_headings, stem_words
from mmrag.ingest.pdf import PdfIngester
from mmrag.ingest.tables import looks_tabular, table_lines
from mmrag.stores.fts import fts_query, search_text, split_letter_digit
from mmrag.types import Item

pymupdf = pytest.importorskip("pymupdf")

YEARS = ("2018", "2017", "2016")
ROWS = [
    ("Net income including noncontrolling interest", ("5,363", "4,869", "5,058")),
    ("Depreciation and amortization", ("1,488", "1,544", "1,474")),
    ("Purchases of property, plant and equipment (PP&E)", ("(1,577)", "(1,373)", "(1,420)")),
    ("Proceeds from sale of PP&E and other assets", ("262", "49", "58")),
    ("Acquisitions, net of cash acquired", ("13", "(2,023)", "(16)")),
    ("Purchases of marketable securities", ("(1,828)", "(2,152)", "(1,410)")),
    ("Net cash used in investing activities", ("222", "(3,086)", "(1,403)")),
    ("Dividends paid to shareholders", ("(3,193)", "(2,803)", "(2,678)")),
]


def _table(page: object, rows: Sequence[tuple[str, Sequence[str]]], top: float) -> float:
    """Draw a ruled table with a year header row at ``top``; returns its bottom."""
    xs = (60.0, 330.0, 420.0, 510.0)
    height = 18.0
    all_rows = [("(Millions)", YEARS), *rows]
    for r, (label, values) in enumerate(all_rows):
        y = top + r * height
        page.insert_text((xs[0] + 3, y + 13), label, fontsize=8)  # type: ignore[attr-defined]
        for x, value in zip(xs[1:], values, strict=True):
            page.insert_text((x + 3, y + 13), value, fontsize=8)  # type: ignore[attr-defined]
    bottom = top + len(all_rows) * height
    shape = page.new_shape()  # type: ignore[attr-defined]
    for r in range(len(all_rows) + 1):
        shape.draw_line((xs[0], top + r * height), (580, top + r * height))
    for x in (*xs, 580.0):
        shape.draw_line((x, top), (x, bottom))
    shape.finish(color=(0, 0, 0), width=0.5)
    shape.commit()
    return bottom


def _filing(path: Path, long_rows: int = 0) -> Path:
    """Cover page of a 10-K for ACME Widgets; page 2 its cash-flow statement under Item 8;
    page 3 (when ``long_rows``) a table too long for one item."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    y = 80.0
    for line in [
        "UNITED STATES SECURITIES AND EXCHANGE COMMISSION",
        "FORM 10-K",
        "ANNUAL REPORT PURSUANT TO SECTION 13 OR 15(d)",
        "For the fiscal year ended December 31, 2018",
        "ACME WIDGETS, INC.",
        "(Exact name of registrant as specified in its charter)",
    ]:
        page.insert_text((72, y), line, fontsize=11)
        y += 24
    page = doc.new_page(width=595, height=842)
    page.insert_text((60, 60), "Item 8. Financial Statements and Supplementary Data.", fontsize=11)
    page.insert_text((60, 80), "Consolidated Statement of Cash Flows", fontsize=11)
    _table(page, ROWS, 100)
    if long_rows:
        page = doc.new_page(width=595, height=842)
        page.insert_text((60, 60), "Segment Sales by Product Line", fontsize=11)
        rows = [(f"Product line {n} sales", (f"{n}1", f"{n}2", f"{n}3")) for n in range(long_rows)]
        _table(page, rows, 80)
    doc.set_metadata({"title": "0000066740-19-000010", "subject": "10-K"})
    doc.save(path)
    return path


def _extract(path: Path, **settings: object) -> list[Item]:
    """Items of one PDF; tables are opt-in (slow), so these tests turn them on."""
    chosen: dict[str, object] = {"ocr": False, "tables": True, **settings}
    out = PdfIngester().extract(SourceData.read(path), Settings(**chosen))
    return [e.item for e in out if isinstance(e, Extracted)]


def test_a_table_keeps_row_labels_with_their_year_and_value(tmp_path: Path) -> None:
    items = _extract(_filing(tmp_path / "ACME_2018_10K.pdf"))
    tables = [it for it in items if it.role == "table"]
    assert tables, "the cash-flow statement was not found as a table"
    table = tables[0]
    assert table.kind == "text" and table.page == 2
    assert table.parent == next(it.id for it in items if it.kind == "page" and it.page == 2)
    assert table.bbox is not None and table.bbox[1] >= 90
    lines = (table.text or "").split("\n")
    assert lines[0].startswith("Item 8. Financial Statements")  # the page heading first
    assert (
        "Purchases of property, plant and equipment (PP&E) | 2018: (1,577) | 2017: (1,373)"
        " | 2016: (1,420)"
    ) in lines
    assert "Depreciation and amortization | 2018: 1,488 | 2017: 1,544 | 2016: 1,474" in lines


def test_a_long_table_is_split_with_its_header_in_every_part(tmp_path: Path) -> None:
    items = _extract(_filing(tmp_path / "ACME_2018_10K.pdf", long_rows=40))
    parts = [it for it in items if it.role == "table" and it.page == 3]
    assert len(parts) >= 2
    assert len({it.id for it in parts}) == len(parts)
    for part in parts:
        text = part.text or ""
        assert len(text) <= 700
        assert text.split("\n")[:2] == ["Segment Sales by Product Line", "2018 | 2017 | 2016"]
    body = [ln for it in parts for ln in (it.text or "").split("\n")[2:]]
    assert len(body) == 40 and "Product line 39 sales | 2018: 391 | 2017: 392 | 2016: 393" in body


def test_every_item_carries_the_document_identity_and_its_section(tmp_path: Path) -> None:
    items = _extract(_filing(tmp_path / "ACME_2018_10K.pdf"))
    assert items and all(it.context for it in items)
    identity = (items[0].context or "").split("\n")[0]
    assert identity.startswith("ACME 2018 10K")
    for fact in ("FORM 10-K", "fiscal year ended December 31, 2018", "ACME WIDGETS, INC."):
        assert fact in identity
    assert "0000066740" not in identity  # an accession number is no title
    page2 = [it for it in items if it.page == 2]
    assert {it.role for it in page2} >= {None, "chunk", "table"}
    for it in page2:
        assert "Item 8. Financial Statements" in (it.context or "").split("\n")[1]
        assert "ACME" not in (it.text or "")  # the text itself stays clean


def test_context_and_tables_can_be_turned_off(tmp_path: Path) -> None:
    items = _extract(_filing(tmp_path / "ACME_2018_10K.pdf"), doc_context=False, tables=False)
    assert items and all(it.context is None for it in items)
    assert not [it for it in items if it.role == "table"]


def test_a_general_document_gets_its_title_and_outline_path(tmp_path: Path) -> None:
    doc = pymupdf.open()
    for n in range(3):
        page = doc.new_page(width=595, height=842)
        if n == 0:
            page.insert_text((72, 80), "Hydraulic Pump Manual", fontsize=22)
        page.insert_text((72, 140), f"Body text of page {n + 1} about gear pumps.", fontsize=10)
    doc.set_toc([[1, "Installation", 1], [2, "Mounting", 2], [1, "Maintenance", 3]])
    doc.save(tmp_path / "manual_v2.pdf")
    items = _extract(tmp_path / "manual_v2.pdf")
    pages = {it.page: it.context or "" for it in items if it.kind == "page"}
    assert pages[1].split("\n")[0] == "manual v2; Hydraulic Pump Manual"
    assert pages[1].split("\n")[1] == "Installation"
    assert pages[2].split("\n")[1] == "Installation > Mounting"
    assert pages[3].split("\n")[1] == "Maintenance"


def test_sections_without_an_outline_follow_items_and_notes() -> None:
    tracker = SectionTracker()
    toc = [f"Item {n}. Heading {n}" for n in range(1, 9)]
    tracker.path(1, ["Table of Contents", *toc])
    assert tracker.path(2, ["Body text " * 20]) == []  # a list of items opens no section
    assert tracker.path(3, ["Item 7. Management's Discussion", "Body " * 40]) == [
        "Item 7. Management's Discussion"
    ]
    assert tracker.path(4, ["Revenue grew " * 20]) == ["Item 7. Management's Discussion"]
    path = tracker.path(5, ["Note 4. Acquisitions", "see Note 13 (Pension Plans) for more"])
    assert path == ["Item 7. Management's Discussion", "Note 4. Acquisitions"]
    assert tracker.path(6, ["Item 8. Financial Statements"]) == ["Item 8. Financial Statements"]


def test_page_headings_skip_running_headers_and_stop_at_body_text() -> None:
    lines = ["Table of Contents", "3M Company and Subsidiaries", "Statement of Income", "2018"]
    assert page_headings(lines) == ["3M Company and Subsidiaries", "Statement of Income"]
    assert page_headings(["A long sentence of body text " * 5, "Heading"]) == []


def test_file_names_become_words() -> None:
    assert stem_words("3M_2018_10K.pdf") == "3M 2018 10K"
    amcor = "/data/AMCOR_2022_8K_dated-2022-07-01.pdf"
    assert stem_words(amcor) == "AMCOR 2022 8K dated 2022 07 01"
    assert stem_words("Form_10-K.pdf") == "Form 10-K"


def test_search_text_puts_the_context_first_and_splits_letter_digit_runs() -> None:
    assert split_letter_digit("FY2018 and 2023Q2, 10-K") == "FY 2018 and 2023 Q 2, 10-K"
    assert search_text("Capex in FY2018", "ACME 2018 10K") == "ACME 2018 10 K\nCapex in FY 2018"
    assert search_text(None, None) is None
    assert search_text("plain", None) == "plain"
    assert fts_query("2023Q2 sales") == "2023 Q 2 sales"


def test_numeric_pages_are_gated_for_the_table_finder() -> None:
    body = ["A sentence of prose that goes on for a while."] * 30
    numbers = [f"{n},{n}00" for n in range(25)]
    assert looks_tabular([*body[:10], *numbers])
    assert not looks_tabular(body)
    assert not looks_tabular([*body, *numbers[:8]])


def test_table_lines_carry_a_spanning_header_over_its_columns() -> None:
    rows = [
        ["", "Three months ended", "", "Year ended", ""],
        ["(Millions)", "2018", "2017", "2018", "2017"],
        ["Net sales", "8,000", "7,900", "32,765", "31,657"],
    ]
    header, lines = table_lines(rows)
    assert header.startswith("Three months ended 2018 | Three months ended 2017")
    assert lines == [
        "Net sales | Three months ended 2018: 8,000 | Three months ended 2017: 7,900"
        " | Year ended 2018: 32,765 | Year ended 2017: 31,657"
    ]


def test_a_failing_table_finder_leaves_the_page_indexed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import mmrag.ingest.pdf as pdf_mod

    def broken(*args: object, **kwargs: object) -> list[Extracted]:
        raise RuntimeError("no cells")

    monkeypatch.setattr(pdf_mod, "find_page_tables", broken)
    items = _extract(_filing(tmp_path / "ACME_2018_10K.pdf"))
    assert [it.page for it in items if it.kind == "page"] == [1, 2]
    assert any(it.role == "chunk" and it.page == 2 for it in items)
    assert not [it for it in items if it.role == "table"]
    assert "tables not read (no cells)" in caplog.text


def test_no_title_is_made_up_from_body_text_or_a_file_name_in_the_metadata(
    tmp_path: Path,
) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    for n in range(6):
        page.insert_text((72, 80 + 20 * n), f"Plain body line number {n} of the memo.", fontsize=10)
    doc.set_metadata({"title": "memo_final_v2"})
    doc.save(tmp_path / "memo.pdf")
    items = _extract(tmp_path / "memo.pdf")
    assert items[0].context == "memo"
