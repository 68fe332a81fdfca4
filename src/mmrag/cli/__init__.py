"""The ``mmrag`` command line: index, search, similar, ask, stats, eval, serve, demo, describe,
migrate.

Exit codes: 0 success; 1 an error (message on stderr, or JSON with --json);
2 bad usage; 3 indexing finished but some inputs failed.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from .. import __version__

__all__ = ["main"]

#: Command name -> "module:attribute" in this package. A command's module is imported only
#: when that command runs (or --help lists them): a one-shot `mmrag search` never loads the
#: evaluation, server or indexing code.
COMMANDS = {
    "index": "index_cmds:index_cmd",
    "search": "search_cmds:search_cmd",
    "similar": "search_cmds:similar_cmd",
    "ask": "ask_cmd:ask_cmd",
    "stats": "index_cmds:stats_cmd",
    "eval": "eval_cmd:eval_cmd",
    "serve": "serve_cmd:serve_cmd",
    "demo": "demo_cmd:demo_cmd",
    "dedup": "dedup_cmd:dedup_cmd",
    "describe": "describe_cmd:describe_cmd",
    "migrate": "migrate_cmd:migrate_cmd",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported by name on first use (click's lazy pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The command names, in the order --help lists them."""
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command ``cmd_name``, importing its module now; None for an unknown name."""
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        command = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mmrag")
def cli() -> None:
    """mmrag: index images and documents, search them by text or image, ask questions."""


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
        from .common import EXIT_ERROR

        click.echo("Aborted.", err=True)
        return EXIT_ERROR
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
