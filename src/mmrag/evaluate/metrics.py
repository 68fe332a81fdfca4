"""Retrieval metrics over judged queries: recall@k, MRR, nDCG@10, latency, bootstrap intervals.

A hit matches a judgement when its source ends with the judged path (so relative paths work)
and, if a page is given, its page is that page; or, for a metadata judgement such as
``{"sku": "MH01"}``, when the item's metadata holds that value. Each judgement is credited
once in nDCG, so three chunks of one relevant page do not count three times.

"Recall@k" is the share of queries with at least one relevant hit in the top k (the hit rate
used in image-text retrieval, where most queries have one right answer).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..types import Hit

Target = tuple[str, int | None]
Search = Callable[[str, Sequence[str] | None], list[Hit]]
NDCG_AT = 10


@dataclass(frozen=True)
class Judged:
    """One query and what counts as a right answer.

    ``relevant`` holds (source suffix, page or None) pairs; ``fields`` holds metadata
    (key, value) pairs, e.g. ``("sku", "MH01")`` for a catalog product.
    """

    query: str
    relevant: tuple[Target, ...]
    fields: tuple[tuple[str, str], ...] = ()

    def targets(self) -> int:
        """How many distinct right answers the query has."""
        return len(self.relevant) + len(self.fields)


@dataclass
class QueryResult:
    """One query on one path: rank of the first right hit (None: not found), scores, hits."""

    query: str
    rank: int | None
    ndcg: float
    latency_ms: float
    hits: list[Hit] = field(default_factory=list)

    @property
    def rr(self) -> float:
        """Reciprocal rank."""
        return 0.0 if self.rank is None else 1.0 / self.rank

    def to_dict(self, top: int = 5) -> dict[str, Any]:
        """A JSON-ready dict with the top hits."""
        return {
            "query": self.query,
            "rank": self.rank,
            "rr": round(self.rr, 4),
            "ndcg": round(self.ndcg, 4),
            "latency_ms": round(self.latency_ms, 2),
            "top": [_hit_dict(h) for h in self.hits[:top]],
        }


def _hit_dict(hit: Hit) -> dict[str, Any]:
    item = hit.item
    return {
        "id": item.id,
        "kind": item.kind,
        "source": item.source,
        "page": item.page,
        "score": round(hit.score, 4),
    }


@dataclass
class PathScores:
    """Recall at each cut-off, MRR, nDCG@10 with 95% intervals, and latency for one path."""

    path: str
    recall: dict[int, float] = field(default_factory=dict)
    mrr: float = 0.0
    p50_ms: float = 0.0
    queries: int = 0
    ndcg: float = 0.0
    p95_ms: float = 0.0
    index: str = ""
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    per_query: list[QueryResult] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``index:path`` when the run compares indexes, else the path."""
        return f"{self.index}:{self.path}" if self.index else self.path

    def values(self, metric: str) -> list[float]:
        """Per-query values of ``metric`` (``mrr``, ``ndcg``, ``r@K``), in query order."""
        if metric == "mrr":
            return [r.rr for r in self.per_query]
        if metric == "ndcg":
            return [r.ndcg for r in self.per_query]
        k = int(metric.removeprefix("r@"))
        return [float(r.rank is not None and r.rank <= k) for r in self.per_query]

    def metric(self, metric: str) -> float:
        """The mean of ``metric`` over the queries."""
        values = self.values(metric)
        return sum(values) / len(values) if values else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out: dict[str, Any] = {
            "path": self.path,
            "queries": self.queries,
            "recall": {f"@{k}": round(v, 4) for k, v in self.recall.items()},
            "mrr": round(self.mrr, 4),
            "ndcg@10": round(self.ndcg, 4),
            "p50_ms": round(self.p50_ms, 2),
            "p95_ms": round(self.p95_ms, 2),
            "ci95": {m: [round(lo, 4), round(hi, 4)] for m, (lo, hi) in self.intervals.items()},
        }
        if self.index:
            out["index"] = self.index
        return out


def bootstrap_interval(
    values: Sequence[float], *, level: float = 0.95, rounds: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """A percentile bootstrap interval for the mean of ``values`` (per-query scores)."""
    if not values:
        return (0.0, 0.0)
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(rounds))
    tail = (1.0 - level) / 2
    return means[int(tail * (rounds - 1))], means[int((1.0 - tail) * (rounds - 1))]


def _target(hit: Hit, judged: Judged) -> int | None:
    """Index of the judgement a hit matches (relevant first, then fields), or None."""
    item = hit.item
    for number, (source, page) in enumerate(judged.relevant):
        if (item.source == source or item.source.endswith("/" + source.lstrip("/"))) and (
            page is None or item.page == page
        ):
            return number
    for number, (key, value) in enumerate(judged.fields, start=len(judged.relevant)):
        if str(item.metadata.get(key, "")) == value:
            return number
    return None


