"""Small TCP servers for testing and benchmarking the proxy with real traffic.

- ``echo``: every byte received is sent back; the end of the client's stream closes.
- ``sink``: counts the bytes received; at the end of the client's stream it replies with the
  count as a decimal line and closes.

``BackgroundServer`` runs one on its own event loop in a thread (a context manager that stops
and joins the thread on exit); ``python -m chaos.proxy.testing echo|sink --port-file PATH``
runs one as its own process until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import cast

from chaos.proxy.daemon import write_port_file


class _Echo(asyncio.Protocol):
    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def eof_received(self) -> bool:
        return False  # close


class _Sink(asyncio.Protocol):
    transport: asyncio.Transport

    def __init__(self) -> None:
        self.count = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.count += len(data)

    def eof_received(self) -> bool:
        self.transport.write(f"{self.count}\n".encode())
        return False


PROTOCOLS: dict[str, type[asyncio.Protocol]] = {"echo": _Echo, "sink": _Sink}


async def start(kind: str, host: str = "127.0.0.1", port: int = 0) -> asyncio.Server:
    return await asyncio.get_running_loop().create_server(
        PROTOCOLS[kind], host, port, backlog=4096, reuse_address=True
    )


class BackgroundServer:
    """An echo or sink server on 127.0.0.1 in a daemon thread; ``port`` once entered."""

    def __init__(self, kind: str = "echo") -> None:
        self.kind = kind
        self.port = 0
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
        server = await start(self.kind)
        self.port = int(server.sockets[0].getsockname()[1])
        self._ready.set()
        async with server:
            await self._stop.wait()

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
    parser = argparse.ArgumentParser(prog="python -m chaos.proxy.testing")
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
