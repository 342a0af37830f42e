"""Our proxy side by side with the real Toxiproxy 2.12.0 and a direct connection, one run.

Three targets: ``direct`` (no proxy), ``ours`` (``python -m chaos.proxy``) and ``real``
(Shopify's ``toxiproxy-server``, found as in real_toxiproxy; left out, with the reason,
when there is none). Every figure is measured in ``ROUNDS`` interleaved rounds (each round
visits every target, in a rotating order) and reported as the median over rounds:

- added round trip: p50 and p99 of a 64-byte request/echo through the proxy, minus the
  direct p50/p99 of the same round;
- bulk: MB/s of a one-way transfer to a counting server (it acknowledges the byte count,
  so no half-close is needed: Toxiproxy closes both directions on one), its ratio to
  direct, and the proxy process's CPU seconds (user + system, from /proc) per GB;
- latency toxic: the round trip added by a ``latency`` toxic of ``TOXIC_MS`` (downstream)
  over the same proxy without it;
- concurrency: ``CONNECTIONS`` connections at once, each making ``CONCURRENT_TRIPS`` round
  trips; round trips per second, their p99, and the proxy's CPU microseconds per round trip
  (the bench client, the echo server and the proxy share the machine's cores, so a proxy
  that burns less CPU leaves more to the others).

The table ends with ours/real and the issue-19 goals: added latency at most the real
one's (p50, p99), bulk at least 1.5x, CPU per GB at most half, the latency toxic within
1 ms of the real one's. The machine is shared: read the medians, not single rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import real_toxiproxy as real
from tcp_servers import SCRIPT, ProxyProcess

from chaos.proxy.client import ToxiproxyClient

ROUNDS = 5
ROUND_TRIPS = 3000
PAYLOAD = b"x" * 64
BULK_BYTES = 512 * 1024 * 1024
BLOCK = 1 << 20
TOXIC_MS = 10
TOXIC_TRIPS = 60
CONNECTIONS = 500
CONCURRENT_TRIPS = 20


@dataclass
class Target:
    """Where to connect for each test; ``pid`` of the proxy process (None: direct)."""

    name: str
    echo: int
    count: int
    latency: int | None = None
    pid: int | None = None
    figures: dict[str, list[float]] = field(default_factory=dict)

    def add(self, figure: str, value: float) -> None:
        self.figures.setdefault(figure, []).append(value)

    def median(self, figure: str) -> float | None:
        values = self.figures.get(figure)
        return statistics.median(values) if values else None


@contextlib.contextmanager
def _test_server(kind: str) -> Iterator[int]:
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        process = subprocess.Popen(
            [sys.executable, str(SCRIPT), kind, "--port-file", str(port_file)]
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


def _proxy_target(name: str, url: str, pid: int, echo: int, count: int) -> Target:
    with ToxiproxyClient(url) as api:

        def listen(proxy: str, upstream: int) -> int:
            created = api.create(proxy, "127.0.0.1:0", f"127.0.0.1:{upstream}")
            return int(str(created["listen"]).rpartition(":")[2])

        target = Target(name, listen("bench_echo", echo), listen("bench_count", count), pid=pid)
        target.latency = listen("bench_latency", echo)
        api.add_toxic("bench_latency", "lat", "latency", attributes={"latency": TOXIC_MS})
    return target


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _round_trips_us(port: int, count: int) -> list[float]:
    samples = []
    with _connect(port) as sock:
        for number in range(count + 50):  # the first 50 warm up
            started = time.perf_counter_ns()
            sock.sendall(PAYLOAD)
            got = sock.recv(1024)
            while len(got) < len(PAYLOAD):
                got += sock.recv(1024)
            if number >= 50:
                samples.append((time.perf_counter_ns() - started) / 1000)
    return samples


def _bulk_mb_s(port: int) -> float:
    block = b"\0" * BLOCK
    with _connect(port) as sock:
        started = time.perf_counter()
        sock.sendall(f"{BULK_BYTES}\n".encode())
        for _ in range(BULK_BYTES // BLOCK):
            sock.sendall(block)
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(64)
            if not chunk:
                break
            reply += chunk
        elapsed = time.perf_counter() - started
    if int(reply or b"0") != BULK_BYTES:
        raise RuntimeError(f"the counting server got {reply!r}, expected {BULK_BYTES}")
    return BULK_BYTES / elapsed / 1e6


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its threads so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _concurrent(port: int) -> tuple[float, float, int]:
    """Round trips per second, p99 in ms, and failed connections, over CONNECTIONS."""
    samples: list[float] = []
    opened = await asyncio.gather(
        *(
            asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
            for _ in range(CONNECTIONS)
        ),
        return_exceptions=True,
    )
    conns = [c for c in opened if not isinstance(c, BaseException)]
    failed = len(opened) - len(conns)

    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        try:
            for _ in range(CONCURRENT_TRIPS):
                started = time.perf_counter()
                writer.write(PAYLOAD)
                await asyncio.wait_for(reader.readexactly(len(PAYLOAD)), 30)
                samples.append((time.perf_counter() - started) * 1000)
            return True
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            return False

    started = time.perf_counter()
    results = await asyncio.gather(*(talk(r, w) for r, w in conns))
    elapsed = time.perf_counter() - started
    for _, writer in conns:
        writer.close()
    failed += results.count(False)
    return len(samples) / elapsed, _percentile(samples, 0.99), failed


def _run_concurrent(port: int) -> tuple[float, float, int]:
    try:
        import uvloop

        return uvloop.run(_concurrent(port))
    except ImportError:  # pragma: no cover
        return asyncio.run(_concurrent(port))


def _round(targets: list[Target], order: list[Target]) -> None:
    direct = targets[0]
    rtt = {t.name: _round_trips_us(t.echo, ROUND_TRIPS) for t in order}
    d50, d99 = _percentile(rtt["direct"], 0.5), _percentile(rtt["direct"], 0.99)
    for target in targets[1:]:
        target.add("added_p50_us", _percentile(rtt[target.name], 0.5) - d50)
        target.add("added_p99_us", _percentile(rtt[target.name], 0.99) - d99)
        plain = statistics.median(_round_trips_us(target.echo, TOXIC_TRIPS))
        toxic = statistics.median(_round_trips_us(target.latency or 0, TOXIC_TRIPS))
        target.add("toxic_added_ms", (toxic - plain) / 1000)
    for target in order:
        before = _cpu_s(target.pid) if target.pid else 0.0
        target.add("bulk_mb_s", _bulk_mb_s(target.count))
        if target.pid:
            target.add("cpu_s_per_gb", (_cpu_s(target.pid) - before) / (BULK_BYTES / 1e9))
        before = _cpu_s(target.pid) if target.pid else 0.0
        rate, p99, failed = _run_concurrent(target.echo)
        if target.pid:
            trips = CONNECTIONS * CONCURRENT_TRIPS
            target.add("conc_cpu_us", (_cpu_s(target.pid) - before) / trips * 1e6)
        target.add("conc_trips_s", rate)
        target.add("conc_p99_ms", p99)
        target.add("conc_failed", failed)
    for target in targets:
        target.add("bulk_ratio", target.figures["bulk_mb_s"][-1] / direct.figures["bulk_mb_s"][-1])


Goal = Callable[[float], bool]
ROWS: list[tuple[str, str, str, Goal | None]] = [
    # (figure, label, format, goal on ours/real)
    ("added_p50_us", "added round trip p50 (us)", "{:.1f}", lambda r: r <= 1.0),
    ("added_p99_us", "added round trip p99 (us)", "{:.1f}", lambda r: r <= 1.0),
    ("bulk_mb_s", "bulk one-way (MB/s)", "{:.0f}", lambda r: r >= 1.5),
    ("bulk_ratio", "  ratio to direct", "{:.2f}", None),
    ("cpu_s_per_gb", "proxy CPU per GB (s)", "{:.2f}", lambda r: r <= 0.5),
    ("toxic_added_ms", f"latency toxic {TOXIC_MS} ms: added (ms)", "{:.2f}", None),
    ("conc_trips_s", f"{CONNECTIONS} connections: round trips/s", "{:.0f}", None),
    ("conc_p99_ms", f"{CONNECTIONS} connections: p99 (ms)", "{:.1f}", None),
    ("conc_cpu_us", f"{CONNECTIONS} connections: proxy CPU/trip (us)", "{:.1f}", None),
    ("conc_failed", f"{CONNECTIONS} connections: failed", "{:.0f}", None),
]
GOALS = {
    "added_p50_us": "<= 1",
    "added_p99_us": "<= 1",
    "bulk_mb_s": ">= 1.5",
    "cpu_s_per_gb": "<= 0.5",
    "toxic_added_ms": "|ours-real| <= 1 ms",
}


def _print_table(targets: list[Target]) -> None:
    names = [t.name for t in targets]
    print(f"\nmedians over {ROUNDS} interleaved rounds:")
    header = f"  {'figure':40}" + "".join(f"{n:>10}" for n in names)
    print(header + f"{'ours/real':>11}  goal")
    by_name = {t.name: t for t in targets}
    for figure, label, fmt, goal in ROWS:
        cells = []
        for target in targets:
            value = target.median(figure)
            cells.append(f"{fmt.format(value) if value is not None else '-':>10}")
        line = f"  {label:40}" + "".join(cells)
        ours, theirs = by_name["ours"].median(figure), None
        if "real" in by_name:
            theirs = by_name["real"].median(figure)
        verdict = ""
        if figure == "toxic_added_ms" and ours is not None and theirs is not None:
            diff = abs(ours - theirs)
            verdict = f"{'':>11}  |diff| {diff:.2f} ms {GOALS[figure]}: {_met(diff <= 1.0)}"
        elif ours is not None and theirs:
            ratio = ours / theirs
            verdict = f"{ratio:>11.2f}"
            if goal is not None:
                verdict += f"  {GOALS[figure]}: {_met(goal(ratio))}"
        print(line + verdict)


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> None:
    real_path = real.find_server()
    with contextlib.ExitStack() as stack:
        echo = stack.enter_context(_test_server("echo"))
        count = stack.enter_context(_test_server("count"))
        targets = [Target("direct", echo, count)]
        ours = stack.enter_context(ProxyProcess())
        with ToxiproxyClient(ours.url) as api:
            api.wait_ready(15)
        targets.append(_proxy_target("ours", ours.url, ours.pid, echo, count))
        if real_path is None:
            print(f"(no side-by-side figures: {real.missing_reason()})")
        else:
            theirs = stack.enter_context(real.RealToxiproxy(real_path))
            targets.append(_proxy_target("real", theirs.url, theirs.pid, echo, count))
        print(
            f"targets: {', '.join(t.name for t in targets)}; {ROUNDS} rounds of: "
            f"{ROUND_TRIPS} round trips ({len(PAYLOAD)} B), {BULK_BYTES >> 20} MiB one-way, "
            f"{TOXIC_TRIPS} trips through a {TOXIC_MS} ms latency toxic, "
            f"{CONNECTIONS} connections x {CONCURRENT_TRIPS} round trips",
            flush=True,
        )
        for number in range(ROUNDS):
            shift = number % len(targets)
            _round(targets, targets[shift:] + targets[:shift])
            print(f"  round {number + 1}/{ROUNDS} done", flush=True)
        _print_table(targets)


if __name__ == "__main__":
    main()
