"""`mmrag describe`: captions from a vision-language model, through the real SDKs against fake
servers: the wire format (the picture goes, the file name does not), the cache by (content
hash, model), a failed call counted and retried, and search finding a picture by its caption."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image

import mmrag
from conftest import draw_photo
from fake_llm_servers import FakeLLMServer, Reply
from mmrag.cli import main
from mmrag.describe import CACHE_NAME, clean_caption
from mmrag.errors import ConfigError, IndexBusyError
from mmrag.lock import write_lock

pytestmark = pytest.mark.integration

SHAPES = (("red", "square"), ("green", "circle"), ("blue", "square"))


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Three photos with no sidecar captions: only a model can say what they show."""
    root = tmp_path / "photos"
    root.mkdir()
    for colour, shape in SHAPES:
        draw_photo(colour, shape).save(root / f"{colour}_{shape}.png")
    return root


@pytest.fixture
def index_dir(tmp_path: Path, photos: Path, tiny_clip: Path) -> Path:
    with mmrag.open(tmp_path / "idx", model=str(tiny_clip), ocr=False) as index:
        assert index.add(photos).added == 3
    return tmp_path / "idx"


def open_index(index_dir: Path) -> mmrag.Index:
    # No retries: a scripted failure must fail at once, not after the SDK's backoff.
    return mmrag.open(index_dir, create=False, answer_retries=0)


def captions(index: mmrag.Index) -> dict[str, mmrag.Item]:
    """Generated caption items by the source of their picture."""
    found = index.store.find({"role": "caption"})
    return {c.source: c for c in found if "described_by" in c.metadata}


