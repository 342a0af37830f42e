"""A small HTTP control API over a running backend, for processes that do not own it.

``tradechaos stack up`` serves it (address in ``current-stack.json`` as ``control_url``) so
that ``tradechaos fault`` in another shell can ask the owner to start or restart a service,
which only the owner can do (it holds the processes, the ports and the run's state).
Listens on 127.0.0.1 only.

    GET  /status                          -> [{"name","running","healthy","pid","endpoint","site"}]
    POST /services/{name}/{op}  {params}  -> {"ok": true, "pid": int|null}
         op: start {timeout_s} | stop {grace_s} | kill | restart {downtime_s, timeout_s}
             | pause | resume | throttle {cpu_fraction|null} | signal {signum}
             | wait_healthy {timeout_s}
    POST /links/{name}/upstream {"upstream": "host:port"} -> {"ok": true}

Errors answer 400 (bad input: unknown service, bad parameter) or 500 (the operation
failed) with ``{"error": "one sentence"}``; ``ControlClient`` raises them as ``BadInput`` /
``StackError``. Every client request has a timeout.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable
from typing import Any

from chaos.backends.base import Backend, Endpoint
from chaos.errors import BadInput, ChaosError, StackError

HOST = "127.0.0.1"


def _endpoint(text: str) -> Endpoint:
    host, _, port = str(text).rpartition(":")
    return Endpoint(host or HOST, int(port))


def _operations(backend: Backend) -> dict[str, Callable[..., None]]:
    return {
        "start": lambda s, timeout_s=30.0: backend.start(s, float(timeout_s)),
        "stop": lambda s, grace_s=None: backend.stop(
            s, None if grace_s is None else float(grace_s)
        ),
        "kill": lambda s: backend.kill(s),
        "restart": lambda s, downtime_s=0.0, timeout_s=30.0: backend.restart(
            s, float(downtime_s), float(timeout_s)
        ),
        "pause": lambda s: backend.pause(s),
        "resume": lambda s: backend.resume(s),
        "throttle": lambda s, cpu_fraction=None: backend.throttle(
            s, None if cpu_fraction is None else float(cpu_fraction)
        ),
        "signal": lambda s, signum: backend.signal(s, int(signum)),
        "wait_healthy": lambda s, timeout_s=30.0: backend.wait_healthy(s, float(timeout_s)),
    }


class ControlServer:
    """Serves the control API for ``backend`` in a daemon thread until ``close()``."""

    def __init__(self, backend: Backend, host: str = HOST, port: int = 0) -> None:
        self.backend = backend
        operations = _operations(backend)
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path != "/status":
                    self._answer(404, {"error": f"no such resource {self.path}"})
                    return
                self._answer(200, owner.status())

            def do_POST(self) -> None:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                    params = json.loads(self.rfile.read(length) or b"{}") if length else {}
                    if not isinstance(params, dict):
                        raise BadInput("the request body must be a JSON object")
                    self._answer(200, owner.dispatch(self.path, params, operations))
                except (BadInput, TypeError, ValueError) as err:
                    self._answer(400, {"error": str(err)})
                except ChaosError as err:
                    self._answer(500, {"error": str(err)})

        self._server = http.server.ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="tradechaos-control", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def status(self) -> list[dict[str, Any]]:
        return [
            {
                "name": s.name,
                "running": s.running,
                "healthy": s.healthy,
                "pid": s.pid,
                "endpoint": str(s.endpoint) if s.endpoint else None,
                "site": s.site,
            }
            for s in self.backend.status()
        ]

    def dispatch(
        self, path: str, params: dict[str, Any], operations: dict[str, Callable[..., None]]
    ) -> dict[str, Any]:
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "services":
            service, op = parts[1], parts[2]
            if op not in operations:
                raise BadInput(f"unknown operation {op!r} (known: {', '.join(operations)})")
            operations[op](service, **params)
            return {"ok": True, "pid": self.backend.pid(service)}
        if len(parts) == 3 and parts[0] == "links" and parts[2] == "upstream":
            self.backend.set_link_upstream(parts[1], _endpoint(params["upstream"]))
            return {"ok": True}
        raise BadInput(f"no such resource {path}")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)


class ControlClient:
    """Calls a ``ControlServer`` (e.g. the one named by ``current-stack.json``)."""

    def __init__(self, url: str, timeout_s: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        import requests  # lazy: heavy import

        try:
            response = requests.request(method, self.url + path, json=body, timeout=self.timeout_s)
        except requests.RequestException as err:
            raise StackError(f"the stack owner at {self.url} is unreachable ({err})") from None
        answer = response.json() if response.content else {}
        if response.status_code == 400:
            raise BadInput(str(answer.get("error", response.text)))
        if response.status_code >= 300:
            raise StackError(str(answer.get("error", response.text)))
        return answer

    def status(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._request("GET", "/status")
        return result

    def call(self, service: str, op: str, **params: Any) -> int | None:
        """Run ``op`` on ``service`` in the owner; returns the service's pid afterwards."""
        answer = self._request("POST", f"/services/{service}/{op}", params)
        pid = answer.get("pid")
        return int(pid) if pid is not None else None

    def set_link_upstream(self, link: str, upstream: Endpoint) -> None:
        self._request("POST", f"/links/{link}/upstream", {"upstream": str(upstream)})
