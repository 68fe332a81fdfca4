"""The HTTP API on a real server on loopback, and the web page in a real headless Chromium."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import mmrag

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
        assert bad.status_code == 400 and bad.json()["error"] == "ConfigError"
        assert client.get("/api/thumbs/not-a-hash").status_code == 404
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


@pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium is not installed")
def test_the_web_page_searches_in_a_real_browser(served: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = served
    dom = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            f"{url}/?q=a%20yellow%20circle",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert 'class="card"' in dom and "results for" in dom
    first = dom.split('class="card"', 2)[1]
    assert "yellow.png" in first and "/api/thumbs/" in first
