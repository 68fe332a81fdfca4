"""The typed filter syntax round-trips and rejects what it cannot read."""

from __future__ import annotations

import pytest

from mmrag.errors import ConfigError
from mmrag.types import Range
from mmrag.where import describe_where, parse_where


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
