"""The decode pool: image files decoded in worker processes while the main process encodes.

::

    for result in decode_all(tasks, workers=4, window=128):
        ...  # a DecodedImage or a DecodeFailure per task, in task order

Workers are spawn-started (no fork of a process holding torch threads) and run at lower
priority; at most ``window`` images are in flight, so memory stays flat however large
the folder.

Workers never outlive the run: each watches its parent and exits when the parent is gone
(SIGKILL and OOM kills included, where no cleanup code in the parent runs); a clean exit
or Ctrl-C shuts the pool down through the executor as usual.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor

from .decode import DecodedImage, DecodeFailure, DecodeTask, decode_path

__all__ = ["POOL_MIN_IMAGES", "decode_all"]

#: Below this many images decoding runs inline: starting worker processes costs more.
POOL_MIN_IMAGES = 24
#: Decode workers run this much nicer than the encoder. Decoding is ~10% of the CPU time of
#: an image, and torch's OpenMP threads stall at every barrier while a worker holds one of
#: their cores; at lower priority workers decode in the encoder's gaps (and in bursts while
#: the main process waits for them) instead of preempting it.
_DECODE_NICE = 10
#: How often a worker checks that its parent is alive, in seconds.
_PARENT_POLL_S = 0.5

Decoded = DecodedImage | DecodeFailure


def decode_all(tasks: Sequence[DecodeTask], workers: int, window: int) -> Iterator[Decoded]:
    """Decode every task, in order: in ``workers`` processes, or inline for a few images."""
    if len(tasks) < POOL_MIN_IMAGES or workers <= 1:
        yield from map(decode_path, tasks)
        return
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(_DECODE_NICE, os.getpid()),
    ) as pool:
        queue = iter(tasks)
        in_flight: deque[Future[Decoded]] = deque()
        for task in queue:
            in_flight.append(pool.submit(decode_path, task))
            if len(in_flight) >= window:
                break
        while in_flight:
            result = in_flight.popleft().result()
            next_task = next(queue, None)
            if next_task is not None:
                in_flight.append(pool.submit(decode_path, next_task))
            yield result


def _init_worker(increment: int, parent: int) -> None:
    """Decode-worker initializer: lower priority, and exit when the parent process dies."""
    # Not permitted or not supported: decode at normal priority (see _DECODE_NICE).
    with contextlib.suppress(OSError):
        os.nice(increment)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """Exit this worker as soon as ``parent`` is no longer its parent (it died; we were reparented).

    A worker blocked on the task queue never notices a dead parent by itself: it holds its
    own end of the queue's pipe, so no EOF comes. Polling getppid is portable and costs
    nothing; os._exit skips cleanup that would wait on the dead parent's queues.
    """
    while os.getppid() == parent:
        time.sleep(_PARENT_POLL_S)
    os._exit(1)
