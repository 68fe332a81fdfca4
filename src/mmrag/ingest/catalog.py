"""Product catalogs (CSV, JSON Lines, Parquet): one row, one product with its photos.

Item layout (see :mod:`mmrag.ingest.items` for the builders):

* a product row -> a ``product`` item (text: name, category, colours, tags, attributes,
  description; typed metadata: the catalog's own id under its column name, ``name``,
  ``price``, ``currency``, ``category``, ``categories``, ``colors``, ``tags``), and one
  ``image`` item per photo with ``parent`` = the product;
* a variant row (a ``parent_sku``/``parent_id`` column naming a product) -> a ``product``
  item with ``parent`` = the product and ``metadata["variant"] = True`` carrying its own
  attributes (its colour), and its photos as ``image`` items with ``parent`` = the variant.

Every image item carries the filterable attributes of its product (or variant) too, so a
filter such as ``{"price": Range(lte=60)}`` holds on whichever item a path found.

Ids depend on the catalog's folder and the row's id, not on the file, so a variants file
beside the products file can name its products (``parent_sku``), and a re-indexed row
updates its product in place. Variants in a sibling file of the same folder are read to
give a product its colours, and products in a sibling file give their variants price and
category::

    for out in CatalogIngester().extract(SourceData.read("shop/products.jsonl"), Settings()):
        ...
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..config import Settings
from ..errors import InputError
from ..types import content_hash
from .base import Extracted, Output, Skipped, SourceData
from .catalog_rows import (
    CATALOG_SUFFIXES,
    CatalogColumns,
    CatalogRow,
    RowError,
    parse_row,
    read_rows,
)
from .decode import open_image
from .fetch import fetch_url
from .items import product_id, product_image_item, product_item
from .sources import is_url

__all__ = ["CatalogIngester", "catalog_mapping", "catalog_namespace", "product_id"]

log = logging.getLogger(__name__)


def catalog_namespace(source: str) -> str:
    """The namespace of a catalog's ids: its folder (or the URL without its file name)."""
    if is_url(source):
        return source.rsplit("/", 1)[0]
    return str(Path(source).resolve().parent)


@dataclass
class _Catalog:
    """Rows parsed from one file: products by key, variants by product key, errors by row."""

    products: dict[str, tuple[int, CatalogRow]] = field(default_factory=dict)
    variants: dict[str, list[tuple[int, CatalogRow]]] = field(default_factory=dict)
    errors: list[tuple[int, str]] = field(default_factory=list)

    def merge(self, other: _Catalog) -> None:
        """Add another file's rows as context (this file's own rows win)."""
        for key, entry in other.products.items():
            self.products.setdefault(key, entry)
        for key, rows in other.variants.items():
            self.variants.setdefault(key, []).extend(rows)


