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


#: oneDNN ISA caps (``ONEDNN_MAX_CPU_ISA``) at which bf16 matmuls still run natively.
_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512", "AMX", "ALL", "DEFAULT")


def cpu_supports_bf16() -> bool:
    """True when this CPU runs bf16 matmuls natively (AMX or AVX512-BF16).

    False as well when oneDNN is capped below them (``ONEDNN_MAX_CPU_ISA=AVX2``, as an
    administrator may set, or to reproduce an AVX2-only machine): torch's bf16 matmuls are
    then emulated, 6x slower than fp32 (measured: image tower 3.6 against 21 img/s).
    """
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    if cap and not any(isa in cap.strip().upper() for isa in _BF16_ISAS):
        return False
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

    Free cores are this process's cores less those other processes kept busy since the
    previous call (:func:`_others`), so a batch beside a busy process does not spin against
    it, and takes every core again as soon as that process stops. ``limit`` > 0 caps it.
    """
    if n_inputs <= QUERY_BATCH:
        return 1
    free = max(1, available_cores() - int(_others() + 0.5))
    return min(free, limit) if limit > 0 else free


def _cpu_seconds(children: bool = True) -> float:
    """CPU time of this process and of its child processes, live (the decode workers: they
    run nicer than the encoder and yield to it, so their load is not another process's)
    and finished."""
    total = time.process_time()
    if not children:
        return total
    with contextlib.suppress(AttributeError, OSError, ValueError):
        import multiprocessing
        import resource

        done = resource.getrusage(resource.RUSAGE_CHILDREN)
        total += done.ru_utime + done.ru_stime
        tick = os.sysconf("SC_CLK_TCK")
        for child in multiprocessing.active_children():
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def _busy_seconds() -> float | None:
    """CPU time every process on the machine has used (Linux's /proc/stat), or None."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[1:9])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None


def _sample(children: bool = True) -> tuple[float, float, float | None]:
    return time.monotonic(), _cpu_seconds(children), _busy_seconds()


# At import there are no child processes (and multiprocessing is not imported for nothing).
_last_sample = [_sample(children=False)]
_sample_lock = threading.Lock()
#: A window older than this says little about now: such a call samples afresh for _FRESH_S.
_STALE_S = 5.0
_FRESH_S = 0.1


def _others() -> float:
    """Cores other processes kept busy since the previous call, or over a fresh 0.1 s when
    that was long ago (a first call's window reaches back to import, through whatever ran
    then: a stale 0.77 cores once put a whole run's first batch on one core).

    This process's use and the machine's are read over the same window, so load that has
    stopped does not linger (the 1-minute load average, used where /proc/stat is missing,
    kept batches on one core for a minute after a busy process had ended).
    """
    with _sample_lock:
        now = _sample()
        if now[0] - _last_sample[0][0] > _STALE_S:
            _last_sample[0] = now
            time.sleep(_FRESH_S)
            now = _sample()
        wall0, own0, busy0 = _last_sample[0]
        d_wall = now[0] - wall0
        if d_wall > 0.5:  # too short a window says nothing: keep extending it
            _last_sample[0] = now
    if d_wall <= 0:
        return 0.0
    own = (now[1] - own0) / d_wall
    if now[2] is not None and busy0 is not None:
        return max(0.0, (now[2] - busy0) / d_wall - own)
    try:
        return max(0.0, os.getloadavg()[0] - own)
    except (AttributeError, OSError):
        return 0.0


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
