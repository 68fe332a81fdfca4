"""What every command shares: options, opening the index, errors to exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .. import app
from ..config import Settings
from ..errors import ConfigError, MmragError
from ..types import Hit, Where

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_PARTIAL = 3

T = TypeVar("T")


def index_options(encodes: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--index, --model (on commands that encode) and --json."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        func = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(func)
        if encodes:
            func = click.option(
                "--model",
                metavar="NAME_OR_PATH",
                default=None,
                help="CLIP model: hub id or local directory; 'none' for text-only "
                "[default: the index's model, else MMRAG_MODEL, else "
                "openai/clip-vit-base-patch32].",
            )(func)
        return click.option(
            "--index",
            "index_dir",
            metavar="DIR",
            type=click.Path(path_type=Path, file_okay=False),
            default=None,
            help="Index directory [default: MMRAG_INDEX, else ./.mmrag].",
        )(func)

    return decorate


def settings_from(index_dir: Path | None, model: str | None = None, **extra: Any) -> Settings:
    """Settings from the environment with command-line values on top."""
    overrides: dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
    if index_dir is not None:
        overrides["index"] = index_dir
    if model is not None:
        overrides["model"] = model
    return Settings(**overrides)


def run_guarded(as_json: bool, body: Callable[[], int]) -> int:
    """Run a command body; library errors become a message (or JSON) and exit code 1."""
    try:
        return body()
    except MmragError as exc:
        if as_json:
            click.echo(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
        else:
            click.secho(f"error: {exc}", fg="red", err=True)
        return EXIT_ERROR


def parse_where(filters: tuple[str, ...]) -> Where | None:
    """``--where`` values as a filter; a malformed one is a usage error (exit 2)."""
    try:
        return app.parse_where(filters)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--where") from None


describe_where = app.describe_where


#: --wait for the commands that write an index (one writer at a time: :mod:`mmrag.lock`).
wait_option = click.option(
    "--wait",
    type=click.FloatRange(0),
    default=0.0,
    show_default=True,
    metavar="SECONDS",
    help="Another process is writing the index: wait this long for it, then give up.",
)


def where_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """-k, --where and --min-score."""
    func = click.option(
        "--min-score", type=float, default=None, help="Relevance floor (cosine similarity)."
    )(func)
    func = click.option(
        "--where",
        "filters",
        multiple=True,
        metavar="FILTER",
        help=(
            "Metadata filter, repeatable: category=shoes, kind=image,page, price<200, "
            "doc=report.pdf (a document by file name or stem)."
        ),
    )(func)
    return click.option(
        "-k",
        "--top-k",
        "k",
        type=click.IntRange(1, 1000),
        default=10,
        show_default=True,
        help="How many results.",
    )(func)


def print_hits(hits: list[Hit], as_json: bool, extra: dict[str, Any] | None = None) -> None:
    """Results as JSON ({"results": [...]}) or a readable list."""
    if as_json:
        click.echo(json.dumps({"results": [h.to_dict() for h in hits], **(extra or {})}))
        return
    if not hits:
        click.echo("No results above the relevance floor.")
        return
    for rank, hit in enumerate(hits, 1):
        item = hit.item
        where = item.source
        if item.page is not None:
            where += f" p.{item.page}"
        label = item.metadata.get("label") or item.metadata.get("name")
        head = f"{rank:>2}. {hit.score:.4f}  {item.kind:<7} {where}"
        click.echo(head + (f"  [{label}]" if label else ""))
        snippet = (item.text or "").replace("\n", " ").strip()
        if snippet:
            click.echo(f"      {snippet[:110]}{'…' if len(snippet) > 110 else ''}")
        if hit.via:
            click.echo(f"      via {', '.join(hit.via)}", err=False)


def stderr_is_tty() -> bool:
    """Whether progress bars make sense."""
    return sys.stderr.isatty()


def progress_bar(unit: str, desc: str) -> Any:
    """A tqdm bar on stderr fed by a ``(done, total)`` callback; call ``.close()`` when done."""
    from tqdm import tqdm

    bar = tqdm(total=0, unit=unit, desc=desc, leave=False)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    update.close = bar.close  # type: ignore[attr-defined]
    return update
