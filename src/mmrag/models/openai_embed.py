"""Text embeddings from the OpenAI embeddings API (or any server that speaks it).

::

    encoder = OpenAITextEncoder(api_key=settings.openai_api_key, base_url=settings.openai_base_url)
    vectors = encoder.encode(["a chunk", "another"])  # (2, 1536) float32, unit length
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import SecretStr

from ..config import Settings
from ..errors import ConfigError, DependencyError, ModelLoadError

__all__ = ["KNOWN_DIMS", "OpenAITextEncoder"]

#: Output sizes of OpenAI's embedding models when ``dimensions`` is not given.
KNOWN_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
# About 8k tokens: the API refuses longer inputs, so over-long chunks are cut.
_MAX_INPUT_CHARS = 24_000


class OpenAITextEncoder:
    """A ``TextEncoder`` backed by ``client.embeddings.create``; batched and L2-normalised.

    ``dimensions`` asks ``text-embedding-3`` models for shorter vectors.
    ``base_url`` points at any OpenAI-compatible server (vLLM, Ollama, a test
    fake); then an API key is optional. The SDK's default wire format (base64
    float32) is used unless ``encoding_format`` says otherwise.
    """

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        dimensions: int | None = None,
        api_key: SecretStr | str | None = None,
        base_url: str | None = None,
        batch_size: int = 256,
        timeout: float = 60.0,
        max_retries: int = 2,
        encoding_format: Literal["float", "base64"] | None = None,
    ) -> None:
        try:
            import openai
        except ImportError as exc:
            raise DependencyError("openai", "openai", "OpenAI embeddings") from exc
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        if not key:
            if base_url is None:
                raise ConfigError(
                    "OpenAI embeddings need an API key: "
                    "set OPENAI_API_KEY (or MMRAG_OPENAI_API_KEY)"
                )
            key = "not-needed"  # local OpenAI-compatible servers ignore it
        if batch_size < 1:
            raise ConfigError("batch_size must be at least 1")
        self.model = model
        self.dimensions = dimensions
        self.batch_size = batch_size
        self.encoding_format = encoding_format
        self.model_id = f"openai:{model}" + (f"@{dimensions}" if dimensions else "")
        self._dim = dimensions or KNOWN_DIMS.get(model)
        # Built now (cheap, no network); the key lives only inside the client.
        self._client = openai.OpenAI(
            api_key=key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )

    @classmethod
    def from_settings(cls, model: str, settings: Settings) -> OpenAITextEncoder:
        """The encoder for ``model``, ``NAME[@DIMENSIONS]``, with the settings' key and base URL."""
        name, _, dims = model.partition("@")
        try:
            dimensions = int(dims) if dims else None
        except ValueError:
            raise ConfigError(
                f"OpenAI embedding model {model!r}: '@' must be followed by a size"
            ) from None
        return cls(
            name or "text-embedding-3-small",
            dimensions=dimensions,
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url,
        )

    def __repr__(self) -> str:
        return f"OpenAITextEncoder(model={self.model!r}, dim={self._dim})"

    @property
    def dim(self) -> int:
        """The vector size; for an unknown model, learnt from one probe request."""
        if self._dim is None:
            self._dim = int(self._embed(["dimension probe"]).shape[1])
        return self._dim

    def encode(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        """Embed ``texts`` (queries and passages alike) as unit-length float32 rows."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [
            self._embed(texts[i : i + self.batch_size])
            for i in range(0, len(texts), self.batch_size)
        ]
        vectors = np.concatenate(parts, axis=0)
        if self._dim is None:
            self._dim = int(vectors.shape[1])
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)

    def _embed(self, batch: Sequence[str]) -> np.ndarray:
        import openai

        # The API rejects empty strings and inputs over its token limit.
        inputs = [(t[:_MAX_INPUT_CHARS] if t.strip() else " ") for t in batch]
        kwargs: dict[str, Any] = {"model": self.model, "input": inputs}
        if self.dimensions:
            kwargs["dimensions"] = self.dimensions
        if self.encoding_format:
            kwargs["encoding_format"] = self.encoding_format
        try:
            response = self._client.embeddings.create(**kwargs)
        except openai.APIStatusError as exc:
            raise ModelLoadError(
                f"OpenAI embeddings with model {self.model!r} failed: HTTP {exc.status_code}"
                f" {_reason(exc)}"
            ) from exc
        except openai.APIError as exc:  # connection errors and timeouts
            raise ModelLoadError(f"OpenAI embeddings could not be reached: {exc}") from exc
        rows = sorted(response.data, key=lambda d: d.index)
        if len(rows) != len(inputs):
            raise ModelLoadError(
                f"OpenAI embeddings returned {len(rows)} vectors for {len(inputs)}"
            )
        return np.asarray([_vector(r.embedding) for r in rows], dtype=np.float32)


def _vector(embedding: Any) -> np.ndarray:
    """A row as floats; base64 strings are decoded here when a server sent them unasked."""
    if isinstance(embedding, str):
        import base64

        return np.frombuffer(base64.b64decode(embedding), dtype="<f4")
    return np.asarray(embedding, dtype=np.float32)


def _reason(exc: Any) -> str:
    """The server's error message, without request details (which could carry the key)."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:200]
    return type(exc).__name__
