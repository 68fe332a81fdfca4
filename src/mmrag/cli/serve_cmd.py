"""``mmrag serve``: the HTTP API and web page over one index."""

from __future__ import annotations

from pathlib import Path

import click

from ..app import open_index
from ..errors import DependencyError
from .common import EXIT_OK, index_options, run_guarded, settings_from


@click.command("serve")
@index_options()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
def serve_cmd(
    index_dir: Path | None, model: str | None, as_json: bool, host: str, port: int
) -> int:
    """Serve the HTTP API (OpenAPI docs at /docs) and the search page at /."""

    def body() -> int:
        try:
            import uvicorn
        except ImportError as exc:
            raise DependencyError("uvicorn", "server", "mmrag serve") from exc
        from ..server import create_app

        with open_index(settings=settings_from(index_dir, model), create=False) as index:
            click.echo(f"mmrag: serving {index.path} on http://{host}:{port} (Ctrl-C stops)")
            uvicorn.run(create_app(index), host=host, port=port, log_level="warning")
        return EXIT_OK

    return run_guarded(as_json, body)
