"""Fusion of ranked lists: pure functions over (key, score) pairs, one list per path.

::

    fused = zscore_fusion({"text": [("p7", 0.61), ("p3", 0.55)], "bm25": [("p3", 14.2)]})
    fused = rrf({"text": [...], "bm25": [...]})          # rank-only, for comparison

Both return ``{key: fused score}``; higher is better.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["Ranked", "rrf", "zscore_fusion"]

#: One path's candidates, best first: (key, the path's own score).
Ranked = Sequence[tuple[str, float]]


def rrf(
    ranked: Mapping[str, Ranked], *, k: int = 60, weights: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Reciprocal-rank fusion: each key scores ``sum(weight / (k + rank))`` (rank from 1).

    Ranks only: a path that found nothing useful still hands its first hit as much as the
    best path hands its own, which is why the default is :func:`zscore_fusion`.
    """
    fused: dict[str, float] = {}
    for path, pairs in ranked.items():
        weight = 1.0 if weights is None else weights.get(path, 1.0)
        for rank, (key, _) in enumerate(pairs, start=1):
            fused[key] = fused.get(key, 0.0) + weight / (k + rank)
    return fused


def zscore_fusion(
    ranked: Mapping[str, Ranked],
    *,
    weights: Mapping[str, float] | None = None,
    absent: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Normalised score fusion: each path's scores as z-scores over all candidates, summed.

    Scores keep the evidence ranks throw away: a page far ahead of the rest on one path
    stays far ahead, and a path whose candidates all score alike (it found nothing that
    stands out) moves nothing much. Every path is normalised over the candidates of all
    paths: a candidate a path did not return scores ``absent[path]`` there (say 0 for a
    full-text path that returned every match), by default the path's lowest score, so
    "not found here" counts against, a little, and is never a bonus. In a prototype on
    financebench_dev (43 questions, 3,651 pages; MiniLM + BM25 by page, no document boost)
    R@5 across the documents was 0.56 with this, 0.51 with rank fusion, 0.37 for the best
    single path; in mmrag (with the boost) 0.70 against 0.42 for the text path alone.
    """
    paths = {path: _best(pairs) for path, pairs in ranked.items() if pairs}
    keys = list(dict.fromkeys(key for best in paths.values() for key in best))
    fused = dict.fromkeys(keys, 0.0)
    for path, best in paths.items():
        weight = 1.0 if weights is None else weights.get(path, 1.0)
        floor = min(best.values())
        if absent is not None and path in absent:
            floor = min(floor, absent[path])
        values = [best.get(key, floor) for key in keys]
        mean = sum(values) / len(values)
        spread = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
        if spread < 1e-9:  # one candidate, or all alike: no evidence either way
            continue
        for key, value in zip(keys, values, strict=True):
            fused[key] += weight * (value - mean) / spread
    return fused


def _best(pairs: Ranked) -> dict[str, float]:
    """Each key's best score in one list."""
    best: dict[str, float] = {}
    for key, score in pairs:
        if key not in best or score > best[key]:
            best[key] = float(score)
    return best
