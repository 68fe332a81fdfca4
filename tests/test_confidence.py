"""How much of a query a full-text path's best hits hold: the share of its content words."""

from __future__ import annotations

import pytest

from mmrag.retrieve.confidence import coverage


def test_a_verbatim_caption_is_held_whole() -> None:
    assert coverage("Self-locking nuts.", ["Figure 7-26. Self-locking nuts.", "Bolts"]) == 1.0


def test_a_question_held_in_part_counts_its_share_of_content_words() -> None:
    # Content words: capital, expenditure, 3, m, 2018 (stop words and punctuation dropped).
    query = "What was the capital expenditure of 3M in 2018?"
    assert coverage(query, ["Capital resources in 2018"]) == pytest.approx(2 / 5)


def test_the_best_of_the_texts_counts() -> None:
    texts = ["revenue grew", "capital expenditure rose", "nothing here"]
    assert coverage("capital expenditure and revenue", texts) == pytest.approx(2 / 3)


def test_a_query_of_stop_words_only_is_not_discounted_and_no_hit_holds_nothing() -> None:
    assert coverage("what is the", ["anything"]) == 1.0
    assert coverage("capital expenditure", []) == 0.0
