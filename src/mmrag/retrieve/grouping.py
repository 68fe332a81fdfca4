"""Group fused hits under their parents so a page and its text do not crowd out the rest.

Pure functions over plain hits; the parents not among the hits are looked up by the
caller (one batched ``get``) and passed in::

    fused = rrf(ranked, key=stands_for)
    parents = {item.id: item for item in store.get(parents_wanted(fused))}
    for g in group_hits(fused, parents=parents, max_per_doc=3):
        g.hit.item, g.hit.score, [e.item.text for e in g.evidence]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..types import Hit, Item

__all__ = ["STAND_INS", "Group", "document_key", "group_hits", "parents_wanted", "stands_for"]

#: Roles of text that always stands for its parent: a caption or the OCR text of a picture.
STAND_INS = frozenset({"caption", "ocr"})
#: Kinds with no picture of their own: a hit on one shows its parent's (a chunk's page).
_PICTURELESS = frozenset({"text", "product"})


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


def stands_for(item: Item) -> str:
    """What a hit counts for in fusion: a caption's or OCR text's parent, else the item itself."""
    if item.role in STAND_INS and item.parent:
        return item.parent
    return item.id


def parents_wanted(hits: Sequence[Hit]) -> list[str]:
    """Parent ids that grouping needs and the hits do not hold: of text that stands for its
    parent, and of chunks whose page picture goes with them."""
    have = {hit.item.id for hit in hits}
    wanted = (hit.item.parent for hit in hits if hit.item.kind in _PICTURELESS)
    return list(dict.fromkeys(p for p in wanted if p is not None and p not in have))


def document_key(item: Item) -> str | None:
    """The document an item belongs to for the per-document cap: pages/slides of one file.

    Stand-alone images, products and catalog rows (no page) are never capped.
    """
    return item.source if item.page is not None else None


def group_hits(
    hits: Sequence[Hit],
    *,
    parents: Mapping[str, Item] | None = None,
    max_per_doc: int | None = 3,
    fold_siblings: bool = True,
    key: Callable[[Item], str | None] = document_key,
    overflow: bool = False,
) -> list[Group]:
    """Gather text under its parent, then keep at most ``max_per_doc`` per document.

    A caption or OCR text (see :data:`STAND_INS`) whose parent is in ``parents``
    stands for it: the parent heads the hit and the text becomes its evidence.
    Any other ``text`` hit whose parent (page, slide or image) is also a hit
    becomes evidence of that parent; with ``fold_siblings`` the other chunks of
    one parent that is not a hit fold into the best of them, which carries the
    parent from ``parents`` as ``parent_item``. Groups are ordered by their best
    score (ties keep input order). ``max_per_doc=None`` disables the cap. With
    ``overflow`` the groups over the cap are not dropped but moved after all the
    others (still best first): other documents get the top slots, yet a query
    that only one document answers still gets that document's pages.
    """
    parents = parents or {}
    hits = _stand_in(hits, parents)
    hit_ids = {h.item.id for h in hits}
    members: dict[str, list[Hit]] = {}  # the group's anchor id -> its hits, in input order
    for hit in hits:
        members.setdefault(_anchor(hit, hit_ids, fold_siblings), []).append(hit)
    groups = [_group(anchor, m, parents) for anchor, m in members.items()]
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


def _stand_in(hits: Sequence[Hit], parents: Mapping[str, Item]) -> list[Hit]:
    """Hits with each caption or OCR text replaced by its parent, the text as its evidence.

    Text whose parent is itself a hit is left for :func:`_anchor` to fold in; several
    texts of one parent become one hit where the first of them stands.
    """
    hit_ids = {h.item.id for h in hits}
    out: list[Hit] = []
    at: dict[str, int] = {}  # parent id -> its position in out
    for hit in hits:
        item = hit.item
        parent = _stood_for(item, hit_ids, parents)
        if parent is None:
            out.append(hit)
        elif parent.id in at:
            prev = out[at[parent.id]]
            via = (*prev.via, *(v for v in hit.via if v not in prev.via))
            scores = {**hit.scores, **prev.scores}
            evidence = (*prev.evidence, item, *hit.evidence)
            out[at[parent.id]] = Hit(parent, prev.score, via, scores, evidence)
        else:
            at[parent.id] = len(out)
            out.append(Hit(parent, hit.score, hit.via, hit.scores, (item, *hit.evidence)))
    return out


def _stood_for(item: Item, hit_ids: set[str], parents: Mapping[str, Item]) -> Item | None:
    """The parent a caption or OCR text stands for, when it is known and not a hit itself."""
    if item.role not in STAND_INS or item.parent is None or item.parent in hit_ids:
        return None
    return parents.get(item.parent)


def _anchor(hit: Hit, hit_ids: set[str], fold_siblings: bool) -> str:
    """The id a hit groups under: its parent for a text chunk whose parent is hit or shared."""
    item = hit.item
    if item.kind == "text" and item.parent is not None:
        if item.parent in hit_ids:
            return item.parent
        if fold_siblings:
            return "\x1fsiblings:" + item.parent
    return item.id


def _group(anchor: str, members: list[Hit], parents: Mapping[str, Item]) -> Group:
    """One group: headed by the anchor (the parent) when it is a hit, else by the best chunk."""
    head = next((h for h in members if h.item.id == anchor), None)
    if head is None:
        head = max(members, key=lambda h: h.score)
    evidence = tuple(sorted((h for h in members if h is not head), key=lambda h: -h.score))
    best = max(h.score for h in members)
    via: list[str] = []
    for h in (head, *evidence):
        via.extend(v for v in h.via if v not in via)
    parent = None
    if head.item.kind in _PICTURELESS and head.item.parent is not None:
        parent = parents.get(head.item.parent, head.parent_item)
    return Group(Hit(head.item, best, tuple(via), head.scores, head.evidence, parent), evidence)
