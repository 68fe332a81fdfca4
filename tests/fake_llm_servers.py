"""Fake OpenAI and Anthropic servers on loopback that speak the real wire formats.

Each server records every request (path, headers, JSON body) and plays scripted replies in order;
when the script runs out it answers with a default success. Replies can be JSON, an SSE stream,
an error with headers (401, 429 + retry-after, 500) or a delayed reply to trigger client timeouts::

    with FakeLLMServer("openai") as server:
        server.script(Reply.error(429, "slow", headers={"retry-after": "0.05"}), Reply.ok("Hi [1]"))
        ...  # point the SDK at server.url
        assert server.requests[0].body["model"] == "gpt-4o"
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Api = Literal["openai", "anthropic"]


@dataclass
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float = 0.0  # time.monotonic() on arrival, to measure waits between retries


@dataclass
class Reply:
    """A scripted reply: a JSON body or SSE events (already formatted), after ``delay`` seconds."""

    status: int = 200
    body: Any = None
    events: list[str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    # Text and usage for replies the server renders in its own API's format.
    text: str | None = None
    stream: bool = False
    error_message: str | None = None

    @classmethod
    def ok(cls, text: str, *, stream: bool = False) -> Reply:
        """A success with this answer text, as JSON or (``stream``) as SSE."""
        return cls(text=text, stream=stream)

    @classmethod
    def error(cls, status: int, message: str, *, headers: dict[str, str] | None = None) -> Reply:
        """An API error with the API's error body shape."""
        return cls(status=status, error_message=message, headers=headers or {})

    @classmethod
    def slow(cls, seconds: float, text: str = "late") -> Reply:
        """A success that arrives only after ``seconds``."""
        return cls(text=text, delay=seconds)


USAGE_IN, USAGE_OUT = 1234, 56


def _sse(data: Any, event: str | None = None) -> str:
    """One server-sent event."""
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"{head}data: {payload}\n\n"


# OpenAI Chat Completions ---------------------------------------------------------------------


def openai_completion(text: str, model: str) -> dict[str, Any]:
    """A ``chat.completion`` object."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": USAGE_IN,
            "completion_tokens": USAGE_OUT,
            "total_tokens": USAGE_IN + USAGE_OUT,
        },
    }


def openai_stream(pieces: list[str], model: str) -> list[str]:
    """``chat.completion.chunk`` events, a usage-only chunk (include_usage) and ``[DONE]``."""

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            "usage": None,
        }

    events = [_sse(chunk({"role": "assistant", "content": ""}, None))]
    events += [_sse(chunk({"content": p}, None)) for p in pieces]
    events.append(_sse(chunk({}, "stop")))
    usage = {
        "prompt_tokens": USAGE_IN,
        "completion_tokens": USAGE_OUT,
        "total_tokens": USAGE_IN + USAGE_OUT,
    }
    final = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": [],
        "usage": usage,
    }
    events += [_sse(final), _sse("[DONE]")]
    return events


def openai_error(status: int, message: str) -> dict[str, Any]:
    """OpenAI's error body."""
    kinds = {401: "invalid_request_error", 429: "rate_limit_exceeded", 500: "server_error"}
    return {
        "error": {
            "message": message,
            "type": kinds.get(status, "invalid_request_error"),
            "param": None,
            "code": None,
        }
    }


# Anthropic Messages ---------------------------------------------------------------------------


def anthropic_message(text: str, model: str) -> dict[str, Any]:
    """A ``message`` object."""
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": USAGE_IN, "output_tokens": USAGE_OUT},
    }


def anthropic_stream(pieces: list[str], model: str) -> list[str]:
    """The Messages streaming events, in order, with a ping as the real API sends."""
    start = anthropic_message("", model)
    start["content"] = []
    start["stop_reason"] = None
    start["usage"] = {"input_tokens": USAGE_IN, "output_tokens": 1}
    events = [
        _sse({"type": "message_start", "message": start}, "message_start"),
        _sse(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        ),
        _sse({"type": "ping"}, "ping"),
    ]
    for piece in pieces:
        delta = {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": piece},
        }
        events.append(_sse(delta, "content_block_delta"))
    events += [
        _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        _sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": USAGE_OUT},
            },
            "message_delta",
        ),
        _sse({"type": "message_stop"}, "message_stop"),
    ]
    return events


def anthropic_error(status: int, message: str) -> dict[str, Any]:
    """Anthropic's error body."""
    kinds = {
        401: "authentication_error",
        429: "rate_limit_error",
        500: "api_error",
        529: "overloaded_error",
    }
    return {
        "type": "error",
        "error": {"type": kinds.get(status, "invalid_request_error"), "message": message},
    }


def _split(text: str) -> list[str]:
    """Stream pieces: the text in chunks of about 8 characters."""
    return [text[i : i + 8] for i in range(0, len(text), 8)] or [""]


class FakeLLMServer:
    """A threaded HTTP server on 127.0.0.1 speaking one API; records requests, plays a script."""

    def __init__(self, api: Api, default_text: str = "The shoe is red [1].") -> None:
        self.api = api
        self.default_text = default_text
        self.requests: list[Recorded] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        # A short poll interval makes shutdown quick at the end of each test.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """The base URL to give the SDK (OpenAI's includes /v1, as its SDK expects)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1" if self.api == "openai" else f"http://{host}:{port}"

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next requests."""
        self._script.extend(replies)

    def __enter__(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _next(self) -> Reply:
        with self._lock:
            return self._script.popleft() if self._script else Reply.ok(self.default_text)

    def _render(self, reply: Reply, body: Any) -> tuple[int, dict[str, str], bytes | list[str]]:
        """Status, headers and payload (bytes, or SSE events) for a reply in this API's format."""
        model = body.get("model", "model") if isinstance(body, dict) else "model"
        headers = {"content-type": "application/json", **reply.headers}
        if self.api == "anthropic":
            headers.setdefault("request-id", "req_fake")
        wants_stream = reply.stream or (isinstance(body, dict) and bool(body.get("stream")))
        plain = reply.status == 200 and reply.error_message is None and reply.body is None
        if reply.events is not None or (wants_stream and plain):
            events = reply.events
            if events is None:
                text = reply.text if reply.text is not None else self.default_text
                build = openai_stream if self.api == "openai" else anthropic_stream
                events = build(_split(text), model)
            headers["content-type"] = "text/event-stream"
            return reply.status, headers, events
        if reply.error_message is not None:
            make = openai_error if self.api == "openai" else anthropic_error
            payload: Any = make(reply.status, reply.error_message)
        elif reply.body is not None:
            payload = reply.body
        else:
            text = reply.text if reply.text is not None else self.default_text
            payload = (openai_completion if self.api == "openai" else anthropic_message)(
                text, model
            )
        return reply.status, headers, json.dumps(payload).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    body: Any = json.loads(raw or b"null")
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                server.requests.append(
                    Recorded(
                        "POST",
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                        time.monotonic(),
                    )
                )
                reply = server._next()
                if reply.delay:
                    time.sleep(reply.delay)
                status, headers, payload = server._render(reply, body)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    if isinstance(payload, bytes):
                        self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    if isinstance(payload, bytes):
                        self.wfile.write(payload)
                    else:
                        for event in payload:
                            self.wfile.write(event.encode())
                            self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test); nothing to do

        return Handler
