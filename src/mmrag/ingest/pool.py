"""The decode pool: image files decoded in worker processes while the main process encodes.

::

    for result in decode_all(tasks, workers=4, window=128):
        ...  # a DecodedImage or a DecodeFailure per task, in task order

Workers are spawn-started (no fork of a process holding torch threads) and run at lower
priority; at most ``window`` images are in flight, so memory stays flat however large
the folder.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
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

Decoded = DecodedImage | DecodeFailure


def decode_all(tasks: Sequence[DecodeTask], workers: int, window: int) -> Iterator[Decoded]:
    """Decode every task, in order: in ``workers`` processes, or inline for a few images."""
    if len(tasks) < POOL_MIN_IMAGES or workers <= 1:
        yield from map(decode_path, tasks)
        return
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_lower_priority,
        initargs=(_DECODE_NICE,),
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


def _lower_priority(increment: int) -> None:
    """Decode-worker initializer: yield the CPU to the encoding process (see _DECODE_NICE)."""
    # Not permitted or not supported: decode at normal priority.
    with contextlib.suppress(OSError):
        os.nice(increment)
