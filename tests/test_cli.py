"""The CLI end to end on a small generated corpus, with a tiny CLIP and the real MiniLM."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import draw_photo
from mmrag.cli import main

pytestmark = pytest.mark.integration


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code, out, err = run(capsys, *args, "--json")
    assert out.strip(), err
    return code, json.loads(out)


@pytest.fixture
def env(tmp_path: Path, tiny_clip: Path) -> list[str]:
    return ["--index", str(tmp_path / "idx"), "--model", str(tiny_clip)]


def test_index_search_similar_and_stats(
    capsys: pytest.CaptureFixture[str], corpus: Path, env: list[str]
) -> None:
    code, report = run_json(capsys, "index", str(corpus), *env)
    assert code == 0
    assert {k: report[k] for k in ("added", "updated", "unchanged", "failed")} == {
        "added": 6,
        "updated": 0,
        "unchanged": 0,
        "failed": 0,
    }
    assert report["errors"] == [] and all(isinstance(report[k], int) for k in ("added", "failed"))

    code, found = run_json(capsys, "search", "a yellow circle", *env, "-k", "3")
    assert code == 0 and len(found["results"]) == 3
    top = found["results"][0]
    assert {"id", "score", "kind", "source"} <= set(top)
    # The caption path ranks the yellow picture first; captions stand for their image.
    assert top["kind"] == "image" and top["source"].endswith("yellow.png")
    assert "text" in top["via"]

    code, similar = run_json(capsys, "similar", str(corpus / "red.png"), *env, "-k", "2")
    assert code == 0
    assert similar["results"][0]["source"] == str(corpus / "red.png")
    assert similar["results"][0]["score"] == pytest.approx(1.0, abs=1e-3)

    code, stats = run_json(capsys, "stats", "--index", env[1])
    assert stats["kinds"] == {"image": 6, "text": 6} and stats["sources"] == 6


def test_filters_and_relevance_floor(
    capsys: pytest.CaptureFixture[str], corpus: Path, env: list[str]
) -> None:
    run_json(capsys, "index", str(corpus), *env)
    _, found = run_json(
        capsys, "search", "a shape", *env, "--where", "price<35", "--where", "kind=image"
    )
    names = {Path(r["source"]).name for r in found["results"]}
    assert names == {"red.png", "yellow.png"}  # prices 0 and 30; the others have none
    _, nothing = run_json(
        capsys, "search", "quantum chromodynamics", *env, "--path", "text", "--min-score", "0.5"
    )
    assert nothing["results"] == []
    code, text, _ = run(
        capsys, "search", "quantum chromodynamics", *env, "--path", "text", "--min-score", "0.5"
    )
    assert code == 0 and "No results" in text


def test_reindex_skips_unchanged_reembeds_modified_and_prunes_deleted(
    capsys: pytest.CaptureFixture[str], corpus: Path, env: list[str]
) -> None:
    run_json(capsys, "index", str(corpus), *env)
    _, again = run_json(capsys, "index", str(corpus), *env)
    assert (again["added"], again["updated"], again["unchanged"]) == (0, 0, 6)

    # Touched but identical bytes: still unchanged (content hash), not re-embedded.
    os.utime(corpus / "red.png", (1, 1))
    _, touched = run_json(capsys, "index", str(corpus), *env)
    assert (touched["updated"], touched["unchanged"]) == (0, 6)

    _, before = run_json(capsys, "similar", str(corpus / "green.jpg"), *env, "-k", "1")
    draw_photo("black", size=(120, 90)).save(corpus / "green.jpg", quality=90)
    (corpus / "green.txt").write_text("a black square, formerly green")
    _, changed = run_json(capsys, "index", str(corpus), *env)
    assert (changed["updated"], changed["unchanged"]) == (1, 5)
    _, after = run_json(capsys, "similar", str(corpus / "green.jpg"), *env, "-k", "1")
    assert after["results"][0]["source"].endswith("green.jpg")
    assert after["results"][0]["id"] == before["results"][0]["id"]  # stable id, new vector
    _, text_hits = run_json(capsys, "search", "formerly green", *env, "--path", "bm25")
    assert text_hits["results"][0]["source"].endswith("green.jpg")

    shutil.rmtree(corpus / "nested")
    _, pruned = run_json(capsys, "index", str(corpus), *env, "--prune")
    assert pruned["pruned"] == 2
    _, stats = run_json(capsys, "stats", "--index", env[1])
    assert stats["sources"] == 4 and stats["kinds"]["image"] == 4


def test_bad_inputs_are_reported_and_the_rest_indexed(
    capsys: pytest.CaptureFixture[str], corpus: Path, env: list[str], tmp_path: Path
) -> None:
    from test_images import _bomb_png

    (corpus / "zero.jpg").write_bytes(b"")
    (corpus / "notes.jpg").write_text("not an image at all")
    full = (corpus / "blue.jpg").read_bytes()
    (corpus / "truncated.jpg").write_bytes(full[: len(full) // 3])
    (corpus / "bomb.png").write_bytes(_bomb_png(40_000, 40_000))
    unreadable = corpus / "locked.jpg"
    unreadable.write_bytes(full)
    unreadable.chmod(0)
    if os.access(unreadable, os.R_OK):  # root reads anything: use a file that fails on read
        unreadable.unlink()
        unreadable.symlink_to("/proc/self/mem")

    code, report = run_json(capsys, "index", str(corpus), *env)
    assert code == 3  # finished, with failures
    assert report["added"] == 6 and report["failed"] == 5
    reasons = {Path(e["path"]).name: e["reason"] for e in report["errors"]}
    assert set(reasons) == {"zero.jpg", "notes.jpg", "truncated.jpg", "bomb.png", "locked.jpg"}
    assert "empty" in reasons["zero.jpg"]
    assert "not a recognised image" in reasons["notes.jpg"]
    assert "decompression bomb" in reasons["bomb.png"]
    assert "cannot" in reasons["truncated.jpg"] and "cannot read" in reasons["locked.jpg"]

    code, text, err = run(capsys, "index", str(corpus), *env)
    assert code == 3 and "unchanged 6" in text and "failed: " in err and "bomb.png" in err


def test_model_mismatch_is_a_clear_error_and_reembed_is_explicit(
    capsys: pytest.CaptureFixture[str], corpus: Path, env: list[str], tmp_path: Path
) -> None:
    from mmrag.testing import make_tiny_clip

    run_json(capsys, "index", str(corpus), *env)
    other = make_tiny_clip(tmp_path / "other-clip", seed=1)
    code, err = run_json(capsys, "search", "red", "--index", env[1], "--model", str(other))
    assert code == 1 and err["error"] == "ModelMismatchError" and "--reembed" in err["message"]
    # Without --model the recorded one is used.
    code, _ = run_json(capsys, "search", "red", "--index", env[1])
    assert code == 0
    code, report = run_json(
        capsys, "index", str(corpus), "--index", env[1], "--model", str(other), "--reembed"
    )
    assert code == 0 and report["unchanged"] == 6
    _, stats = run_json(capsys, "stats", "--index", env[1])
    assert stats["clip_model"] == str(other) and stats["kinds"]["image"] == 6


def test_missing_model_names_what_was_tried(
    capsys: pytest.CaptureFixture[str], corpus: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-model"
    code, err = run_json(
        capsys, "index", str(corpus), "--index", str(tmp_path / "i"), "--model", str(missing)
    )
    assert code == 1 and err["error"] == "ModelLoadError" and str(missing) in err["message"]


def test_text_only_index_searches_captions(
    capsys: pytest.CaptureFixture[str], corpus: Path, tmp_path: Path
) -> None:
    idx = ["--index", str(tmp_path / "t"), "--model", "none"]
    code, report = run_json(capsys, "index", str(corpus), *idx)
    assert code == 0 and report["paths"] == {"clip": False, "text": True}
    _, found = run_json(capsys, "search", "a blue square", *idx, "-k", "1")
    assert found["results"][0]["source"].endswith("blue.jpg")
    assert found["paths"] == ["text", "bm25"]
    code, err = run_json(capsys, "similar", str(corpus / "red.png"), *idx)
    assert code == 1 and "CLIP" in err["message"]


def test_reading_a_missing_index_is_an_error_not_a_new_index(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, err = run_json(capsys, "search", "red", "--index", str(tmp_path / "nope"))
    assert code == 1 and err["error"] == "IndexError_" and "mmrag index" in err["message"]
    assert not (tmp_path / "nope").exists()
