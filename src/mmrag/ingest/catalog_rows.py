"""Catalog files as rows: CSV, JSON Lines and Parquet read into plain dicts, columns mapped.

A catalog row names one product (or a variant of one). Columns are found by common names
(``sku|id|product_id``, ``name|title``, ...) unless a mapping says otherwise::

    rows = read_rows(data, ".csv", "products.csv")       # [(1, {...}), (2, {...}), ...]
    columns = CatalogColumns.resolve(rows[0][1].keys(), {"price": "cost_usd"})
    row = parse_row(rows[0][1], columns)     # a CatalogRow; RowError when unusable

Row numbers count records from 1 (the CSV header line is not a record).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CATALOG_SUFFIXES",
    "DEFAULT_COLUMNS",
    "CatalogColumns",
    "CatalogRow",
    "RowError",
    "parse_price",
    "parse_row",
    "read_rows",
    "split_category",
]

CATALOG_SUFFIXES = frozenset({".csv", ".jsonl", ".parquet"})

#: Field -> column names recognised without a mapping, in order of preference.
DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("sku", "id", "product_id", "item_id"),
    "parent": ("parent_sku", "parent_id", "parent"),
    "name": ("name", "title", "product_name"),
    "description": ("description", "desc", "body"),
    "category": ("category", "categories", "product_type"),
    "price": ("price", "sale_price"),
    "currency": ("currency",),
    "tags": ("tags", "keywords"),
    "color": ("color", "colour", "colors", "colours"),
    "image": ("image", "images", "image_url", "image_urls", "image_link", "photo", "photos"),
}

_SPLIT_MULTI = re.compile(r"\s*[|;]\s*")
_SPLIT_COMMAS = re.compile(r"\s*[|;,]\s*")
_PRICE = re.compile(r"^\s*([^\d\s.,-]{0,3})\s*(-?\d[\d,]*(?:\.\d+)?)\s*([A-Za-z]{0,3})\s*$")
_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY"}


class RowError(ValueError):
    """Why a row cannot be indexed (no name, a price that is not a number, ...)."""


@dataclass(frozen=True)
class CatalogColumns:
    """Which column holds each field; ``None`` where the catalog has no such column."""

    fields: Mapping[str, str | None]

    @classmethod
    def resolve(cls, columns: Iterable[str], mapping: Mapping[str, str] | None) -> CatalogColumns:
        """Map fields to columns: the explicit ``mapping`` first, then the default names."""
        present = {c.lower(): c for c in columns}
        unknown = set(mapping or {}) - set(DEFAULT_COLUMNS)
        if unknown:
            fields = sorted(DEFAULT_COLUMNS)
            raise RowError(f"unknown catalog field(s) {sorted(unknown)}; use {fields}")
        found: dict[str, str | None] = {}
        for name, candidates in DEFAULT_COLUMNS.items():
            wanted = (mapping or {}).get(name)
            if wanted is not None:
                found[name] = present.get(wanted.lower(), wanted)
                continue
            found[name] = next((present[c] for c in candidates if c in present), None)
        return cls(found)

    def get(self, name: str) -> str | None:
        """The column of field ``name``."""
        return self.fields.get(name)

    @property
    def used(self) -> frozenset[str]:
        """Columns some field reads."""
        return frozenset(c for c in self.fields.values() if c)


@dataclass(frozen=True)
class CatalogRow:
    """One parsed row: typed fields plus the columns no field claimed (free attributes)."""

    key: str
    id_column: str
    parent: str | None
    name: str
    description: str
    category: str | None
    price: float | None
    currency: str | None
    tags: tuple[str, ...]
    colors: tuple[str, ...]
    images: tuple[str, ...]
    attributes: Mapping[str, Any] = field(default_factory=dict)


def read_rows(data: bytes, suffix: str, source: str) -> list[tuple[int, dict[str, Any] | str]]:
    """The records of a catalog file; a record that cannot be read is its error message."""
    if suffix == ".jsonl":
        return list(_jsonl_rows(data))
    if suffix == ".csv":
        text = data.decode("utf-8-sig", errors="replace")
        return [(n, dict(row)) for n, row in enumerate(csv.DictReader(io.StringIO(text)), 1)]
    if suffix == ".parquet":
        import pyarrow.parquet as pq  # pyarrow comes with lancedb

        table = pq.read_table(io.BytesIO(data))
        return [(n, row) for n, row in enumerate(table.to_pylist(), 1)]
    raise RowError(f"{source}: not a catalog file ({suffix})")


def _jsonl_rows(data: bytes) -> Iterable[tuple[int, dict[str, Any] | str]]:
    lines = (line for line in data.decode("utf-8-sig", errors="replace").splitlines())
    n = 0
    for line in lines:
        if not line.strip():
            continue
        n += 1
        try:
            value = json.loads(line)
        except ValueError as exc:
            yield n, f"not valid JSON: {exc}"
            continue
        yield (n, value) if isinstance(value, dict) else (n, "not a JSON object")


def parse_row(raw: Mapping[str, Any], columns: CatalogColumns) -> CatalogRow:
    """A row's typed fields; :class:`RowError` when it cannot be a product or variant."""
    text = {name: _text(raw.get(col)) if col else "" for name, col in columns.fields.items()}
    parent = text["parent"] or None
    key = text["id"]
    if not text["name"]:
        raise RowError("no name")
    if not key and parent is None:
        raise RowError(f"no product id (column {columns.get('id') or 'sku|id|product_id'})")
    images = _many(raw.get(columns.get("image") or ""))
    if not images:
        raise RowError("no image")
    price, currency = parse_price(raw.get(columns.get("price") or ""))
    colors = tuple(c.title() for c in _many(raw.get(columns.get("color") or ""), commas=True))
    return CatalogRow(
        # A variant without an id of its own is known by its product, colour and first photo.
        key=key or "/".join([parent or "", *colors, images[0]]),
        id_column=columns.get("id") or "id",
        parent=parent,
        name=text["name"],
        description=text["description"],
        category=text["category"] or None,
        price=price,
        currency=text["currency"] or currency,
        tags=tuple(_many(raw.get(columns.get("tags") or ""), commas=True)),
        colors=colors,
        images=tuple(images),
        attributes={k: v for k, v in raw.items() if k not in columns.used and _scalar(v)},
    )


