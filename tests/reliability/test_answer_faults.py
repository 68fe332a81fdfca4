"""Answer faults: a stream cut in the middle is a clear, retryable AnswerError, not a raw
transport error; bursts of 429/5xx are retried, then reported; and whatever failed, the
library, the CLI and the server still return the sources retrieval found."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mmrag
from fake_llm_servers import FakeLLMServer, Reply, anthropic_stream, openai_stream
from mmrag.answer.anthropic_messages import AnthropicAnswerer
from mmrag.answer.openai_chat import OpenAIChatAnswerer
from mmrag.cli import main
from mmrag.config import Settings
from mmrag.errors import AnswerError
from mmrag.types import Hit, Item

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

KEY = "sk-test-SECRET-0123456789abcdef"
HITS = [Hit(Item(id="a", kind="text", source="a.txt", text="The pump is red."), 0.9)]
PIECES = ["The pump ", "is red ", "[1]."]


def _answerer(api: str, server: FakeLLMServer) -> Any:
    if api == "openai":
        settings = Settings(openai_api_key=KEY, answer_retries=2)  # type: ignore[call-arg]
        return OpenAIChatAnswerer(settings, "gpt-4o", base_url=server.url)
    settings = Settings(anthropic_api_key=KEY, answer_retries=2)  # type: ignore[call-arg]
    return AnthropicAnswerer(
        settings, "claude-sonnet-4-5", base_url=server.url, sleep=lambda _: None
    )


def _cut(api: str) -> Reply:
    """A stream that stops after its first text: the body is shorter than it declared."""
    events = openai_stream(PIECES, "m") if api == "openai" else anthropic_stream(PIECES, "m")
    keep = 2 if api == "openai" else 4
    return Reply(events=events[:keep], headers={"content-length": "100000"})


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_a_stream_cut_mid_way_is_a_clear_retryable_answer_error(api: str) -> None:
    with FakeLLMServer(api) as server:  # type: ignore[arg-type]
        server.script(_cut(api))
        chunks: list[str] = []
        with pytest.raises(AnswerError) as caught:
            _answerer(api, server).answer("q", HITS, None, stream=chunks.append)
    assert chunks  # it was cut after text had arrived
    message = str(caught.value)
    assert "cut" in message and caught.value.retryable and KEY not in message
    assert len(server.requests) == 1  # text was already shown: never retried (no repeats)


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_a_burst_of_429_and_5xx_is_retried_then_answered(api: str) -> None:
    with FakeLLMServer(api) as server:  # type: ignore[arg-type]
        server.script(
            Reply.error(429, "slow down", headers={"retry-after": "0"}), Reply.error(503, "busy")
        )
        answer = _answerer(api, server).answer("q", HITS, None)
    assert answer.text and len(server.requests) == 3


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_a_burst_longer_than_the_retries_is_a_clear_error(api: str) -> None:
    with FakeLLMServer(api) as server:  # type: ignore[arg-type]
        server.script(*[Reply.error(500, "down", headers={"retry-after": "0"})] * 3)
        with pytest.raises(AnswerError) as caught:
            _answerer(api, server).answer("q", HITS, None)
    assert caught.value.status == 500 and caught.value.retryable
    assert len(server.requests) == 3  # one try and two retries


# --- a failed answer still returns its sources: library, CLI, server --------------------------

QUESTION = "which shape is blue?"


def _faults(api: str) -> dict[str, list[Reply]]:
    """Each fault as the replies that make it outlast one retry."""
    return {
        "cut": [_cut(api)],
        "5xx": [Reply.error(503, "busy", headers={"retry-after": "0"})] * 2,
        "429": [Reply.error(429, "slow down", headers={"retry-after": "0"})] * 2,
        "timeout": [Reply.slow(2.0)] * 2,
    }


@pytest.fixture(scope="module")
def photo_index(tmp_path_factory: pytest.TempPathFactory, tiny_clip: Path) -> Path:
    from conftest import make_corpus

    root = tmp_path_factory.mktemp("ask-faults")
    with mmrag.open(root / "idx", model=str(tiny_clip), ocr=False) as index:
        index.add(make_corpus(root))
    return root / "idx"


def _open(path: Path, **settings: Any) -> Any:
    """The index with a short timeout and one retry, so each fault outlasts the retries."""
    base = Settings(  # type: ignore[call-arg]
        anthropic_api_key=KEY, openai_api_key=KEY, answer_retries=1, answer_timeout=0.5, **settings
    )
    return mmrag.open(path, settings=base, ocr=False)


def _spec(api: str, server: FakeLLMServer) -> str:
    return f"{server.url}#m" if api == "openai" else f"anthropic+{server.url}#claude-test"


@pytest.mark.parametrize("fault", ["cut", "5xx", "429", "timeout"])
@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_a_failed_answer_still_carries_the_retrieved_sources(
    api: str, fault: str, photo_index: Path
) -> None:
    with _open(photo_index) as index, FakeLLMServer(api) as server:  # type: ignore[arg-type]
        server.script(*_faults(api)[fault])
        hits = index.search(QUESTION, k=3)
        with pytest.raises(AnswerError) as caught:
            index.ask(QUESTION, k=3, model=_spec(api, server), stream=lambda _: None)
    error = caught.value
    assert error.retryable and KEY not in str(error)
    # The sources the model would have cited, numbered as in the prompt, with images summarised.
    assert [s.item.id for s in error.sources] == [h.item.id for h in hits]
    assert [s.n for s in error.sources] == [1, 2, 3]
    assert all(s.to_dict()["image"] for s in error.sources)


def test_an_answerer_without_sources_gets_them_from_index_ask(
    photo_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmrag.answer.extractive import ExtractiveAnswerer

    def fail(*_: Any, **__: Any) -> Any:
        raise AnswerError("a provider that attaches nothing failed")

    monkeypatch.setattr(ExtractiveAnswerer, "answer", fail)
    with _open(photo_index) as index, pytest.raises(AnswerError) as caught:
        index.ask(QUESTION, k=2)
    assert len(caught.value.sources) == 2 and caught.value.sources[0].label


@pytest.mark.parametrize("as_json", [True, False])
def test_cli_ask_prints_the_sources_and_fails(
    as_json: bool,
    photo_index: Path,
    tiny_clip: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MMRAG_ANSWER_RETRIES", "1")
    with FakeLLMServer("openai") as server:
        # --json does not stream: its fault is a burst of 503s; the text mode's, a cut stream.
        server.script(*_faults("openai")["5xx" if as_json else "cut"])
        args = ["ask", QUESTION, "--index", str(photo_index), "--llm", f"{server.url}#m", "-k", "2"]
        code = main([*args, *(["--json"] if as_json else [])])
    out, err = capsys.readouterr()
    assert code == 1
    if as_json:
        body = json.loads(out)
        assert body["error"] == "AnswerError" and body["retryable"] and body["status"] == 503
        assert [s["n"] for s in body["sources"]] == [1, 2]
        assert all(s["id"] and s["source"] for s in body["sources"])
    else:
        assert "cut" in err and "Sources found (no answer):" in out
        assert out.startswith("The pump")  # the text streamed before the cut stays shown
        assert out.count(" — ") == 2


@pytest.fixture
def ask_app(photo_index: Path) -> Iterator[tuple[Any, FakeLLMServer]]:
    from mmrag.server import create_app

    with (
        FakeLLMServer("openai") as server,
        _open(photo_index, answer_model=f"{server.url}#m") as index,
    ):
        yield create_app(index), server


def test_server_ask_error_body_has_the_sources_and_keeps_its_schema(
    ask_app: tuple[Any, FakeLLMServer],
) -> None:
    schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the dev extra")
    app, server = ask_app
    server.script(*_faults("openai")["5xx"])
    operation = schemathesis.openapi.from_asgi("/openapi.json", app)["/api/ask"]["POST"]
    case = operation.Case(body={"question": QUESTION, "k": 2}, media_type="application/json")
    # Every schemathesis check but "no 5xx" (a failed upstream model is a 502 by design): the
    # 502 and its body must be what the schema documents.
    from schemathesis.checks import not_a_server_error

    response = case.call_and_validate(excluded_checks=[not_a_server_error])
    body = response.json()
    assert response.status_code == 502 and body["error"] == "AnswerError" and body["retryable"]
    assert [s["n"] for s in body["sources"]] == [1, 2] and KEY not in response.text
    assert len(server.requests) == 2  # one try, one retry
    documented = app.openapi()["paths"]["/api/ask"]["post"]["responses"]["502"]
    reference = documented["content"]["application/json"]["schema"]["$ref"]
    fields = app.openapi()["components"]["schemas"][reference.rsplit("/", 1)[1]]["properties"]
    assert {"error", "message", "sources", "retryable"} <= set(fields)