class CatalogIngester:
    """Catalog files -> product, variant and photo items; bad rows are reported and skipped.

    ``mapping`` maps fields (``id``, ``name``, ``price``, ``image``, ...) to column names
    where the defaults in :data:`~mmrag.ingest.catalog_rows.DEFAULT_COLUMNS` do not fit.
    """

    suffixes = CATALOG_SUFFIXES
    content_types = frozenset(
        {"text/csv", "application/x-ndjson", "application/jsonl", "application/vnd.apache.parquet"}
    )
    decode = False

    def __init__(self, mapping: Mapping[str, str] | None = None) -> None:
        self.mapping: dict[str, str] = dict(mapping or {})

    def extract(self, source: SourceData, settings: Settings) -> Iterator[Output]:
        """The items of one catalog file, and a :class:`Skipped` per bad row."""
        own = self._parse(source.data, source.suffix, source.name)
        context = _Catalog()
        context.merge(own)
        for sibling in _siblings(source.name):
            try:
                context.merge(self._parse(sibling.read_bytes(), sibling.suffix, str(sibling)))
            except (OSError, RowError) as exc:  # context only: the sibling reports itself
                log.debug("catalog context %s unreadable: %s", sibling, exc)
        for number, reason in own.errors:
            yield Skipped(source.name, f"row {number}", reason)
        namespace = catalog_namespace(source.name)
        for number, row in own.products.values():
            colors = _colors(row, context.variants.get(row.key, []))
            yield from self._row_items(source.name, number, namespace, row, None, colors, settings)
        for rows in own.variants.values():
            for number, row in rows:
                parent = context.products.get(row.parent or "")
                if parent is None:
                    reason = f"no product with {row.id_column} {row.parent!r} in this catalog"
                    yield Skipped(source.name, f"row {number}", reason)
                    continue
                yield from self._row_items(
                    source.name, number, namespace, row, parent[1], row.colors, settings
                )

    def _parse(self, data: bytes, suffix: str, name: str) -> _Catalog:
        """Parse every row of a file; rows that cannot be products become errors."""
        try:
            records = read_rows(data, suffix, name)
        except Exception as exc:  # a corrupt file: the whole source is unusable
            raise InputError(name, f"cannot read catalog: {exc}") from None
        keys: dict[str, None] = {}
        for _, record in records:
            if isinstance(record, dict):
                keys.update(dict.fromkeys(record))
        try:
            columns = CatalogColumns.resolve(keys, self.mapping)
        except RowError as exc:
            raise InputError(name, str(exc)) from None
        catalog = _Catalog()
        for number, record in records:
            try:
                if isinstance(record, str):
                    raise RowError(record)
                row = parse_row(record, columns)
            except RowError as exc:
                catalog.errors.append((number, str(exc)))
                continue
            if row.parent is None:
                if row.key in catalog.products:
                    catalog.errors.append((number, f"duplicate {row.id_column} {row.key!r}"))
                    continue
                catalog.products[row.key] = (number, row)
            else:
                catalog.variants.setdefault(row.parent, []).append((number, row))
        return catalog

    def _row_items(
        self,
        source: str,
        number: int,
        namespace: str,
        row: CatalogRow,
        parent: CatalogRow | None,
        colors: tuple[str, ...],
        settings: Settings,
    ) -> Iterator[Output]:
        """A row's product (or variant) item and its photos, all or nothing."""
        owner = product_item(source, namespace, row, parent=parent, colors=colors)
        photos: list[Extracted] = []
        problems: list[str] = []
        for j, ref in enumerate(row.images):
            try:
                image, data_hash, location = _load_image(source, ref, settings)
            except InputError as exc:
                problems.append(f"image {ref!r}: {exc.reason}")
                continue
            meta = {"width": image.width, "height": image.height, "photo": j}
            photo = product_image_item(owner, location, data_hash, metadata=meta)
            photos.append(Extracted(photo, image=image))
        if not photos:
            yield Skipped(source, f"row {number}", "no usable image: " + "; ".join(problems))
            return
        for problem in problems:
            yield Skipped(source, f"row {number}", problem)
        # The first photo's thumbnail (blob key = its content hash) pictures the product.
        yield Extracted(owner.with_(thumb=photos[0].item.content_hash))
        yield from photos


@contextmanager
def catalog_mapping(
    ingesters: Iterable[object], mapping: Mapping[str, str] | None
) -> Iterator[None]:
    """Give the catalog ingesters among ``ingesters`` a column mapping for one run."""
    catalogs = [i for i in ingesters if isinstance(i, CatalogIngester)]
    saved = [i.mapping for i in catalogs]
    for ingester in catalogs:
        ingester.mapping = dict(mapping or {})
    try:
        yield
    finally:
        for ingester, old in zip(catalogs, saved, strict=True):
            ingester.mapping = old


def _colors(row: CatalogRow, variants: list[tuple[int, CatalogRow]]) -> tuple[str, ...]:
    """A product's own colours and those of its variants, once each."""
    found = [*row.colors, *(c for _, v in variants for c in v.colors)]
    return tuple(dict.fromkeys(found))


def _siblings(source: str) -> list[Path]:
    """The other catalog files in a local catalog's folder (context for parents and colours)."""
    if is_url(source):
        return []
    path = Path(source).resolve()
    try:
        children = sorted(path.parent.iterdir())
    except OSError:
        return []
    return [p for p in children if p != path and p.suffix.lower() in CATALOG_SUFFIXES]


def _load_image(source: str, ref: str, settings: Settings) -> tuple[Any, str, str]:
    """A photo named by a row: (decoded image, hash of its bytes, its absolute location)."""
    if is_url(ref):
        data, _ = fetch_url(ref, settings)
        location = ref
    elif is_url(source):
        location = source.rsplit("/", 1)[0] + "/" + str(PurePosixPath(ref))
        data, _ = fetch_url(location, settings)
    else:
        path = Path(source).parent / ref
        try:
            location = str(path.resolve())
            if path.exists() and not path.is_file():  # a device (/dev/zero), FIFO or folder
                raise InputError(ref, "not a regular file")
            data = path.read_bytes()
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
            raise InputError(ref, f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        image = open_image(data, ref, max_pixels=settings.max_image_pixels)
    except InputError:
        raise
    except Exception as exc:  # PIL raises OSError and others on truncated files
        raise InputError(ref, f"cannot decode image: {exc}") from None
    return image, content_hash(data), location
