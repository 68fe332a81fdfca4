"""Gather hits into the units users cite: a page, a slide, a product, a picture.

A hit counts for its unit: a text chunk, table or figure for its page or slide (a figure's
caption through its figure), a caption or OCR text for its picture, a product's photo or
colour variant for the product. So a page found by its chunk, its table and its figure is
one result, scored by its best evidence, and cannot crowd out other pages. Pure functions
over plain items; the caller looks parents up level by level (:func:`parents_needed`)::

    pool = {item.id: item for item in items}
    while wanted := [p for p in parents_needed(pool.values()) if p not in pool]:
        pool.update((p.id, p) for p in store.get(wanted))   # (stop at ids it lacks)
    units = gather(path_hits, pool)      # one path's hits -> its units, best first
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..types import Hit, Item

__all__ = ["STAND_INS", "Unit", "gather", "parents_needed", "unit_of"]

#: Roles of text that stands for its parent: a caption or the OCR text of a picture.
STAND_INS = frozenset({"caption", "ocr"})
#: Kinds that are units of their own whatever their parent (a page's parent is its document,
#: which is no item).
_TOP_KINDS = frozenset({"page", "slide"})
#: Kinds that climb only into a product: a product's photo, a colour variant of a product.
_PRODUCT_PARTS = frozenset({"image", "product"})
#: Parent links followed at most: a caption -> its figure -> its page.
MAX_DEPTH = 3


@dataclass(frozen=True)
class Unit:
    """One result on one path: the unit, its best member score, and what found it.

    ``members`` are the hits that count for the unit, best first; ``passed`` the
    items between a member and the unit (the figure of a caption hit).
    """

    item: Item
    score: float
    members: tuple[Hit, ...]
    passed: tuple[Item, ...] = ()

    def evidence(self) -> tuple[Item, ...]:
        """The items that found the unit, best first, then those passed on the way."""
        seen = {self.item.id}
        out = []
        for item in (*(m.item for m in self.members), *self.passed):
            if item.id not in seen:
                seen.add(item.id)
                out.append(item)
        return tuple(out)


def _climbs(item: Item, parent: Item) -> bool:
    """Whether a hit on ``item`` counts for ``parent``."""
    if item.kind in _TOP_KINDS:
        return False
    if item.kind in _PRODUCT_PARTS:
        return parent.kind == "product"
    return True  # text (chunk, table, caption, OCR) and figures count for what holds them


def unit_of(item: Item, parents: Mapping[str, Item]) -> tuple[Item, tuple[Item, ...]]:
    """The unit ``item`` counts for, and the items passed on the way up."""
    passed: list[Item] = []
    current = item
    for _ in range(MAX_DEPTH):
        parent = parents.get(current.parent) if current.parent else None
        if parent is None or not _climbs(current, parent):
            break
        if current is not item:
            passed.append(current)
        current = parent
    return current, tuple(passed)


def parents_needed(items: Iterable[Item]) -> list[str]:
    """The parent ids these items may climb to (pages and slides climb no further)."""
    wanted = (item.parent for item in items if item.kind not in _TOP_KINDS)
    return list(dict.fromkeys(p for p in wanted if p is not None))


def gather(hits: Sequence[Hit], parents: Mapping[str, Item]) -> list[Unit]:
    """One path's hits as units, best first; a unit scores its best member."""
    members: dict[str, list[Hit]] = {}
    heads: dict[str, Item] = {}
    passed: dict[str, list[Item]] = {}
    for hit in hits:
        unit, via = unit_of(hit.item, parents)
        heads.setdefault(unit.id, unit)
        members.setdefault(unit.id, []).append(hit)
        passed.setdefault(unit.id, []).extend(via)
    units = [
        Unit(
            heads[uid],
            max(h.score for h in hs),
            tuple(sorted(hs, key=lambda h: -h.score)),
            tuple(passed[uid]),
        )
        for uid, hs in members.items()
    ]
    # Stable: equal scores keep the path's own order.
    return sorted(units, key=lambda u: -u.score)
