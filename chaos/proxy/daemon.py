"""The proxy server process: API listener, signal handling, port file, clean shutdown.

``run()`` blocks until SIGTERM or SIGINT, then closes every proxy listener and connection
and returns 0. Once the API listens, the bound port is written to ``port_file`` atomically
(temporary file + rename) so a launcher can wait for the file to appear.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from chaos.errors import UsageError
from chaos.files.atomic import replace_text
from chaos.proxy.addresses import is_loopback
from chaos.proxy.api import build_app
from chaos.proxy.server import ProxyCollection


def write_port_file(path: Path, port: int) -> None:
    replace_text(path, f"{port}\n")


def _raise_fd_limit() -> None:
    """Thousands of proxied connections need two descriptors each: use the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 1 << 20), hard))


async def serve(
    host: str,
    port: int,
    *,
    allow_remote: bool = False,
    port_file: Path | None = None,
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Serve the API on ``host:port`` until SIGTERM/SIGINT; then close everything.

    The API is unauthenticated: it listens on a loopback address unless ``allow_remote``.
    """
    if not allow_remote and not is_loopback(host):
        raise UsageError(
            f"--host {host} is not a loopback address; the proxy API has no authentication "
            "(start with --allow-remote to listen there anyway)"
        )
    collection = ProxyCollection(allow_remote=allow_remote)
    runner = web.AppRunner(build_app(collection), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, reuse_address=True)
        try:
            await site.start()
        except OSError as err:
            reason = err.strerror or str(err)
            raise UsageError(f"cannot listen on {host}:{port}: {reason}") from err
        bound = int(runner.addresses[0][1])
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        if port_file is not None:
            write_port_file(port_file, bound)
        if on_ready is not None:
            on_ready(bound)
        await stop.wait()
        for signum in (signal.SIGTERM, signal.SIGINT):
            # Shutting down: a repeated signal must not kill us before the cleanup ends
            # (a launcher's SIGKILL after its grace period still does).
            loop.remove_signal_handler(signum)
            signal.signal(signum, signal.SIG_IGN)
    finally:
        collection.close()
        await runner.cleanup()


def run(
    host: str,
    port: int,
    *,
    allow_remote: bool = False,
    port_file: Path | None = None,
    quiet: bool = False,
) -> int:
    """Run the server in this process (uvloop when importable); the exit code on stop."""
    _raise_fd_limit()
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        loop_factory = None

    def announce(bound: int) -> None:
        if not quiet:
            sys.stderr.write(f"tradechaos proxy: API listening on {host}:{bound}\n")
            sys.stderr.flush()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(
            serve(host, port, allow_remote=allow_remote, port_file=port_file, on_ready=announce)
        )
    return 0
