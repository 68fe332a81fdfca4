"""``mmrag index`` and ``mmrag stats``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..app import IndexReport, open_index
from .common import (
    EXIT_OK,
    EXIT_PARTIAL,
    index_options,
    progress_bar,
    run_guarded,
    settings_from,
    wait_option,
)


def _parse_meta(pairs: tuple[str, ...]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r}: expected key=value", param_hint="--meta")
        try:
            meta[key.strip()] = json.loads(value)
        except ValueError:
            meta[key.strip()] = value
    return meta


@click.command("index")
@click.argument("targets", nargs=-1, required=True)
@index_options()
@click.option(
    "--meta",
    multiple=True,
    metavar="KEY=VALUE",
    help="Metadata for every item from these sources (JSON values allowed).",
)
@click.option("--prune", is_flag=True, help="Forget indexed files under TARGETS that are gone.")
@click.option("--force", is_flag=True, help="Re-embed even unchanged files.")
@click.option(
    "--reembed",
    is_flag=True,
    help="The index was built with another model: re-embed everything with --model.",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option(
    "--catalog-map",
    multiple=True,
    metavar="FIELD=COLUMN",
    help="Catalog files: the column holding FIELD (id, name, price, image, ...).",
)
@wait_option
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="local",
    default=None,
    metavar="[ADDRESS|local]",
    help="Decode and embed on a Ray cluster (ray://HOST:10001, HOST:6379, auto) or on a Ray "
    "started here (local, the default with no value; put --ray after the paths or use "
    "--ray=ADDRESS). Needs 'pip install mmrag[ray]'.",
)
def index_cmd(
    targets: tuple[str, ...],
    index_dir: Path | None,
    model: str | None,
    as_json: bool,
    meta: tuple[str, ...],
    prune: bool,
    force: bool,
    reembed: bool,
    no_progress: bool,
    catalog_map: tuple[str, ...],
    wait: float,
    ray_address: str | None,
) -> int:
    """Index files, folders (recursive), globs and URLs (or .urls lists).

    Tabular files (.csv, .jsonl, .parquet) are product catalogs: one row, one product.
    """
    metadata = _parse_meta(meta)
    columns = _parse_pairs(catalog_map, "--catalog-map")

    def body() -> int:
        with open_index(settings=settings_from(index_dir, model), reembed=reembed) as index:
            bar = None if (as_json or no_progress) else progress_bar("file", "indexing")
            report = index.add(
                list(targets),
                metadata=metadata,
                prune=prune,
                force=force,
                progress=bar,
                catalog_map=columns,
                wait=wait,
                ray=ray_address,
            )
            if bar is not None:
                bar.close()  # type: ignore[attr-defined]
        if as_json:
            click.echo(json.dumps(report.to_dict()))
        else:
            _print_summary(report, prune)
        return EXIT_PARTIAL if report.lossy else EXIT_OK

    return run_guarded(as_json, body)


def _parse_pairs(pairs: tuple[str, ...], option: str) -> dict[str, str]:
    """``FIELD=COLUMN`` pairs as a dict; a pair without ``=`` is a usage error."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise click.BadParameter(f"{pair!r} is not FIELD=COLUMN", param_hint=option)
        out[key.strip()] = value.strip()
    return out


def _print_summary(report: IndexReport, prune: bool) -> None:
    """The one-line summary, then every loss: skipped parts, failed sources, warnings."""
    paths = ", ".join(name for name, on in report.paths.items() if on)
    skipped = f" ({len(report.skipped)} parts skipped)" if report.skipped else ""
    click.echo(
        f"added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
        f"failed {report.failed}, partial {report.partial}{skipped}"
        + (f", pruned {report.pruned}" if prune else "")
        + f"  ({report.items} items, {report.seconds:.1f} s; paths: {paths})"
    )
    lost = {str(s) for s in report.skipped}
    for skipped_part in report.skipped:
        click.secho(f"skipped: {skipped_part}", fg="red", err=True)
    for warning in report.warnings:
        if warning not in lost:  # each skipped part is also a warning: say it once
            click.secho(f"warning: {warning}", fg="yellow", err=True)
    for error in report.errors:
        click.secho(f"failed: {error['path']}: {error['reason']}", fg="red", err=True)


@click.command("stats")
@index_options(encodes=False)
def stats_cmd(index_dir: Path | None, as_json: bool) -> int:
    """What the index holds: counts by kind, sources, models."""

    def body() -> int:
        from ..app import open_index

        with open_index(settings=settings_from(index_dir), create=False) as index:
            stats = index.stats()
        if as_json:
            click.echo(json.dumps(stats))
        else:
            click.echo(f"index   {stats['index']}")
            click.echo(
                f"items   {stats['items']}  "
                + "  ".join(f"{kind}={n}" for kind, n in stats["kinds"].items())
            )
            click.echo(f"sources {stats['sources']}")
            click.echo(f"clip    {stats['clip_model'] or '(none: text paths only)'}")
            click.echo(f"text    {stats['text_model']}")
            click.echo(f"paths   {', '.join(stats['paths'])}")
        return EXIT_OK

    return run_guarded(as_json, body)