def match(hit: Hit, judged: Judged) -> bool:
    """Whether a hit is one of the query's right answers."""
    return _target(hit, judged) is not None


def reciprocal_rank(hits: Sequence[Hit], judged: Judged) -> float:
    """1/rank of the first right hit, 0 when none is right."""
    return next((1.0 / rank for rank, hit in enumerate(hits, 1) if match(hit, judged)), 0.0)


def ndcg(hits: Sequence[Hit], judged: Judged, at: int = NDCG_AT) -> float:
    """Binary-gain nDCG@at; each judgement earns its gain once, at its best rank."""
    credited: set[int] = set()
    dcg = 0.0
    for rank, hit in enumerate(hits[:at], 1):
        target = _target(hit, judged)
        if target is not None and target not in credited:
            credited.add(target)
            dcg += 1.0 / math.log2(rank + 1)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(judged.targets(), at) + 1))
    return dcg / ideal if ideal else 0.0


def run_path(
    search: Search, queries: Sequence[Judged], choice: Sequence[str] | None
) -> list[QueryResult]:
    """Each query through one path choice (None = all paths fused), timed.

    One untimed query goes first, so loading a model lazily is not billed to the first query.
    """
    if queries:
        search(queries[0].query, choice)
    results = []
    for judged in queries:
        started = time.perf_counter()
        hits = search(judged.query, choice)
        elapsed = (time.perf_counter() - started) * 1000
        rank = next((n for n, hit in enumerate(hits, 1) if match(hit, judged)), None)
        results.append(QueryResult(judged.query, rank, ndcg(hits, judged), elapsed, hits))
    return results


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0-100) of ``values``; 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summarize(
    name: str, results: list[QueryResult], cutoffs: Sequence[int] = (1, 5, 10), index: str = ""
) -> PathScores:
    """Means, 95% bootstrap intervals and latency percentiles of one path's per-query results."""
    scores = PathScores(name, queries=len(results), index=index, per_query=results)
    scores.recall = {k: scores.metric(f"r@{k}") for k in cutoffs}
    scores.mrr = scores.metric("mrr")
    scores.ndcg = scores.metric("ndcg")
    for metric in (*(f"r@{k}" for k in cutoffs), "mrr", "ndcg"):
        scores.intervals[metric] = bootstrap_interval(scores.values(metric))
    timings = [r.latency_ms for r in results]
    scores.p50_ms, scores.p95_ms = percentile(timings, 50), percentile(timings, 95)
    return scores


def evaluate(
    search: Search,
    queries: Sequence[Judged],
    paths: Iterable[Sequence[str] | None],
    cutoffs: Sequence[int] = (1, 5, 10),
    index: str = "",
) -> list[PathScores]:
    """Score each path choice (None = all paths fused) over the judged queries."""
    return [
        summarize(
            "fused" if choice is None else "+".join(choice),
            run_path(search, queries, choice),
            cutoffs,
            index,
        )
        for choice in paths
    ]


@dataclass(frozen=True)
class Comparison:
    """The best two rows on one metric: their difference and its paired 95% interval."""

    metric: str
    best: str
    second: str
    difference: float
    interval: tuple[float, float]
    #: Rows equal to the best on every query, passed over for ``second``.
    ties: tuple[str, ...] = ()

    @property
    def significant(self) -> bool:
        """Whether the interval of the difference excludes zero."""
        low, high = self.interval
        return low > 0 or high < 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "metric": self.metric,
            "best": self.best,
            "second": self.second,
            "difference": round(self.difference, 4),
            "ci95": [round(v, 4) for v in self.interval],
            "excludes_zero": self.significant,
            "ties": list(self.ties),
        }


def compare(rows: Sequence[PathScores], metric: str = "mrr") -> Comparison | None:
    """Paired bootstrap of the best row against the next best that differs from it on some
    query (rows identical to it on every query, such as one path in two indexes built alike,
    are named in ``ties``); None with fewer than two rows."""
    if len(rows) < 2:
        return None
    best, *rest = sorted(rows, key=lambda r: r.metric(metric), reverse=True)
    ties = [row for row in rest if row.values(metric) == best.values(metric)]
    second = next((row for row in rest if row not in ties), rest[0])
    diffs = [a - b for a, b in zip(best.values(metric), second.values(metric), strict=True)]
    mean = sum(diffs) / len(diffs) if diffs else 0.0
    named = tuple(row.label for row in ties if row is not second)
    return Comparison(metric, best.label, second.label, mean, bootstrap_interval(diffs), named)


def chance_recall(k: int, relevant: int, items: int) -> float:
    """Recall@k of a uniformly random ranking of ``items`` with ``relevant`` right answers."""
    if items <= 0 or relevant <= 0:
        return 0.0
    miss = 1.0
    for i in range(min(k, items)):
        miss *= max(items - relevant - i, 0) / (items - i)
    return 1.0 - miss
