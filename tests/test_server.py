"""The HTTP API on a real server on loopback, and the web page in a real headless Chromium."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import mmrag
from conftest import browser_dom

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny_clip: Path) -> Iterator[tuple[str, Path]]:
    import uvicorn

    from conftest import make_corpus
    from mmrag.server import create_app

    root = tmp_path_factory.mktemp("served")
    corpus = make_corpus(root)
    index = mmrag.open(root / "idx", model=str(tiny_clip), ocr=False)
    index.add(corpus)
    server = uvicorn.Server(
        uvicorn.Config(create_app(index), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", corpus
    server.should_exit = True
    thread.join(timeout=10)
    index.close()


def test_search_filters_and_thumbnails(served: tuple[str, Path]) -> None:
    url, _ = served
    with httpx.Client(base_url=url) as client:
        found = client.get("/api/search", params={"q": "a yellow circle", "k": 3}).json()
        top = found["results"][0]
        assert top["kind"] == "image" and top["source"].endswith("yellow.png")
        thumb = client.get(f"/api/thumbs/{top['thumb']}")
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        cheap = client.get("/api/search", params=[("q", "shape"), ("where", "price<5")]).json()
        assert {Path(r["source"]).name for r in cheap["results"]} == {"red.png"}
        bad = client.get("/api/search", params={"q": "x", "where": "price<cheap"})
        # The filter syntax is in the schema: a malformed filter is refused before parsing.
        assert bad.status_code == 422 and "where" in bad.json()["message"]
        # Thumbnails by content hash only: anything else (a path, say) never reaches the disk.
        assert client.get("/api/thumbs/not-a-hash").status_code == 422
        assert client.get("/api/thumbs/" + "0" * 64).status_code == 404
        assert client.get("/api/stats").json()["kinds"] == {"image": 6, "text": 6}
        assert "/api/search" in client.get("/openapi.json").json()["paths"]


def test_similar_by_upload_and_by_item(served: tuple[str, Path]) -> None:
    url, corpus = served
    with httpx.Client(base_url=url) as client:
        upload = client.post(
            "/api/similar", params={"k": 2}, content=(corpus / "blue.jpg").read_bytes()
        ).json()
        top = upload["results"][0]
        assert top["source"].endswith("blue.jpg") and top["score"] == pytest.approx(1, abs=1e-3)
        by_item = client.get(f"/api/items/{top['id']}/similar", params={"k": 1}).json()
        assert by_item["results"][0]["id"] == top["id"]
        junk = client.post("/api/similar", content=b"not an image")
        assert junk.status_code == 400 and "not a recognised image" in junk.json()["message"]


def test_ask_offline_cites_indexed_items(served: tuple[str, Path]) -> None:
    url, _ = served
    with httpx.Client(base_url=url, timeout=60) as client:
        answer = client.post("/api/ask", json={"question": "which shape is green?", "k": 2}).json()
    assert answer["model"] == "extractive"
    assert answer["citations"][0]["source"].endswith("green.jpg")


def test_every_error_is_json_of_one_shape(served: tuple[str, Path]) -> None:
    url, _ = served
    with httpx.Client(base_url=url) as client:
        answers = {
            "bad filter": client.get("/api/search", params={"q": "x", "where": "price<cheap"}),
            "not an image": client.post("/api/similar", content=b"GIF89a not really"),
            "no such item": client.get(f"/api/items/{'a' * 24}/similar"),
            "missing q": client.get("/api/search"),
            "typo in a parameter": client.get("/api/search", params={"q": "x", "wehre": "a=1"}),
            "wrong upload type": client.post(
                "/api/similar", content=b"hello", headers={"content-type": "text/plain"}
            ),
            "empty upload": client.post("/api/similar", content=b""),
            "body against its schema": client.post("/api/ask", json={"question": "x", "k": "5"}),
            "unknown field": client.post("/api/ask", json={"question": "x", "evil": 1}),
            "a model the server does not offer": client.post(
                "/api/ask", json={"question": "x", "model": "http://169.254.169.254/v1#m"}
            ),
            "unknown route": client.get("/api/nothing"),
        }
    statuses = {name: response.status_code for name, response in answers.items()}
    assert statuses == {
        "bad filter": 422,
        "not an image": 400,
        "no such item": 404,
        "missing q": 422,
        "typo in a parameter": 422,
        "wrong upload type": 415,
        "empty upload": 400,
        "body against its schema": 422,
        "unknown field": 422,
        "a model the server does not offer": 422,
        "unknown route": 404,
    }
    for response in answers.values():
        body = response.json()
        assert set(body) == {"error", "message"} and body["message"], body


def test_upload_over_the_limit_is_refused_unread(
    served: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import mmrag.server

    url, _ = served
    monkeypatch.setattr(mmrag.server, "MAX_UPLOAD_BYTES", 1000)
    with httpx.Client(base_url=url) as client:
        declared = client.post("/api/similar", content=b"\xff" * 5000)
        streamed = client.post("/api/similar", content=iter([b"\xff" * 600] * 5))
    assert declared.status_code == 413 and streamed.status_code == 413
    assert streamed.json()["error"] == "PayloadTooLarge"


def test_api_key_guards_every_route_but_health(tmp_path: Path, tiny_clip: Path) -> None:
    from fastapi.testclient import TestClient

    from conftest import make_corpus
    from mmrag.server import create_app

    index = mmrag.open(tmp_path / "idx", model=str(tiny_clip), ocr=False)
    index.add(make_corpus(tmp_path))
    with index, TestClient(create_app(index, api_key="k3y")) as client:
        routes = [("GET", "/api/stats"), ("GET", "/api/search?q=red")]
        routes += [("POST", "/api/similar"), ("GET", f"/api/thumbs/{'0' * 64}")]
        for method, route in routes:
            refused = client.request(method, route, headers={"X-API-Key": "wrong"})
            assert refused.status_code == 401 and refused.json()["error"] == "Unauthorized"
            assert client.request(method, route).status_code == 401
        assert client.get("/api/health").json() == {"status": "ok"}
        allowed = client.get("/api/search?q=red", headers={"X-API-Key": "k3y"})
        assert allowed.status_code == 200 and allowed.json()["results"]
        assert "APIKeyHeader" in client.get("/openapi.json").text


@pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium is not installed")
def test_the_web_page_searches_in_a_real_browser(served: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = served
    dom = browser_dom(f"{url}/?q=a%20yellow%20circle", tmp_path / "profile")
    assert 'class="card"' in dom and "results for" in dom
    first = dom.split('class="card"', 2)[1]
    assert "yellow.png" in first and "/api/thumbs/" in first
