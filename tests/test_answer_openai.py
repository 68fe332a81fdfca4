"""The OpenAI answerer drives the real ``openai`` SDK against a fake Chat Completions server."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator

import pytest
from PIL import Image

from fake_llm_servers import USAGE_IN, USAGE_OUT, FakeLLMServer, Reply
from mmrag.answer.base import make_answerer, resolve_model
from mmrag.answer.extractive import ExtractiveAnswerer
from mmrag.answer.openai_chat import OpenAIChatAnswerer
from mmrag.config import Settings
from mmrag.errors import AnswerError, ConfigError
from mmrag.types import Hit, Item

KEY = "sk-test-SECRET-0123456789abcdef"

PAGE = Item(
    id="page7",
    kind="page",
    source="/d/report.pdf",
    doc="/d/report.pdf",
    page=7,
    text="Revenue grew 12% in Q3.",
)
SHOE = Item(
    id="shoe",
    kind="product",
    source="catalog.csv#1",
    metadata={"name": "Trail Shoe", "price": 89.0, "caption": "A red trail shoe"},
)
HITS = [Hit(PAGE, 0.9), Hit(SHOE, 0.8)]


def load_image(item: Item) -> Image.Image | None:
    """A big page image and a small product photo."""
    size = (1700, 2200) if item.kind == "page" else (400, 400)
    return Image.new("RGB", size, (200, 30, 30))


@pytest.fixture(autouse=True)
def _no_env_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "MMRAG_OPENAI_API_KEY", "OPENAI_BASE_URL", "MMRAG_ANSWER_MODEL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(
        "openai", default_text="Revenue grew 12% [1]; the shoe costs $89 [2] [7]."
    ) as s:
        yield s


def _answerer(
    server: FakeLLMServer, model: str = "gpt-4o", **settings: object
) -> OpenAIChatAnswerer:
    options: dict[str, object] = {"openai_api_key": KEY, "answer_retries": 2, **settings}
    return OpenAIChatAnswerer(Settings(**options), model, base_url=server.url)  # type: ignore[arg-type]


def _assert_key_hidden(error: BaseException) -> None:
    for text in (str(error), repr(error), str(error.__cause__), str(error.__context__)):
        assert KEY not in text
    assert error.__cause__ is None


@pytest.mark.integration
def test_request_carries_numbered_sources_and_downscaled_images_as_data_urls(
    server: FakeLLMServer,
) -> None:
    answer = _answerer(server, image_budget=256 * 256, image_detail="high").answer(
        "How did revenue change?", HITS, load_image
    )
    (request,) = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    body = request.body
    assert body["model"] == "gpt-4o" and "stream" not in body
    assert body["max_tokens"] == 1024  # a compatible server: the classic parameter
    system, user = body["messages"]
    assert system["role"] == "system" and "[1]" in system["content"]
    texts = [p["text"] for p in user["content"] if p["type"] == "text"]
    assert texts[1].startswith("[1] report.pdf p.7 (page)")
    assert texts[2].startswith("[2] Trail Shoe — $89.00 (product)\nCaption: A red trail shoe")
    images = [p["image_url"] for p in user["content"] if p["type"] == "image_url"]
    assert [i["detail"] for i in images] == ["high", "high"]
    assert all(i["url"].startswith("data:image/jpeg;base64,") for i in images)
    page = Image.open(io.BytesIO(base64.b64decode(images[0]["url"].split(",", 1)[1])))
    assert page.width * page.height <= 256 * 256 and abs(page.width / page.height - 17 / 22) < 0.02
    assert [(c.n, c.item_id) for c in answer.citations] == [(1, "page7"), (2, "shoe")]
    assert answer.usage.input_tokens == USAGE_IN and answer.usage.output_tokens == USAGE_OUT
    assert answer.usage.cost_usd is None  # not api.openai.com: no price applies
    assert answer.model == "gpt-4o" and len(answer.sources) == 2


@pytest.mark.integration
def test_streaming_sends_chunks_as_they_arrive_and_reports_usage(server: FakeLLMServer) -> None:
    chunks: list[str] = []
    answer = _answerer(server).answer("q", HITS, load_image, stream=chunks.append)
    body = server.requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert len(chunks) > 1 and "".join(chunks) == answer.text == server.default_text
    assert [c.n for c in answer.citations] == [1, 2]
    assert answer.usage.input_tokens == USAGE_IN and answer.usage.output_tokens == USAGE_OUT


@pytest.mark.integration
def test_a_rejected_key_is_a_clear_error_that_never_shows_the_key(server: FakeLLMServer) -> None:
    server.script(Reply.error(401, f"Incorrect API key provided: {KEY}."))
    with pytest.raises(AnswerError) as caught:
        _answerer(server).answer("q", HITS, load_image)
    assert caught.value.status == 401 and not caught.value.retryable
    assert "401" in str(caught.value) and "API key was rejected" in str(caught.value)
    assert "Incorrect API key provided: ***" in str(caught.value)
    _assert_key_hidden(caught.value)
    assert len(server.requests) == 1  # 401 is not retried
    assert KEY not in repr(_answerer(server))


@pytest.mark.integration
def test_rate_limits_are_retried_after_the_servers_retry_after(server: FakeLLMServer) -> None:
    # The SDK's own first backoff is 0.375-0.5 s: waits outside that range prove retry-after rules.
    server.script(
        Reply.error(429, "slow down", headers={"retry-after": "0.05"}),
        Reply.error(429, "slow down", headers={"retry-after": "0.7"}),
    )
    answer = _answerer(server).answer("q", HITS, load_image)
    first, second, third = (r.at for r in server.requests)
    assert second - first < 0.3
    assert third - second >= 0.69
    assert answer.citations


@pytest.mark.integration
def test_a_server_error_is_retried_with_backoff_then_succeeds(server: FakeLLMServer) -> None:
    server.script(Reply.error(500, "boom"))
    answer = _answerer(server).answer("q", HITS, load_image)
    assert len(server.requests) == 2 and answer.text == server.default_text


@pytest.mark.integration
def test_persistent_rate_limiting_gives_up_after_the_configured_retries(
    server: FakeLLMServer,
) -> None:
    limited = Reply.error(429, "slow down", headers={"retry-after-ms": "10"})
    server.script(limited, limited, limited)
    with pytest.raises(AnswerError) as caught:
        _answerer(server, answer_retries=1).answer("q", HITS, load_image)
    assert caught.value.status == 429 and caught.value.retryable
    assert "rate limited (after 1 retries)" in str(caught.value)
    assert len(server.requests) == 2
    _assert_key_hidden(caught.value)


@pytest.mark.integration
def test_a_slow_server_times_out_with_a_clear_error(server: FakeLLMServer) -> None:
    server.script(Reply.slow(2.0))
    start = time.perf_counter()
    with pytest.raises(AnswerError) as caught:
        _answerer(server, answer_timeout=0.3, answer_retries=0).answer("q", HITS, load_image)
    assert time.perf_counter() - start < 1.5
    assert "no response within 0.3s" in str(caught.value) and caught.value.retryable
    _assert_key_hidden(caught.value)


@pytest.mark.integration
def test_a_compatible_server_url_needs_no_key_and_names_its_model(server: FakeLLMServer) -> None:
    answerer = make_answerer(Settings(), f"{server.url}#llava:13b")
    answer = answerer.answer("q", HITS, None)
    request = server.requests[0]
    assert request.body["model"] == "llava:13b" and answer.model == "llava:13b"
    assert request.headers["authorization"] == "Bearer not-needed"
    assert all(p["type"] == "text" for p in request.body["messages"][1]["content"])


def test_known_openai_models_get_a_cost_estimate() -> None:
    answerer = OpenAIChatAnswerer(Settings(openai_api_key=KEY), "gpt-4o-2024-08-06")  # type: ignore[call-arg]
    usage = answerer._usage(type("U", (), {"prompt_tokens": 1_000_000, "completion_tokens": 0})())
    assert usage.cost_usd == 2.5


def test_the_official_api_without_a_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        make_answerer(Settings(), "gpt-4o")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("gpt-4o", ("openai", "gpt-4o", None)),
        ("o4-mini", ("openai", "o4-mini", None)),
        ("openai:my-finetune", ("openai", "my-finetune", None)),
        ("claude-sonnet-4-5", ("anthropic", "claude-sonnet-4-5", None)),
        ("anthropic:claude-x", ("anthropic", "claude-x", None)),
        ("http://127.0.0.1:8000/v1#qwen2-vl", ("openai", "qwen2-vl", "http://127.0.0.1:8000/v1")),
        ("https://h/v1", ("openai", "default", "https://h/v1")),
        ("anthropic+http://127.0.0.1:9#claude-x", ("anthropic", "claude-x", "http://127.0.0.1:9")),
        ("offline", ("extractive", "offline", None)),
    ],
)
def test_model_specs_route_to_their_provider(
    spec: str, expected: tuple[str, str, str | None]
) -> None:
    assert resolve_model(spec, Settings()) == expected


def test_unknown_names_go_to_the_configured_compatible_server_or_fail_clearly() -> None:
    assert resolve_model("llava", Settings(openai_base_url="http://h/v1")) == (
        "openai",
        "llava",
        "http://h/v1",
    )
    with pytest.raises(ConfigError, match="Unknown answer model"):
        resolve_model("llava", Settings())


def test_no_model_means_the_offline_answerer() -> None:
    assert isinstance(make_answerer(Settings(), None), ExtractiveAnswerer)
    assert isinstance(make_answerer(Settings(), "extractive"), ExtractiveAnswerer)
