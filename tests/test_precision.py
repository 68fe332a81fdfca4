"""Precision resolution and per-call thread sizing (configuration only; speed is benchmarked)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mmrag.errors import ConfigError
from mmrag.models import precision
from mmrag.models.clip import ClipEncoder
from mmrag.testing import make_tiny_clip


def test_a_query_gets_one_thread_whatever_the_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "available_cores", lambda: 16)
    monkeypatch.setattr(precision.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert precision.call_threads(1) == 1
    assert precision.call_threads(precision.QUERY_BATCH) == 1


def test_a_batch_gets_the_cores_other_processes_leave_free(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(precision, "available_cores", lambda: 8)
    monkeypatch.setattr(precision, "_own_cpu", lambda: 0.0)
    monkeypatch.setattr(precision.os, "getloadavg", lambda: (0.1, 0.0, 0.0))
    assert precision.call_threads(64) == 8
    assert precision.call_threads(64, limit=3) == 3
    monkeypatch.setattr(precision.os, "getloadavg", lambda: (3.0, 0.0, 0.0))
    assert precision.call_threads(64) == 5
    monkeypatch.setattr(precision.os, "getloadavg", lambda: (40.0, 0.0, 0.0))
    assert precision.call_threads(64) == 1


def test_our_own_load_does_not_count_against_us(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "available_cores", lambda: 2)
    monkeypatch.setattr(precision, "_own_cpu", lambda: 2.0)
    monkeypatch.setattr(precision.os, "getloadavg", lambda: (2.0, 0.0, 0.0))
    assert precision.call_threads(64) == 2


def test_torch_threads_restores_the_previous_count() -> None:
    before = torch.get_num_threads()
    with precision.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_int8_is_cpu_only_and_unknown_precisions_are_refused() -> None:
    assert precision.resolve_precision("int8", "cpu") == "int8"
    with pytest.raises(ConfigError, match="CPU only"):
        precision.resolve_precision("int8", "cuda")
    with pytest.raises(ConfigError, match="fp64"):
        precision.resolve_precision("fp64", "cpu")


def test_clip_query_runs_on_one_thread_and_a_batch_on_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(precision, "available_cores", lambda: 2)
    monkeypatch.setattr(precision.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    model_dir = make_tiny_clip(tmp_path / "clip")
    enc = ClipEncoder(str(model_dir), device="cpu", precision="fp32")
    enc.encode_texts(["warm up"])
    seen: list[int] = []
    enc._model.text_model.register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
    enc.encode_texts(["a red bicycle"])
    enc.encode_texts([f"caption {i}" for i in range(16)])
    assert seen == [1, 2]


def test_int8_clip_agrees_with_fp32(tmp_path: Path) -> None:
    model_dir = make_tiny_clip(tmp_path / "clip", seed=1)
    texts = ["a photo of a cat", "an exploded view of a pump", "x"]
    ref = ClipEncoder(str(model_dir), device="cpu", precision="fp32")
    low = ClipEncoder(str(model_dir), device="cpu", precision="int8")
    assert low.precision == "int8"
    ours, base = low.encode_texts(texts), ref.encode_texts(texts)
    assert ours.dtype == base.dtype
    assert (ours * base).sum(axis=1).min() > 0.98
    assert any(type(m).__module__.startswith("torch.ao") for m in low._model.modules())
