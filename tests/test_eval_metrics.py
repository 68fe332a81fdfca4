"""Every metric against values worked out by hand on a tiny set with known answers."""

from __future__ import annotations

import math
import random

import pytest

from mmrag.evaluate import (
    Judged,
    bootstrap_interval,
    chance_recall,
    compare,
    evaluate,
    ndcg,
    percentile,
    summarize,
)
from mmrag.evaluate.metrics import QueryResult
from mmrag.types import Hit, Item


def hit(source: str, page: int | None = None, **metadata: str) -> Hit:
    item = Item(
        id=f"{source}{page}{metadata}", kind="page", source=source, page=page, metadata=metadata
    )
    return Hit(item, 1.0)


#: Three queries, their rankings and (worked out below) every metric.
QUERIES = [
    Judged("a", (("x.jpg", None),)),  # found at rank 1
    Judged("b", (("m.pdf", 2), ("m.pdf", 5))),  # two right pages: ranks 2 and 5 (and 4 again)
    Judged("c", (("y.jpg", None),), (("sku", "S1"),)),  # right only at rank 11, by its sku
]
RANKED = {
    "a": [hit("/d/x.jpg"), hit("/d/z.jpg")],
    "b": [
        hit("/d/m.pdf", 1),
        hit("/d/m.pdf", 2),
        hit("/d/n.pdf", 2),
        hit("/d/m.pdf", 2),
        hit("/d/m.pdf", 5),
    ],
    "c": [hit("/d/w.jpg", sku="S2")] * 10 + [hit("/d/q.jpg", sku="S1")],
}


def test_recall_mrr_and_ndcg_match_hand_computed_values() -> None:
    (row,) = evaluate(lambda q, p: RANKED[q], QUERIES, [None], cutoffs=(1, 5, 10))
    assert row.recall == {
        1: pytest.approx(1 / 3),
        5: pytest.approx(2 / 3),
        10: pytest.approx(2 / 3),
    }
    # MRR counts every returned hit (search returns k of them): c's right hit is 11th
    assert row.mrr == pytest.approx((1 + 1 / 2 + 1 / 11) / 3)
    # b: gains at ranks 2 and 5 (rank 4 repeats page 2 and earns nothing); ideal: ranks 1, 2
    ndcg_b = (1 / math.log2(3) + 1 / math.log2(6)) / (1 + 1 / math.log2(3))
    assert ndcg_b == pytest.approx(0.62405, abs=1e-5)
    assert row.ndcg == pytest.approx((1.0 + ndcg_b + 0.0) / 3)
    assert [r.rank for r in row.per_query] == [1, 2, 11]


def test_a_metadata_judgement_matches_beyond_the_cut_off_only_when_ranked() -> None:
    judged = QUERIES[2]
    assert ndcg(RANKED["c"], judged, at=11) == pytest.approx(
        (1 / math.log2(12)) / (1 + 1 / math.log2(3))
    )


def test_latency_percentiles_are_nearest_rank() -> None:
    assert percentile(list(range(1, 101)), 50) == 50
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) == 0.0


def test_the_bootstrap_interval_covers_the_true_mean_about_95_percent_of_the_time() -> None:
    rng = random.Random(7)
    truth, covered, trials = 0.3, 0, 200
    for trial in range(trials):
        sample = [float(rng.random() < truth) for _ in range(80)]
        low, high = bootstrap_interval(sample, rounds=400, seed=trial)
        covered += low <= truth <= high
    assert 0.90 <= covered / trials <= 0.99


def _row(name: str, ranks: list[int | None]) -> object:
    results = [QueryResult(str(i), rank, 0.0, 1.0) for i, rank in enumerate(ranks)]
    return summarize(name, results, (1, 5, 10))


def test_paired_comparison_of_the_best_two_rows() -> None:
    strong = _row("strong", [1] * 40)
    weak = _row("weak", [1, None] * 20)
    worst = _row("worst", [None] * 40)
    comparison = compare([weak, worst, strong], "r@1")  # type: ignore[list-item]
    assert comparison is not None
    assert (comparison.best, comparison.second) == ("strong", "weak")
    assert comparison.difference == pytest.approx(0.5)
    assert comparison.significant and comparison.interval[0] > 0.3
    same = compare([weak, _row("twin", [1, None] * 20)], "mrr")  # type: ignore[list-item]
    assert same is not None and not same.significant and same.difference == 0.0
    assert compare([strong], "mrr") is None  # type: ignore[list-item]


def test_a_row_equal_to_the_best_on_every_query_is_passed_over_and_named() -> None:
    strong = _row("a:bm25", [1, 1, 2, 1] * 10)
    twin = _row("b:bm25", [1, 1, 2, 1] * 10)  # the same path of an index built alike
    weak = _row("a:clip", [1, None, None, 3] * 10)
    comparison = compare([twin, weak, strong], "mrr")  # type: ignore[list-item]
    assert comparison is not None
    assert comparison.second == "a:clip"
    assert {comparison.best, *comparison.ties} == {"a:bm25", "b:bm25"}
    assert comparison.difference == pytest.approx((1 + 1 + 0.5 + 1 - 1 - 0 - 0 - 1 / 3) / 4)
    assert comparison.to_dict()["ties"] == list(comparison.ties) and len(comparison.ties) == 1


def test_intervals_are_reported_per_metric() -> None:
    row = _row("r", [1, None] * 10)
    assert row.intervals["r@1"][0] < 0.5 < row.intervals["r@1"][1]  # type: ignore[attr-defined]
    assert row.to_dict()["ci95"]["mrr"] == [round(v, 4) for v in row.intervals["mrr"]]  # type: ignore[attr-defined]


def test_chance_recall_is_the_hypergeometric_hit_rate() -> None:
    assert chance_recall(1, 1, 10) == pytest.approx(0.1)
    assert chance_recall(2, 1, 10) == pytest.approx(0.2)
    assert chance_recall(2, 2, 4) == pytest.approx(1 - (2 / 4) * (1 / 3))
    assert chance_recall(10, 5, 5) == 1.0
