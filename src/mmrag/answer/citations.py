"""Citation parsing: find [n], [n, m] and [n-m] markers in answer text and map them to sources.

Pure functions over plain data::

    >>> parse_markers("Red [2], blue [1, 3] and green [4-5].")
    [2, 1, 3, 4, 5]
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .types import Citation, Source

__all__ = ["citation_for", "cite", "parse_markers"]

# One bracket holding numbers separated by commas/semicolons, with optional ranges (- or en dash).
# An optional "source"/"ref" word inside the bracket is tolerated because models sometimes add it.
_MARKER = re.compile(
    r"\[\s*(?:(?:sources?|refs?)\s*)?(\d+(?:\s*[-–]\s*\d+)?(?:\s*[,;]\s*\d+(?:\s*[-–]\s*\d+)?)*)\s*\]",
    re.IGNORECASE,
)
_PART = re.compile(r"(\d+)(?:\s*[-–]\s*(\d+))?")
# A range longer than this is not a citation ("[1-2000]" in prose); expanding it would be wasteful.
_MAX_RANGE = 50


def parse_markers(text: str) -> list[int]:
    """All numbers cited in ``text``, expanded and de-duplicated, in order of first appearance."""
    seen: dict[int, None] = {}
    for marker in _MARKER.finditer(text):
        for part in _PART.finditer(marker.group(1)):
            start = int(part.group(1))
            end = int(part.group(2)) if part.group(2) else start
            if end < start or end - start > _MAX_RANGE:
                end = start
            for n in range(start, end + 1):
                seen.setdefault(n, None)
    return list(seen)


def citation_for(source: Source) -> Citation:
    """The citation pointing at one source's item."""
    item = source.item
    return Citation(
        n=source.n,
        item_id=item.id,
        kind=item.kind,
        source=item.source,
        label=source.label,
        doc=item.doc,
        page=item.page,
    )


def cite(text: str, sources: Sequence[Source]) -> tuple[Citation, ...]:
    """Citations for the markers in ``text`` that name a real source; other numbers are ignored."""
    by_number = {s.n: s for s in sources}
    return tuple(citation_for(by_number[n]) for n in parse_markers(text) if n in by_number)
