"""``mmrag search`` (text query) and ``mmrag similar`` (image query)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..app import open_index
from .common import (
    EXIT_OK,
    index_options,
    parse_where,
    print_hits,
    run_guarded,
    settings_from,
    where_options,
)


@click.command("search")
@click.argument("query")
@index_options()
@where_options
@click.option(
    "--path",
    "paths",
    multiple=True,
    type=click.Choice(["clip", "text", "bm25"]),
    help="Only these retrieval paths (repeatable) [default: all the index has].",
)
@click.option(
    "--no-parse",
    is_flag=True,
    help="Search the query as written (no price ranges or colours read out of it).",
)
def search_cmd(
    query: str,
    index_dir: Path | None,
    model: str | None,
    as_json: bool,
    k: int,
    filters: tuple[str, ...],
    min_score: float | None,
    paths: tuple[str, ...],
    no_parse: bool,
) -> int:
    """Search images and text with a text QUERY.

    On a product index, "hoodie under $60" or "orange hoodie" become a price range and a
    colour filter (learned from the catalog); --where wins over them, --no-parse turns it off.
    """
    where = parse_where(filters)

    def body() -> int:
        with open_index(settings=settings_from(index_dir, model), create=False) as index:
            parsed = None if no_parse else index.parse_query(query)
            hits = index.search(
                query,
                k=k,
                where=where,
                min_score=min_score,
                paths=list(paths) or None,
                parse=not no_parse,
            )
            extra: dict[str, Any] = {"paths": list(paths) or list(index.available_paths())}
            if parsed is not None:
                extra["parsed"] = parsed.to_dict()
                if not as_json:
                    click.echo(f"parsed: {json.dumps(parsed.to_dict())}")
            print_hits(hits, as_json, extra)
        return EXIT_OK

    return run_guarded(as_json, body)


@click.command("similar")
@click.argument("image", required=False)
@click.option("--item", "item_id", help="An indexed item's id (a product or photo from a result).")
@index_options()
@where_options
@click.option("--collapse", is_flag=True, help="Show each duplicate picture once.")
def similar_cmd(
    image: str | None,
    index_dir: Path | None,
    model: str | None,
    as_json: bool,
    k: int,
    filters: tuple[str, ...],
    min_score: float | None,
    collapse: bool,
    item_id: str | None,
) -> int:
    """Reverse image search: the indexed pictures most like IMAGE (a file).

    With --item ID instead: other products like that product (or the product of that photo),
    never its own photos; for an item of no product, the pictures most like it.
    """
    where = parse_where(filters)
    if (image is None) == (item_id is None):
        raise click.UsageError("give either IMAGE or --item ID")

    def body() -> int:
        with open_index(settings=settings_from(index_dir, model), create=False) as index:
            if item_id is not None and index.products_of(index.get([item_id])):
                hits = index.similar_products(item_id, k=k)
            elif item_id is not None:
                hits = index.similar_to(item_id, k=k, where=where, min_score=min_score)
            else:
                hits = index.search_by_image(
                    Path(str(image)), k=k, where=where, min_score=min_score, collapse=collapse
                )
            print_hits(hits, as_json)
        return EXIT_OK

    return run_guarded(as_json, body)
