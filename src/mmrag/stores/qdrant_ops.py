"""What the Qdrant store needs beyond single calls: payload indexes and retried writes.

* :data:`PAYLOAD_INDEXES`: one payload index per filterable field of fixed type (the item
  fields and the typed metadata of :data:`~mmrag.stores.filters.KNOWN_TYPES`), so a Qdrant
  server answers filtered searches from its indexes rather than by reading payloads.
  Free-form metadata keys are still filtered, just without an index.
* :func:`with_retries`: a write that failed on a transient error (a timeout, a dropped
  connection, 429/502/503/504, a gRPC UNAVAILABLE) is tried again after an exponential,
  jittered backoff. Upserts are keyed by deterministic point ids, so a retried batch that
  had landed after all is written twice to the same points, never duplicated.

Example::

    with_retries(lambda: client.upsert(coll, points, wait=True), "upsert", RetryPolicy())
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from .filters import ITEM_FIELDS, KNOWN_TYPES

__all__ = ["PAYLOAD_INDEXES", "RetryPolicy", "is_transient", "with_retries"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_SCHEMA_OF_TYPE = {"str": "keyword", "list": "keyword", "int": "integer", "float": "float"}
#: Payload path -> Qdrant payload schema type. ``text`` is left out: a keyword index over
#: whole chunks costs as much memory as the text and serves no query mmrag makes (it is
#: still filterable, unindexed). Lists (``tags``) are indexed per element.
PAYLOAD_INDEXES: dict[str, str] = {
    (key if key in ITEM_FIELDS else f"metadata.{key}"): _SCHEMA_OF_TYPE[kind]
    for key, kind in sorted(KNOWN_TYPES.items())
    if key != "text"
}

#: HTTP statuses worth another try: timeouts, rate limits and a restarting or overloaded node.
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_TRANSIENT_GRPC = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED"})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried."""

    #: Tries in all (1 = no retry).
    attempts: int = 5
    #: The first pause in seconds; each later one doubles, up to ``max_delay``.
    base_delay: float = 0.5
    max_delay: float = 20.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before try ``attempt + 1`` (a server's Retry-After wins, capped)."""
        if retry_after is not None:
            return min(float(retry_after), self.max_delay)
        backoff = min(self.base_delay * 2 ** (attempt - 1), self.max_delay)
        # Full jitter: many workers that failed together must not retry together.
        return backoff * (0.5 + random.random() / 2)


def is_transient(exc: BaseException) -> bool:
    """Whether a failed Qdrant call may succeed if tried again."""
    from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    if isinstance(exc, ResourceExhaustedResponse):
        return True
    if isinstance(exc, UnexpectedResponse):
        return exc.status_code in _TRANSIENT_STATUS
    if isinstance(exc, ResponseHandlingException):
        # The request never got an answer (connection refused or reset, timeout); a reply
        # that did not parse is not transient.
        return _is_network_error(exc.source)
    code = getattr(exc, "code", None)  # grpc.RpcError, without importing grpc
    if callable(code):
        try:
            return getattr(code(), "name", "") in _TRANSIENT_GRPC
        except Exception:
            return False
    return _is_network_error(exc)


def _is_network_error(exc: BaseException) -> bool:
    import httpx

    return isinstance(exc, (httpx.TransportError, TimeoutError, ConnectionError))


def with_retries(
    call: Callable[[], T],
    what: str,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``call()``, tried again on transient errors; the last error (or any other) is raised."""
    for attempt in range(1, policy.attempts + 1):
        try:
            return call()
        except Exception as exc:
            if attempt >= policy.attempts or not is_transient(exc):
                raise
            pause = policy.delay(attempt, getattr(exc, "retry_after_s", None))
            log.warning(
                "Qdrant %s failed (%s: %s); try %d of %d in %.1f s",
                what,
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
                attempt + 1,
                policy.attempts,
                pause,
            )
            sleep(pause)
    raise AssertionError("unreachable")  # the loop returns or raises
