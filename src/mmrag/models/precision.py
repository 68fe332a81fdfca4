"""Numeric precision and thread sizing for the torch encoders, read from this machine.

Example::

    resolve_precision("auto", "cpu")      # 'bf16' on AMX/AVX512-BF16 CPUs, else 'fp32'
    with torch_threads(call_threads(1)):  # one query: one thread, whatever else runs
        ...

torch is imported only inside the functions that need it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmrag.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = [
    "PRECISIONS",
    "QUERY_BATCH",
    "available_cores",
    "call_threads",
    "cpu_supports_bf16",
    "load_lock",
    "quantize_int8",
    "resolve_precision",
    "torch_dtype",
    "torch_threads",
]

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
#: Held while any encoder loads its weights: ``from_pretrained(dtype=...)`` sets torch's
#: process-wide default dtype for the duration, so a second model loading at the same time
#: (a search runs its paths on threads) could be built in the first one's dtype.
load_lock = threading.RLock()
#: Calls with at most this many inputs are queries: they get one thread, since a second
#: thread buys little on a tiny batch and spins against any other busy process.
QUERY_BATCH = 4


def cpu_supports_bf16() -> bool:
    """True when this CPU runs bf16 matmuls natively (AMX or AVX512-BF16)."""
    try:
        import torch

        probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
        if any(getattr(torch.cpu, p, lambda: False)() for p in probes):
            return True
    except Exception:
        pass  # private torch probes may vanish; fall back to the kernel's flags
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="ignore").split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_precision(precision: str, device: str, *, allowed: tuple[str, ...] = PRECISIONS) -> str:
    """'auto' -> the fastest precision the hardware runs well; explicit values are kept."""
    if precision not in allowed:
        raise ConfigError(f"precision must be one of {allowed}, got {precision!r}")
    if precision != "auto":
        if precision == "int8" and not device.startswith("cpu"):
            raise ConfigError(f"precision 'int8' runs on the CPU only, not on {device!r}")
        return precision
    if device.startswith("cuda"):
        return "fp16" if "fp16" in allowed else "fp32"
    if device == "cpu":
        # bf16 on a CPU without AMX/AVX512-BF16 is emulated and slower than fp32.
        return "bf16" if cpu_supports_bf16() else "fp32"
    return "fp32"


def torch_dtype(precision: str) -> torch.dtype:
    """The dtype weights load in: int8 loads fp32 and quantises afterwards."""
    import torch

    table = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    return table.get(precision, torch.float32)


def quantize_int8(module: Any) -> Any:
    """Dynamic int8 quantisation of the linear layers (weights int8, activations per batch)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notice, on every call
        return torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8)


def available_cores() -> int:
    """Cores this process may run on (affinity and cgroup-limited where the OS says)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def call_threads(n_inputs: int, *, limit: int = 0) -> int:
    """torch threads for one encode call of ``n_inputs``: 1 for a query, else the free cores.

    Free cores are this process's cores less the load other processes put on them:
    the 1-minute load average less this process's own CPU use since the previous
    call, so a batch beside a busy process does not spin against it. ``limit`` > 0 caps it.
    """
    if n_inputs <= QUERY_BATCH:
        return 1
    cores = available_cores()
    try:
        others = max(0.0, os.getloadavg()[0] - _own_cpu())
    except (AttributeError, OSError):
        others = 0.0
    free = max(1, cores - int(others + 0.5))
    return min(free, limit) if limit > 0 else free


_last_sample = [time.monotonic(), time.process_time()]
_sample_lock = threading.Lock()


def _own_cpu() -> float:
    """Cores this process kept busy since the previous call (or since import)."""
    with _sample_lock:
        wall, cpu = time.monotonic(), time.process_time()
        d_wall, d_cpu = wall - _last_sample[0], cpu - _last_sample[1]
        if d_wall > 0.5:  # too short a window says nothing
            _last_sample[:] = [wall, cpu]
        return d_cpu / d_wall if d_wall > 0 else 0.0


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, restoring the previous count after."""
    import torch

    before = torch.get_num_threads()
    if n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
