"""Free TCP ports on 127.0.0.1, chosen per run (never fixed).

A service's port is chosen *below* the kernel's ephemeral range: a port from that range
(what binding to port 0 returns) can be handed by the kernel to anyone binding port 0 or
connecting out -- a proxy listener created a moment later, say -- before our service binds
it; below the range only explicit binds compete. A port is checked free by binding it, and
remembered until ``release`` so this process never hands out the same port twice.

Runs side by side (``tradechaos run --jobs N``, or two users' terminals) must not hand out
the same port either, even when its service is down for a while (a ``stop`` fault frees
the port until the restart). So a port is also *claimed* for the whole machine: a one-byte
POSIX record lock at offset ``port`` of a per-user lock file in the temp dir, held by the
process that chose the port until ``release`` or its exit (the kernel drops the locks of a
dead process, so a killed run leaves no claim behind). The file is never deleted.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import socket
import tempfile
import threading
import time
from pathlib import Path

HOST = "127.0.0.1"
LOW_PORT = 20000

_handed_out: set[int] = set()
_lock = threading.Lock()
_rng = random.SystemRandom()
_claims_fd: int | None = None


def claims_path() -> Path:
    """The per-user file whose byte ``port`` is locked by the process that holds ``port``."""
    return Path(tempfile.gettempdir()) / f"tradechaos-ports-{os.getuid()}.lock"


def _claims() -> int | None:
    """The lock file, opened once per process and never closed: closing any descriptor of a
    file drops every POSIX lock this process holds on it."""
    global _claims_fd
    if _claims_fd is None:
        try:
            _claims_fd = os.open(claims_path(), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return None  # no writable temp dir: the bind check alone has to do
    return _claims_fd


def claim(port: int) -> bool:
    """Claim ``port`` for this process against other processes of this user; False when
    another live process holds it. Claims are per process: threads share them."""
    fd = _claims()
    if fd is None:
        return True
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port, os.SEEK_SET)
    except OSError:
        return False
    return True


def unclaim(port: int) -> None:
    """Drop this process's claim on ``port`` (nothing if it holds none)."""
    fd = _claims()
    if fd is not None:
        with contextlib.suppress(OSError):
            fcntl.lockf(fd, fcntl.LOCK_UN, 1, port, os.SEEK_SET)


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` below the ephemeral range that nothing listens on now, that
    this process has not handed out before and that no other process has claimed."""
    high = max(LOW_PORT + 1000, _ephemeral_low() - 1)
    for _ in range(200):
        port = _rng.randint(LOW_PORT, high)
        with _lock:
            if port in _handed_out or not claim(port):
                continue
            if _bindable(host, port):
                _handed_out.add(port)
                return port
            unclaim(port)
    raise OSError(f"no free TCP port between {LOW_PORT} and {high} after 200 attempts")


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def release(port: int) -> None:
    """Allow ``port`` to be handed out again, here and by other processes."""
    with _lock:
        _handed_out.discard(port)
        unclaim(port)


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
