"""The one item <-> record mapping both store backends build on."""

from __future__ import annotations

import json

import pytest

from mmrag.errors import ConfigError
from mmrag.stores.records import RECORD_FIELDS, item_to_record, record_to_item
from mmrag.types import Item


def test_a_record_is_json_safe_and_round_trips_every_field() -> None:
    item = Item(
        id="c1",
        kind="text",
        source="a.pdf",
        content_hash="h",
        parent="p1",
        role="caption",
        text="a red shoe",
        doc="a.pdf",
        page=3,
        bbox=(0.0, 0.25, 0.5, 1.0),
        thumb="t",
        metadata={"price": 2.5, "tags": ["x"], "nested": {"n": [1, None]}},
    )
    record = item_to_record(item)
    assert tuple(record) == RECORD_FIELDS
    assert json.loads(json.dumps(record)) == record
    assert record["bbox"] == [0.0, 0.25, 0.5, 1.0]
    assert record_to_item(record) == item


def test_metadata_is_normalised_through_json() -> None:
    record = item_to_record(Item(id="a", kind="image", source="a", metadata={"t": ("x", 1)}))
    assert record["metadata"] == {"t": ["x", 1]}


def test_metadata_that_is_not_json_is_a_config_error_naming_the_item() -> None:
    with pytest.raises(ConfigError, match="'a'"):
        item_to_record(Item(id="a", kind="image", source="a", metadata={"x": {1, 2}}))


def test_a_record_missing_optional_fields_reads_as_defaults() -> None:
    item = record_to_item({"id": "a", "kind": "image", "source": "s", "content_hash": None})
    assert item == Item(id="a", kind="image", source="s")
