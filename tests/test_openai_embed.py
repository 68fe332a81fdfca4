"""The OpenAI embeddings backend against a local fake server speaking the real wire format."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

from mmrag.errors import ConfigError, ModelLoadError
from mmrag.models.base import TextEncoder

pytest.importorskip("openai")
from mmrag.models.openai_embed import OpenAITextEncoder

KEY = "sk-test-secret-123"


def fake_vector(text: str, dim: int) -> np.ndarray:
    """Deterministic, un-normalised vectors so the client's normalisation is visible."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
    return np.random.default_rng(seed).normal(size=dim).astype(np.float32) * 3


class FakeOpenAI(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]]
    fail_with: int | None = None
    default_dim = 1536

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
        if self.fail_with:
            self._send(
                self.fail_with,
                {
                    "error": {
                        "message": "Incorrect API key provided",
                        "type": "invalid_request_error",
                    }
                },
            )
            return
        dim = body.get("dimensions") or self.default_dim
        data = []
        for i, text in enumerate(body["input"]):
            vec = fake_vector(text, dim)
            if body.get("encoding_format") == "base64":
                emb: Any = base64.b64encode(vec.astype("<f4").tobytes()).decode()
            else:
                emb = vec.tolist()
            data.append({"object": "embedding", "index": i, "embedding": emb})
        data.reverse()  # the API does not promise order; the client must sort by index
        self._send(
            200,
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": 3, "total_tokens": 3},
            },
        )

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture
def server() -> Iterator[type[FakeOpenAI]]:
    handler = type("Handler", (FakeOpenAI,), {"requests": [], "fail_with": None})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    handler.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"  # type: ignore[attr-defined]
    yield handler
    httpd.shutdown()
    httpd.server_close()


def _encoder(server: type[FakeOpenAI], **kwargs: Any) -> OpenAITextEncoder:
    return OpenAITextEncoder(
        api_key=SecretStr(KEY), base_url=server.base_url, max_retries=0, **kwargs
    )  # type: ignore[attr-defined]


def test_it_is_a_text_encoder_with_the_models_dimension(server: type[FakeOpenAI]) -> None:
    enc = _encoder(server)
    assert isinstance(enc, TextEncoder)
    assert enc.dim == 1536 and enc.model_id == "openai:text-embedding-3-small"
    assert server.requests == []  # nothing sent to learn the size of a known model


def test_sdk_default_base64_wire_format_is_decoded_and_normalised(server: type[FakeOpenAI]) -> None:
    texts = ["gear pump", "relief valve", "hydraulic line"]
    vectors = _encoder(server).encode(texts)
    assert vectors.shape == (3, 1536) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    expected = fake_vector("relief valve", 1536)
    np.testing.assert_allclose(vectors[1], expected / np.linalg.norm(expected), rtol=1e-5)
    request = server.requests[0]
    assert request["path"] == "/v1/embeddings"
    assert request["encoding_format"] == "base64"  # what the openai SDK sends by default
    assert request["model"] == "text-embedding-3-small"
    assert request["auth"] == f"Bearer {KEY}"


def test_float_wire_format_gives_the_same_vectors(server: type[FakeOpenAI]) -> None:
    as_floats = _encoder(server, encoding_format="float").encode(["gear pump"])
    as_base64 = _encoder(server).encode(["gear pump"])
    assert server.requests[0]["encoding_format"] == "float"
    np.testing.assert_allclose(as_floats, as_base64, rtol=1e-6)


def test_texts_are_sent_in_batches_and_returned_in_order(server: type[FakeOpenAI]) -> None:
    texts = [f"chunk {i}" for i in range(5)]
    vectors = _encoder(server, batch_size=2).encode(texts)
    assert [len(r["input"]) for r in server.requests] == [2, 2, 1]
    for i, text in enumerate(texts):
        expected = fake_vector(text, 1536)
        np.testing.assert_allclose(vectors[i], expected / np.linalg.norm(expected), rtol=1e-5)


def test_dimensions_are_requested_and_reported(server: type[FakeOpenAI]) -> None:
    enc = _encoder(server, dimensions=256)
    assert enc.dim == 256 and enc.model_id.endswith("@256")
    assert enc.encode(["x"], query=True).shape == (1, 256)
    assert server.requests[0]["dimensions"] == 256


def test_unknown_model_learns_its_dimension_from_one_probe(server: type[FakeOpenAI]) -> None:
    server.default_dim = 768
    enc = _encoder(server, model="nomic-embed-text")
    assert enc.dim == 768
    assert len(server.requests) == 1


def test_empty_input_and_empty_strings(server: type[FakeOpenAI]) -> None:
    enc = _encoder(server)
    assert enc.encode([]).shape == (0, 1536)
    enc.encode(["", "text"])
    assert all(t for t in server.requests[0]["input"])  # the API rejects empty strings


def test_api_errors_are_model_load_errors_without_the_key(server: type[FakeOpenAI]) -> None:
    server.fail_with = 401
    with pytest.raises(ModelLoadError, match="401") as err:
        _encoder(server).encode(["x"])
    assert KEY not in str(err.value)
    assert KEY not in repr(_encoder(server))


def test_unreachable_server_is_a_model_load_error() -> None:
    enc = OpenAITextEncoder(api_key="k", base_url="http://127.0.0.1:9/v1", max_retries=0, timeout=2)
    with pytest.raises(ModelLoadError, match="reached"):
        enc.encode(["x"])


def test_the_real_api_needs_a_key() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAITextEncoder(api_key=None)


def test_the_text_model_setting_selects_the_openai_backend(
    server: type[FakeOpenAI], tmp_path: Path
) -> None:
    import mmrag

    opts = {"model": "none", "openai_api_key": KEY, "openai_base_url": server.base_url}  # type: ignore[attr-defined]
    with mmrag.open(
        tmp_path / "idx", text_model="openai:text-embedding-3-small@64", **opts
    ) as index:
        assert isinstance(index.text, OpenAITextEncoder)
        assert index.text.dim == 64 and index.stats()["spaces"] == {"text": 64}
    recorded = json.loads((tmp_path / "idx" / "mmrag.json").read_text())
    assert recorded["text_model"] == "openai:text-embedding-3-small@64"
    assert server.requests == []  # a known model's size needs no request
