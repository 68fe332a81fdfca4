"""Split text into overlapping chunks at paragraph and sentence boundaries.

A pure function over strings; every chunk records its character span in the
input so callers can map it back to page regions::

    chunks = chunk_text(page_text, size=800, overlap=120)
    chunks[0].text, chunks[0].start, chunks[0].end
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Chunk", "chunk_text", "default_overlap"]

_PARAGRAPH = re.compile(r"\S(?:.*?\S)??(?=\s*\n\s*\n|\s*$)", re.S)
# A sentence ends at . ! ? (optionally closed by quotes/brackets) followed by space;
# the lookbehind avoids splitting "e.g. " and "Fig. 3" style abbreviations too eagerly
# only where it is cheap to tell: single letters and a short list of common ones.
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+")
_ABBREVIATIONS = frozenset(
    {"e.g.", "i.e.", "fig.", "figs.", "eq.", "no.", "vs.", "etc.", "cf.", "dr.", "mr.", "al."}
)
_WORD_GAP = re.compile(r"\s+")


@dataclass(frozen=True)
class Chunk:
    """A piece of text and its ``[start, end)`` span in the original string."""

    text: str
    start: int
    end: int


def default_overlap(size: int) -> int:
    """The overlap used when none is given: about 15% of the chunk size."""
    return max(0, size * 15 // 100)


def chunk_text(text: str, size: int = 800, overlap: int | None = None) -> list[Chunk]:
    """Chunks of at most ~``size`` characters that end at paragraph or sentence boundaries.

    Consecutive chunks share up to ``overlap`` characters (whole sentences) so a
    fact cut at a boundary is still whole in one of them. Only a single word
    longer than ``size`` is ever cut mid-word.
    """
    if size < 1:
        raise ValueError("size must be positive")
    overlap = default_overlap(size) if overlap is None else max(0, min(overlap, size // 2))
    units = _units(text, size, max(1, overlap, size // 4))
    if not units:
        return []
    chunks: list[Chunk] = []
    first = 0
    while first < len(units):
        last = _last_unit(units, first, size)
        start, end = units[first][0], units[last][1]
        chunks.append(Chunk(text[start:end], start, end))
        if last + 1 >= len(units):
            break
        # Overlap: step back over whole sentences of the same paragraph that fit in
        # ``overlap``; a cut at a paragraph break needs none.
        nxt = last + 1
        while nxt - 1 > first and not units[nxt][2] and end - units[nxt - 1][0] <= overlap:
            nxt -= 1
        first = nxt
    return _merge_tiny_tail(text, chunks, size)


def _last_unit(units: list[tuple[int, int, bool]], first: int, size: int) -> int:
    """The last unit of a chunk starting at ``first``: as many as fit, ending at a
    paragraph break rather than mid-paragraph when the chunk is already half full."""
    last = first
    while last + 1 < len(units) and units[last + 1][1] - units[first][0] <= size:
        last += 1
    if last + 1 < len(units) and not units[last + 1][2]:
        for k in range(last, first, -1):
            if units[k + 1][2] and units[k][1] - units[first][0] >= size // 2:
                return k
    return last


def _units(text: str, size: int, run: int) -> list[tuple[int, int, bool]]:
    """Sentence spans (word runs of about ``run`` chars for over-long sentences),
    each flagged when it starts a paragraph."""
    units: list[tuple[int, int, bool]] = []
    for para in _PARAGRAPH.finditer(text):
        spans: list[tuple[int, int]] = []
        for s_start, s_end in _sentences(text, para.start(), para.end()):
            if s_end - s_start <= size:
                spans.append((s_start, s_end))
            else:
                spans.extend(_word_runs(text, s_start, s_end, run))
        units.extend((a, b, i == 0) for i, (a, b) in enumerate(spans))
    return units


def _sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentence spans inside ``text[start:end]``, trimmed of surrounding space."""
    spans: list[tuple[int, int]] = []
    cursor = start
    for gap in _SENTENCE_END.finditer(text, start, end):
        before = text[cursor : gap.start()].rsplit(None, 1)
        last_word = before[-1].lower() if before else ""
        # "J. Smith", "e.g. this": not a sentence end.
        if last_word in _ABBREVIATIONS or (len(last_word) == 2 and last_word[0].isalpha()):
            continue
        if gap.start() > cursor:
            spans.append((cursor, gap.start()))
        cursor = gap.end()
    if cursor < end:
        spans.append((cursor, end))
    return spans


def _word_runs(text: str, start: int, end: int, size: int) -> list[tuple[int, int]]:
    """Greedy runs of whole words of at most ``size`` chars; over-long words are cut."""
    runs: list[tuple[int, int]] = []
    run_start = start
    run_end = start
    pos = start
    for gap in [*_WORD_GAP.finditer(text, start, end), None]:
        word_end = gap.start() if gap else end
        next_pos = gap.end() if gap else end
        if word_end - run_start > size and run_end > run_start:
            runs.append((run_start, run_end))
            run_start = pos
        while word_end - run_start > size:  # a single word longer than size
            runs.append((run_start, run_start + size))
            run_start += size
        run_end = word_end
        pos = next_pos
    if run_end > run_start:
        runs.append((run_start, run_end))
    return runs


def _merge_tiny_tail(text: str, chunks: list[Chunk], size: int) -> list[Chunk]:
    """Fold a last chunk of a few words into its predecessor when the result stays small."""
    if len(chunks) < 2:
        return chunks
    prev, last = chunks[-2], chunks[-1]
    if last.end - last.start < size // 5 and last.end - prev.start <= size + size // 5:
        return [*chunks[:-2], Chunk(text[prev.start : last.end], prev.start, last.end)]
    return chunks
