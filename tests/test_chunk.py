"""The text chunker: sizes, boundaries, overlap and spans."""

from __future__ import annotations

import itertools
import re

import pytest

from mmrag.ingest.chunk import chunk_text, default_overlap

PARAGRAPHS = "\n\n".join(
    " ".join(f"Paragraph {p} sentence {s} says something useful." for s in range(6))
    for p in range(8)
)


def test_short_text_is_one_chunk() -> None:
    chunks = chunk_text("  Just one sentence.  ", 800)
    assert [c.text for c in chunks] == ["Just one sentence."]


def test_blank_text_gives_no_chunks() -> None:
    assert chunk_text("", 100) == []
    assert chunk_text(" \n\n \t", 100) == []


def test_chunks_stay_within_size_and_spans_match_the_text() -> None:
    chunks = chunk_text(PARAGRAPHS, 300, 60)
    assert len(chunks) > 3
    for c in chunks:
        assert len(c.text) <= 300
        assert PARAGRAPHS[c.start : c.end] == c.text


def test_chunks_end_at_sentence_or_paragraph_boundaries() -> None:
    for c in chunk_text(PARAGRAPHS, 300, 60):
        assert c.text.endswith("useful.")
        assert c.text[0].isupper()


def test_chunks_cut_inside_a_paragraph_overlap_by_whole_sentences() -> None:
    chunks = chunk_text(PARAGRAPHS, 200, 120)
    overlapping = 0
    for a, b in itertools.pairwise(chunks):
        assert b.start > a.start  # always moves forward
        assert a.end - b.start <= 120
        if PARAGRAPHS[a.end : b.start + 1].count("\n\n") == 0 and b.start < a.end:
            overlapping += 1
            assert PARAGRAPHS[b.start : a.end].endswith("useful.")
    assert overlapping >= len(chunks) // 3


def test_a_chunk_ends_at_a_paragraph_break_when_the_next_paragraph_does_not_fit() -> None:
    chunks = chunk_text(PARAGRAPHS, 400, 0)
    # Each paragraph (about 275 chars) fits whole; none is split across two chunks.
    assert all(c.text.startswith("Paragraph") and c.text.count("sentence 0") == 1 for c in chunks)


def test_every_word_is_in_some_chunk() -> None:
    chunks = chunk_text(PARAGRAPHS, 250, 40)
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    for m in re.finditer(r"\S+", PARAGRAPHS):
        assert set(range(m.start(), m.end())) <= covered


def test_paragraphs_are_kept_whole_when_they_fit() -> None:
    text = "First paragraph is short.\n\nSecond paragraph is also short."
    chunks = chunk_text(text, 40, 0)
    assert [c.text for c in chunks] == [
        "First paragraph is short.",
        "Second paragraph is also short.",
    ]


def test_abbreviations_do_not_end_sentences() -> None:
    text = "See Fig. 3 for details, e.g. the red curve. " * 30
    for c in chunk_text(text, 120, 0):
        assert not c.text.endswith(("Fig.", "e.g."))


def test_a_sentence_longer_than_the_size_is_cut_between_words() -> None:
    text = " ".join(f"word{i}" for i in range(200))
    chunks = chunk_text(text, 100, 20)
    assert all(len(c.text) <= 100 for c in chunks)
    assert all(not c.text.startswith(" ") and " " not in (c.text[0], c.text[-1]) for c in chunks)
    words = {w for c in chunks for w in c.text.split()}
    assert words == set(text.split())


def test_a_word_longer_than_the_size_is_cut() -> None:
    chunks = chunk_text("x" * 250, 100, 0)
    assert [len(c.text) for c in chunks] == [100, 100, 50]


def test_a_tiny_tail_is_merged_into_the_previous_chunk() -> None:
    text = "A" * 90 + ". Tail."
    chunks = chunk_text(text, 95, 0)
    assert len(chunks) == 1


def test_default_overlap_is_a_fraction_of_the_size() -> None:
    assert default_overlap(800) == 120
    with pytest.raises(ValueError):
        chunk_text("text", 0)
