"""The answering role: one ``Answerer`` protocol, model-name routing and shared helpers.

Providers live in ``registry.answerers`` (``extractive``, ``openai``, ``anthropic``); this module
only routes a model spec to one of them, and never imports the implementations.

answerer = make_answerer(settings, "gpt-4o")       # or "claude-...", "http://host/v1#model", None
answer = answerer.answer("What is in figure 3?", hits, load_image, stream=print_chunk)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .. import registry
from ..config import Settings
from ..errors import AnswerError, ConfigError
from ..types import Hit
from .citations import cite
from .prompt import LoadImage, Prompt, build_prompt
from .types import Answer, Source, Usage

__all__ = [
    "Answerer",
    "Stream",
    "attach_sources",
    "estimate_cost",
    "make_answerer",
    "prompt_for",
    "register_answerer",
    "resolve_model",
]

#: Receives each chunk of answer text as it arrives.
Stream = Callable[[str], None]


class Answerer(Protocol):
    """Answers a question from retrieved hits, citing them as [n]."""

    #: The model name reported in answers ("extractive" for the offline answerer).
    model: str

    def answer(
        self,
        question: str,
        hits: Sequence[Hit],
        load_image: LoadImage | None,
        *,
        stream: Stream | None = None,
    ) -> Answer: ...


Factory = Callable[[Settings, str, "str | None"], Answerer]


@dataclass(frozen=True)
class _Route:
    """A model spec pattern and the provider that serves it."""

    pattern: re.Pattern[str]
    provider: str


# Bare model names -> provider, first match wins. Explicit "provider:model" and URLs are
# handled by resolve_model before these are consulted.
_ROUTES: list[_Route] = [
    _Route(re.compile(r"^(extractive|offline|none)$", re.IGNORECASE), "extractive"),
    _Route(re.compile(r"^claude-"), "anthropic"),
    _Route(re.compile(r"^(gpt-|chatgpt-|o\d)"), "openai"),
]

DEFAULT_URL_MODEL = "default"


def register_answerer(provider: str, factory: Factory, pattern: str | None = None) -> None:
    """Add a provider to ``registry.answerers``, and optionally a bare-name pattern for it."""
    registry.answerers.register(provider, factory)
    if pattern is not None:
        _ROUTES.insert(0, _Route(re.compile(pattern), provider))


def resolve_model(spec: str, settings: Settings) -> tuple[str, str, str | None]:
    """Split a model spec into (provider, model, base_url).

    Accepted forms: ``extractive``/``offline``; ``gpt-4o``, ``o4-mini``, ``claude-...``;
    ``openai:<model>``, ``anthropic:<model>``; ``http(s)://host/v1#<model>`` (OpenAI-compatible);
    ``anthropic+http(s)://host#<model>``. Any other name goes to ``settings.openai_base_url``
    when that is set (vLLM, Ollama, llama.cpp serve arbitrary names).
    """
    spec = spec.strip()
    scheme = re.match(r"^(?:(?P<provider>[a-z]+)\+)?(?P<url>https?://.+)$", spec)
    if scheme:
        url, _, model = scheme["url"].partition("#")
        return scheme["provider"] or "openai", model or DEFAULT_URL_MODEL, url
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in registry.answerers and rest:
        return prefix, rest, None
    for route in _ROUTES:
        if route.pattern.search(spec):
            return route.provider, spec, None
    if settings.openai_base_url:
        return "openai", spec, settings.openai_base_url
    raise ConfigError(
        f"Unknown answer model {spec!r}: use 'extractive', a gpt-*/o*/claude-* name, "
        "'openai:<model>', 'anthropic:<model>' or an OpenAI-compatible URL 'http://host/v1#<model>'"
    )


def make_answerer(settings: Settings, model: str | None = None) -> Answerer:
    """The answerer for ``model`` (falling back to ``settings.answer_model``; None = extractive)."""
    spec = model if model is not None else settings.answer_model
    if spec is None or not spec.strip():
        return _build("extractive", settings, "extractive", None)
    provider, name, base_url = resolve_model(spec, settings)
    if provider not in registry.answerers:
        raise ConfigError(f"Unknown answer provider {provider!r} in {spec!r}")
    return _build(provider, settings, name, base_url)


def _build(provider: str, settings: Settings, model: str, base_url: str | None) -> Answerer:
    """The answerer registered as ``provider``; its module is imported only now."""
    factory: Factory = registry.answerers.load(provider)
    return factory(settings, model, base_url)


def prompt_for(
    settings: Settings, question: str, hits: Sequence[Hit], load_image: LoadImage | None
) -> Prompt:
    """The prompt built with the settings' image budget and detail."""
    return build_prompt(
        question,
        hits,
        load_image,
        image_budget=settings.image_budget,
        detail=settings.image_detail,
    )


def attach_sources(error: AnswerError, question: str, hits: Sequence[Hit]) -> None:
    """Give ``error`` the numbered sources for ``hits``, unless its answerer attached them.

    The sources are built as the prompt numbers them, without images (no image is re-encoded
    for an answer that failed).
    """
    if not error.sources:
        sources: tuple[Source, ...] = build_prompt(question, hits, None).sources
        error.sources = sources


def finish(prompt: Prompt, text: str, model: str, usage: Usage) -> Answer:
    """The answer for the model's text, its citations mapped to the prompt's sources."""
    return Answer(
        text=text,
        citations=cite(text, prompt.sources),
        sources=prompt.sources,
        model=model,
        usage=usage,
    )


# USD per million (input, output) tokens, by model-name prefix; longest prefix wins.
# An estimate only: prices change, and cached/batch discounts are not modelled.
_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "o4-mini": (1.10, 4.40),
    "o3": (2.00, 8.00),
    "claude-3-haiku": (0.25, 1.25),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-opus-4-5": (5.00, 25.00),
    "claude-opus-4": (15.00, 75.00),
}


def estimate_cost(model: str, input_tokens: int | None, output_tokens: int | None) -> float | None:
    """Estimated USD cost for a known model, else None."""
    if input_tokens is None or output_tokens is None:
        return None
    matches = [p for p in _PRICES if model.startswith(p)]
    if not matches:
        return None
    price_in, price_out = _PRICES[max(matches, key=len)]
    return round((input_tokens * price_in + output_tokens * price_out) / 1_000_000, 6)


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` with every secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _server_message(exc: Any) -> str:
    """The server's own error message from an SDK status error, if it sent one."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return str(getattr(exc, "message", "") or exc)


_STATUS_HINTS = {
    400: "the request was rejected",
    401: "the API key was rejected (check the key setting)",
    403: "access denied for this key or model",
    404: "model or endpoint not found",
    413: "the request is too large (fewer sources or a smaller image budget may help)",
    429: "rate limited",
    529: "the API is overloaded",
}


def status_error(
    provider: str, where: str, status: int, exc: Any, *secrets: str | None, retries: int = 0
) -> AnswerError:
    """A clear AnswerError for an HTTP error status, with any secret removed."""
    detail = scrub(_server_message(exc), *secrets)[:300]
    if status < 400:
        # An error event inside a 200 streaming response.
        return AnswerError(f"{provider} at {where}: the stream failed: {detail}", status=status)
    hint = _STATUS_HINTS.get(status, "server error" if status >= 500 else "request failed")
    retryable = status in (408, 409, 429) or status >= 500
    suffix = f" (after {retries} retries)" if retryable and retries else ""
    return AnswerError(
        f"{provider} at {where}: HTTP {status}, {hint}{suffix}: {detail}",
        status=status,
        retryable=retryable,
    )
