"""``mmrag eval``: retrieval quality of one or more indexes on judged queries, per path.

``mmrag eval QUERIES`` runs (QUERIES: a JSON-lines file or a dataset in a known format);
``mmrag eval make FORMAT PATH -o queries.jsonl`` writes a dataset's queries as JSON lines.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..app import Index, open_index
from ..evaluate import FORMATS, PathScores, load, to_jsonl
from ..evaluate.latest import default_report_dir, record_latest
from ..evaluate.report import write_per_query
from ..evaluate.run import EvalRun, report, run
from .common import EXIT_OK, run_guarded, settings_from

METRICS = ("mrr", "ndcg", "r@1", "r@5", "r@10")


class _RunByDefault(click.Group):
    """A group whose first argument, when it is not a subcommand, goes to ``run``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Put ``run`` in front unless a subcommand or help was asked for."""
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group("eval", cls=_RunByDefault)
def eval_cmd() -> None:
    """Measure retrieval: recall@1/5/10, MRR, nDCG@10 with 95% intervals, per path and index.

    mmrag eval QUERIES [--index A --index B] [--report DIR]   (run is the default)
    """


_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", *FORMATS]),
    default="auto",
    show_default=True,
    help="Query-set format; auto reads it from the path.",
)
_LIMIT = click.option(
    "--limit", type=click.IntRange(1), default=None, help="Use a seeded sample of N queries."
)
_SEED = click.option("--seed", type=int, default=0, show_default=True, help="Sample seed.")


@eval_cmd.command("make")
@click.argument("fmt", metavar="FORMAT", type=click.Choice(["auto", *FORMATS]))
@click.argument("path", type=click.Path(path_type=Path, exists=True))
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True)
@_LIMIT
@_SEED
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def make_cmd(
    fmt: str, path: Path, output: Path, limit: int | None, seed: int, as_json: bool
) -> int:
    """Write the judged queries of a dataset at PATH as JSON lines."""

    def body() -> int:
        queries = load(fmt, path, limit=limit, seed=seed)
        output.write_text(to_jsonl(queries), encoding="utf-8")
        if as_json:
            click.echo(json.dumps({"queries": len(queries), "output": str(output)}))
        else:
            click.echo(f"{len(queries)} queries -> {output}")
        return EXIT_OK

    return run_guarded(as_json, body)


@eval_cmd.command("run")
@click.argument("queries", type=click.Path(path_type=Path, exists=True))
@_FORMAT
@click.option(
    "--index",
    "index_dirs",
    metavar="DIR",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Index directory, repeatable to compare [default: MMRAG_INDEX, else ./.mmrag].",
)
@click.option("--model", metavar="NAME_OR_PATH", default=None, help="CLIP model override.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option(
    "-k",
    "--top-k",
    "k",
    type=click.IntRange(1, 100),
    default=10,
    show_default=True,
    help="Hits fetched per query (the largest cut-off).",
)
@_LIMIT
@_SEED
@click.option(
    "--report",
    "report_dir",
    metavar="[DIR]",
    is_flag=False,
    flag_value="",
    help="Write report.md/.html, metrics.png, worst.png and per_query.jsonl in DIR "
    "[--report alone: INDEX/reports/DATE-TIME]; `mmrag serve` links the latest.",
)
@click.option(
    "--per-query",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write each query's rank and top hits as JSON lines.",
)
@click.option(
    "--compare-on",
    "metric",
    type=click.Choice(METRICS),
    default="mrr",
    show_default=True,
    help="Metric for choosing and comparing the best two rows.",
)
@click.option(
    "--keep-unindexed",
    is_flag=True,
    help="Keep queries whose judged files are not in the index (they score 0).",
)
def run_cmd(
    queries: Path,
    fmt: str,
    index_dirs: tuple[Path, ...],
    model: str | None,
    as_json: bool,
    k: int,
    limit: int | None,
    seed: int,
    report_dir: str | None,
    per_query: Path | None,
    metric: str,
    keep_unindexed: bool,
) -> int:
    """Recall@1/5/k, MRR, nDCG@10 per retrieval path and fused, on QUERIES (file or dataset)."""
    if metric.startswith("r@") and int(metric[2:]) > k:
        raise click.BadParameter(
            f"{metric} needs -k {metric[2:]} or more", param_hint="--compare-on"
        )

    if report_dir and Path(report_dir).exists() and not Path(report_dir).is_dir():
        raise click.BadParameter(f"{report_dir} is not a directory", param_hint="--report")

    def body() -> int:
        judged = load(fmt, queries, limit=limit, seed=seed)
        with contextlib.ExitStack() as stack:
            indexes = _open_all(stack, index_dirs, model)
            result = run(judged, indexes, k=k, metric=metric, keep_unindexed=keep_unindexed)
            written = None
            if report_dir is not None:
                written = _report(result, queries, report_dir, indexes)
        if per_query is not None:
            write_per_query(result.rows, per_query)
        _print(result, as_json, written)
        return EXIT_OK

    return run_guarded(as_json, body)


def _report(
    result: EvalRun, queries: Path, where: str, indexes: Sequence[tuple[str, Index]]
) -> Path:
    """Write the report (``where`` empty: in the first index) and make it each index's
    latest, which the web page links."""
    report_dir = Path(where) if where else default_report_dir(indexes[0][1].path)
    root = queries if queries.is_dir() else queries.parent
    title = f"Retrieval on {queries.name} ({len(result.queries)} queries)"
    written = report(result, report_dir, indexes, title=title, root=root)
    for _, index in indexes:
        record_latest(index.path, report_dir, title)
    return written


def _open_all(
    stack: contextlib.ExitStack, index_dirs: Sequence[Path], model: str | None
) -> list[tuple[str, Index]]:
    """Open each index (the default one when none is named), named by its folder."""
    dirs: Sequence[Path | None] = index_dirs or [None]
    out = []
    for directory in dirs:
        index = stack.enter_context(
            open_index(settings=settings_from(directory, model), create=False)
        )
        out.append((directory.name if directory else index.path.name, index))
    return out


def _print(result: EvalRun, as_json: bool, written: Path | None) -> None:
    if as_json:
        out: dict[str, Any] = {
            "queries": len(result.queries),
            "skipped": result.skipped,
            "paths": [row.to_dict() for row in result.rows],
            "comparison": result.comparison.to_dict() if result.comparison else None,
            "notes": result.notes,
        }
        if written:
            out["report"] = str(written)
        click.echo(json.dumps(out))
        return
    for note in result.notes:
        click.echo(note)
    cutoffs = sorted(result.rows[0].recall) if result.rows else []
    head = "".join(f"{'R@' + str(c):>8}" for c in cutoffs)
    width = max([10, *(len(r.label) + 2 for r in result.rows)])
    click.echo(
        f"{len(result.queries)} queries\n{'path':<{width}}{head}{'MRR':>8}{'nDCG10':>8}"
        f"{'p50 ms':>9}{'p95 ms':>9}"
    )
    for row in result.rows:
        click.echo(_line(row, cutoffs, width))
    if result.comparison:
        c = result.comparison
        low, high = c.interval
        verdict = "excludes 0" if c.significant else "includes 0"
        ties = f"; equal to {c.best} on every query: {', '.join(c.ties)}" if c.ties else ""
        click.echo(
            f"{c.best} - {c.second} on {c.metric}: {c.difference:+.3f} "
            f"[{low:+.3f}, {high:+.3f}] ({verdict}{ties})"
        )
    if written:
        click.echo(f"report: {written}")


def _line(row: PathScores, cutoffs: Sequence[int], width: int) -> str:
    cells = "".join(f"{row.recall[c]:>8.3f}" for c in cutoffs)
    times = f"{row.p50_ms:>9.1f}{row.p95_ms:>9.1f}"
    return f"{row.label:<{width}}{cells}{row.mrr:>8.3f}{row.ndcg:>8.3f}{times}"
