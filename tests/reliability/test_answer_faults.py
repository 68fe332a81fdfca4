"""Answer faults: a stream cut in the middle is a clear, retryable AnswerError, not a raw
transport error; bursts of 429/5xx are retried, then reported."""

from __future__ import annotations

from typing import Any

import pytest

from fake_llm_servers import FakeLLMServer, Reply, anthropic_stream, openai_stream
from mmrag.answer.anthropic_messages import AnthropicAnswerer
from mmrag.answer.openai_chat import OpenAIChatAnswerer
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
