"""Fusion is a pure function over each path's (key, score) lists."""

from __future__ import annotations

import random

import pytest

from mmrag.retrieve.fusion import rrf, zscore_fusion


def test_keys_found_by_several_paths_rise_to_the_top() -> None:
    fused = rrf({"clip": [("a", 0.3), ("b", 0.2), ("c", 0.1)], "text": [("c", 0.9), ("d", 0.8)]})
    assert max(fused, key=fused.__getitem__) == "c"
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)


def test_rrf_weights_tip_the_balance() -> None:
    ranked = {"clip": [("a", 1.0), ("b", 0.5)], "text": [("b", 1.0), ("a", 0.5)]}
    for path, winner in (("clip", "a"), ("text", "b")):
        fused = rrf(ranked, weights={path: 2.0})
        assert max(fused, key=fused.__getitem__) == winner


def test_a_clear_winner_on_one_path_beats_a_flat_path_that_found_nothing_useful() -> None:
    # bm25 sets "p7" far above the rest; the text path's candidates are all alike.
    bm25 = [("p7", 30.0), ("p1", 5.0), ("p2", 4.0), ("p3", 4.0)]
    text = [("p9", 0.301), ("p8", 0.300), ("p7", 0.299), ("p1", 0.298)]
    fused = zscore_fusion({"bm25": bm25, "text": text})
    assert max(fused, key=fused.__getitem__) == "p7"
    ranks = rrf({"bm25": bm25, "text": text})
    assert max(ranks, key=ranks.__getitem__) == "p7"  # here both agree; now add noise:


def test_a_noise_path_does_not_push_the_agreed_best_down() -> None:
    rng = random.Random(0)
    good = {"text": [("gold", 0.8)] + [(f"d{i}", 0.4 - i / 1000) for i in range(50)]}
    good["bm25"] = [("gold", 20.0)] + [(f"d{i}", 8.0 - i / 100) for i in range(50)]
    noise = [(f"n{i}", rng.gauss(0.2, 0.01)) for i in range(50)]
    fused = zscore_fusion({**good, "clip": sorted(noise, key=lambda p: -p[1])})
    assert max(fused, key=fused.__getitem__) == "gold"


def test_a_key_a_path_missed_gets_that_paths_lowest_score_not_a_bonus() -> None:
    fused = zscore_fusion(
        {"a": [("x", 3.0), ("y", 2.0), ("z", 1.0)], "b": [("y", 1.0), ("w", 0.0)]}
    )
    assert fused["y"] > fused["x"] > fused["z"]
    assert zscore_fusion({}) == {} and zscore_fusion({"a": []}) == {}
    assert zscore_fusion({"a": [("only", 0.5)]}) == {"only": 0.0}
