"""Retrieval quality: judged queries from common formats, metrics with intervals, reports.

``loaders`` reads query sets, ``metrics`` scores retrieval paths, ``report`` writes
report.md with charts. The names below are the public surface ``mmrag eval`` uses.
"""

from __future__ import annotations

from .loaders import FORMATS, detect_format, load, load_queries, to_jsonl
from .metrics import (
    Comparison,
    Judged,
    PathScores,
    QueryResult,
    bootstrap_interval,
    chance_recall,
    compare,
    evaluate,
    match,
    ndcg,
    percentile,
    reciprocal_rank,
    run_path,
    summarize,
)

__all__ = [
    "FORMATS",
    "Comparison",
    "Judged",
    "PathScores",
    "QueryResult",
    "bootstrap_interval",
    "chance_recall",
    "compare",
    "detect_format",
    "evaluate",
    "load",
    "load_queries",
    "match",
    "ndcg",
    "percentile",
    "reciprocal_rank",
    "run_path",
    "summarize",
    "to_jsonl",
]
