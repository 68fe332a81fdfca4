"""Rank fusion: pure functions over plain hits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..types import Hit

__all__ = ["rrf"]


def rrf(
    ranked: Mapping[str, Sequence[Hit]],
    *,
    k: int = 60,
    weights: Mapping[str, float] | None = None,
) -> list[Hit]:
    """Reciprocal-rank fusion of ranked lists keyed by path name.

    Each item scores ``sum(weight / (k + rank))`` over the lists it appears in
    (rank from 1). The fused hit keeps the item from its best-ranked list and
    records every path that found it in ``via``.
    """
    scores: dict[str, float] = {}
    best: dict[str, tuple[int, Hit]] = {}
    via: dict[str, list[str]] = {}
    for path, hits in ranked.items():
        weight = 1.0 if weights is None else weights.get(path, 1.0)
        for rank, hit in enumerate(hits, start=1):
            key = hit.item.id
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
            via.setdefault(key, []).append(path)
            if key not in best or rank < best[key][0]:
                best[key] = (rank, hit)
    path_scores: dict[str, dict[str, float]] = {}
    for path, hits in ranked.items():
        for hit in hits:
            path_scores.setdefault(hit.item.id, {}).setdefault(path, hit.score)
    order = sorted(scores, key=lambda key: (-scores[key], best[key][0], key))
    return [
        Hit(
            best[key][1].item, scores[key], tuple(via[key]), path_scores[key], best[key][1].evidence
        )
        for key in order
    ]
