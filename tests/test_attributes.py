"""Attribute-aware query parsing against facet values learned from the index."""

from __future__ import annotations

from typing import Any

import pytest

from mmrag.retrieve.attributes import ParsedQuery, apply_boosts, learn_facets, parse_query
from mmrag.retrieve.products import parsed_search
from mmrag.types import Hit, Item, Range

FACETS = {
    "colors": ["Black", "Light Blue", "Orange"],
    "categories": ["Bras & Tanks", "Hoodies & Sweatshirts", "Men", "Tanks", "Tops", "Women"],
    "complete": ["colors", "categories"],
}


@pytest.mark.parametrize(
    ("text", "query", "price"),
    [
        ("hoodie under $60", "hoodie", Range(lt=60.0)),
        ("hoodie for at most 60 dollars", "hoodie", Range(lte=60.0)),
        ("between $20 and $50 jacket", "jacket", Range(gte=20.0, lte=50.0)),
        ("jacket $50-$20", "jacket", Range(gte=20.0, lte=50.0)),
        ("tank over $30 and under $90", "tank", Range(gt=30.0, lt=90.0)),
        ("bag", "bag", None),
    ],
)
def test_price_phrases_become_ranges(text: str, query: str, price: Range | None) -> None:
    parsed = parse_query(text, FACETS)
    assert parsed.query == query
    assert parsed.where.get("price") == price


def test_a_colour_the_index_has_filters_and_leaves_the_query() -> None:
    parsed = parse_query("light blue hoodie", FACETS)
    assert parsed.where == {"colors": "Light Blue"}
    assert parsed.query == "hoodie"
    assert parsed.boosts == (("categories", ("Hoodies & Sweatshirts",)),)


def test_a_colour_the_index_lacks_stays_text() -> None:
    parsed = parse_query("pink hoodie", FACETS)
    assert parsed.where == {} and parsed.query == "pink hoodie"


def test_a_colour_some_products_lack_is_preferred_not_filtered() -> None:
    partial = {**FACETS, "complete": ["categories"]}
    parsed = parse_query("orange hoodie", partial)
    assert parsed.where == {} and parsed.prefer == {"colors": "Orange"}
    assert parsed.query == "orange hoodie"  # the word still helps products without colours


def test_category_words_boost_every_segment_they_name() -> None:
    parsed = parse_query("women's tank", FACETS)
    assert parsed.where == {}
    assert parsed.boosts == (("categories", ("Women",)), ("categories", ("Bras & Tanks", "Tanks")))
    assert parsed.to_dict()["boosts"] == {"categories": ["Women", "Bras & Tanks", "Tanks"]}


def test_facets_are_learned_from_products() -> None:
    items = [
        Item("a", "product", "s", metadata={"colors": ["Red"], "categories": ["Men", "Tees"]}),
        Item("b", "product", "s", metadata={"categories": ["Gear"]}),
    ]
    facets = learn_facets(items)
    assert facets == {
        "colors": ["Red"],
        "categories": ["Gear", "Men", "Tees"],
        "complete": ["categories"],
    }


def test_boosts_reorder_hits_by_the_share_of_facets_matched() -> None:
    def hit(name: str, score: float, categories: list[str]) -> Hit:
        return Hit(Item(name, "product", "s", metadata={"categories": categories}), score)

    hits = [hit("tee", 1.0, ["Men", "Tees"]), hit("tank", 0.8, ["Women", "Tanks"])]
    boosted = apply_boosts(hits, [("categories", ("Tanks",))])
    assert [h.item.id for h in boosted] == ["tank", "tee"]
    assert boosted[0].score == pytest.approx(0.8 * 1.5)
    assert apply_boosts(hits, []) == hits


def test_a_boost_raises_a_negative_fused_score_too() -> None:
    # Fused z-scores go below zero; a matching hit there must rise, not sink.
    hits = [
        Hit(Item("plain", "product", "s", metadata={"colors": ["Blue"]}), -0.2),
        Hit(Item("red", "product", "s", metadata={"colors": ["Red"]}), -0.3),
    ]
    boosted = apply_boosts(hits, [("colors", ("Red",))])
    assert [h.item.id for h in boosted] == ["red", "plain"]
    assert boosted[0].score == pytest.approx(-0.3 + 0.3 * 0.5)


def test_a_parsed_querys_first_results_do_not_depend_on_k() -> None:
    # Forty hits ranked by score; the 20th is red. With a fetch of 3k, k=5 never saw it.
    ranked = [
        Hit(
            Item(f"p{i}", "product", "s", metadata={"colors": ["Red" if i == 20 else "Blue"]}),
            10.0 - i * 0.1,
        )
        for i in range(40)
    ]

    def run(query: str, fetch: int, where: Any) -> list[Hit]:
        return ranked[:fetch]

    parsed = ParsedQuery("hoodie", boosts=(("colors", ("Red",)),))
    five = parsed_search(run, _Items(), "red hoodie", 5, None, parsed)
    ten = parsed_search(run, _Items(), "red hoodie", 10, None, parsed)
    assert five[0].item.id == "p20"
    assert [h.item.id for h in ten[:5]] == [h.item.id for h in five]


class _Items:
    """Just enough of a store for the bound check: items by id."""

    def __init__(self, *items: Item) -> None:
        self.items = {i.id: i for i in items}

    def get(self, ids: list[str]) -> list[Item]:
        return [self.items[i] for i in ids if i in self.items]


def test_a_stale_photo_price_cannot_break_the_bound() -> None:
    from mmrag.retrieve.products import enforce_bounds

    product = Item("p", "product", "s", metadata={"price": 100.0})
    variant = Item("v", "product", "s", parent="p", metadata={"price": 100.0})
    stale = Item("i", "image", "s", parent="v", metadata={"price": 50.0})  # copied before
    cheap = Item("q", "product", "s", metadata={"price": 20.0})
    store: Any = _Items(product, variant, stale, cheap)
    hits = [Hit(stale, 0.9), Hit(product, 0.8), Hit(cheap, 0.5)]
    kept = enforce_bounds(store, hits, {"price": Range(lte=60)})
    assert [h.item.id for h in kept] == ["q"]
    assert enforce_bounds(store, hits, {"kind": "image"}) == hits  # no range: nothing to check
