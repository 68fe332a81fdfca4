"""Rank fusion: pure functions over plain hits.

::

    fused = rrf({"clip": clip_hits, "text": text_hits}, key=stands_for)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ..types import Hit, Item

__all__ = ["Key", "merge_same_key", "rrf"]

#: What a hit counts for in fusion: an id (its own, or its parent's for a caption).
Key = Callable[[Item], str]


def _own_id(item: Item) -> str:
    return item.id


def rrf(
    ranked: Mapping[str, Sequence[Hit]],
    *,
    k: int = 60,
    weights: Mapping[str, float] | None = None,
    key: Key | None = None,
) -> list[Hit]:
    """Reciprocal-rank fusion of ranked lists keyed by path name.

    Each key scores ``sum(weight / (k + rank))`` over the lists it appears in
    (rank from 1). ``key`` says what a hit counts for (default: its own id):
    hits with one key are one entry, ranked where the first of them stands (see
    :func:`merge_same_key`). The fused hit keeps the item of its best-ranked
    list, unless some list found the key's own item, and records every path
    that found it in ``via`` and each path's own score in ``scores``.
    """
    key = key or _own_id
    scores: dict[str, float] = {}
    members: dict[str, list[tuple[int, Hit]]] = {}
    via: dict[str, list[str]] = {}
    path_scores: dict[str, dict[str, float]] = {}
    for path, hits in ranked.items():
        weight = 1.0 if weights is None else weights.get(path, 1.0)
        for rank, hit in enumerate(merge_same_key(hits, key), start=1):
            name = key(hit.item)
            scores[name] = scores.get(name, 0.0) + weight / (k + rank)
            via.setdefault(name, []).append(path)
            members.setdefault(name, []).append((rank, hit))
            path_scores.setdefault(name, {})[path] = hit.score
    best = {name: min(rank for rank, _ in found) for name, found in members.items()}
    order = sorted(scores, key=lambda name: (-scores[name], best[name], name))
    out = []
    for name in order:
        found = [hit for _, hit in sorted(members[name], key=lambda pair: pair[0])]
        item, evidence = _merge(name, found)
        out.append(Hit(item, scores[name], tuple(via[name]), path_scores[name], evidence))
    return out


def merge_same_key(hits: Sequence[Hit], key: Key) -> list[Hit]:
    """One ranked list with the hits of one key merged where the first of them stands.

    The merged hit has the first hit's score and paths. Its item is the key's own
    item if the list has it (an image found after its caption), else the first
    hit's; the other hits' items follow as evidence. With the default key (each
    item's own id) a list without repeats comes back unchanged.
    """
    groups: dict[str, list[Hit]] = {}
    for hit in hits:
        groups.setdefault(key(hit.item), []).append(hit)
    out = []
    for name, found in groups.items():
        first = found[0]
        if len(found) == 1 and first.item.id == name:
            out.append(first)
            continue
        item, evidence = _merge(name, found)
        out.append(Hit(item, first.score, first.via, first.scores, evidence, first.parent_item))
    return out


def _merge(name: str, found: Sequence[Hit]) -> tuple[Item, tuple[Item, ...]]:
    """The item to keep for key ``name`` and the other items as evidence, best first."""
    item = next((hit.item for hit in found if hit.item.id == name), found[0].item)
    evidence: dict[str, Item] = {}
    for hit in found:
        for member in (hit.item, *hit.evidence):
            if member.id != item.id:
                evidence.setdefault(member.id, member)
    return item, tuple(evidence.values())
