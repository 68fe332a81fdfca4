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
    monkeypatch.setattr(precision, "_others", lambda: 0.1)
    assert precision.call_threads(64) == 8
    assert precision.call_threads(64, limit=3) == 3
    monkeypatch.setattr(precision, "_others", lambda: 3.0)
    assert precision.call_threads(64) == 5
    monkeypatch.setattr(precision, "_others", lambda: 40.0)
    assert precision.call_threads(64) == 1


def _window(
    monkeypatch: pytest.MonkeyPatch, seconds: float, own: float, machine: float | None
) -> float:
    """``_others`` over a window of ``seconds`` in which this process (and its children)
    used ``own`` CPU seconds and the whole machine ``machine`` (None: no /proc/stat)."""
    clock = iter([(0.0, 0.0, 0.0 if machine is not None else None), (seconds, own, machine)])
    monkeypatch.setattr(precision, "_sample", lambda children=True: next(clock))
    monkeypatch.setattr(precision, "_last_sample", [precision._sample()])
    return precision._others()


def test_other_processes_load_is_read_over_the_same_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _window(monkeypatch, 1.0, own=2.0, machine=2.0) == 0.0  # all of it ours
    assert _window(monkeypatch, 2.0, own=1.0, machine=5.0) == 2.0  # 4 s of others' in 2 s
    # Without /proc/stat: the load average less our own use.
    monkeypatch.setattr(precision.os, "getloadavg", lambda: (3.0, 0.0, 0.0))
    assert _window(monkeypatch, 1.0, own=2.0, machine=None) == 1.0


def test_a_stale_window_is_measured_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """A first call's window reaches back to import: what ran then says nothing of now."""
    clock = iter([(0.0, 0.0, 0.0), (60.0, 10.0, 60.0), (60.2, 10.4, 60.4)])
    monkeypatch.setattr(precision, "_sample", lambda children=True: next(clock))
    monkeypatch.setattr(precision, "_last_sample", [precision._sample()])
    monkeypatch.setattr(precision.time, "sleep", lambda seconds: None)
    assert precision._others() == 0.0  # not the 50 s of others' CPU in the old 60 s window


def test_child_processes_cpu_counts_as_our_own() -> None:
    import multiprocessing

    before = precision._cpu_seconds()
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(target=_spin, args=(0.5,))
    child.start()
    child.join(30)
    spent = precision._cpu_seconds() - before
    assert spent >= 0.45  # the child's CPU time, once it has finished (and while it ran)
    assert precision._cpu_seconds(children=False) < precision._cpu_seconds()


def _spin(seconds: float) -> None:
    import time

    start = time.process_time()
    while time.process_time() - start < seconds:
        pass


def test_torch_threads_restores_the_previous_count() -> None:
    before = torch.get_num_threads()
    with precision.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(
    ("var", "cap", "native"),
    [
        ("ONEDNN_MAX_CPU_ISA", None, True),
        ("ONEDNN_MAX_CPU_ISA", "AVX2", False),
        ("ONEDNN_MAX_CPU_ISA", "avx512_core", False),
        ("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX", True),
        ("ONEDNN_MAX_CPU_ISA", "ALL", True),
        ("DNNL_MAX_CPU_ISA", "AVX2", False),  # the cap's older name
    ],
)
def test_a_onednn_isa_cap_below_bf16_makes_auto_fp32(
    monkeypatch: pytest.MonkeyPatch, var: str, cap: str | None, native: bool
) -> None:
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    if cap is not None:
        monkeypatch.setenv(var, cap)
    assert precision.cpu_supports_bf16() is native
    assert precision.resolve_precision("auto", "cpu") == ("bf16" if native else "fp32")


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