def parse_price(value: Any) -> tuple[float | None, str | None]:
    """A price and the currency its symbol or code names; RowError when it is not a number."""
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None, None
    if isinstance(value, bool):
        raise RowError(f"price {value!r} is not a number")
    if isinstance(value, (int, float)):
        return _finite(float(value), value), None
    match = _PRICE.match(str(value))
    if not match:
        raise RowError(f"price {value!r} is not a number")
    symbol, number, code = match.groups()
    currency = _SYMBOLS.get(symbol) or (code.upper() if code else None)
    if symbol and symbol not in _SYMBOLS:
        raise RowError(f"price {value!r} is not a number")
    return _finite(float(number.replace(",", "")), value), currency


def _finite(number: float, raw: Any) -> float:
    if not math.isfinite(number) or number < 0:
        raise RowError(f"price {raw!r} is not a usable number")
    return number


def split_category(value: str) -> tuple[str | None, tuple[str, ...]]:
    """A category as (primary path, every segment): Magento-style ``A/B/C,A/D`` paths too.

    The placeholder root ``Default Category`` is dropped.
    """
    paths = []
    for raw in value.split(","):
        parts = [p.strip() for p in raw.split("/") if p.strip() and p.strip() != "Default Category"]
        if parts:
            paths.append("/".join(parts))
    segments = tuple(dict.fromkeys(seg for path in paths for seg in path.split("/")))
    return (paths[0] if paths else None), segments


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    return str(value).strip()


def _many(value: Any, *, commas: bool = False) -> list[str]:
    """A list-valued cell: a JSON/Parquet list, or text separated by ``|`` or ``;``.

    Image references may hold commas (URLs), so only tags and colours split on them too.
    """
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)):
        return [s for v in value if (s := _text(v))]
    text = _text(value)
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return [s for v in parsed if (s := _text(v))]
    splitter = _SPLIT_COMMAS if commas else _SPLIT_MULTI
    return [s for s in splitter.split(text) if s]


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and value != ""
