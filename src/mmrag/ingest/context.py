"""Where an item sits, for search: its document's identity and its section path.

An item's ``context`` (see :class:`~mmrag.types.Item`) is its document's title on the
first line, then the section path of its page. Full-text search indexes it beside the
text, so "3M 2018 10-K capital expenditure" reaches a cash-flow page that never names 3M.
It is never embedded: on financebench_dev a prefix in the embedded text cut dense R@5
within a document from 0.767 to 0.581::

    identity = pdf_identity(doc, "3M_2018_10K.pdf")  # "3M 2018 10K; FORM 10-K; 3M COMPANY; ..."
    sections = SectionTracker(doc.get_toc())
    context = join_context(identity, sections.path(page_number, page_lines))
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

__all__ = [
    "SectionTracker",
    "identity_line",
    "join_context",
    "pdf_identity",
    "stem_words",
    "with_context",
]

# "0000789570-23-000019" (an EDGAR accession number) or a bare file name: no title.
_ACCESSION = re.compile(r"^\s*\d{6,}-\d{2}-\d{4,}\s*$")
_FORM = re.compile(r"^\s*form\s+(10-k|10-q|8-k|20-f|40-f|6-k|s-1|def 14a)\b", re.I)
_PERIOD = re.compile(
    r"\b(fiscal year|quarterly period|year|period|quarter)\s+ended\s*:?\s*"
    r"([A-Z][a-z]+\.?\s+\d{1,2},?\s+\d{4})",
    re.I,
)
_REPORT_DATE = re.compile(r"date of report.*?:\s*([A-Z][a-z]+\.?\s+\d{1,2},?\s+\d{4})", re.I | re.S)
_REGISTRANT = re.compile(r"^\(?\s*exact name of registrant", re.I)
# A 10-K's items and the notes to its statements: headings worth carrying forward.
_ITEM = re.compile(r"^\s*item\s+\d+[a-c]?\s*[.:]", re.I)
_NOTE = re.compile(r"^\s*note\s+\d+\s*[.:\-\u2013\u2014]\s*[A-Za-z]", re.I)
_NOISE = re.compile(
    r"^\s*(table of contents|index|contents|page \d+|\d+|[ivxlc]+|\(.*\))\s*$", re.I
)
_MAX_HEADING = 90


def stem_words(filename: str) -> str:
    """A file name's stem as words: "3M_2018_10K.pdf" -> "3M 2018 10K"."""
    stem = PurePosixPath(filename.replace("\\", "/")).stem
    # "dated-2022-07-01" splits, "10-K" stays a form name.
    return " ".join(re.split(r"[_\s.]+|(?<=\w\w)-(?=\w\w)", stem)).strip()


def _meaningful(value: str | None, filename: str) -> str | None:
    """A metadata title worth keeping: not empty, not an accession number or a file name."""
    text = " ".join((value or "").split())
    text = re.sub(r"^microsoft (word|powerpoint) - ", "", text, flags=re.I)
    if len(text) < 4 or not re.search(r"[A-Za-z]{2}", text) or _ACCESSION.match(text):
        return None
    if text.lower() in {"untitled", PurePosixPath(filename).name.lower()}:
        return None
    if " " not in text and ("_" in text or re.fullmatch(r"[\w\-]+\.\w{2,4}", text)):
        return None  # a file or job name ("report_v2", "10811.exe")
    return text


def _filing_facts(lines: Sequence[str]) -> list[str]:
    """Form, period and registrant from a filing's cover page lines, where present."""
    facts: list[str] = []
    form = next((m.group(0).strip() for ln in lines if (m := _FORM.match(ln))), None)
    if form:
        facts.append(" ".join(form.upper().split()))
    joined = "\n".join(lines)
    period = _PERIOD.search(joined)
    if period:
        facts.append(f"{period.group(1).lower()} ended {' '.join(period.group(2).split())}")
    elif report := _REPORT_DATE.search(joined):
        facts.append(f"report dated {' '.join(report.group(1).split())}")
    for i, line in enumerate(lines):
        if _REGISTRANT.match(line):
            before = [ln for ln in lines[max(0, i - 3) : i] if ln.strip()]
            if before:
                facts.append(before[-1].strip())
            break
    return facts


def _largest_line(page: Any) -> str | None:
    """The title of a first page: its top lines in a font clearly larger than the body's
    (at most two adjacent lines); None when no line stands out."""
    lines: list[tuple[float, tuple[float, float], str]] = []
    chars: Counter[float] = Counter()
    top_part = page.rect.y0 + 0.4 * page.rect.height  # a title sits at the top
    for block in page.get_text("dict")["blocks"]:
        for line in block.get("lines", ()):
            text = " ".join("".join(s["text"] for s in line["spans"]).split())
            size = round(max(s["size"] for s in line["spans"]), 1)
            chars[size] += len(text)
            wordy = 3 <= len(text) <= 100 and re.search(r"[^\W\d_]{2}", text)
            # Horizontal lines at the top; arXiv's sideways stamp is big but no title.
            at_top = line["dir"][0] > 0.9 and line["bbox"][1] <= top_part
            if wordy and at_top and not text.lower().startswith("arxiv:"):
                lines.append((size, (line["bbox"][1], line["bbox"][3]), text))
    if not lines:
        return None
    body = chars.most_common(1)[0][0]
    top = max(size for size, _, _ in lines)
    if top < 1.15 * body:
        return None
    tops = sorted((y, text) for size, y, text in lines if size == top)
    title = tops[0][1]
    if len(tops) > 1 and tops[1][0][0] - tops[0][0][1] < top:  # the title's second line
        title += " " + tops[1][1]
    return title[:200]


