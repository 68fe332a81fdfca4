"""Citation markers are parsed from answer text and mapped to the sources that were sent."""

from __future__ import annotations

from mmrag.answer.citations import cite, parse_markers
from mmrag.answer.types import Source
from mmrag.types import Item


def _sources(k: int) -> list[Source]:
    return [
        Source(
            n=n, item=Item(id=f"id{n}", kind="page", source="r.pdf", page=n), label=f"r.pdf p.{n}"
        )
        for n in range(1, k + 1)
    ]


def test_single_markers_are_found_in_order_of_first_appearance() -> None:
    assert parse_markers("Blue [2]. Red [1]. Blue again [2].") == [2, 1]


def test_lists_and_ranges_are_expanded() -> None:
    assert parse_markers("See [1, 3] and [4-6] and [7–8; 2].") == [1, 3, 4, 5, 6, 7, 8, 2]


def test_adjacent_markers_and_source_words_are_understood() -> None:
    assert parse_markers("x [1][2] y [Source 3]") == [1, 2, 3]


def test_text_without_markers_has_no_citations() -> None:
    assert parse_markers("No brackets, or [a] link-like [text](url).") == []


def test_huge_or_reversed_ranges_count_only_their_first_number() -> None:
    assert parse_markers("years [1-2000] and [5-3]") == [1, 5]


def test_citations_map_numbers_to_items_and_ignore_out_of_range_numbers() -> None:
    citations = cite("A [2], B [0], C [9], D [1-2].", _sources(3))
    assert [(c.n, c.item_id, c.label, c.page) for c in citations] == [
        (2, "id2", "r.pdf p.2", 2),
        (1, "id1", "r.pdf p.1", 1),
    ]


def test_citation_to_dict_is_json_ready() -> None:
    (citation,) = cite("[1]", _sources(1))
    assert citation.to_dict() == {
        "n": 1,
        "id": "id1",
        "kind": "page",
        "source": "r.pdf",
        "doc": None,
        "page": 1,
        "label": "r.pdf p.1",
    }
