"""``mmrag dedup``: groups of exact and near-duplicate pictures, with contact sheets."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..app import open_index
from .common import EXIT_OK, index_options, run_guarded, settings_from


@click.command("dedup")
@index_options()
@click.option(
    "--threshold",
    type=click.FloatRange(-1.0, 1.0),
    default=0.95,
    show_default=True,
    help="CLIP cosine above which two pictures are near duplicates.",
)
@click.option(
    "--sheet",
    "sheet_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write a contact-sheet PNG per group into this folder.",
)
def dedup_cmd(
    index_dir: Path | None,
    model: str | None,
    as_json: bool,
    threshold: float,
    sheet_dir: Path | None,
) -> int:
    """List groups of duplicate pictures: exact copies and near copies (resized, re-encoded).

    Near copies are found by CLIP similarity, or by perceptual hash on an index without CLIP.
    """

    def body() -> int:
        with open_index(settings=settings_from(index_dir, model), create=False) as index:
            groups = index.duplicates(threshold=threshold, sheet_dir=sheet_dir)
        if as_json:
            out = [{**g.to_dict(), "sheet": str(s) if s else None} for g, s in groups]
            click.echo(json.dumps({"groups": out}))
            return EXIT_OK
        if not groups:
            click.echo("No duplicates found.")
        for n, (group, sheet) in enumerate(groups, 1):
            head = f"group {n}: {group.kind}, {len(group.items)} pictures"
            click.echo(
                head + f" (similarity {group.similarity:.3f})" + (f"  {sheet}" if sheet else "")
            )
            for item in group.items:
                click.echo(f"    {item.source}")
        return EXIT_OK

    return run_guarded(as_json, body)
