"""The real Toxiproxy server (Shopify's, 2.12.0) as a child process, for side-by-side tests
and benchmarks of the embedded proxy (docs/proxy.md).

``find_server()`` looks for ``toxiproxy-server`` at ``$TRADECHAOS_REAL_TOXIPROXY`` when that
is set, else at the path where ``build-real-toxiproxy.sh`` installs it
(``~/.cache/tradechaos/toxiproxy-2.12.0/toxiproxy-server``); ``missing_reason()`` says in
one sentence why there is none. ``RealToxiproxy(path)`` starts it on a free 127.0.0.1 port
(``-host 127.0.0.1 -port N``; another port if that one was taken meanwhile), waits until
``GET /version`` answers 2.12.0 (polling, with a timeout), and on exit sends SIGTERM, waits
``grace_s``, then SIGKILL, and always reaps it. Its log goes to a temporary file, quoted
when it fails to start.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from tcp_servers import ChildServer

ENV = "TRADECHAOS_REAL_TOXIPROXY"
VERSION = "2.12.0"
BUILD_HINT = "build it with ../shared/tools/build-real-toxiproxy.sh or set " + ENV


def standard_path() -> Path:
    return Path.home() / ".cache" / "tradechaos" / f"toxiproxy-{VERSION}" / "toxiproxy-server"


def _candidate() -> Path:
    configured = os.environ.get(ENV, "").strip()
    return Path(configured) if configured else standard_path()


def find_server() -> Path | None:
    """The real ``toxiproxy-server`` to use, or None (see ``missing_reason``)."""
    path = _candidate()
    return path if path.is_file() and os.access(path, os.X_OK) else None


def missing_reason() -> str:
    path = _candidate()
    where = f"${ENV}={path}" if os.environ.get(ENV, "").strip() else str(path)
    return f"no real Toxiproxy {VERSION} server at {where} ({BUILD_HINT})"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RealToxiproxy(ChildServer):
    """``toxiproxy-server`` as a child process on 127.0.0.1; ``url`` once entered."""

    kind = "real"

    def __init__(
        self,
        path: Path,
        *,
        start_timeout_s: float = 15.0,
        grace_s: float = 5.0,
        attempts: int = 5,
        log_level: str | None = None,
    ) -> None:
        super().__init__(grace_s, "tradechaos-real-toxiproxy-")
        self.path = path
        self.start_timeout_s = start_timeout_s
        self.attempts = attempts
        self.log_level = log_level
        self.log = Path(self._dir.name) / "toxiproxy.log"

    def __enter__(self) -> RealToxiproxy:
        try:
            for _ in range(self.attempts):
                if self._start_once(_free_port()):
                    return self
            raise RuntimeError(
                f"the real Toxiproxy at {self.path} did not start in {self.attempts} attempts; "
                f"last lines of its log:\n{self.log_tail()}"
            )
        except BaseException:
            self.stop()
            raise

    def _start_once(self, port: int) -> bool:
        """Start on ``port``; True once ready, False when it exited (port taken meanwhile)."""
        env = dict(os.environ)
        if self.log_level:
            env["LOG_LEVEL"] = self.log_level
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.path), "-host", "127.0.0.1", "-port", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
            )
        self.port = port
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            version = self._version()
            if version is not None:
                if version != VERSION:
                    raise RuntimeError(f"{self.path} is Toxiproxy {version}, not {VERSION}")
                return True
            if self.process.poll() is not None:
                self.process.wait()
                self.process = None
                return False
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"the real Toxiproxy did not answer GET {self.url}/version within "
                    f"{self.start_timeout_s:g} s; last lines of its log:\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def _version(self) -> str | None:
        request = urllib.request.Request(
            self.url + "/version", headers={"User-Agent": "tradechaos"}
        )
        try:
            with urllib.request.urlopen(request, timeout=1.0) as response:
                return str(json.loads(response.read())["version"])
        except (OSError, ValueError, KeyError, urllib.error.URLError):
            return None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
