"""Processes: decode workers never outlive their parent; one writer per index, never stuck."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from reliability_helpers import alive, cli_env, descendants, make_mixed_corpus

import mmrag
from mmrag.errors import IndexBusyError
from mmrag.lock import write_lock

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)"),
]

#: A parent that starts the decode pool, takes one result, then stalls: its workers have
#: filled the window and wait, idle, on the task queue (how they were orphaned before).
_STALLED_PARENT = """
import sys, time
from pathlib import Path
from mmrag.ingest.decode import DecodeTask
from mmrag.ingest.pool import decode_all
paths = sorted(Path(sys.argv[1]).glob("*.png"))
tasks = [DecodeTask(str(p), 32, 32, 10**8, False, "rapidocr") for p in paths]
results = decode_all(tasks, workers=2, window=4)
next(results)
print("decoding", flush=True)
time.sleep(600)
"""


def _wait_for(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_decode_workers_exit_when_their_parent_dies(tmp_path: Path, how: signal.Signals) -> None:
    corpus = make_mixed_corpus(tmp_path / "c", images=30, pdfs=0)
    parent = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_STALLED_PARENT), str(corpus)],
        env=cli_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    children: set[int] = set()
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "decoding"
        children = descendants(parent.pid)
        assert len(children) >= 2  # the workers (and the resource tracker) are running
        parent.send_signal(how)
        parent.wait(timeout=10)
        # Each worker polls its parent every 0.5 s; the tracker follows its last client.
        assert _wait_for(lambda: not alive(children), 10), f"orphans: {alive(children)}"
    finally:
        parent.kill()
        for pid in alive(children):  # a failed run must not leave its orphans behind
            os.kill(pid, signal.SIGKILL)


_HOLDER = """
import sys, time
from pathlib import Path
from mmrag.lock import write_lock
with write_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


def _hold_lock(index: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(index)],
        env=cli_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_writer_is_refused_and_a_killed_one_leaves_no_lock(tmp_path: Path) -> None:
    index = tmp_path / "idx"
    holder = _hold_lock(index)
    try:
        with pytest.raises(IndexBusyError, match=f"process {holder.pid}"), write_lock(index):
            pass
        started = time.monotonic()
        waited = pytest.raises(IndexBusyError, match=r"after waiting 0\.3 s")
        with waited, write_lock(index, wait=0.3):
            pass
        assert time.monotonic() - started >= 0.3
    finally:
        holder.kill()  # SIGKILL: no cleanup code runs in the holder
        holder.wait()
    with write_lock(index, wait=0):  # the kernel dropped the lock with the process
        pass


def test_a_waiting_writer_goes_on_when_the_lock_is_released(tmp_path: Path) -> None:
    index = tmp_path / "idx"
    holder = _hold_lock(index)
    killer = subprocess.Popen(["sh", "-c", f"sleep 0.5; kill -9 {holder.pid}"])
    try:
        with write_lock(index, wait=30):
            assert holder.wait(timeout=5) == -signal.SIGKILL
    finally:
        killer.wait()
        holder.kill()


def test_index_add_and_the_cli_refuse_a_busy_index(
    tmp_path: Path, tiny_clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from conftest import make_corpus
    from mmrag.cli import main

    corpus = make_corpus(tmp_path)
    index_dir = tmp_path / "idx"
    with mmrag.open(index_dir, model=str(tiny_clip), ocr=False) as index:
        assert index.add(corpus).added == 6
        holder = _hold_lock(index_dir)
        try:
            with pytest.raises(IndexBusyError, match="one writer at a time"):
                index.add(corpus)
            capsys.readouterr()
            code = main(["index", str(corpus), "--index", str(index_dir), "--json"])
            out = capsys.readouterr().out
            assert code == 1 and "IndexBusyError" in out and str(holder.pid) in out
            assert index.search("a red square", k=3)  # readers take no lock
        finally:
            holder.kill()
            holder.wait()
        assert index.add(corpus, force=True).updated == 6
