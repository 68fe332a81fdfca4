"""Answers through the Anthropic Messages API (Claude) with the official ``anthropic`` SDK.

answerer = AnthropicAnswerer(settings, "claude-sonnet-4-5")
"""

from __future__ import annotations

import importlib
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..config import Settings
from ..errors import AnswerError, ConfigError, DependencyError
from ..types import Hit
from .base import Stream, estimate_cost, finish, prompt_for, scrub, status_error
from .faults import is_transport_error, stream_cut
from .prompt import ImagePart, LoadImage, Prompt
from .types import Answer, Usage

__all__ = ["AnthropicAnswerer", "to_messages"]

T = TypeVar("T")

# Our own retry policy: the SDK honours any Retry-After without a ceiling (it would sleep for an
# hour if told to), so its retries are off and we cap the wait here.
MAX_RETRY_AFTER = 60.0
_BACKOFF_START, _BACKOFF_MAX = 0.5, 8.0


def to_messages(prompt: Prompt) -> list[dict[str, Any]]:
    """The prompt as Messages API messages: images become base64 ``image`` blocks."""
    content: list[dict[str, Any]] = []
    for part in prompt.parts:
        if isinstance(part, ImagePart):
            source = {"type": "base64", "media_type": part.mime, "data": part.b64}
            content.append({"type": "image", "source": source})
        else:
            content.append({"type": "text", "text": part.text})
    return [{"role": "user", "content": content}]


