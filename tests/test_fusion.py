"""Reciprocal-rank fusion is a pure function over ranked lists."""

from __future__ import annotations

import pytest

from mmrag.retrieve.fusion import merge_same_key, rrf
from mmrag.retrieve.grouping import stands_for
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


def test_a_caption_counts_for_its_image_under_a_key() -> None:
    photo = Item(id="p", kind="image", source="p.jpg")
    cap = Item(id="p-cap", kind="text", source="p.jpg", parent="p", role="caption")
    other = Item(id="q", kind="image", source="q.jpg")
    ranked = {
        "clip": [
            Hit(other, 0.9, ("clip",), {"clip": 0.9}),
            Hit(photo, 0.8, ("clip",), {"clip": 0.8}),
        ],
        "text": [Hit(cap, 0.7, ("text",), {"text": 0.7})],
    }
    fused = rrf(ranked, key=stands_for)
    assert [h.item.id for h in fused] == ["p", "q"]  # the image found twice rises
    assert fused[0].score == pytest.approx(1 / 62 + 1 / 61)
    assert fused[0].evidence == (cap,) and fused[0].via == ("clip", "text")


def test_one_list_merges_a_key_where_its_first_hit_stands() -> None:
    photo = Item(id="p", kind="image", source="p.jpg")
    cap = Item(id="p-cap", kind="text", source="p.jpg", parent="p", role="caption")
    merged = merge_same_key([Hit(cap, 0.9), Hit(photo, 0.5)], stands_for)
    assert [(h.item.id, h.score, h.evidence) for h in merged] == [("p", 0.9, (cap,))]
    plain = hits("clip", "a", "b")
    assert merge_same_key(plain, lambda item: item.id) == plain
