"""One writer per index: an advisory file lock that dies with the process holding it.

::

    with write_lock(index_dir, wait=30):
        ...  # add, delete, prune

The lock is ``flock`` on ``<index>/write.lock``. The kernel drops it when the holder's
process ends however it ends (SIGKILL and OOM kills included), so a crashed writer never
leaves the index locked and there is no stale-lock cleanup to get wrong. The file holds
the writer's pid and start time only to name it in the error a second writer gets.
Readers take no lock: the store and the manifest keep searches consistent on their own.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import IndexBusyError

__all__ = ["LOCK_NAME", "write_lock"]

LOCK_NAME = "write.lock"
#: How often a waiting writer retries, in seconds.
_POLL_S = 0.1


@contextlib.contextmanager
def write_lock(index_dir: Path, *, wait: float = 0.0) -> Iterator[None]:
    """Hold the index's write lock; wait up to ``wait`` seconds, then raise IndexBusyError."""
    index_dir.mkdir(parents=True, exist_ok=True)
    path = index_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, path, wait)
        _write_holder(fd)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _acquire(fd: int, path: Path, wait: float) -> None:
    """Take the lock on ``fd``, retrying until ``wait`` seconds have passed."""
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise IndexBusyError(_busy_message(path, wait)) from None
            time.sleep(_POLL_S)


def _write_holder(fd: int) -> None:
    """Record who holds the lock (for the next writer's error message)."""
    holder = json.dumps({"pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S")})
    os.ftruncate(fd, 0)
    os.pwrite(fd, holder.encode(), 0)


def _busy_message(path: Path, wait: float) -> str:
    """Who holds the lock, as far as its file says."""
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        holder = {}
    who = (
        f"process {holder['pid']} (since {holder.get('since')})"
        if "pid" in holder
        else "another process"
    )
    waited = f" after waiting {wait:g} s" if wait > 0 else ""
    return (
        f"index {path.parent} is being written by {who}{waited}; one writer at a time: "
        "wait for it to finish (or stop it), or pass --wait SECONDS"
    )
