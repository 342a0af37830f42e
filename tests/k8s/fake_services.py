"""Stand-in HTTP services for the tests of `tradechaos step` (tests/k8s)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeService:
    """A stand-in for the feeds and the sequencer (their admin HTTP API only): a snapshot
    is answered with where the log and the chain stand (seq 42, height 7)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.mode = "normal"
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, body: Any, status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"null")

            def do_GET(self) -> None:
                outer.calls.append(("GET", self.path, None))
                if self.path == "/mode":
                    self._answer({"mode": outer.mode})
                else:
                    self._answer({"status": "ok", "venues": []})

            def do_POST(self) -> None:
                body = self._body()
                outer.calls.append(("POST", self.path, body))
                if self.path == "/admin/mode":
                    outer.mode = body["mode"]
                if self.path == "/admin/snapshot":
                    self._answer({"snapshot": body["label"], "seq": 42, "chain_height": 7})
                elif self.path == "/admin/rollback":
                    self._answer({"rollback": 1, "to_seq": body["seq"]})
                else:
                    self._answer({"id": "fault-1"})

            def do_DELETE(self) -> None:
                outer.calls.append(("DELETE", self.path, None))
                self._answer({})

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/health"

    def posted(self, path: str) -> list[Any]:
        return [body for method, p, body in self.calls if method == "POST" and p == path]

    def start(self) -> FakeService:
        self.thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
