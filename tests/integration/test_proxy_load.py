"""1,000 concurrent connections through one proxy while toxics come and go, on both
servers (``[ours]`` and ``[real]``, the real Toxiproxy 2.12.0).

No connection may be dropped by toxics that do not close connections, connections of another
proxy being reset must not disturb them, and once everything closes the proxy process must
be back to its baseline of file descriptors (ours: of asyncio tasks and links too).
On the real server the ``timeout`` toxic is left out (it discards what it holds, and its
removal closes the connection: test_proxy_differences.py), and a ``reset_peer`` added to
open connections closes them with FIN instead of RST.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from proxy_servers import KINDS, started
from tcp_servers import SCRIPT

from chaos.proxy.client import ToxiproxyClient

pytestmark = pytest.mark.integration

CONNECTIONS = 1000
ROUNDS = 20
VICTIMS = 50


@pytest.fixture
def echo_port(tmp_path: Path) -> Iterator[int]:
    port_file = tmp_path / "echo.port"
    process = subprocess.Popen([sys.executable, str(SCRIPT), "echo", "--port-file", str(port_file)])
    try:
        deadline = time.monotonic() + 15
        while not port_file.exists():
            assert process.poll() is None and time.monotonic() < deadline, "echo did not start"
            time.sleep(0.02)
        yield int(port_file.read_text())
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _addr(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host, int(port)


async def _open(addr: tuple[str, int]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection(*addr), 20)


async def _converse(
    number: int, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], start: asyncio.Event
) -> int:
    """Round trips of distinct payloads; returns how many round trips completed intact."""
    reader, writer = conn
    await start.wait()
    done = 0
    for round_no in range(ROUNDS):
        payload = f"{number:05d}:{round_no:03d}:".encode() * 20
        writer.write(payload)
        echoed = await asyncio.wait_for(reader.readexactly(len(payload)), 20)
        if echoed != payload:
            break
        done += 1
        await asyncio.sleep(0.05)
    return done


async def _victim(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], real: bool) -> bool:
    """A connection of the other proxy: True when it was cut as its toxic demands (reset;
    the real server closes a connection that was open before the toxic with FIN)."""
    reader, writer = conn
    writer.write(b"hello")
    try:
        got = await asyncio.wait_for(reader.read(10), 10)
    except ConnectionResetError:
        return True
    return real and got == b""


async def _scenario(api: ToxiproxyClient, echo_port: int, real: bool) -> None:
    main = api.create("load", "127.0.0.1:0", f"127.0.0.1:{echo_port}")
    other = api.create("other", "127.0.0.1:0", f"127.0.0.1:{echo_port}")
    conns = await asyncio.gather(*(_open(_addr(main["listen"])) for _ in range(CONNECTIONS)))
    victims = await asyncio.gather(*(_open(_addr(other["listen"])) for _ in range(VICTIMS)))
    start = asyncio.Event()
    talks = [asyncio.create_task(_converse(i, conn, start)) for i, conn in enumerate(conns)]
    start.set()

    toggles = [
        ("lat", "latency", "downstream", 1.0, {"latency": 20, "jitter": 10}),
        ("slice", "slicer", "upstream", 1.0, {"average_size": 16, "size_variation": 4}),
        ("bw", "bandwidth", "downstream", 0.5, {"rate": 10_000}),
        ("stall", "timeout", "upstream", 1.0, {"timeout": 0}),
        ("lat_up", "latency", "upstream", 0.3, {"latency": 15}),
    ]
    if real:
        toggles = [t for t in toggles if t[1] != "timeout"]
    for name, kind, stream, toxicity, attributes in toggles:
        await asyncio.to_thread(api.add_toxic, "load", name, kind, stream, toxicity, attributes)
        await asyncio.sleep(0.1)
        await asyncio.to_thread(api.remove_toxic, "load", name)
    await asyncio.to_thread(api.add_toxic, "other", "cut", "reset_peer", "downstream")
    reset = await asyncio.gather(*(_victim(conn, real) for conn in victims))
    completed = await asyncio.gather(*talks)

    for _, writer in [*conns, *victims]:
        writer.close()
    for _, writer in [*conns, *victims]:
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    assert all(reset), f"{reset.count(False)} victims were not reset"
    short = [n for n in completed if n != ROUNDS]
    assert not short, f"{len(short)} connections were cut short: {short[:10]}"
    if real:
        return
    stats = api.stats("load")
    assert stats["connections_total"] == CONNECTIONS
    assert stats["toxics"]["lat"] > 0 and stats["toxics"]["stall"] > 0
    assert api.stats("other")["resets"] == VICTIMS


def _runtime(api: ToxiproxyClient) -> dict[str, int]:
    response = api._request("GET", "/runtime")
    result: dict[str, int] = response.json()
    return result


@pytest.mark.parametrize("kind", KINDS)
def test_thousand_connections_with_live_toxics(echo_port: int, kind: str) -> None:
    with started(kind) as server, ToxiproxyClient(server.url, timeout_s=10) as api:
        real = kind == "real"
        api.create("warmup", "127.0.0.1:0", f"127.0.0.1:{echo_port}")
        api.delete("warmup")
        baseline = None if real else _runtime(api)
        baseline_fds = server.open_fds()
        asyncio.run(_scenario(api, echo_port, real))
        api.delete("load")
        api.delete("other")
        deadline = time.monotonic() + 10
        while True:
            fds = server.open_fds()
            now = None if real else _runtime(api)
            settled = fds == baseline_fds and (
                now is None
                or baseline is None
                or (now["links"], now["open_fds"], now["tasks"])
                == (0, baseline["open_fds"], baseline["tasks"])
            )
            if settled or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert fds == baseline_fds
        if now is not None and baseline is not None:
            assert now["links"] == 0
            assert now["open_fds"] == baseline["open_fds"], (baseline, now)
            assert now["tasks"] == baseline["tasks"], (baseline, now)


async def _echo_bulk(addr: tuple[str, int], seed: int, size: int) -> bool:
    """Send ``size`` pseudo-random bytes while reading the echo; True when it came back intact."""
    payload = random.Random(seed).randbytes(size)
    reader, writer = await _open(addr)

    async def send() -> None:
        for start in range(0, size, 100_000):
            writer.write(payload[start : start + 100_000])
            await writer.drain()

    sender = asyncio.create_task(send())
    if seed % 2:
        # Read only after sending everything, and late: the proxy's writes back stall.
        await sender
        await asyncio.sleep(0.3)
    echoed = await asyncio.wait_for(reader.readexactly(size), 60)
    await sender
    writer.close()
    return hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()


@pytest.mark.parametrize("kind", KINDS)
def test_bulk_data_survives_backpressure_intact(echo_port: int, kind: str) -> None:
    """Many concurrent large echoes (both directions under backpressure) keep every byte."""
    with started(kind) as server, ToxiproxyClient(server.url) as api:
        proxy = api.create("bulk", "127.0.0.1:0", f"127.0.0.1:{echo_port}")

        async def scenario() -> list[bool]:
            addr = _addr(proxy["listen"])
            return await asyncio.gather(*(_echo_bulk(addr, i, 8_000_000) for i in range(8)))

        assert all(asyncio.run(scenario()))
        if kind == "ours":
            assert api.stats("bulk")["bytes_downstream"] == 8 * 8_000_000
