"""A page found by a passage shows where the passage is: evidence boxes in the JSON, and marks
over the page's picture in the web page (real server on loopback, real headless Chromium)."""

from __future__ import annotations

import re
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
pymupdf = pytest.importorskip("pymupdf")

PASSAGE = "The impeller must be replaced whenever the seal shows hairline cracks."


def _manual(path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_textbox(pymupdf.Rect(72, 72, 523, 300), "Contents. Safety. Installation.")
    page = doc.new_page(width=595, height=842)
    page.insert_textbox(pymupdf.Rect(72, 600, 523, 700), PASSAGE, fontsize=11)  # low on the page
    doc.save(path)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import uvicorn

    from mmrag.server import create_app

    root = tmp_path_factory.mktemp("highlight")
    _manual(root / "manual.pdf")
    index = mmrag.open(root / "idx", model="none", ocr=False)
    index.add(root / "manual.pdf")
    server = uvicorn.Server(
        uvicorn.Config(create_app(index), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)
    index.close()


def test_a_page_result_carries_the_box_of_the_passage_that_found_it(served: str) -> None:
    top = httpx.get(f"{served}/api/search", params={"q": PASSAGE, "k": 1}).json()["results"][0]
    assert (top["kind"], top["page"]) == ("page", 2)
    x0, y0, x1, y1 = top["bbox"]
    boxes = [e["bbox"] for e in top["evidence"] if e["text"] and "impeller" in e["text"]]
    assert boxes, top["evidence"]
    a, b, c, d = boxes[0]
    assert x0 <= a < c <= x1 and y0 <= b < d <= y1
    assert b > (y0 + y1) / 2  # the passage sits low on the page, and its box says so


@pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium is not installed")
def test_the_web_page_marks_the_passage_on_the_page_picture(served: str, tmp_path: Path) -> None:
    dom = browser_dom(f"{served}/?q=impeller%20seal%20hairline%20cracks", tmp_path / "profile")
    first = dom.split('class="card"', 2)[1]
    assert "manual.pdf p.2" in first
    mark = re.search(r'class="mark"[^>]*style="([^"]+)"', first)
    assert mark, first[:2000]
    top = float(re.search(r"top: ([\d.]+)%", mark.group(1)).group(1))  # type: ignore[union-attr]
    assert 50 < top < 100
