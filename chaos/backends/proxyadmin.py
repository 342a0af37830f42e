"""The proxy side of the backends: the embedded proxy process (``EmbeddedProxy``) and the
calls the backends make (``ProxyAdmin``: create, update, delete a link's proxy), on top of
the typed ``chaos.proxy.client.ToxiproxyClient``: the embedded proxy and a real Toxiproxy
alike.

Adds what a backend needs beyond the plain API: ``create`` replaces a leftover proxy of the
same name (a crashed run's, on an external Toxiproxy) and returns where the proxy really
listens (``listen: 127.0.0.1:0`` lets the proxy choose); ``delete`` of a missing proxy is not
an error. Every call has a timeout; failures raise ``ProxyError`` in one sentence.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from chaos.backends.base import Endpoint
from chaos.errors import StackError
from chaos.host import processes
from chaos.proxy.client import ToxiproxyClient, ToxiproxyError

REQUEST_TIMEOUT_S = 5.0


def _endpoint(listen: str) -> Endpoint:
    host, _, port = listen.rpartition(":")
    return Endpoint(host.strip("[]") or "127.0.0.1", int(port))


class ProxyAdmin:
    def __init__(self, url: str) -> None:
        self.client = ToxiproxyClient(url, timeout_s=REQUEST_TIMEOUT_S)
        self.url = self.client.url

    def wait_ready(self, timeout_s: float) -> None:
        """Poll the API until it answers; ProxyError at the timeout."""
        self.client.wait_ready(timeout_s)

    def create(self, name: str, listen: str, upstream: str) -> Endpoint:
        """Create proxy ``name`` (replacing a leftover of that name); return where it listens."""
        try:
            created = self.client.create(name, listen, upstream)
        except ToxiproxyError as err:
            if err.status != 409:
                raise
            self.delete(name)
            created = self.client.create(name, listen, upstream)
        endpoint = _endpoint(str(created["listen"]))
        if endpoint.port == 0:
            endpoint = _endpoint(str(self.client.get(name)["listen"]))
        return endpoint

    def update(self, name: str, **fields: Any) -> None:
        self.client.update(name, **fields)

    def delete(self, name: str) -> None:
        """Delete proxy ``name``; a proxy that does not exist is not an error."""
        try:
            self.client.delete(name)
        except ToxiproxyError as err:
            if err.status != 404:
                raise

    def close(self) -> None:
        self.client.close()


class EmbeddedProxy:
    """The embedded proxy as a child process of this backend (``python -m chaos.proxy``).

    ``spawn`` returns at once (so that slow setup work can overlap the proxy's start);
    ``connect`` waits for the port file and the API and returns a ``ProxyAdmin``; ``stop``
    terminates and reaps it. Spawned by ``chaos.host.processes``: own process group, dies with us.
    """

    def __init__(self, python: str, run_dir: Path, log: Path, host: str = "127.0.0.1") -> None:
        self.python = python
        self.port_file = run_dir / "proxy.port"
        self.log = log
        self.host = host
        self.cwd = run_dir
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> subprocess.Popen[bytes]:
        argv = [
            self.python,
            "-m",
            "chaos.proxy",
            "--host",
            self.host,
            "--port",
            "0",
            "--port-file",
            str(self.port_file),
        ]
        try:
            self.proc = processes.spawn(argv, self.log, cwd=self.cwd)
        except OSError as err:
            raise StackError(f"the embedded proxy could not be started: {err}") from None
        return self.proc

    def connect(self, timeout_s: float) -> ProxyAdmin:
        """Wait until the proxy reported its port and answers; StackError/ProxyError if not."""
        assert self.proc is not None, "spawn() first"
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                text = self.port_file.read_text().strip()
                if text:
                    break
            except FileNotFoundError:
                pass
            exited = self.proc.poll() is not None
            if exited or time.monotonic() >= deadline:
                what = f"exited with {self.proc.returncode}" if exited else "timed out"
                raise StackError(
                    f"the embedded proxy did not report its port in {self.port_file} ({what}); "
                    f"last lines of {self.log}:\n{processes.log_tail(self.log, 30)}"
                )
            time.sleep(0.02)
        admin = ProxyAdmin(f"http://{self.host}:{int(text)}")
        admin.wait_ready(max(deadline - time.monotonic(), 1.0))
        return admin

    def stop(self, grace_s: float = 2.0) -> None:
        if self.proc is not None:
            processes.terminate(self.proc, grace_s=grace_s)
