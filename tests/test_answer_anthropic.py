"""The Anthropic answerer drives the real ``anthropic`` SDK against a fake Messages server."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import pytest
from PIL import Image

from fake_llm_servers import USAGE_IN, USAGE_OUT, FakeLLMServer, Reply, anthropic_stream
from mmrag.answer.anthropic_messages import AnthropicAnswerer
from mmrag.answer.base import make_answerer
from mmrag.config import Settings
from mmrag.errors import AnswerError, ConfigError
from mmrag.types import Hit, Item

KEY = "sk-ant-test-SECRET-0123456789"

FIGURE = Item(
    id="fig3",
    kind="figure",
    source="/d/report.pdf",
    doc="/d/report.pdf",
    page=7,
    metadata={"caption": "Figure 3: Revenue by quarter"},
)
CHUNK = Item(
    id="chunk",
    kind="text",
    source="/d/report.pdf",
    doc="/d/report.pdf",
    page=7,
    text="Revenue grew 12% in Q3.",
)
HITS = [Hit(FIGURE, 0.9), Hit(CHUNK, 0.8)]


def load_image(item: Item) -> Image.Image | None:
    """Only the figure has an image; text chunks without a page image return None."""
    return Image.new("RGB", (2000, 1000), (10, 120, 200)) if item.kind == "figure" else None


@pytest.fixture(autouse=True)
def _no_env_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "MMRAG_ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(
        "anthropic", default_text="Q3 revenue rose 12% [2], see the chart [1]."
    ) as s:
        yield s


class Sleeps(list[float]):
    """Records the waits between retries instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _answerer(
    server: FakeLLMServer, sleep: Sleeps | None = None, **settings: object
) -> AnthropicAnswerer:
    options: dict[str, object] = {"anthropic_api_key": KEY, "answer_retries": 2, **settings}
    return AnthropicAnswerer(
        Settings(**options),  # type: ignore[arg-type]
        "claude-sonnet-4-5",
        base_url=server.url,
        sleep=sleep if sleep is not None else Sleeps(),
    )


def _assert_key_hidden(error: BaseException) -> None:
    for text in (str(error), repr(error), str(error.__cause__), str(error.__context__)):
        assert KEY not in text
    assert error.__cause__ is None and error.__context__ is None


@pytest.mark.integration
def test_request_has_system_prompt_base64_image_blocks_and_numbered_sources(
    server: FakeLLMServer,
) -> None:
    answer = _answerer(server, image_budget=128 * 128).answer("Q3 revenue?", HITS, load_image)
    (request,) = server.requests
    assert request.path == "/v1/messages"
    # SDK 2.x sends the key as a bearer token; older versions used x-api-key.
    auth = request.headers.get("x-api-key") or request.headers["authorization"]
    assert auth in (KEY, f"Bearer {KEY}") and request.headers["anthropic-version"]
    body = request.body
    assert body["model"] == "claude-sonnet-4-5" and body["max_tokens"] == 1024
    assert "[1]" in body["system"] and "do not contain" in body["system"]
    (message,) = body["messages"]
    assert message["role"] == "user"
    kinds = [block["type"] for block in message["content"]]
    assert kinds == ["text", "text", "image", "text", "text"]
    assert message["content"][1]["text"].startswith("[1] report.pdf p.7, Figure 3 (figure)")
    assert message["content"][3]["text"].startswith("[2] report.pdf p.7 (text)")
    source = message["content"][2]["source"]
    assert source["type"] == "base64" and source["media_type"] == "image/jpeg"
    image = Image.open(io.BytesIO(base64.b64decode(source["data"])))
    assert image.width * image.height <= 128 * 128 and abs(image.width / image.height - 2) < 0.02
    assert [(c.n, c.item_id, c.label) for c in answer.citations] == [
        (2, "chunk", "report.pdf p.7"),
        (1, "fig3", "report.pdf p.7, Figure 3"),
    ]
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (USAGE_IN, USAGE_OUT)


@pytest.mark.integration
def test_streaming_forwards_text_deltas_and_collects_usage(server: FakeLLMServer) -> None:
    chunks: list[str] = []
    answer = _answerer(server).answer("q", HITS, load_image, stream=chunks.append)
    assert server.requests[0].body["stream"] is True
    assert len(chunks) > 1 and "".join(chunks) == answer.text == server.default_text
    assert [c.n for c in answer.citations] == [2, 1]
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (USAGE_IN, USAGE_OUT)


