"""Load on `mmrag serve`: C concurrent clients x N searches each against a 10k-item index.

Run: ``PYTHONPATH=src nice -n 10 python benchmarks/serve_load.py --items 10000 --clients 32
--searches 2000``. On 2 shared cores at load 10-24 it served about 30 requests/s, so the full
64,000 searches take about 35 minutes there; ``--searches 500`` is the same load, shorter.

It builds a text-only index (MiniLM, no CLIP) of ``--items`` short synthetic texts, starts
``mmrag serve`` on loopback in a child process, and runs first a baseline (one client,
``--baseline`` searches), then ``--clients`` threads each sending ``--searches`` searches
with varied queries and k. It prints errors (any non-200, any transport error), p50/p99
latency and requests/s for both, the CPU seconds the server and the clients used, the
server's peak RSS, the CPU model (/proc/cpuinfo) and the load average, with a progress line
every minute. The acceptance figure is 0 errors.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from bench_common import cpu_model

WORDS = [
    "pump",
    "valve",
    "filter",
    "motor",
    "belt",
    "sensor",
    "gasket",
    "bearing",
    "hose",
    "switch",
    "fuse",
    "panel",
]


def load() -> str:
    """The load average beside the core count."""
    return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus"


def build_index(root: Path, items: int) -> Path:
    """A text-only index of ``items`` synthetic notes, embedded with the index's MiniLM.

    Written through the store directly: mmrag has no plain-text ingester, and what is
    measured here is serving, not ingestion.
    """
    import mmrag
    from mmrag.types import Item, content_hash, item_id

    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, 6)) + f" note {i}" for i in range(items)]
    with mmrag.open(root / "idx", model="none") as index:
        for start in range(0, items, 1000):
            batch = texts[start : start + 1000]
            rows = [
                Item(
                    id=item_id("bench", start + n),
                    kind="text",
                    source=f"bench/notes{(start + n) // 100:04d}.md",
                    content_hash=content_hash(text.encode()),
                    text=text,
                )
                for n, text in enumerate(batch)
            ]
            index.store.upsert(rows, {"text": index.text.encode(batch)})
        index.store.optimize()
        print(f"index: {index.stats()['items']} items ({load()})")
    return root / "idx"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(index: Path, port: int) -> subprocess.Popen[bytes]:
    """`mmrag serve` in a child; returns once /api/health answers."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [sys.executable, "-m", "mmrag", "serve", "--index", str(index), "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health").status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("mmrag serve did not start")


def client(url: str, searches: int, seed: int, latencies: list[float], errors: list[str]) -> None:
    """One client: ``searches`` searches, each latency (s) or error recorded."""
    rng = np.random.default_rng(seed)
    with httpx.Client(base_url=url, timeout=60) as http:
        for i in range(searches):
            params: dict[str, object] = {"q": " ".join(rng.choice(WORDS, 2)), "k": int(1 + i % 20)}
            started = time.perf_counter()
            try:
                response = http.get("/api/search", params=params)
                if response.status_code != 200:
                    errors.append(f"{response.status_code}: {response.text[:200]}")
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            latencies.append(time.perf_counter() - started)


def run(
    url: str, clients: int, searches: int, every: float = 60.0
) -> tuple[list[float], list[str], float]:
    """``clients`` threads of ``searches`` each; a progress line every ``every`` seconds."""
    latencies: list[float] = []
    errors: list[str] = []
    threads = [
        threading.Thread(target=client, args=(url, searches, seed, latencies, errors))
        for seed in range(clients)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():  # a long run says how far it is, so it can be judged early
            thread.join(timeout=every)
            if thread.is_alive():
                elapsed = time.perf_counter() - started
                print(
                    f"   ... {len(latencies)}/{clients * searches} requests, {len(errors)} "
                    f"errors, {len(latencies) / elapsed:.1f} req/s ({load()})",
                    flush=True,
                )
    return latencies, errors, time.perf_counter() - started


def report(name: str, latencies: list[float], errors: list[str], seconds: float) -> None:
    ms = np.array(latencies) * 1000
    print(
        f"{name:>9}: {len(latencies)} requests, {len(errors)} errors, "
        f"p50 {np.percentile(ms, 50):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms, "
        f"{len(latencies) / seconds:.1f} req/s  ({load()})"
    )
    for error in errors[:5]:
        print(f"   error: {error}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a process has used (from /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """The server's peak resident memory (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--searches", type=int, default=2000, help="per client")
    parser.add_argument("--baseline", type=int, default=200, help="searches of the one client")
    args = parser.parse_args()
    print(f"cpu: {cpu_model()}; {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        index = build_index(Path(tmp), args.items)
        port = free_port()
        server = serve(index, port)
        try:
            url = f"http://127.0.0.1:{port}"
            report("baseline", *run(url, 1, args.baseline))
            cpu_before, own_before = cpu_seconds(server.pid), time.process_time()
            latencies, errors, seconds = run(url, args.clients, args.searches)
            report(f"{args.clients} clients", latencies, errors, seconds)
            server_cpu = cpu_seconds(server.pid) - cpu_before
            clients_cpu = time.process_time() - own_before
            print(
                f"CPU during the load: server {server_cpu:.0f} s ({server_cpu / seconds:.2f} "
                f"cores), clients {clients_cpu:.0f} s ({clients_cpu / seconds:.2f} cores) "
                f"over {seconds:.0f} s; server peak RSS {peak_rss_mb(server.pid):.0f} MB"
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
    if errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
