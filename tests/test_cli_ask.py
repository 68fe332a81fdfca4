"""`mmrag ask` end to end: a real index, the real SDKs against fake servers, and offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fake_llm_servers import FakeLLMServer, Reply
from mmrag.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture
def indexed(tmp_path: Path, corpus: Path, tiny_clip: Path, capsys: pytest.CaptureFixture[str]):
    args = ["--index", str(tmp_path / "idx"), "--model", str(tiny_clip)]
    assert main(["index", str(corpus), *args, "--json"]) == 0
    capsys.readouterr()
    return args


def ask(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    code = main(["ask", *args, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    return json.loads(out)


def indexed_ids(capsys: pytest.CaptureFixture[str], args: list[str]) -> set[str]:
    main(["search", "a shape", *args, "-k", "50", "--json"])
    return {r["id"] for r in json.loads(capsys.readouterr().out)["results"]}


def test_ask_with_an_openai_compatible_server(
    capsys: pytest.CaptureFixture[str], indexed: list[str]
) -> None:
    with FakeLLMServer("openai", default_text="It is the blue square [1], not [2].") as server:
        answer = ask(
            capsys, "which shape is blue?", *indexed, "--llm", f"{server.url}#local-vlm", "-k", "2"
        )
        request = server.requests[0].body
    assert request["model"] == "local-vlm"
    parts = [
        p
        for m in request["messages"]
        for p in (m["content"] if isinstance(m["content"], list) else [])
    ]
    images = [p for p in parts if p.get("type") == "image_url"]
    assert images and all(
        p["image_url"]["url"].startswith("data:image/jpeg;base64,") for p in images
    )
    assert [c["n"] for c in answer["citations"]] == [1, 2]
    assert {c["id"] for c in answer["citations"]} <= indexed_ids(capsys, indexed)
    assert answer["citations"][0]["source"].endswith((".jpg", ".png"))


def test_ask_with_an_anthropic_server(
    capsys: pytest.CaptureFixture[str], indexed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key-not-real")
    with FakeLLMServer("anthropic", default_text="The red one [1].") as server:
        server.script(Reply.ok("The red one [1].", stream=False))
        answer = ask(
            capsys,
            "which shape is red?",
            *indexed,
            "--llm",
            f"anthropic+{server.url}#claude-test",
            "-k",
            "3",
        )
        request = server.requests[0].body
    blocks = [b for m in request["messages"] for b in m["content"] if isinstance(b, dict)]
    assert any(b.get("type") == "image" and b["source"]["type"] == "base64" for b in blocks)
    assert answer["citations"][0]["n"] == 1
    assert answer["citations"][0]["id"] in indexed_ids(capsys, indexed)


def test_ask_offline_streams_an_extractive_answer_with_citations(
    capsys: pytest.CaptureFixture[str], indexed: list[str]
) -> None:
    answer = ask(capsys, "is there a yellow circle?", *indexed)
    assert "[1]" in answer["text"] and answer["citations"]
    assert answer["citations"][0]["source"].endswith("yellow.png")
    code = main(["ask", "is there a yellow circle?", *indexed])
    out = capsys.readouterr().out
    assert code == 0 and "Sources:" in out and "yellow.png" in out
