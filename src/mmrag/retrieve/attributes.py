"""Attribute-aware product queries: price ranges and facet values read out of the query text.

The facet values come from the index (:func:`learn_facets` over its product items), not from
a fixed word list, so "orange" is a colour only in a catalog that has orange things::

    facets = learn_facets(products)                  # {"colors": [...], "categories": [...]}
    parsed = parse_query("orange hoodie under $60", facets)
    parsed.query   # "hoodie"
    parsed.where   # {"price": Range(lt=60.0), "colors": "Orange"} (if every product has colours)
    parsed.boosts  # (("categories", ("Hoodies & Sweatshirts",)),)
    hits = apply_boosts(hits, parsed.boosts)

A price bound and a colour the catalog has become filters (a bound is never to be violated;
a colour only excludes products known to have other colours, see ``ParsedQuery.prefer``);
words that match category segments are ambiguous ("tank" is "Tanks" and "Bras & Tanks", and
a word of many names) so they stay in the query text and only boost hits in those categories.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..types import Hit, Item, Range

__all__ = ["BOOST", "Facets", "ParsedQuery", "apply_boosts", "learn_facets", "parse_query"]

#: A hit in every boosted facet scores this much more (1 + BOOST times the share matched).
BOOST = 0.5

#: Facet name -> the values that occur in the index.
Facets = Mapping[str, Sequence[str]]

_NUM = r"\$?\s*(\d+(?:[.,]\d+)?)\s*(?:dollars?|usd|eur|euros?|gbp)?"
_BETWEEN = re.compile(rf"\b(?:between|from)\s+{_NUM}\s*(?:and|to|-)\s*{_NUM}", re.I)
_DASH = re.compile(r"\$\s*(\d+(?:[.,]\d+)?)\s*(?:-|to)\s*\$?\s*(\d+(?:[.,]\d+)?)", re.I)
_UPPER_WORDS = r"under|below|less than|cheaper than|at most|up to|max"
_UPPER = re.compile(rf"(?:\b({_UPPER_WORDS})\b|(<=|<))\s*{_NUM}", re.I)
_LOWER = re.compile(rf"(?:\b(over|above|more than|at least|min)\b|(>=|>))\s*{_NUM}", re.I)
_INCLUSIVE = {"at most", "up to", "max", "at least", "min", "<=", ">="}
_WORD = re.compile(r"[\w'’&-]+")
_STOP = frozenset({"a", "an", "the", "for", "and", "or", "with", "in", "of", "to", "my", "me"})


@dataclass(frozen=True)
class ParsedQuery:
    """A query split into the text to search, hard filters and soft boosts."""

    query: str
    where: dict[str, Any] = field(default_factory=dict)
    #: (facet, values): a hit whose facet holds any of the values is boosted.
    boosts: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: Filters on facets some products lack: they exclude items known to differ and keep
    #: items without the facet (a product without colours is of unknown colour).
    prefer: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``{"query": ..., "where": {...}, "boosts": {...}}``."""
        where = {k: _plain(v) for k, v in self.where.items()}
        boosts: dict[str, list[str]] = {}
        for facet, values in self.boosts:
            boosts.setdefault(facet, []).extend(v for v in values if v not in boosts.get(facet, []))
        prefer = {k: _plain(v) for k, v in self.prefer.items()}
        return {"query": self.query, "where": where, "prefer": prefer, "boosts": boosts}


def _plain(value: Any) -> Any:
    if isinstance(value, Range):
        return {k: v for k, v in vars(value).items() if v is not None}
    return list(value) if isinstance(value, (list, tuple, set, frozenset)) else value


def learn_facets(products: Iterable[Item]) -> dict[str, list[str]]:
    """The colour and category values that occur in a catalog's product items.

    ``complete`` names the facets every product has a value for: only those can filter,
    since a product without colours is of unknown colour, not of another one.
    """
    colors: dict[str, None] = {}
    categories: dict[str, None] = {}
    missing: set[str] = set()
    for item in products:
        for facet, seen in (("colors", colors), ("categories", categories)):
            values = [str(v) for v in item.metadata.get(facet) or ()]
            seen.update(dict.fromkeys(values))
            if not values:
                missing.add(facet)
    complete = sorted({"colors", "categories"} - missing)
    return {"colors": sorted(colors), "categories": sorted(categories), "complete": complete}


