"""Small TCP servers for testing and benchmarking the proxy with real traffic.

- ``echo``: every byte received is sent back; the end of the client's stream closes.
- ``hello``: sends ``hello\n`` when a client connects, then echoes.
- ``sink``: counts the bytes received; at the end of the client's stream it replies with the
  count as a decimal line and closes.
- ``count``: reads a decimal line announcing N bytes, then N bytes, then replies with N as a
  decimal line, and again; a one-way transfer that needs no half-close (Toxiproxy closes
  both directions when a client half-closes).

``BackgroundServer`` runs one on its own event loop in a thread (a context manager that stops
and joins the thread on exit; ``received`` counts the bytes it got, over all connections);
``python tests/integration/tcp_servers.py KIND --port-file PATH`` (``SCRIPT``) runs one as
its own process until SIGTERM. ``ProxyProcess`` runs the proxy server itself as a real process
(``python -m chaos.proxy``) and stops it with SIGTERM, a grace period, SIGKILL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import cast

from chaos.proxy.daemon import write_port_file


class Tally:
    """Bytes received by every connection of one server (read from any thread)."""

    def __init__(self) -> None:
        self.received = 0


class _Base(asyncio.Protocol):
    transport: asyncio.Transport

    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self.tally.received += len(data)
        self.on_data(data)

    def on_data(self, data: bytes) -> None:
        """What the server does with the bytes it received."""

    def eof_received(self) -> bool:
        return False  # close


class _Echo(_Base):
    def on_data(self, data: bytes) -> None:
        self.transport.write(data)


class _Hello(_Echo):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.transport.write(b"hello\n")


class _Sink(_Base):
    def __init__(self, tally: Tally) -> None:
        super().__init__(tally)
        self.count = 0

    def on_data(self, data: bytes) -> None:
        self.count += len(data)

    def eof_received(self) -> bool:
        self.transport.write(f"{self.count}\n".encode())
        return False


class _Count(_Base):
    def __init__(self, tally: Tally) -> None:
        super().__init__(tally)
        self.header = b""
        self.expected = -1
        self.count = 0

    def on_data(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self.expected < 0:
                line, newline, _ = bytes(view[:32]).partition(b"\n")
                if not newline:
                    self.header += bytes(view)
                    return
                self.expected = int(self.header + line)
                self.header = b""
                view = view[len(line) + 1 :]
                continue
            taken = min(len(view), self.expected - self.count)
            self.count += taken
            view = view[taken:]
            if self.count == self.expected:
                self.transport.write(f"{self.count}\n".encode())
                self.expected, self.count = -1, 0


PROTOCOLS: dict[str, type[_Base]] = {
    "echo": _Echo,
    "hello": _Hello,
    "sink": _Sink,
    "count": _Count,
}


async def start(
    kind: str, host: str = "127.0.0.1", port: int = 0, tally: Tally | None = None
) -> asyncio.Server:
    protocol = PROTOCOLS[kind]
    counts = tally if tally is not None else Tally()

    def factory() -> asyncio.Protocol:
        return protocol(counts)

    return await asyncio.get_running_loop().create_server(
        factory, host, port, backlog=4096, reuse_address=True
    )


class BackgroundServer:
    """A server of ``kind`` on 127.0.0.1 in a daemon thread; ``port`` once entered."""

    def __init__(self, kind: str = "echo") -> None:
        self.kind = kind
        self.port = 0
        self.tally = Tally()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"{kind}-server", daemon=True)
        self._error: BaseException | None = None

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as err:  # reported to the entering thread
            self._error = err
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await start(self.kind, tally=self.tally)
        self.port = int(server.sockets[0].getsockname()[1])
        self._ready.set()
        async with server:
            await self._stop.wait()

    @property
    def received(self) -> int:
        """Bytes received so far, over every connection."""
        return self.tally.received

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        if not self._ready.wait(10.0) or self._error is not None:
            raise RuntimeError(f"{self.kind} server did not start: {self._error}")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10.0)


SCRIPT = Path(__file__).resolve()


def stop_child(process: subprocess.Popen[bytes] | None, grace_s: float) -> int | None:
    """SIGTERM, ``grace_s``, SIGKILL; reaped. The exit code (None if never started)."""
    if process is None:
        return None
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


class ChildServer:
    """A proxy server run as a child process on 127.0.0.1 (ours or the real Toxiproxy):
    its port, url and pid once started; ``stop()`` (SIGTERM, ``grace_s``, SIGKILL, reaped,
    its temporary folder removed) returns the exit code."""

    def __init__(self, grace_s: float, prefix: str) -> None:
        self.grace_s = grace_s
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.TemporaryDirectory(prefix=prefix)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> int | None:
        process, self.process = self.process, None
        code = stop_child(process, self.grace_s)
        self._dir.cleanup()
        return code

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ProxyProcess(ChildServer):
    """``python -m chaos.proxy --port 0`` as a child process; ``url`` once entered.

    Entering waits (polling, with a timeout) for the port file; exiting sends SIGTERM, waits
    ``grace_s``, then SIGKILL, and always reaps the child. ``stop()`` returns the exit code.
    """

    kind = "ours"

    def __init__(
        self, *extra_args: str, start_timeout_s: float = 15.0, grace_s: float = 5.0
    ) -> None:
        super().__init__(grace_s, "tradechaos-proxy-")
        self.extra_args = extra_args
        self.start_timeout_s = start_timeout_s

    def __enter__(self) -> ProxyProcess:
        port_file = Path(self._dir.name) / "port"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chaos.proxy",
                "--port",
                "0",
                "--port-file",
                str(port_file),
                *list(self.extra_args),
            ],
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self.start_timeout_s
        while not port_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                code = self.stop()
                raise RuntimeError(f"the proxy process did not start (exit code {code})")
            time.sleep(0.02)
        self.port = int(port_file.read_text())
        return self


async def _serve_until_signal(kind: str, port_file: Path) -> None:
    server = await start(kind)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    write_port_file(port_file, int(server.sockets[0].getsockname()[1]))
    async with server:
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tcp_servers.py")
    parser.add_argument("kind", choices=sorted(PROTOCOLS))
    parser.add_argument("--port-file", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.run(_serve_until_signal(args.kind, args.port_file))
    except ImportError:  # pragma: no cover
        asyncio.run(_serve_until_signal(args.kind, args.port_file))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
