"""``mmrag ask``: retrieve, then answer with a vision-language model (or offline) with citations."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..app import open_index
from ..errors import AnswerError
from .common import EXIT_ERROR, EXIT_OK, index_options, parse_where, run_guarded, settings_from


@click.command("ask")
@click.argument("question")
@index_options()
@click.option(
    "--llm",
    "--answer-model",
    "answer_model",
    metavar="MODEL_OR_URL",
    default=None,
    help="gpt-4o, claude-..., http://host:port/v1#model (OpenAI-compatible), or "
    "'offline' [default: MMRAG_ANSWER_MODEL, else offline extractive answer].",
)
@click.option(
    "-k",
    "--top-k",
    "k",
    type=click.IntRange(1, 50),
    default=5,
    show_default=True,
    help="How many sources to send.",
)
@click.option(
    "--where",
    "filters",
    multiple=True,
    metavar="FILTER",
    help="Metadata filter, repeatable (see `mmrag search --help`).",
)
@click.option("--images-only", is_flag=True, help="Send only visual sources (images, pages, ...).")
@click.option(
    "--detail",
    type=click.Choice(["low", "high", "auto"]),
    default=None,
    help="OpenAI image detail [default: MMRAG_IMAGE_DETAIL, else low].",
)
@click.option("--no-stream", is_flag=True, help="Print the answer only when complete.")
def ask_cmd(
    question: str,
    index_dir: Path | None,
    model: str | None,
    as_json: bool,
    answer_model: str | None,
    k: int,
    filters: tuple[str, ...],
    images_only: bool,
    detail: str | None,
    no_stream: bool,
) -> int:
    """Answer QUESTION from the indexed images and text, citing sources as [n]."""
    where = parse_where(filters)

    def body() -> int:
        settings = settings_from(index_dir, model, image_detail=detail)
        streamed: list[str] = []

        def stream(chunk: str) -> None:
            streamed.append(chunk)
            click.echo(chunk, nl=False)

        with open_index(settings=settings, create=False) as index:
            try:
                answer = index.ask(
                    question,
                    k=k,
                    model=answer_model,
                    where=where,
                    images_only=images_only,
                    stream=None if (as_json or no_stream) else stream,
                )
            except AnswerError as exc:
                return _failed(exc, as_json, cut=bool(streamed))
        if as_json:
            click.echo(json.dumps(answer.to_dict()))
            return EXIT_OK
        if streamed:
            click.echo()
        else:
            click.echo(answer.text)
        if answer.citations:
            click.echo("\nSources:")
            for citation in answer.citations:
                click.echo(f"  [{citation.n}] {citation.label} — {citation.source}")
        usage = answer.usage
        if usage is not None and (usage.input_tokens or usage.output_tokens):
            cost = f", ~${usage.cost_usd:.4f}" if usage.cost_usd is not None else ""
            click.secho(
                f"({answer.model}: {usage.input_tokens} in, {usage.output_tokens} out{cost})",
                dim=True,
                err=True,
            )
        return EXIT_OK

    return run_guarded(as_json, body)


def _failed(exc: AnswerError, as_json: bool, *, cut: bool) -> int:
    """A failed answer: the error, then the sources retrieval found (exit 1)."""
    sources = [source.to_dict() for source in exc.sources]
    if as_json:
        body = {"error": type(exc).__name__, "message": str(exc), "sources": sources}
        click.echo(json.dumps({**body, "retryable": exc.retryable, "status": exc.status}))
        return EXIT_ERROR
    if cut:
        click.echo()  # end the cut-off answer's line
    click.secho(f"error: {exc}", fg="red", err=True)
    if sources:
        click.echo("\nSources found (no answer):")
        for source in sources:
            click.echo(f"  [{source['n']}] {source['label']} — {source['source']}")
    return EXIT_ERROR
