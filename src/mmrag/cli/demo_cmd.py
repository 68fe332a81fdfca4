"""``mmrag demo``: index bundled sample data and show searches, offline."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from ..demo import run_demo
from .common import EXIT_OK, describe_where, print_hits, run_guarded, settings_from


@click.command("demo")
@click.option(
    "--dir",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where to write the samples and the index [default: a temporary folder].",
)
@click.option(
    "--model",
    metavar="NAME_OR_PATH",
    default=None,
    help="CLIP model (hub id or local directory) if you have weights.",
)
def demo_cmd(out_dir: Path | None, model: str | None) -> int:
    """Draw sample products, scenes and a PDF manual, index them and search: no network needed."""

    def body() -> int:
        if out_dir is None:
            with tempfile.TemporaryDirectory(prefix="mmrag-demo-") as tmp:
                return _run(Path(tmp), model)
        return _run(out_dir, model)

    return run_guarded(False, body)


def _run(root: Path, model: str | None) -> int:
    settings = settings_from(None, model, hf_offline=True)
    click.secho(f"mmrag demo in {root}", bold=True)
    result = run_demo(root, settings)
    if result.clip_note:
        click.secho(result.clip_note, fg="yellow")
        click.secho(
            "Captions, sidecar metadata and PDF text are still searched "
            "(point --model at local CLIP weights to add the image path).",
            fg="yellow",
        )
    report = result.report
    click.echo(
        f"\nindexed: added {report.added}, unchanged {report.unchanged}, "
        f"failed {report.failed}, {report.items} items in {report.seconds:.1f} s"
    )
    for error in report.errors:
        click.echo(f"  skipped {Path(error['path']).name}: {error['reason']}")
    click.echo(f"retrieval paths that ran: {', '.join(result.paths)}")
    for query, where, hits in result.searches:
        flt = "".join(f" --where {part}" for part in describe_where(where).split())
        click.secho(f"\n$ mmrag search {query!r}{flt}", fg="cyan")
        print_hits(hits, False)
    if result.similar:
        probe, hits = result.similar
        click.secho(f"\n$ mmrag similar {Path(probe).name}", fg="cyan")
        print_hits(hits, False)
    if result.answer is not None:
        click.secho("\n$ mmrag ask 'Which shoes cost less than 100 dollars?'", fg="cyan")
        click.echo(result.answer.text)
    return EXIT_OK
