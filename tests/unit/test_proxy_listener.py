"""A proxy's listener: the backlog that a burst of connections needs (SYNs beyond a full
accept queue are dropped and retried after a second)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

from chaos.proxy.server import LISTEN_BACKLOG, Proxy


def _send_q(port: int) -> int:
    """The listen backlog of the socket on ``port``: ``ss``'s Send-Q for a listener."""
    out = subprocess.run(
        ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    return int(out.split()[2])


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
def test_the_listener_keeps_its_backlog() -> None:
    async def scenario() -> int:
        proxy = Proxy("burst", "127.0.0.1:0", "127.0.0.1:9")
        await proxy.start()
        try:
            return _send_q(int(proxy.listen.rpartition(":")[2]))
        finally:
            proxy.stop()

    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    assert asyncio.run(scenario()) == min(LISTEN_BACKLOG, somaxconn)
