"""Reciprocal-rank fusion is a pure function over ranked lists."""

from __future__ import annotations

import pytest

from mmrag.retrieve.fusion import rrf
from mmrag.types import Hit, Item


def hits(path: str, *ids: str) -> list[Hit]:
    return [
        Hit(Item(id=i, kind="image", source=i), 1.0 - n / 10, (path,), {path: 1.0 - n / 10})
        for n, i in enumerate(ids)
    ]


def test_items_found_by_several_paths_rise_to_the_top() -> None:
    fused = rrf({"clip": hits("clip", "a", "b", "c"), "text": hits("text", "c", "d")})
    assert [h.item.id for h in fused] == ["c", "a", "b", "d"]  # b and d tie: id order
    assert fused[0].via == ("clip", "text")
    assert fused[0].score == pytest.approx(1 / 63 + 1 / 61)
    assert fused[0].scores == {"clip": pytest.approx(0.8), "text": pytest.approx(1.0)}


def test_weights_shift_the_balance_between_paths() -> None:
    ranked = {"clip": hits("clip", "a", "b"), "text": hits("text", "b", "a")}
    assert rrf(ranked, weights={"clip": 2.0})[0].item.id == "a"
    assert rrf(ranked, weights={"text": 2.0})[0].item.id == "b"


def test_ties_keep_the_better_rank_and_empty_input_gives_nothing() -> None:
    fused = rrf({"clip": hits("clip", "a"), "text": hits("text", "b")})
    assert [h.item.id for h in fused] == ["a", "b"]
    assert rrf({}) == []
