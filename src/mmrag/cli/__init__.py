"""The ``mmrag`` command line: index, search, similar, ask, stats, demo.

Exit codes: 0 success; 1 an error (message on stderr, or JSON with --json);
2 bad usage; 3 indexing finished but some inputs failed.
"""

from __future__ import annotations

import sys

import click

from .. import __version__
from .common import EXIT_ERROR
from .index_cmds import index_cmd, stats_cmd
from .search_cmds import search_cmd, similar_cmd

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mmrag")
def cli() -> None:
    """mmrag: index images and documents, search them by text or image, ask questions."""


cli.add_command(index_cmd)
cli.add_command(stats_cmd)
cli.add_command(search_cmd)
cli.add_command(similar_cmd)

try:  # commands whose modules are optional stay out when their parts are missing
    from .ask_cmd import ask_cmd

    cli.add_command(ask_cmd)
except ImportError:  # pragma: no cover - the answer package ships with mmrag
    pass
from .demo_cmd import demo_cmd  # noqa: E402

cli.add_command(demo_cmd)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and return its exit code."""
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
