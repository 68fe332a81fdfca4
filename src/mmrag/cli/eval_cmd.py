"""``mmrag eval``: retrieval quality of an index on judged queries, per retrieval path."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import click

from ..app import open_index
from ..evaluate import evaluate, load_queries
from ..types import Hit
from .common import EXIT_OK, index_options, run_guarded, settings_from


@click.command("eval")
@click.argument("queries", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@index_options()
@click.option(
    "-k",
    "--top-k",
    "k",
    type=click.IntRange(1, 100),
    default=10,
    show_default=True,
    help="Hits fetched per query (the largest cut-off).",
)
def eval_cmd(
    queries: Path, index_dir: Path | None, model: str | None, as_json: bool, k: int
) -> int:
    """Recall@1/5/k and MRR per retrieval path and fused, on QUERIES (JSON lines)."""

    def body() -> int:
        judged = load_queries(queries)
        with open_index(settings=settings_from(index_dir, model), create=False) as index:

            def search(query: str, paths: Sequence[str] | None) -> list[Hit]:
                return index.search(query, k=k, paths=paths)

            choices: list[Sequence[str] | None] = [[path] for path in index.available_paths()]
            cutoffs = sorted({1, min(5, k), k})
            scores = evaluate(search, judged, [*choices, None], cutoffs)
        if as_json:
            click.echo(json.dumps({"queries": len(judged), "paths": [s.to_dict() for s in scores]}))
            return EXIT_OK
        head = "".join(f"{'R@' + str(c):>8}" for c in cutoffs)
        click.echo(f"{len(judged)} queries\n{'path':<10}{head}{'MRR':>8}{'p50 ms':>9}")
        for s in scores:
            cells = "".join(f"{s.recall[c]:>8.3f}" for c in cutoffs)
            click.echo(f"{s.path:<10}{cells}{s.mrr:>8.3f}{s.p50_ms:>9.1f}")
        return EXIT_OK

    return run_guarded(as_json, body)
