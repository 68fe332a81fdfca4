"""The one error tree of mmrag.

The library raises; only the CLI and the HTTP layer turn errors into messages,
exit codes and JSON::

    MmragError
     ├── ConfigError            bad settings or arguments
     ├── DependencyError        an optional extra is not installed ("pip install 'mmrag[pdf]'")
     ├── ModelLoadError         weights could not be loaded (offline, bad path): says what was tried
     ├── IndexError_            the index on disk is missing, corrupt or of another schema
     │    └── ModelMismatchError  the index was built with another model: re-embed deliberately
     ├── InputError             one input (file, URL, row, page) cannot be read; names the input
     │    └── FetchError          a URL was refused or failed (scheme, private address, size, type)
     ├── StoreError             the vector store failed
     └── AnswerError            the answering model failed (auth, rate limit, timeout, server);
                                carries the sources retrieved for the question
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "AnswerError",
    "ConfigError",
    "DependencyError",
    "FetchError",
    "IndexBusyError",
    "IndexError_",
    "InputError",
    "MmragError",
    "ModelLoadError",
    "ModelMismatchError",
    "StoreError",
]


class MmragError(Exception):
    """Base of every error mmrag raises on purpose."""


class ConfigError(MmragError):
    """A setting or argument is invalid."""


class DependencyError(MmragError):
    """An optional dependency is missing; the message carries the install hint."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(f"{purpose} needs the package '{package}': pip install 'mmrag[{extra}]'")
        self.package = package
        self.extra = extra


class ModelLoadError(MmragError):
    """A model could not be loaded; the message says what was tried and what to do."""


class IndexError_(MmragError):
    """The index on disk is missing, unreadable or of an unknown schema."""


class ModelMismatchError(IndexError_):
    """The index was built with a different model than the one asked for."""


class IndexBusyError(IndexError_):
    """Another process is writing the index; one writer at a time."""


class InputError(MmragError):
    """One input cannot be used. ``source`` names it; ``reason`` says why."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class FetchError(InputError):
    """A URL was refused by the safety rules or failed to download."""


class StoreError(MmragError):
    """The vector store failed."""


class AnswerError(MmragError):
    """The answering model failed. Never carries an API key.

    ``sources`` are the numbered sources retrieved for the question (``answer.types.Source``,
    typed loosely here because errors sit below the answer layer): retrieval worked, so a
    failed answer still shows the caller where to look.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        sources: Sequence[Any] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.sources: tuple[Any, ...] = tuple(sources)
