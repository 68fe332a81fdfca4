"""Group fused hits so one page and its chunks do not crowd out everything else.

A pure function over plain hits::

    groups = group_hits(rrf(ranked), max_per_doc=3)
    for g in groups:
        g.hit.item, g.hit.score, [e.item.text for e in g.evidence]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..types import Hit, Item

__all__ = ["Group", "document_key", "group_hits"]


@dataclass(frozen=True)
class Group:
    """A result: the hit shown, and the text-chunk hits folded into it as evidence.

    ``hit.score`` is the best score in the group and ``hit.via`` every path that
    found any of its members.
    """

    hit: Hit
    evidence: tuple[Hit, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The hit's JSON-ready dict plus ``evidence`` (id, score, text, page, bbox of each)."""
        out = self.hit.to_dict()
        out["evidence"] = [
            {
                "id": e.item.id,
                "score": round(float(e.score), 6),
                "text": e.item.text,
                "page": e.item.page,
                "bbox": list(e.item.bbox) if e.item.bbox else None,
            }
            for e in self.evidence
        ]
        return out


def document_key(item: Item) -> str | None:
    """The document an item belongs to for the per-document cap: pages/slides of one file.

    Stand-alone images, products and catalog rows (no page) are never capped.
    """
    return item.source if item.page is not None else None


def group_hits(
    hits: Sequence[Hit],
    *,
    max_per_doc: int | None = 3,
    fold_siblings: bool = True,
    key: Callable[[Item], str | None] = document_key,
    overflow: bool = False,
) -> list[Group]:
    """Fold text chunks into their hit parent, then keep at most ``max_per_doc`` per document.

    A ``text`` hit whose parent (page, slide or image) is also a hit becomes
    evidence of that parent; with ``fold_siblings`` the other chunks of one
    parent that is not a hit fold into the best of them. Groups are ordered by
    their best score (ties keep input order). ``max_per_doc=None`` disables the cap.
    With ``overflow`` the groups over the cap are not dropped but moved after
    all the others (still best first): other documents get the top slots, yet a
    query that only one document answers still gets that document's pages.
    """
    hit_ids = {h.item.id for h in hits}
    members: dict[str, list[Hit]] = {}  # the group's anchor id -> its hits, in input order
    for hit in hits:
        members.setdefault(_anchor(hit, hit_ids, fold_siblings), []).append(hit)
    groups = [_group(anchor, m) for anchor, m in members.items()]
    order = sorted(range(len(groups)), key=lambda i: -groups[i].hit.score)
    out: list[Group] = []
    over: list[Group] = []
    per_doc: dict[str, int] = {}
    for i in order:
        doc = key(groups[i].hit.item)
        if doc is not None and max_per_doc is not None:
            if per_doc.get(doc, 0) >= max_per_doc:
                over.append(groups[i])
                continue
            per_doc[doc] = per_doc.get(doc, 0) + 1
        out.append(groups[i])
    return out + over if overflow else out


def _anchor(hit: Hit, hit_ids: set[str], fold_siblings: bool) -> str:
    """The id a hit groups under: its parent for a text chunk whose parent is hit or shared."""
    item = hit.item
    if item.kind == "text" and item.parent is not None:
        if item.parent in hit_ids:
            return item.parent
        if fold_siblings:
            return "\x1fsiblings:" + item.parent
    return item.id


def _group(anchor: str, members: list[Hit]) -> Group:
    """One group: headed by the anchor (the parent) when it is a hit, else by the best chunk."""
    head = next((h for h in members if h.item.id == anchor), None)
    if head is None:
        head = max(members, key=lambda h: h.score)
    evidence = tuple(sorted((h for h in members if h is not head), key=lambda h: -h.score))
    best = max(h.score for h in members)
    via: list[str] = []
    for h in (head, *evidence):
        via.extend(v for v in h.via if v not in via)
    return Group(Hit(head.item, best, tuple(via), head.scores, head.evidence), evidence)
