"""Free TCP ports on 127.0.0.1, chosen per run (never fixed).

A port is found by binding to port 0 and reading back what the kernel chose. The port is
free when returned, but nothing stops another process from taking it before our service
binds it; to avoid handing the same port out twice within this process, every port is
remembered until ``release`` (ports are plentiful, so remembering is cheap).
"""

from __future__ import annotations

import socket
import threading
import time

HOST = "127.0.0.1"

_handed_out: set[int] = set()
_lock = threading.Lock()


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` that nothing listens on now and that this process has not
    handed out before."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        with _lock:
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise OSError("no free TCP port found after 100 attempts")


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