@pytest.mark.integration
def test_a_rejected_key_is_a_clear_error_that_never_shows_the_key(server: FakeLLMServer) -> None:
    server.script(Reply.error(401, f"invalid x-api-key {KEY}"))
    with pytest.raises(AnswerError) as caught:
        _answerer(server).answer("q", HITS, load_image)
    assert caught.value.status == 401 and "API key was rejected" in str(caught.value)
    _assert_key_hidden(caught.value)
    assert len(server.requests) == 1
    assert KEY not in repr(_answerer(server))


@pytest.mark.integration
def test_rate_limits_wait_as_long_as_retry_after_says(server: FakeLLMServer) -> None:
    server.script(Reply.error(429, "slow down", headers={"retry-after": "0.25"}))
    sleeps = Sleeps()
    answer = _answerer(server, sleeps).answer("q", HITS, load_image)
    assert sleeps == [0.25] and len(server.requests) == 2 and answer.citations


@pytest.mark.integration
def test_an_overlong_retry_after_fails_at_once_instead_of_hanging(server: FakeLLMServer) -> None:
    server.script(Reply.error(429, "slow down", headers={"retry-after": "3600"}))
    sleeps = Sleeps()
    with pytest.raises(AnswerError, match="asked to wait 3600s") as caught:
        _answerer(server, sleeps).answer("q", HITS, load_image)
    assert sleeps == [] and caught.value.retryable and caught.value.status == 429


@pytest.mark.integration
def test_server_errors_back_off_exponentially_then_give_up(server: FakeLLMServer) -> None:
    server.script(*[Reply.error(529, "Overloaded")] * 3)
    sleeps = Sleeps()
    with pytest.raises(AnswerError) as caught:
        _answerer(server, sleeps).answer("q", HITS, load_image)
    assert len(server.requests) == 3 and caught.value.status == 529
    assert "overloaded (after 2 retries)" in str(caught.value)
    assert 0.375 <= sleeps[0] <= 0.5 and 0.75 <= sleeps[1] <= 1.0


@pytest.mark.integration
def test_a_server_error_then_success_returns_the_answer(server: FakeLLMServer) -> None:
    server.script(Reply.error(500, "boom"))
    answer = _answerer(server).answer("q", HITS, load_image)
    assert len(server.requests) == 2 and answer.text == server.default_text


@pytest.mark.integration
def test_a_slow_server_times_out_with_a_clear_error(server: FakeLLMServer) -> None:
    server.script(Reply.slow(2.0))
    with pytest.raises(AnswerError, match=r"no response within 0.3s") as caught:
        _answerer(server, answer_timeout=0.3, answer_retries=0).answer("q", HITS, load_image)
    _assert_key_hidden(caught.value)


@pytest.mark.integration
def test_an_error_event_mid_stream_is_not_retried_after_text_was_shown(
    server: FakeLLMServer,
) -> None:
    events = anthropic_stream(["Partial "], "claude-sonnet-4-5")[:4]
    error = '{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}'
    server.script(Reply(events=[*events, f"event: error\ndata: {error}\n\n"]))
    chunks: list[str] = []
    with pytest.raises(AnswerError, match="stream failed: Overloaded"):
        _answerer(server).answer("q", HITS, load_image, stream=chunks.append)
    assert chunks == ["Partial "] and len(server.requests) == 1


@pytest.mark.integration
def test_a_base_url_in_the_model_spec_reaches_the_server(server: FakeLLMServer) -> None:
    answerer = make_answerer(
        Settings(anthropic_api_key=KEY),  # type: ignore[call-arg]
        f"anthropic+{server.url}#claude-haiku-4-5",
    )
    answer = answerer.answer("q", [], None)
    assert server.requests[0].body["model"] == "claude-haiku-4-5"
    assert answer.model == "claude-haiku-4-5" and answer.citations == ()


def test_claude_without_a_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        make_answerer(Settings(), "claude-sonnet-4-5")


def test_known_claude_models_get_a_cost_estimate() -> None:
    answerer = AnthropicAnswerer(Settings(anthropic_api_key=KEY), "claude-sonnet-4-5-20250929")  # type: ignore[call-arg]
    assert answerer._usage(1_000_000, 1_000_000).cost_usd == 18.0