def parse_query(text: str, facets: Facets) -> ParsedQuery:
    """Price phrases and facet values out of ``text``; what is left is the query."""
    rest, price = _price(text)
    words = _WORD.findall(rest)
    colors, kept = _colors(words, facets.get("colors", ()))
    where: dict[str, Any] = {}
    if price is not None:
        where["price"] = price
    boosts = _category_boosts(kept, facets.get("categories", ()))
    prefer: dict[str, Any] = {}
    if colors:
        value = colors[0] if len(colors) == 1 else list(colors)
        if "colors" in facets.get("complete", ()):
            where["colors"] = value
        else:  # some products have no colours: keep those, and the word for their text
            prefer["colors"] = value
            kept = list(words)
    while kept and kept[-1].lower() in _STOP:  # "tee and" once "and under $90" is gone
        kept.pop()
    query = " ".join(kept).strip() or " ".join(colors) or text.strip()
    return ParsedQuery(query, where, boosts, prefer)


def _price(text: str) -> tuple[str, Range | None]:
    """The first price phrase of ``text`` as a range, and the text without it."""
    for pattern in (_BETWEEN, _DASH):
        match = pattern.search(text)
        if match:
            low, high = sorted((_number(match.group(1)), _number(match.group(2))))
            return _cut(text, match), Range(gte=low, lte=high)
    lower = _LOWER.search(text)
    upper = _UPPER.search(text)
    if upper is None and lower is None:
        return text, None
    bound: dict[str, float] = {}
    for match, (inclusive, strict) in ((upper, ("lte", "lt")), (lower, ("gte", "gt"))):
        if match is not None:
            word = (match.group(1) or match.group(2)).lower()
            bound[inclusive if word in _INCLUSIVE else strict] = _number(match.group(3))
    for match in sorted((m for m in (upper, lower) if m), key=lambda m: -m.start()):
        text = _cut(text, match)
    return text, Range(**bound)


def _number(raw: str) -> float:
    return float(raw.replace(",", "."))


def _cut(text: str, match: re.Match[str]) -> str:
    return (text[: match.start()] + " " + text[match.end() :]).strip()


def _colors(words: Sequence[str], values: Sequence[str]) -> tuple[list[str], list[str]]:
    """Colour values named in ``words`` (longest phrase first), and the other words."""
    by_phrase = {v.lower(): v for v in values}
    longest = max((len(v.split()) for v in values), default=0)
    found: list[str] = []
    kept: list[str] = []
    i = 0
    while i < len(words):
        for n in range(min(longest, len(words) - i), 0, -1):
            value = by_phrase.get(" ".join(words[i : i + n]).lower())
            if value is not None:
                found.append(value)
                i += n
                break
        else:
            kept.append(words[i])
            i += 1
    return list(dict.fromkeys(found)), kept


def _stem(word: str) -> str:
    """A crude singular: "hoodies" -> "hoodie", "women's" -> "women" (same rule both sides)."""
    word = word.lower().replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        word = word[:-1]
    return word


def _category_boosts(
    words: Sequence[str], categories: Sequence[str]
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """One boost per query word that names category segments (every segment it names)."""
    stems: dict[str, list[str]] = {}
    for segment in categories:
        for word in _WORD.findall(segment):
            stems.setdefault(_stem(word), []).append(segment)
    boosts = []
    for word in words:
        if word.lower() in _STOP:
            continue
        segments = stems.get(_stem(word))
        if segments:
            boosts.append(("categories", tuple(dict.fromkeys(segments))))
    return tuple(boosts)


def apply_boosts(
    hits: Sequence[Hit],
    boosts: Sequence[tuple[str, Sequence[str]]],
    *,
    weight: float = BOOST,
    lookup: Mapping[str, Item] | None = None,
) -> list[Hit]:
    """Hits rescored by the share of boosts their item (or ``lookup[item.parent]``) matches.

    A score grows by that share of its own size, so the boost keeps meaning whatever scale
    fusion produced, and it always raises: fused z-scores can be negative, and multiplying
    one would push a matching hit down.
    """
    if not boosts:
        return list(hits)
    out = []
    for hit in hits:
        meta = hit.item.metadata
        parent = hit.item.parent
        if "categories" not in meta and lookup and parent is not None and parent in lookup:
            meta = lookup[parent].metadata
        matched = sum(_holds(meta.get(facet), values) for facet, values in boosts)
        lift = abs(hit.score) * weight * matched / len(boosts)
        out.append(replace(hit, score=hit.score + lift) if matched else hit)
    return sorted(out, key=lambda h: -h.score)


def _holds(value: Any, wanted: Sequence[str]) -> bool:
    values = value if isinstance(value, (list, tuple)) else [value]
    return any(v in wanted for v in values if v is not None)
