"""Free TCP ports on 127.0.0.1, chosen per run (never fixed).

A service's port is chosen *below* the kernel's ephemeral range: a port from that range
(what binding to port 0 returns) can be handed by the kernel to anyone binding port 0 or
connecting out -- a proxy listener created a moment later, say -- before our service binds
it; below the range only explicit binds compete. A port is checked free by binding it, and
remembered until ``release`` so this process never hands out the same port twice.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from pathlib import Path

HOST = "127.0.0.1"
LOW_PORT = 20000

_handed_out: set[int] = set()
_lock = threading.Lock()
_rng = random.SystemRandom()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` below the ephemeral range that nothing listens on now and that
    this process has not handed out before."""
    high = max(LOW_PORT + 1000, _ephemeral_low() - 1)
    for _ in range(200):
        port = _rng.randint(LOW_PORT, high)
        with _lock:
            if port in _handed_out:
                continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        with _lock:
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise OSError(f"no free TCP port between {LOW_PORT} and {high} after 200 attempts")


def release(port: int) -> None:
    """Allow ``port`` to be handed out again."""
    with _lock:
        _handed_out.discard(port)


def is_listening(port: int, host: str = HOST, timeout_s: float = 0.2) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_closed(port: int, host: str = HOST, timeout_s: float = 5.0) -> bool:
    """Poll until nothing listens on ``host:port``; False if still listening at the timeout."""
    deadline = time.monotonic() + timeout_s
    while is_listening(port, host):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True
