"""Tables cut from PDF pages as text items that keep row labels with their values.

A financial statement flattened into page text loses which number belongs to which year.
Here PyMuPDF's table finder locates the table and its cells; each row becomes a line
"label | 2018: (1,577) | 2017: (1,373)", under the page's heading and the column headers::

    if looks_tabular(lines):
        for t, table in enumerate(page.find_tables().tables):
            rows = table_rows(table, page.get_text("words"))
            items += table_items(page_item, t, rows, title="Consolidated Statement of Cash Flows")

The finder costs ~0.6-0.9 s on a statement page, so it only runs on pages whose lines are
largely numbers (:func:`looks_tabular`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..types import Item, item_id
from .base import Extracted
from .figures import Rect
from .items import part_hash

__all__ = ["find_page_tables", "looks_tabular", "table_items", "table_lines", "table_rows"]

_NUMBER = re.compile(r"^[\s$€£%()\-–—.,0-9]*\d[\s$€£%()\-–—.,0-9]*$")
_CURRENCY_ONLY = re.compile(r"^[\s$€£%()]*$")
#: Characters of table text per item: MiniLM reads 256 word pieces, and numbers
#: split into many ("1,577" is three), so ~600 characters stay inside it.
TABLE_CHARS = 600


def looks_tabular(lines: Sequence[str], min_numeric: int = 20, share: float = 0.35) -> bool:
    """True when enough of a page's lines are numbers (cells of a table) to look for tables.

    On financebench_dev (3,651 pages) the defaults pass 905 pages, 43 of the 48 evidence
    pages of its questions; 6 and 0.2 would pass 1,413 pages for 45.
    """
    numeric = sum(1 for line in lines if _NUMBER.match(line))
    return numeric >= min_numeric and numeric >= share * max(len(lines), 1)


def _cell_text(cell: Rect | None, words: Sequence[Sequence[Any]]) -> str:
    """The words whose centre lies in ``cell``, in reading order, spaced."""
    if cell is None:
        return ""
    x0, y0, x1, y1 = cell
    inside = [w for w in words if x0 <= (w[0] + w[2]) / 2 <= x1 and y0 <= (w[1] + w[3]) / 2 <= y1]
    inside.sort(key=lambda w: (round(w[3]), w[0]))
    return " ".join(str(w[4]) for w in inside).strip()


def table_rows(table: Any, words: Sequence[Sequence[Any]]) -> list[list[str]]:
    """A found table's cells as text taken from the page's words (the finder's own text
    drops the spaces between words on some PDFs: "Netincomeincluding...")."""
    return [[_cell_text(cell, words) for cell in row.cells] for row in table.rows]


def _header(rows: list[list[str]]) -> tuple[int, list[str]]:
    """How many leading rows are column headers, and each column's header text.

    A header cell spanning columns ("Three months ended" over Sales and Income) is
    carried right over the empty cells after it, in every header row but the last.
    """
    width = max((len(r) for r in rows), default=0)
    heads: list[list[str]] = []
    for row in rows[:4]:
        values = [c for c in row[1:] if c and not _CURRENCY_ONLY.match(c)]
        if not values or any(_NUMBER.match(v) and not _is_year(v) for v in values):
            break
        heads.append([*row, *[""] * (width - len(row))])
    names = [""] * width
    for r, row in enumerate(heads):
        span = ""
        for j in range(1, width):
            cell = row[j] if not _CURRENCY_ONLY.match(row[j]) else ""
            span = cell or (span if r < len(heads) - 1 else "")
            if span:
                names[j] = f"{names[j]} {span}".strip()
    return len(heads), names


def _is_year(text: str) -> bool:
    return bool(re.fullmatch(r"\(?(19|20)\d\d\)?", text.strip()))


def _nearest(names: list[str], j: int) -> str:
    """Column ``j``'s header, or the nearest named column's (values and headers of a
    statement often sit in neighbouring columns)."""
    for d in range(len(names)):
        for k in (j - d, j + d):
            if 0 < k < len(names) and names[k]:
                return names[k]
    return ""


def table_lines(rows: list[list[str]]) -> tuple[str, list[str]]:
    """The header line and one line per body row: "label | header: value | ..."."""
    n, names = _header(rows)
    header = " | ".join(dict.fromkeys(name for name in names if name))
    lines = []
    for row in rows[n:]:
        label = row[0] if row else ""
        cells = [
            f"{_nearest(names, j)}: {c}" if _nearest(names, j) else c
            for j, c in enumerate(row[1:], 1)
            if c and not _CURRENCY_ONLY.match(c)
        ]
        if not label and cells and not any(_NUMBER.match(c.split(": ")[-1]) for c in cells):
            label, cells = cells[0], cells[1:]  # a label that sits in a later column
        line = " | ".join(p for p in [label, *cells] if p)
        if line:
            lines.append(line)
    return header, lines


def table_items(
    page: Item,
    t: int,
    rows: list[list[str]],
    *,
    bbox: Rect,
    title: str = "",
    max_chars: int = TABLE_CHARS,
) -> list[Extracted]:
    """Table ``t`` of a page as ``role="table"`` text items, split to fit ``max_chars``;
    each part starts with the title and the column headers."""
    header, lines = table_lines(rows)
    if len(lines) < 2:
        return []
    head = "\n".join(p for p in (title, header) if p)
    parts: list[list[str]] = [[]]
    for line in lines:
        size = len(head) + sum(len(x) + 1 for x in parts[-1]) + len(line)
        if parts[-1] and size > max_chars:
            parts.append([])
        parts[-1].append(line)
    out = []
    for k, body in enumerate(parts):
        item = Item(
            id=item_id(page.source, "table", page.page, t, k),
            kind="text",
            source=page.source,
            content_hash=part_hash(page.content_hash, "table", t, k),
            parent=page.id,
            role="table",
            text="\n".join([head, *body]) if head else "\n".join(body),
            doc=page.doc,
            page=page.page,
            bbox=bbox,
            metadata={"table": t, "part": k, "rows": len(body), "cols": len(rows[0])},
        )
        out.append(Extracted(item))
    return out


def find_page_tables(page: Any, page_item: Item, title: str = "") -> list[Extracted]:
    """Every table PyMuPDF finds on ``page``, as items (empty when it finds none)."""
    found = page.find_tables()
    if not found.tables:
        return []
    words = page.get_text("words")
    out: list[Extracted] = []
    for t, table in enumerate(found.tables):
        rows = table_rows(table, words)
        out += table_items(page_item, t, rows, bbox=tuple(table.bbox), title=title)
    return out
