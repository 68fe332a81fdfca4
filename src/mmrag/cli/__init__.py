"""The ``mmrag`` command line: index, search, similar, ask, stats, eval, serve, demo, describe,
migrate.

Exit codes: 0 success; 1 an error (message on stderr, or JSON with --json);
2 bad usage; 3 indexing finished but some inputs failed.
"""

from __future__ import annotations

import os
import sys

import click

from .. import __version__
from .ask_cmd import ask_cmd
from .common import EXIT_ERROR
from .dedup_cmd import dedup_cmd
from .demo_cmd import demo_cmd
from .describe_cmd import describe_cmd
from .eval_cmd import eval_cmd
from .index_cmds import index_cmd, stats_cmd
from .migrate_cmd import migrate_cmd
from .search_cmds import search_cmd, similar_cmd
from .serve_cmd import serve_cmd

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mmrag")
def cli() -> None:
    """mmrag: index images and documents, search them by text or image, ask questions."""


for command in (
    index_cmd,
    search_cmd,
    similar_cmd,
    ask_cmd,
    stats_cmd,
    eval_cmd,
    serve_cmd,
    demo_cmd,
    dedup_cmd,
    describe_cmd,
    migrate_cmd,
):
    cli.add_command(command)


def _quiet_libraries() -> None:
    """Keep third-party chatter (weight-loading bars, LanceDB's Rust WARN lines) off the terminal.

    Only defaults: a user who sets these variables keeps their choice.
    """
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("LANCE_LOG", "error")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and return its exit code."""
    _quiet_libraries()
    try:
        result = cli.main(args=argv, prog_name="mmrag", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return EXIT_ERROR
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
