"""Retrieval quality: run judged queries through each path and report recall@k and MRR.

A query set is JSON lines, one query each::

    {"query": "exploded view of the pump", "relevant": [{"source": "manual.pdf", "page": 7}]}
    {"query": "a red running shoe", "relevant": ["products/red-shoe.jpg"]}

Question sets in financebench's layout are read too (``question``, ``doc``, and
``evidence: [{"page_num_0based": 59}]``): each evidence page becomes a judgement on that
document, its 0-based page made 1-based as mmrag numbers pages.

A hit matches a judgement when its source ends with the judged path (so relative paths work)
and, if a page is given, its page is that page.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .types import Hit

__all__ = [
    "Judged",
    "PathScores",
    "bootstrap_interval",
    "evaluate",
    "load_queries",
    "match",
    "reciprocal_rank",
]


@dataclass(frozen=True)
class Judged:
    """One query and what counts as a right answer: (source suffix, page or None) pairs."""

    query: str
    relevant: tuple[tuple[str, int | None], ...]


@dataclass
class PathScores:
    """Recall at each cut-off, mean reciprocal rank and latency for one retrieval path."""

    path: str
    recall: dict[int, float] = field(default_factory=dict)
    mrr: float = 0.0
    p50_ms: float = 0.0
    queries: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "path": self.path,
            "queries": self.queries,
            "recall": {f"@{k}": round(v, 4) for k, v in self.recall.items()},
            "mrr": round(self.mrr, 4),
            "p50_ms": round(self.p50_ms, 2),
        }


def load_queries(path: Path) -> list[Judged]:
    """Read a JSON-lines query set; a malformed line is an InputError naming the line."""
    judged = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if "evidence" in row and "question" in row:
                judged.append(_evidence_question(row))
                continue
            relevant = tuple(_judgement(r) for r in row["relevant"])
            judged.append(Judged(str(row["query"]), relevant))
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path}:{number}", f"not a judged query: {exc}") from None
    return judged


def _evidence_question(row: Mapping[str, Any]) -> Judged:
    """A financebench-style question: its evidence pages (0-based) on its document."""
    doc = str(row["doc"])
    pages = dict.fromkeys(int(e["page_num_0based"]) + 1 for e in row["evidence"])
    if not pages:
        raise ValueError("no evidence pages")
    return Judged(str(row["question"]), tuple((doc, page) for page in pages))


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


def _judgement(entry: str | Mapping[str, Any]) -> tuple[str, int | None]:
    if isinstance(entry, str):
        return entry, None
    page = entry.get("page")
    return str(entry["source"]), None if page is None else int(page)


def match(hit: Hit, judged: Judged) -> bool:
    """Whether a hit is one of the query's right answers."""
    item = hit.item
    for source, page in judged.relevant:
        if (item.source == source or item.source.endswith("/" + source.lstrip("/"))) and (
            page is None or item.page == page
        ):
            return True
    return False


def reciprocal_rank(hits: Sequence[Hit], judged: Judged) -> float:
    """1/rank of the first right hit, 0 when none is right."""
    return next((1.0 / rank for rank, hit in enumerate(hits, 1) if match(hit, judged)), 0.0)


Search = Callable[[str, Sequence[str] | None], list[Hit]]


def evaluate(
    search: Search,
    queries: Sequence[Judged],
    paths: Iterable[Sequence[str] | None],
    cutoffs: Sequence[int] = (1, 5, 10),
) -> list[PathScores]:
    """Score each path choice (None = all paths fused) over the judged queries."""
    results = []
    for choice in paths:
        name = "fused" if choice is None else "+".join(choice)
        scores = PathScores(name, queries=len(queries))
        hits_at = dict.fromkeys(cutoffs, 0)
        timings = []
        rr = 0.0
        for judged in queries:
            started = time.perf_counter()
            hits = search(judged.query, choice)
            timings.append((time.perf_counter() - started) * 1000)
            first = reciprocal_rank(hits, judged)
            rr += first
            for k in cutoffs:
                hits_at[k] += bool(first) and first >= 1.0 / k
        n = max(len(queries), 1)
        scores.recall = {k: hits_at[k] / n for k in cutoffs}
        scores.mrr = rr / n
        scores.p50_ms = sorted(timings)[len(timings) // 2] if timings else 0.0
        results.append(scores)
    return results
