"""Helpers for the integration tests that drive ``tradechaos run`` as a real process."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"


def tradechaos(*args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaos", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def processes_mentioning(path: str) -> list[int]:
    """Live pids with an argument naming ``path`` or a path under it (our services get
    ``--run-dir``). ``runs/x`` does not match ``runs/x-control``, a run beside it."""
    named = re.compile(re.escape(path) + r"(/|$)")
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            args = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and any(named.search(arg) for arg in args):
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def port_free(port: int) -> bool:
    """Nothing listens on the port (SO_REUSEADDR: connections in TIME_WAIT do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def listener_pids(port: int) -> list[int]:
    """Pids holding a listening TCP socket on ``port`` (from /proc/net/tcp*)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in inodes:
                    pids.append(int(entry.name))
                    break
            except OSError:
                continue
    return pids


def ports_held_by_run(ports: set[int], run_pids: list[int], run_dir: Path) -> list[int]:
    """Ports still listened on by a process of the run. A port the run freed may be taken
    at once by another program on a shared machine; that does not count."""
    held = []
    for port in sorted(ports):
        if port_free(port):
            continue
        for pid in listener_pids(port):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if pid in run_pids or str(run_dir) in cmdline:
                held.append(port)
    return held


def proxy_listing(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/proxies", timeout=3) as reply:
        listing: dict[str, Any] = json.loads(reply.read().decode())
    return listing


def ports_of(listing: dict[str, Any]) -> set[int]:
    ports = set()
    for proxy in listing.values():
        for key in ("listen", "upstream"):
            ports.add(int(str(proxy[key]).rsplit(":", 1)[1]))
    return ports


class RunProcess:
    """``tradechaos run`` in the background; its stderr lines are collected as they come."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chaos", "run", *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)

    def wait_for(self, marker: str, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            self.seen.append(line)
            if marker in line:
                return line
        raise AssertionError(f"no {marker!r} in the progress lines:\n{''.join(self.seen[-30:])}")

    def send(self, signum: int) -> None:
        os.kill(self.proc.pid, signum)

    def finish(self, timeout: float = 120.0) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def stop_everything(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def only_run_dir(out: Path) -> Path:
    dirs = [d for d in out.iterdir() if d.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def state_of(run_dir: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((run_dir / "state.json").read_text())
    return state
