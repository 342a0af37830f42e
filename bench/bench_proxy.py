"""Proxy overhead against a direct loopback connection, measured in the same run.

- Added round-trip latency of a small (64-byte) request through a proxy with no toxics:
  p50 and p99 of proxied minus direct, over interleaved blocks of round trips.
- Bulk throughput: MB/s of a one-way transfer to a sink server, direct and proxied (median
  of interleaved repetitions), and their ratio; plus the proxy process's CPU seconds per GB
  forwarded, a figure that the machine's other load disturbs less than MB/s.

Toxiproxy (Go) publishes < 100 us added latency and ~1000 MB/s throughput.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chaos.proxy.client import ToxiproxyClient
from chaos.proxy.testing import ProxyProcess

ROUND_TRIPS_PER_BLOCK = 1000
BLOCKS = 6
BULK_BYTES = 256 * 1024 * 1024
BULK_REPEATS = 3
PAYLOAD = b"x" * 64


@contextmanager
def _test_server(kind: str) -> Iterator[int]:
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        process = subprocess.Popen(
            [sys.executable, "-m", "chaos.proxy.testing", kind, "--port-file", str(port_file)]
        )
        try:
            deadline = time.monotonic() + 15
            while not port_file.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} server did not start")
                time.sleep(0.02)
            yield int(port_file.read_text())
        finally:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _round_trips_us(port: int, count: int) -> list[float]:
    samples = []
    with _connect(port) as sock:
        for _ in range(50):  # warm up
            sock.sendall(PAYLOAD)
            sock.recv(1024)
        for _ in range(count):
            started = time.perf_counter_ns()
            sock.sendall(PAYLOAD)
            got = sock.recv(1024)
            while len(got) < len(PAYLOAD):
                got += sock.recv(1024)
            samples.append((time.perf_counter_ns() - started) / 1000)
    return samples


def _bulk_mb_s(port: int) -> float:
    block = b"\0" * (1 << 20)
    with _connect(port) as sock:
        started = time.perf_counter()
        for _ in range(BULK_BYTES // len(block)):
            sock.sendall(block)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(64)
            if not chunk:
                break
            reply += chunk
        elapsed = time.perf_counter() - started
    if int(reply or b"0") != BULK_BYTES:
        raise RuntimeError(f"the sink counted {reply!r}, expected {BULK_BYTES}")
    return BULK_BYTES / elapsed / 1e6


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    with (
        _test_server("echo") as echo_port,
        _test_server("sink") as sink_port,
        ProxyProcess() as server,
        ToxiproxyClient(server.url) as api,
    ):
        echo_proxy = api.create("bench_echo", "127.0.0.1:0", f"127.0.0.1:{echo_port}")
        sink_proxy = api.create("bench_sink", "127.0.0.1:0", f"127.0.0.1:{sink_port}")
        echo_via = int(echo_proxy["listen"].rpartition(":")[2])
        sink_via = int(sink_proxy["listen"].rpartition(":")[2])

        direct: list[float] = []
        proxied: list[float] = []
        for _ in range(BLOCKS):
            direct += _round_trips_us(echo_port, ROUND_TRIPS_PER_BLOCK)
            proxied += _round_trips_us(echo_via, ROUND_TRIPS_PER_BLOCK)
        print(f"small request round trip ({len(PAYLOAD)} B, {len(direct)} each, interleaved):")
        for label, q in (("p50", 0.5), ("p99", 0.99)):
            d, p = _percentile(direct, q), _percentile(proxied, q)
            print(f"  {label}: direct {d:8.1f} us   proxied {p:8.1f} us   added {p - d:8.1f} us")

        direct_rates: list[float] = []
        proxied_rates: list[float] = []
        proxy_cpu_s = 0.0
        for _ in range(BULK_REPEATS):
            direct_rates.append(_bulk_mb_s(sink_port))
            cpu_before = _cpu_s(server.pid)
            proxied_rates.append(_bulk_mb_s(sink_via))
            proxy_cpu_s += _cpu_s(server.pid) - cpu_before
        d_rate = statistics.median(direct_rates)
        p_rate = statistics.median(proxied_rates)
        print(f"bulk one-way transfer ({BULK_BYTES >> 20} MiB, median of {BULK_REPEATS}):")
        ratio = p_rate / d_rate
        print(f"  direct {d_rate:8.0f} MB/s   proxied {p_rate:8.0f} MB/s   ratio {ratio:.2f}")
        per_gb = proxy_cpu_s / (BULK_REPEATS * BULK_BYTES / 1e9)
        print(
            f"  proxy process CPU {per_gb:.2f} s per GB forwarded "
            f"(= {1000 / per_gb:.0f} MB/s per core if CPU-bound)"
            if per_gb > 0
            else "  proxy process CPU below the clock tick resolution"
        )
        stats = api.stats("bench_sink")
        print(f"  proxy counted {stats['bytes_upstream'] >> 20} MiB upstream on bench_sink")


if __name__ == "__main__":
    main()
