"""The latest `mmrag eval --report` of an index: recorded in it, served by fixed names on a real
loopback server, and linked from the web page (in a real headless Chromium)."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import mmrag
from conftest import browser_dom
from mmrag.cli import main
from mmrag.evaluate.latest import LATEST, latest_report, record_latest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    """A text-only index of the captioned photos, served on loopback; its query file."""
    import uvicorn

    from conftest import make_corpus
    from mmrag.server import create_app

    root = tmp_path_factory.mktemp("report-link")
    corpus = make_corpus(root)
    index = mmrag.open(root / "idx", model="none", ocr=False)
    index.add(corpus)
    queries = root / "q.jsonl"
    rows = [
        {"query": f"a {c} shape", "relevant": [f"{c}.{ext}"]}
        for c, ext in (("red", "png"), ("green", "jpg"), ("blue", "jpg"))
    ]
    queries.write_text("".join(json.dumps(r) + "\n" for r in rows))
    server = uvicorn.Server(
        uvicorn.Config(create_app(index), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", root / "idx", queries
    server.should_exit = True
    thread.join(timeout=10)
    index.close()


def test_report_alone_goes_into_the_index_and_the_server_serves_it_by_name(
    served: tuple[str, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, index_dir, queries = served
    with httpx.Client(base_url=url) as client:
        missing = client.get("/api/report")
        assert missing.status_code == 404 and missing.json()["error"] == "NotFound"
        assert client.get("/api/report/report.html").status_code == 404
        capsys.readouterr()
        assert main(["eval", str(queries), "--index", str(index_dir), "--report", "--json"]) == 0
        written = Path(json.loads(capsys.readouterr().out)["report"])
        assert written.parent.parent == index_dir / "reports"
        assert latest_report(index_dir).directory == written.parent.resolve()

        info = client.get("/api/report").json()
        assert info["url"] == "/api/report/report.html" and info["title"].startswith("Retrieval on")
        assert info["files"] == [
            "report.html",
            "report.md",
            "metrics.png",
            "worst.png",
            "per_query.jsonl",
        ]
        assert "dir" not in info  # the server's paths stay on the server
        page = client.get(info["url"])
        assert page.headers["content-type"].startswith("text/html")
        assert "<td>text</td>" in page.text and 'src="metrics.png"' in page.text
        chart = client.get("/api/report/metrics.png")
        assert chart.headers["content-type"] == "image/png" and chart.content[:4] == b"\x89PNG"
        # Only the fixed names: never a path, never another file of the report folder.
        for name in ("latest.json", "..%2Flatest.json", "..%2F..%2Fmeta.json", "REPORT.HTML"):
            assert client.get(f"/api/report/{name}").status_code in (404, 422), name


def test_a_report_written_elsewhere_is_linked_and_a_vanished_one_is_not(
    served: tuple[str, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, index_dir, queries = served
    elsewhere = tmp_path / "my-report"
    assert main(["eval", str(queries), "--index", str(index_dir), "--report", str(elsewhere)]) == 0
    capsys.readouterr()
    assert latest_report(index_dir).directory == elsewhere.resolve()
    with httpx.Client(base_url=url) as client:
        assert client.get("/api/report").status_code == 200
        shutil.rmtree(elsewhere)
        assert client.get("/api/report").status_code == 404
        (index_dir / LATEST).write_text("{not json")
        assert client.get("/api/report").status_code == 404
    record_latest(index_dir, index_dir / "reports" / "missing", "gone")
    assert latest_report(index_dir) is None
    a_file = tmp_path / "report.txt"
    a_file.write_text("")
    assert main(["eval", str(queries), "--index", str(index_dir), "--report", str(a_file)]) == 2


@pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium is not installed")
def test_the_web_page_links_the_latest_report(
    served: tuple[str, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, index_dir, queries = served

    def dom() -> str:
        return browser_dom(f"{url}/", tmp_path / "profile")

    (index_dir / LATEST).unlink(missing_ok=True)
    link = dom().split('id="report"', 1)[1].split(">", 1)[0]
    assert "hidden" in link
    assert main(["eval", str(queries), "--index", str(index_dir), "--report"]) == 0
    capsys.readouterr()
    link = dom().split('id="report"', 1)[1].split(">", 1)[0]
    assert "hidden" not in link and 'href="/api/report/report.html"' in link
