"""``mmrag describe``: a vision-language model captions each picture, searchable as text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..app import open_index
from .common import (
    EXIT_OK,
    EXIT_PARTIAL,
    index_options,
    progress_bar,
    run_guarded,
    settings_from,
    stderr_is_tty,
    wait_option,
)

KINDS = ("image", "figure", "page", "slide")


@click.command("describe")
@index_options(encodes=False)
@click.option(
    "--llm",
    "--answer-model",
    "answer_model",
    metavar="MODEL_OR_URL",
    default=None,
    help="gpt-4o-mini, claude-..., http://host:port/v1#model (OpenAI-compatible) "
    "[default: MMRAG_ANSWER_MODEL].",
)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(KINDS),
    help="Visual kinds to describe, repeatable [default: image and figure].",
)
@click.option("--force", is_flag=True, help="Ask the model again, even for cached captions.")
@click.option(
    "--jobs",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Model calls in flight at once.",
)
@wait_option
def describe_cmd(
    index_dir: Path | None,
    as_json: bool,
    answer_model: str | None,
    kinds: tuple[str, ...],
    force: bool,
    jobs: int,
    wait: float,
) -> int:
    """Caption every picture of the index with a vision-language model (cached per model).

    The captions are text items under their pictures, found by the text and BM25 paths.
    Exit code 3 when some pictures could not be described (they are retried next run).
    """

    def body() -> int:
        options: dict[str, Any] = {"force": force, "jobs": jobs}
        if kinds:
            options["kinds"] = kinds
        bar = None if as_json or not stderr_is_tty() else progress_bar("picture", "describing")
        try:
            with open_index(settings=settings_from(index_dir), create=False) as index:
                report = index.describe(answer_model, wait=wait, progress=bar, **options)
        finally:
            if bar is not None:
                bar.close()
        _print(report.to_dict(), as_json)
        return EXIT_PARTIAL if report.failed else EXIT_OK

    return run_guarded(as_json, body)


def _print(summary: dict[str, Any], as_json: bool) -> None:
    """The summary line, then every failure on stderr."""
    if as_json:
        click.echo(json.dumps(summary))
        return
    tokens = summary["input_tokens"] + summary["output_tokens"]
    click.echo(
        f"{summary['pictures']} pictures with {summary['model']}: "
        f"described {summary['described']}, from cache {summary['cached']}, "
        f"already current {summary['current']}, "
        f"failed {summary['failed']}, stale captions removed {summary['removed']} "
        f"({tokens} tokens, {summary['seconds']:.1f} s)"
    )
    for error in summary["errors"]:
        click.secho(f"failed: {error['path']}: {error['reason']}", fg="red", err=True)
    if summary["failed"]:
        click.echo("run `mmrag describe` again to retry the failed pictures", err=True)
