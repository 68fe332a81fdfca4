"""Short scheduler slices for query threads (EEVDF custom slices; a no-op elsewhere)."""

from __future__ import annotations

import os
import threading

import pytest

from mmrag import sched

if sched.read_slice() is None:
    pytest.skip("sched_getattr is not available here", allow_module_level=True)


def _in_new_thread(nice: int, env: str | None, monkeypatch: pytest.MonkeyPatch) -> tuple:
    """Start a thread at ``nice``, shorten slices, and read its slice and nice value."""
    if env is not None:
        monkeypatch.setenv("MMRAG_QUERY_SLICE_US", env)
    ready, asked, out = threading.Event(), threading.Event(), {}

    def worker() -> None:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        sched.set_slice(0, 3_000_000)  # threads inherit their creator's: start from a known one
        out["before"] = sched.read_slice()
        ready.set()
        asked.wait(10)
        out["after"] = sched.read_slice()
        out["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    thread = threading.Thread(target=worker)
    thread.start()
    ready.wait(10)
    sched.shorten_slices()
    asked.set()
    thread.join(10)
    return out["before"], out["after"], out["nice"]


def test_a_query_asks_for_short_slices_on_every_thread_keeping_their_nice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before, after, nice = _in_new_thread(5, None, monkeypatch)
    if before != 3_000_000:
        pytest.skip(f"this kernel ({os.uname().release}) ignores custom slices")
    assert after == sched.DEFAULT_SLICE_US * 1000
    assert nice == 5  # a niced server stays niced


def test_the_slice_can_be_set_or_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    before, after, _ = _in_new_thread(1, "0", monkeypatch)
    assert after == before
    before, after, _ = _in_new_thread(1, "500", monkeypatch)
    assert after == (500_000 if before == 3_000_000 else before)  # else: no custom slices here