def pdf_identity(doc: Any, filename: str) -> str:
    """What a reader takes a PDF to be: file name words, metadata title, cover facts."""
    parts = [stem_words(filename)]
    meta = doc.metadata or {}
    for key in ("title", "subject"):
        value = _meaningful(meta.get(key), filename)
        if value:
            parts.append(value)
    first_pages = (doc[i].get_text() for i in range(min(2, doc.page_count)))
    lines = [ln.strip() for text in first_pages for ln in text.split("\n")]
    facts = _filing_facts([ln for ln in lines if ln])
    parts += facts
    if not facts and len(parts) < 2:
        title = _largest_line(doc[0])
        if title:
            parts.append(title)
    return identity_line(parts)


def identity_line(parts: Sequence[str]) -> str:
    """Non-empty ``parts`` joined by "; ", each said once (ignoring case)."""
    unique: dict[str, str] = {}
    for part in parts:
        if part:
            unique.setdefault(part.lower(), part)
    return "; ".join(unique.values())


def _is_heading(line: str) -> bool:
    """A short line of words starting with a capital: not body text or a number."""
    words = line.split()
    if not words or len(line) > _MAX_HEADING or len(words) > 12 or _NOISE.match(line):
        return False
    if line.rstrip().endswith((".", ",", ";")) and not (_ITEM.match(line) or _NOTE.match(line)):
        return False  # a short sentence of body text
    first = next((ch for ch in line if ch.isalpha()), "")
    letters = sum(ch.isalpha() for ch in line)
    return first.isupper() and letters >= 3 and letters >= 0.5 * len(line.replace(" ", ""))


def page_headings(lines: Sequence[str], limit: int = 2) -> list[str]:
    """The heading lines at the top of a page: short lines before the first body line.

    Running headers ("Table of Contents", a page number) before them are skipped; a
    number or a "(Millions)" after a heading ends them (a table starts there).
    """
    heads: list[str] = []
    for line in lines[:8]:
        if not line.strip() or (_NOISE.match(line) and not heads):
            continue
        if not _is_heading(line):
            break
        heads.append(" ".join(line.split()))
        if len(heads) >= limit:
            break
    return heads


class SectionTracker:
    """The section path of each page, read in page order.

    With a PDF outline (``doc.get_toc()``) a page's path is the outline entries open at
    it. Without one, it is the last item and note seen so far ("Item 8. ...", "Note 4. ...")
    followed by the page's own top headings.
    """

    def __init__(self, toc: Sequence[Sequence[Any]] = ()) -> None:
        self.toc = [(int(t[0]), str(t[1]).strip(), int(t[2])) for t in toc if len(t) >= 3]
        self._item: str | None = None
        self._note: str | None = None

    def path(self, page: int, lines: Sequence[str]) -> list[str]:
        """The section path of 1-based ``page`` whose text lines are ``lines``."""
        if self.toc:
            return self._toc_path(page)
        items = _matching(_ITEM, lines)
        if 0 < len(items) <= 5:  # more is a table of contents, not a section start
            self._item, self._note = items[-1], None
        notes = _matching(_NOTE, lines)
        if 0 < len(notes) <= 3:
            self._note = notes[-1]
        path = [p for p in (self._item, self._note) if p]
        return path + [h for h in page_headings(lines) if h not in path]

    def _toc_path(self, page: int) -> list[str]:
        open_: list[str] = []
        for level, title, start in self.toc:
            if start > page:
                break
            del open_[level - 1 :]
            if title:
                open_.append(title)
        return open_


def _matching(pattern: re.Pattern[str], lines: Sequence[str]) -> list[str]:
    return [" ".join(ln.split()) for ln in lines if len(ln) <= 120 and pattern.match(ln)]


def join_context(identity: str, path: Sequence[str]) -> str | None:
    """The context text: identity on the first line, the section path on the second."""
    section = " > ".join(p for p in path if p)
    text = "\n".join(p for p in (identity, section) if p)
    return text or None


def with_context(items: Sequence[Any], context: str | None) -> list[Any]:
    """``Extracted`` items with ``context`` set on each item."""
    from dataclasses import replace

    if context is None:
        return list(items)
    return [replace(e, item=e.item.with_(context=context)) for e in items]
