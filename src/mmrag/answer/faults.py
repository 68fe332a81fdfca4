"""Faults of a streamed answer: a transport error mid-stream becomes a clear AnswerError.

The SDKs raise their own errors for a failed request, but a connection lost while the
stream is being read surfaces as the HTTP library's error (h11/httpx/httpcore), or as a
"connection error" that says nothing of the text already shown.
"""

from __future__ import annotations

from ..errors import AnswerError

__all__ = ["is_transport_error", "stream_cut"]

#: Packages whose exceptions mean the connection failed (the SDKs vendor httpx as httpx2).
_TRANSPORT_PACKAGES = frozenset({"httpx", "httpx2", "httpcore", "httpcore2", "h11"})


def is_transport_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from the HTTP stack (not from the caller's stream callback)."""
    return isinstance(exc, Exception) and (
        type(exc).__module__.split(".")[0] in _TRANSPORT_PACKAGES
    )


def stream_cut(provider: str, where: str, exc: BaseException, received: str) -> AnswerError:
    """The error for a stream that stopped after ``received`` text: retryable, never quoting."""
    return AnswerError(
        f"{provider} at {where}: the answer stream was cut after {len(received)} characters "
        f"({type(exc).__name__}); the text so far is incomplete: ask again",
        retryable=True,
    )