def _retry_after(exc: Any) -> float | None:
    """The server's requested wait in seconds (Retry-After-Ms or Retry-After), if numeric."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return float(headers[name]) * scale
        except (KeyError, TypeError, ValueError):
            continue
    return None


class AnthropicAnswerer:
    """An :class:`~mmrag.answer.base.Answerer` over the Messages API."""

    def __init__(
        self,
        settings: Settings,
        model: str,
        *,
        base_url: str | None = None,
        max_tokens: int = 1024,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        try:
            self._sdk = importlib.import_module("anthropic")
        except ImportError:
            raise DependencyError("anthropic", "anthropic", "The Anthropic answerer") from None
        if not settings.anthropic_api_key:
            raise ConfigError(
                "The Anthropic answerer needs an API key: set ANTHROPIC_API_KEY or "
                "MMRAG_ANTHROPIC_API_KEY"
            )
        self.model = model
        self.base_url = base_url
        self._key = settings.anthropic_api_key.get_secret_value()
        self._settings = settings
        self._max_tokens = max_tokens
        self._sleep = sleep
        self._client = self._sdk.Anthropic(
            api_key=self._key, base_url=base_url, timeout=settings.answer_timeout, max_retries=0
        )

    def __repr__(self) -> str:
        return f"AnthropicAnswerer(model={self.model!r}, base_url={self.base_url!r})"

    @classmethod
    def from_spec(
        cls, settings: Settings, model: str, base_url: str | None = None
    ) -> AnthropicAnswerer:
        """The registry's factory (``anthropic+https://host#model`` gives ``base_url``)."""
        return cls(settings, model, base_url=base_url)

    def answer(
        self,
        question: str,
        hits: Sequence[Hit],
        load_image: LoadImage | None,
        *,
        stream: Stream | None = None,
    ) -> Answer:
        """Ask Claude about the hits; ``stream`` receives text chunks as they arrive."""
        prompt = prompt_for(self._settings, question, hits, load_image)
        request: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self._max_tokens,
            "system": prompt.system,
            "messages": to_messages(prompt),
        }
        emitted: list[str] = []

        def forward(piece: str) -> None:
            emitted.append(piece)
            if stream is not None:
                stream(piece)

        def call() -> tuple[str, Usage]:
            if stream is None:
                return self._complete(request)
            return self._stream(request, forward)

        try:
            text, usage = self._with_retries(call, lambda: "".join(emitted))
        except AnswerError as exc:
            exc.sources = prompt.sources  # retrieval worked: the caller still gets them
            raise
        return finish(prompt, text, self.model, usage)

    def _complete(self, request: dict[str, Any]) -> tuple[str, Usage]:
        """One non-streaming call."""
        message = self._client.messages.create(**request)
        text = "".join(b.text for b in message.content if getattr(b, "type", "") == "text")
        return text, self._usage(message.usage.input_tokens, message.usage.output_tokens)

    def _stream(self, request: dict[str, Any], forward: Stream) -> tuple[str, Usage]:
        """A streaming call over the raw events: message_start carries input tokens,
        content_block_delta the text, message_delta the output tokens."""
        chunks: list[str] = []
        tokens_in: int | None = None
        tokens_out: int | None = None
        with self._client.messages.create(**request, stream=True) as events:
            for event in events:
                if event.type == "message_start":
                    tokens_in = event.message.usage.input_tokens
                elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                    chunks.append(event.delta.text)
                    forward(event.delta.text)
                elif event.type == "message_delta" and event.usage is not None:
                    tokens_out = event.usage.output_tokens
                    tokens_in = event.usage.input_tokens or tokens_in
        return "".join(chunks), self._usage(tokens_in, tokens_out)

    def _usage(self, tokens_in: int | None, tokens_out: int | None) -> Usage:
        """Tokens and estimated cost."""
        cost = estimate_cost(self.model, tokens_in, tokens_out) if self.base_url is None else None
        return Usage(input_tokens=tokens_in, output_tokens=tokens_out, cost_usd=cost)

    def _with_retries(self, call: Callable[[], T], started: Callable[[], str]) -> T:
        """Run ``call``, retrying 408/409/429/5xx, timeouts and connection errors with backoff.

        Retry-After is honoured up to MAX_RETRY_AFTER; a stream that already produced text
        (``started()``: the text so far) is never retried, so the caller never sees a chunk
        twice; a connection lost mid-stream is a "stream cut" AnswerError.
        """
        retries = self._settings.answer_retries
        attempt = 0
        while True:
            try:
                return call()
            except Exception as exc:  # SDK errors, and transport errors while a stream is read
                if not isinstance(exc, self._sdk.APIError) and not is_transport_error(exc):
                    raise
                failed = exc
            # Decided outside the except block so the SDK error, which may quote the key from the
            # server's message, is neither the cause nor the context of ours.
            cut = is_transport_error(failed) or isinstance(failed, self._sdk.APIConnectionError)
            if cut and started():  # text was shown: say so, and never retry (no repeats)
                where = self.base_url or "api.anthropic.com"
                raise stream_cut("Anthropic", where, failed, started())
            error, wait = self._error(failed, attempt), _retry_after(failed)
            if not error.retryable or attempt == retries or started():
                raise error
            if wait is not None and wait > MAX_RETRY_AFTER:
                raise AnswerError(
                    f"{error} (server asked to wait {wait:g}s)", status=error.status, retryable=True
                )
            if wait is None or wait < 0:
                wait = min(_BACKOFF_START * 2**attempt, _BACKOFF_MAX) * (1 - 0.25 * random.random())
            self._sleep(wait)
            attempt += 1

    def _error(self, exc: Exception, retries: int = 0) -> AnswerError:
        """A clear AnswerError for an SDK error after ``retries`` retries; never shows the key."""
        where = self.base_url or "api.anthropic.com"
        if isinstance(exc, self._sdk.APITimeoutError):
            return AnswerError(
                f"Anthropic at {where}: no response within {self._settings.answer_timeout:g}s"
                + (f" (after {retries} retries)" if retries else ""),
                retryable=True,
            )
        if isinstance(exc, self._sdk.APIConnectionError):
            return AnswerError(f"Anthropic at {where}: could not connect", retryable=True)
        if isinstance(exc, self._sdk.APIStatusError):
            return status_error(
                "Anthropic", where, exc.status_code, exc, self._key, retries=retries
            )
        return AnswerError(f"Anthropic at {where}: {scrub(str(exc), self._key)[:300]}")
