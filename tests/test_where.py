"""The typed filter syntax round-trips and rejects what it cannot read."""

from __future__ import annotations

import pytest

from mmrag.errors import ConfigError
from mmrag.types import Range
from mmrag.where import describe_where, parse_where, resolve_documents


def test_equals_in_and_ranges() -> None:
    where = parse_where(["category=shoes", "kind=image,page", "price<200", "price>=10", "page=3"])
    assert where == {
        "category": "shoes",
        "kind": ["image", "page"],
        "price": Range(gte=10.0, lt=200.0),
        "page": 3,
    }
    assert describe_where(where) == "category=shoes kind=image,page price>=10 price<200 page=3"
    assert parse_where(describe_where(where).split()) == where


def test_nothing_means_no_filter() -> None:
    assert parse_where([]) is None


@pytest.mark.parametrize("bad", ["category", "=shoes", "price<cheap"])
def test_malformed_filters_are_config_errors(bad: str) -> None:
    with pytest.raises(ConfigError, match="filter"):
        parse_where([bad])


def test_a_document_is_named_by_its_file_name_its_stem_or_a_path_ending_in_it() -> None:
    names = ["3M_2018_10K.pdf", "3M_2022_10K.pdf", "deck.pptx"]
    assert resolve_documents({"doc": "3M_2022_10K"}, names) == {"doc": "3M_2022_10K.pdf"}
    assert resolve_documents({"doc": "reports/deck.pptx", "page": 2}, names) == {
        "doc": "deck.pptx",
        "page": 2,
    }
    assert resolve_documents({"doc": ["deck", "3M_2018_10K.pdf"]}, names) == {
        "doc": ["deck.pptx", "3M_2018_10K.pdf"]
    }
    assert resolve_documents({"kind": "page"}, names) == {"kind": "page"}


def test_a_document_name_that_matches_nothing_says_so_and_suggests_the_nearest() -> None:
    with pytest.raises(ConfigError, match=r"names no indexed document; did you mean 3M_2022_10K"):
        resolve_documents({"doc": "3M_2023_10K"}, ["3M_2022_10K.pdf", "deck.pptx"])
    with pytest.raises(ConfigError, match=r"\(2 indexed\)"):
        resolve_documents({"doc": "zzz"}, ["3M_2022_10K.pdf", "deck.pptx"])
