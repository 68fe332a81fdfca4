"""Answers through OpenAI Chat Completions (GPT-4o, o-series) or any OpenAI-compatible server.

Uses the official ``openai`` SDK; ``base_url`` points it at vLLM, Ollama, llama.cpp or LM Studio::

    answerer = OpenAIChatAnswerer(settings, "gpt-4o")
    answerer = OpenAIChatAnswerer(settings, "llava", base_url="http://127.0.0.1:8000/v1")
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from ..config import Settings
from ..errors import AnswerError, ConfigError, DependencyError
from ..types import Hit
from .base import Stream, estimate_cost, finish, prompt_for, scrub, status_error
from .faults import is_transport_error, stream_cut
from .prompt import ImagePart, LoadImage, Prompt
from .types import Answer, Usage

__all__ = ["OpenAIChatAnswerer", "to_messages"]

# Local servers usually accept any key, but the SDK insists on one.
_PLACEHOLDER_KEY = "not-needed"
_OFFICIAL_HOST = "api.openai.com"


def to_messages(prompt: Prompt) -> list[dict[str, Any]]:
    """The prompt as Chat Completions messages: images become ``image_url`` data URLs."""
    content: list[dict[str, Any]] = []
    for part in prompt.parts:
        if isinstance(part, ImagePart):
            content.append(
                {"type": "image_url", "image_url": {"url": part.data_url, "detail": part.detail}}
            )
        else:
            content.append({"type": "text", "text": part.text})
    return [{"role": "system", "content": prompt.system}, {"role": "user", "content": content}]


def _is_official(base_url: str | None) -> bool:
    """Whether requests go to OpenAI itself rather than a compatible server."""
    return base_url is None or _OFFICIAL_HOST in base_url


class OpenAIChatAnswerer:
    """An :class:`~mmrag.answer.base.Answerer` over the Chat Completions API."""

    def __init__(
        self,
        settings: Settings,
        model: str,
        *,
        base_url: str | None = None,
        max_tokens: int = 1024,
    ) -> None:
        try:
            self._sdk = importlib.import_module("openai")
        except ImportError:
            raise DependencyError("openai", "openai", "The OpenAI answerer") from None
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        if not key and _is_official(base_url):
            raise ConfigError(
                "The OpenAI answerer needs an API key: set OPENAI_API_KEY or MMRAG_OPENAI_API_KEY "
                "(or give an OpenAI-compatible base URL)"
            )
        self.model = model
        self.base_url = base_url
        self._key = key or _PLACEHOLDER_KEY
        self._settings = settings
        self._max_tokens = max_tokens
        # The SDK retries 408/409/429/5xx and timeouts with exponential backoff and honours
        # Retry-After / Retry-After-Ms up to two minutes (openai/_base_client.py), so we rely on it.
        self._client = self._sdk.OpenAI(
            api_key=self._key,
            base_url=base_url,
            timeout=settings.answer_timeout,
            max_retries=settings.answer_retries,
        )

    def __repr__(self) -> str:
        return f"OpenAIChatAnswerer(model={self.model!r}, base_url={self.base_url!r})"

    @classmethod
    def from_spec(
        cls, settings: Settings, model: str, base_url: str | None = None
    ) -> OpenAIChatAnswerer:
        """The registry's factory: ``base_url`` falls back to ``settings.openai_base_url``."""
        return cls(settings, model, base_url=base_url or settings.openai_base_url)

    def answer(
        self,
        question: str,
        hits: Sequence[Hit],
        load_image: LoadImage | None,
        *,
        stream: Stream | None = None,
    ) -> Answer:
        """Ask the model about the hits; ``stream`` receives text chunks as they arrive."""
        prompt = prompt_for(self._settings, question, hits, load_image)
        request: dict[str, Any] = {"model": self.model, "messages": to_messages(prompt)}
        # OpenAI deprecated max_tokens (o-series reject it); compatible servers still expect it.
        limit_key = "max_completion_tokens" if _is_official(self.base_url) else "max_tokens"
        request[limit_key] = self._max_tokens
        failure: AnswerError | None = None
        emitted: list[str] = []

        def forward(piece: str) -> None:
            emitted.append(piece)
            assert stream is not None
            stream(piece)

        try:
            if stream is None:
                text, usage = self._complete(request)
            else:
                text, usage = self._stream(request, forward)
        except Exception as exc:  # narrowed below: SDK errors, and transport errors mid-stream
            if not isinstance(exc, self._sdk.APIError) and not is_transport_error(exc):
                raise
            where = self.base_url or "api.openai.com"
            failure = stream_cut("OpenAI", where, exc, "".join(emitted)) if emitted else None
            failure = failure or self._error(exc)
        if failure is not None:
            # Raised outside the except block so the SDK error, which may quote the key from the
            # server's message, is neither the cause nor the context of ours.
            failure.sources = prompt.sources  # retrieval worked: the caller still gets them
            raise failure
        return finish(prompt, text, self.model, usage)

    def _complete(self, request: dict[str, Any]) -> tuple[str, Usage]:
        """One non-streaming call."""
        response = self._client.chat.completions.create(**request)
        text = (response.choices[0].message.content or "") if response.choices else ""
        return text, self._usage(response.usage)

    def _stream(self, request: dict[str, Any], stream: Stream) -> tuple[str, Usage]:
        """A streaming call; usage arrives in a final chunk with no choices."""
        chunks: list[str] = []
        usage = Usage()
        events = self._client.chat.completions.create(
            **request, stream=True, stream_options={"include_usage": True}
        )
        with events:
            for chunk in events:
                if chunk.usage is not None:
                    usage = self._usage(chunk.usage)
                for choice in chunk.choices:
                    piece = choice.delta.content if choice.delta else None
                    if piece:
                        chunks.append(piece)
                        stream(piece)
        return "".join(chunks), usage

    def _usage(self, usage: Any) -> Usage:
        """Tokens and estimated cost from an API usage object (None when not reported)."""
        if usage is None:
            return Usage()
        tokens_in, tokens_out = usage.prompt_tokens, usage.completion_tokens
        cost = (
            estimate_cost(self.model, tokens_in, tokens_out)
            if _is_official(self.base_url)
            else None
        )
        return Usage(input_tokens=tokens_in, output_tokens=tokens_out, cost_usd=cost)

    def _error(self, exc: Exception) -> AnswerError:
        """A clear AnswerError for an SDK error; the key never appears in it."""
        where = self.base_url or "api.openai.com"
        if isinstance(exc, self._sdk.APITimeoutError):
            return AnswerError(
                f"OpenAI at {where}: no response within {self._settings.answer_timeout:g}s "
                f"(after {self._settings.answer_retries} retries)",
                retryable=True,
            )
        if isinstance(exc, self._sdk.APIConnectionError):
            return AnswerError(f"OpenAI at {where}: could not connect", retryable=True)
        if isinstance(exc, self._sdk.APIStatusError):
            return status_error(
                "OpenAI",
                where,
                exc.status_code,
                exc,
                self._key,
                retries=self._settings.answer_retries,
            )
        return AnswerError(f"OpenAI at {where}: {scrub(str(exc), self._key)[:300]}")