def test_openai_wire_format_sends_the_picture_and_not_its_name(index_dir: Path) -> None:
    with (
        FakeLLMServer("openai", default_text="A shape [1].") as server,
        open_index(index_dir) as index,
    ):
        report = index.describe(f"{server.url}#local-vlm", jobs=1)
        requests = [r.body for r in server.requests]
    assert (report.pictures, report.described, report.failed) == (3, 3, [])
    assert report.model == "openai:local-vlm" and report.input_tokens > 0
    assert len(requests) == 3 and {r["model"] for r in requests} == {"local-vlm"}
    parts = [
        p for m in requests[0]["messages"] if isinstance(m["content"], list) for p in m["content"]
    ]
    images = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert len(images) == 1 and images[0].startswith("data:image/jpeg;base64,")
    sent = Image.open(io.BytesIO(base64.b64decode(images[0].split(",", 1)[1])))
    r, _, b = sent.getpixel((sent.width // 2, sent.height // 2))
    assert b > 150 and r < 100  # blue_square.png first: the picture itself went
    words = json.dumps(requests)
    assert not any(f"{c}_{s}" in words for c, s in SHAPES) and ".png" not in words


def test_caption_is_a_text_item_under_its_picture_recording_the_model(index_dir: Path) -> None:
    reply = 'Caption: "A red square on white [1]."'
    with FakeLLMServer("openai", default_text=reply) as server, open_index(index_dir) as index:
        index.describe(f"{server.url}#vlm", jobs=2)
        stored = captions(index)
        pictures = {p.source: p for p in index.store.find({"kind": "image"})}
    assert set(stored) == set(pictures)
    for source, caption in stored.items():
        assert caption.kind == "text" and caption.role == "caption"
        assert caption.parent == pictures[source].id
        assert caption.text == "A red square on white."
        assert caption.metadata["described_by"] == "openai:vlm"
        assert caption.metadata["described_hash"] == pictures[source].content_hash


def test_a_second_run_makes_no_calls_and_the_cache_outlives_a_model_switch(
    index_dir: Path,
) -> None:
    with FakeLLMServer("openai") as server, open_index(index_dir) as index:
        first = index.describe(f"{server.url}#vlm-a")
        again = index.describe(f"{server.url}#vlm-a")
        assert len(server.requests) == 3
        assert (again.described, again.cached, again.current) == (0, 0, 3)
        other = index.describe(f"{server.url}#vlm-b")  # replaces the captions: new calls
        assert len(server.requests) == 6 and other.described == 3
        back = index.describe(f"{server.url}#vlm-a")  # paid for already: from the cache
        assert len(server.requests) == 6
        assert (back.described, back.cached) == (0, 3)
        assert {c.metadata["described_by"] for c in captions(index).values()} == {"openai:vlm-a"}
        forced = index.describe(f"{server.url}#vlm-a", force=True)
        assert len(server.requests) == 9 and forced.described == 3
    assert first.described == 3 and (index_dir / CACHE_NAME).is_file()


def test_a_failed_call_is_reported_per_picture_and_retried_on_the_next_run(
    index_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeLLMServer("openai", default_text="A coloured shape.") as server:
        server.script(Reply.error(400, "image could not be processed"))
        args = ["describe", "--index", str(index_dir), "--llm", f"{server.url}#vlm", "--jobs", "1"]
        code = main([*args, "--json"])
        out = json.loads(capsys.readouterr().out)
        assert code == 3
        assert (out["described"], out["failed"]) == (2, 1)
        assert out["errors"][0]["path"].endswith("blue_square.png")
        assert "HTTP 400" in out["errors"][0]["reason"]
        assert "image could not be processed" in out["errors"][0]["reason"]
        assert len(server.requests) == 3
        code = main(args)
        printed = capsys.readouterr().out
        assert code == 0 and len(server.requests) == 4  # only the failed picture again
    assert "described 1" in printed and "already current 2" in printed and "failed 0" in printed


def test_search_finds_a_picture_by_its_generated_caption(index_dir: Path) -> None:
    with FakeLLMServer("openai") as server, open_index(index_dir) as index:
        # Pictures go in source order with one job: blue, green, red.
        server.script(
            Reply.ok("A blue tile on a white wall."),
            Reply.ok("A zebra grazing beside a lighthouse at dusk [1]."),
            Reply.ok("A red brick."),
        )
        index.describe(f"{server.url}#vlm", jobs=1)
        for path in ("bm25", "text"):
            hits = index.search("zebra near a lighthouse", k=3, paths=[path])
            assert hits[0].item.kind == "image", path
            assert hits[0].item.source.endswith("green_circle.png"), path
            assert hits[0].evidence[0].role == "caption"
        fused = index.search("zebra near a lighthouse", k=3)
        assert fused[0].item.source.endswith("green_circle.png")


def test_anthropic_wire_format_sends_a_base64_image_block(
    index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key-not-real")
    with FakeLLMServer("anthropic", default_text="A plain shape.") as server:
        with open_index(index_dir) as index:
            report = index.describe(f"anthropic+{server.url}#claude-test", kinds=["image"])
        body = server.requests[0].body
    assert report.described == 3 and report.model == "anthropic:claude-test"
    blocks = [b for m in body["messages"] for b in m["content"] if isinstance(b, dict)]
    image = [b for b in blocks if b["type"] == "image"]
    assert len(image) == 1 and image[0]["source"]["media_type"] == "image/jpeg"
    assert base64.b64decode(image[0]["source"]["data"])[:2] == b"\xff\xd8"


def test_removed_pictures_lose_their_captions(index_dir: Path, photos: Path) -> None:
    with FakeLLMServer("openai") as server, open_index(index_dir) as index:
        index.describe(f"{server.url}#vlm")
        (photos / "red_square.png").unlink()
        assert index.prune() == 1
        report = index.describe(f"{server.url}#vlm")
        assert (report.removed, report.pictures, report.current) == (1, 2, 2)
        assert not any(s.endswith("red_square.png") for s in captions(index))


def test_describe_needs_a_vision_model_and_the_write_lock(index_dir: Path) -> None:
    with open_index(index_dir) as index:
        with pytest.raises(ConfigError, match="vision-language model"):
            index.describe(None)
        with pytest.raises(ConfigError, match="extractive"):
            index.describe("extractive")
        with pytest.raises(ConfigError, match="visual kinds"):
            index.describe("http://127.0.0.1:9/v1#m", kinds=["text"])
        with write_lock(index_dir), pytest.raises(IndexBusyError):
            index.describe("http://127.0.0.1:9/v1#m")


def test_cli_without_a_model_is_an_error(
    index_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["describe", "--index", str(index_dir), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["error"] == "ConfigError"


@pytest.mark.parametrize(
    ("reply", "caption"),
    [
        ("A cat on a mat [1].", "A cat on a mat."),
        ('Caption: "Two dogs [1, 2]"', "Two dogs"),
        ("  Description:  a   bridge\n at night ", "a bridge at night"),
    ],
)
def test_model_replies_become_clean_captions(reply: str, caption: str) -> None:
    assert clean_caption(reply) == caption


def test_an_empty_caption_is_a_failure_not_a_caption(index_dir: Path) -> None:
    with FakeLLMServer("openai", default_text="A shape.") as server, open_index(index_dir) as index:
        server.script(Reply.ok(" [1] "))
        report = index.describe(f"{server.url}#vlm", jobs=1)
        assert [reason for _, reason in report.failed] == ["the model returned an empty caption"]
        assert report.described == 2 and len(captions(index)) == 2


def test_captions_work_the_same_on_the_qdrant_backend(
    tmp_path: Path, photos: Path, tiny_clip: Path
) -> None:
    settings = {"model": str(tiny_clip), "ocr": False, "answer_retries": 0}
    store = f"qdrant+local:{tmp_path / 'qdrant'}"
    with mmrag.open(tmp_path / "q-idx", store=store, **settings) as index:
        assert type(index.store).__name__ == "QdrantStore"
        index.add(photos)
        with FakeLLMServer("openai") as server:
            server.script(Reply.ok("A blue tile."), Reply.ok("A zebra by a lighthouse."))
            assert index.describe(f"{server.url}#vlm", jobs=1).described == 3
            assert index.describe(f"{server.url}#vlm").current == 3
            assert len(server.requests) == 3
        hits = index.search("zebra near a lighthouse", k=2, paths=["text"])
        assert hits[0].item.source.endswith("green_circle.png")
