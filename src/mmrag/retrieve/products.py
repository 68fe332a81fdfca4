"""Product search around the searcher: learned facets, price bounds held, similar products.

Products are ``product`` items; a variant is a ``product`` whose parent is a product, and a
photo is an ``image`` whose parent is either (see :mod:`mmrag.ingest.catalog`)::

    facets = load_facets(store, index_dir)          # learned from the products, cached
    hits = enforce_bounds(store, hits, {"price": Range(lte=60)})
    products = product_of(store, [h.item for h in hits])   # item id -> its product
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..stores.base import VectorStore
from ..stores.filters import matches, normalize
from ..types import Hit, Item, Range, Where
from .attributes import ParsedQuery, apply_boosts, learn_facets

__all__ = [
    "FACETS_FILE",
    "enforce_bounds",
    "forget_facets",
    "load_facets",
    "parsed_search",
    "product_of",
    "search_preferring",
    "similar_products",
]

log = logging.getLogger(__name__)

FACETS_FILE = "facets.json"


#: Hits a parsed or filtered query fetches before boosts and bound checks, at least.
_PARSED_FETCH = 75


def load_facets(store: VectorStore, root: Path) -> dict[str, Any]:
    """The index's facet values (colours, categories) and product count, learned once per write."""
    path = root / FACETS_FILE
    try:
        cached = json.loads(path.read_text())
        if isinstance(cached, dict):
            return cached
    except (OSError, ValueError):
        pass
    products = store.find({"kind": "product"})
    facets: dict[str, Any] = {**learn_facets(products), "products": len(products)}
    try:
        path.write_text(json.dumps(facets))
    except OSError as exc:  # a read-only index still searches
        log.debug("facets not cached: %s", exc)
    return facets


def forget_facets(root: Path) -> None:
    """Drop the cached facets (after the index changed)."""
    (root / FACETS_FILE).unlink(missing_ok=True)


def product_of(store: VectorStore, items: Sequence[Item]) -> dict[str, Item]:
    """Each item's top product (itself, its parent, or its grandparent); others are left out."""
    chains = _ancestors(store, items)
    out = {}
    for item in items:
        chain = chains.get(item.id) or []
        top = chain[-1] if chain else item
        if top.kind == "product":
            out[item.id] = top
    return out


def parsed_search(
    run: Callable[[str, int, Where | None], list[Hit]],
    store: VectorStore,
    query: str,
    k: int,
    where: Where | None,
    parsed: ParsedQuery | None,
) -> list[Hit]:
    """``run(query, k, where)`` with the parse applied: filters, preferences, boosts, bounds.

    Keys of ``where`` win over parsed ones.
    """
    boosts: Sequence[tuple[str, Sequence[str]]] = ()
    prefer: dict[str, Any] = {}
    if parsed is not None:
        query, boosts = parsed.query, parsed.boosts
        where = {**parsed.where, **(where or {})}
        prefer = {key: v for key, v in parsed.prefer.items() if key not in where}
    # Room for the hits that boosts promote and bound checks drop; a fixed floor (not just 3k)
    # so that which hits boosts can promote, and so the first results, do not depend on k.
    fetch = max(k * 3, _PARSED_FETCH) if boosts or where else k
    hits = search_preferring(lambda filters: run(query, fetch, filters), where, prefer)
    hits = enforce_bounds(store, hits, where)
    return apply_boosts(hits, boosts)[:k]


def search_preferring(
    search: Callable[[Where | None], list[Hit]], where: Where | None, prefer: Where
) -> list[Hit]:
    """Hits matching ``prefer`` plus hits whose items lack its facets, merged by score.

    ``search(where)`` runs the query; it runs twice when there is something to prefer.
    """
    if not prefer:
        return search(where)
    inside = search({**(where or {}), **prefer})
    unknown = [h for h in search(where) if not any(h.item.metadata.get(k) for k in prefer)]
    merged = {h.item.id: h for h in unknown}
    merged.update({h.item.id: h for h in inside})
    return sorted(merged.values(), key=lambda h: -h.score)


def similar_products(store: VectorStore, item_id: str, k: int = 10) -> list[Hit]:
    """Other products like the one ``item_id`` is (or is a photo or variant of).

    Each of the product's vectors (its text; its photos' and variants' photos' CLIP
    vectors) asks its space; hits count as their products, ranks are fused (RRF), and
    the product itself, its variants and its photos are left out.
    """
    found = store.get([item_id])
    if not found:
        raise InputError(item_id, "no indexed item with this id")
    product = product_of(store, found).get(item_id, found[0])
    own = {product.id, *(i.id for i in store.find({"kind": "product", "parent": product.id}))}
    queries: list[tuple[str, Any]] = []
    if "text" in store.spaces:
        queries += [("text", v) for v in store.get_vectors("text", [product.id]).values()]
    if "clip" in store.spaces:
        photos = [i.id for i in store.find({"kind": "image", "product": product.id}, limit=8)]
        queries += [("clip", v) for v in store.get_vectors("clip", photos).values()]
    scores: dict[str, float] = {}
    best: dict[str, Hit] = {}
    for space, vector in queries:
        hits = store.query(space, vector, k * 8)
        tops = product_of(store, [h.item for h in hits])
        ranked = [(tops[h.item.id], h) for h in hits if h.item.id in tops]
        ranked = [(p, h) for p, h in ranked if p.id not in own]
        for rank, pid in enumerate(dict.fromkeys(p.id for p, _ in ranked)):
            scores[pid] = scores.get(pid, 0.0) + 1.0 / (60 + rank)
        for top, hit in ranked:
            best.setdefault(top.id, Hit(top, 0.0, via=(space,), evidence=(hit.item,)))
    order = sorted(scores, key=lambda pid: -scores[pid])[:k]
    return [replace(best[pid], score=scores[pid]) for pid in order]


def enforce_bounds(store: VectorStore, hits: Sequence[Hit], where: Where | None) -> list[Hit]:
    """Hits whose products (and variants) all hold ``where``'s ranges (the price bound).

    The store filtered each hit's own fields; a photo's copy of its product's price can be
    older than the product (a sibling file re-indexed), so the product itself is checked.
    """
    ranges = {k: v for k, v in (where or {}).items() if isinstance(v, Range)}
    if not ranges or not hits:
        return list(hits)
    cond = normalize(ranges)
    chain = _ancestors(store, [h.item for h in hits])
    # A product hit is checked too: a unit built from its photo was not filtered itself.
    return [
        h
        for h in hits
        if all(matches(cond, a) for a in chain.get(h.item.id, ()))
        and (h.item.kind != "product" or matches(cond, h.item))
    ]


def _ancestors(store: VectorStore, items: Sequence[Item]) -> Mapping[str, list[Item]]:
    """Each item's product ancestors (variant, product) with their current fields."""
    known = {item.id: item for item in items}
    for _ in range(2):
        wanted = {i.parent for i in known.values() if i.parent and i.parent not in known}
        if wanted:
            known.update({item.id: item for item in store.get(sorted(wanted))})
    out: dict[str, list[Item]] = {}
    for item in items:
        chain, current = [], item.parent
        while current and current in known and known[current].kind == "product":
            chain.append(known[current])
            current = known[current].parent
        out[item.id] = chain
    return out
