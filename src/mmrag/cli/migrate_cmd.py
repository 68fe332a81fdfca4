"""``mmrag migrate``: move an index to another store without re-embedding."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..app import MigrationReport, migrate_index
from .common import EXIT_OK, index_options, progress_bar, run_guarded, settings_from, wait_option


@click.command("migrate")
@click.option(
    "--to",
    "target",
    required=True,
    metavar="STORE_URL",
    help="Where to: lance:PATH, qdrant://HOST:PORT/COLLECTION (key in QDRANT_API_KEY), "
    "qdrant+https://..., qdrant+local:PATH[#COLLECTION].",
)
@index_options(encodes=False)
@click.option(
    "--batch-size", type=click.IntRange(1), default=500, show_default=True, help="Items per write."
)
@click.option(
    "--sample",
    type=click.IntRange(1),
    default=32,
    show_default=True,
    help="Items whose searches are compared on both stores at the end.",
)
@wait_option
def migrate_cmd(
    target: str,
    index_dir: Path | None,
    as_json: bool,
    batch_size: int,
    sample: int,
    wait: float,
) -> int:
    """Copy the index's items and vectors into another store, verify, and switch to it.

    Blobs and the manifest stay in the index directory. A run that was interrupted
    continues where it stopped when started again with the same --to. The old store
    is left as it was.
    """

    def body() -> int:
        settings = settings_from(index_dir)
        bar = None if as_json else progress_bar("item", "migrating")
        try:
            report = migrate_index(
                settings, target, batch_size=batch_size, sample=sample, wait=wait, progress=bar
            )
        finally:
            if bar is not None:
                bar.close()  # type: ignore[attr-defined]
        if as_json:
            click.echo(json.dumps(report.to_dict()))
        else:
            _print(report)
        return EXIT_OK

    return run_guarded(as_json, body)


def _print(report: MigrationReport) -> None:
    v = report.verification
    resumed = f", resumed at {report.resumed_from}" if report.resumed_from else ""
    click.echo(
        f"copied {report.copied} of {report.items} items to {report.target} "
        f"in {report.batches} batches{resumed} ({report.seconds:.1f} s)"
    )
    click.echo(
        f"verified: counts equal, {v['queries']} sample searches ({v['identical']} identical, "
        f"mean top-k overlap {v['mean_overlap']}), vectors cosine >= {v['min_vector_cosine']}"
    )
    if report.missing_blobs:
        click.secho(f"warning: {report.missing_blobs} items point at missing blobs", fg="yellow")
    click.echo(f"the index now uses {report.target}; {report.source} was left as it was")
