"""The proxy's HTTP API as a real process: status codes, error bodies, process lifecycle.

The API tests run against both servers (``[ours]`` and ``[real]``, the real Toxiproxy
2.12.0; see proxy_servers.py); the process and command-line tests are about ours only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from proxy_servers import HEADERS, ToxiproxyServer, clean
from proxy_servers import is_real as is_real  # a fixture
from proxy_servers import toxiproxy_server as toxiproxy_server  # a fixture
from tcp_servers import BackgroundServer, ProxyProcess

from chaos.errors import ProxyError
from chaos.proxy.client import ToxiproxyClient

pytestmark = pytest.mark.integration


@pytest.fixture
def client(toxiproxy_server: ToxiproxyServer) -> Iterator[ToxiproxyClient]:
    with ToxiproxyClient(toxiproxy_server.url, timeout_s=5.0) as api:
        yield api
    clean(toxiproxy_server.url)


def _post(url: str, body: str | bytes) -> requests.Response:
    return requests.post(url, data=body, headers=HEADERS, timeout=5)


BODY = "bad request body: "
T = "/proxies/base/toxics"
BAD_REQUESTS = [
    # (method, path, body, status, the error text: Toxiproxy's, or its start when it ends ":")
    ("POST", "/proxies", "{not json", 400, BODY),
    ("POST", "/proxies", "", 400, BODY + "EOF"),
    ("POST", "/proxies", '{"upstream": "127.0.0.1:1"}', 400, "missing required field: name"),
    ("POST", "/proxies", '{"name": "x"}', 400, "missing required field: upstream"),
    ("POST", "/proxies", '{"name": "base", "upstream": "1"}', 409, "proxy already exists"),
    (
        "POST",
        "/proxies",
        '{"name": "x", "upstream": "127.0.0.1:1", "listen": "local373"}',
        500,
        "listen tcp: address local373: missing port in address",
    ),
    ("POST", "/populate", '{"name": "p"}', 400, BODY),
    ("POST", "/populate", '[{"upstream": "1"}]', 400, "missing required field: name at proxy 1"),
    ("GET", "/proxies/unknown", "", 404, "proxy not found"),
    ("DELETE", "/proxies/unknown", "", 404, "proxy not found"),
    ("POST", "/proxies/unknown", "{}", 404, "proxy not found"),
    ("POST", "/proxies/unknown/toxics", '{"type": "latency"}', 404, "proxy not found"),
    ("POST", T, "[1,", 400, BODY),
    ("POST", T, '{"type": "explode"}', 400, "invalid toxic type"),
    (
        "POST",
        T,
        '{"type": "latency", "stream": "sideways"}',
        400,
        "stream was invalid, can be either upstream or downstream",
    ),
    ("POST", T, '{"type": "bandwidth", "attributes": {"rate": "fast"}}', 400, BODY),
    ("POST", T, '{"type": "latency", "attributes": {"latency": 1.5}}', 400, BODY),
    ("POST", T, '{"type": "timeout"}', 409, "toxic already exists"),
    ("GET", T + "/unknown", "", 404, "toxic not found"),
    ("PATCH", T + "/unknown", "{}", 404, "toxic not found"),
    ("DELETE", T + "/unknown", "", 404, "toxic not found"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "error"), BAD_REQUESTS)
def test_bad_requests_get_toxiproxy_codes_and_errors(
    toxiproxy_server: ToxiproxyServer,
    client: ToxiproxyClient,
    method: str,
    path: str,
    body: str,
    status: int,
    error: str,
) -> None:
    client.create("base", "127.0.0.1:0", "127.0.0.1:1")
    client.add_toxic("base", "timeout_downstream", "timeout")
    response = requests.request(
        method, toxiproxy_server.url + path, data=body, headers=HEADERS, timeout=5
    )
    assert response.status_code == status
    answer = response.json()  # JSON, though Go's http.Error serves it as text/plain
    assert answer["status"] == status
    if error.endswith(": "):
        assert answer["error"].startswith(error) and len(answer["error"]) > len(error)
    else:
        assert answer["error"] == error
    expected_type = "application/json" if path == "/populate" else "text/plain; charset=utf-8"
    assert response.headers["Content-Type"] == expected_type
    assert client.version() == "2.12.0"  # still serving


def test_unknown_routes_and_methods(toxiproxy_server: ToxiproxyServer) -> None:
    url = toxiproxy_server.url
    missing = requests.get(url + "/no/such/route", headers=HEADERS, timeout=5)
    assert (missing.status_code, missing.text) == (404, "404 page not found\n")
    assert "X-Toxiproxy-Request-Id" not in missing.headers
    wrong = requests.put(url + "/proxies", headers=HEADERS, timeout=5)
    assert (wrong.status_code, wrong.text) == (405, "")
    known = requests.get(url + "/proxies", headers=HEADERS, timeout=5)
    assert len(known.headers["X-Toxiproxy-Request-Id"]) == 20


def test_browsers_are_refused(toxiproxy_server: ToxiproxyServer) -> None:
    response = requests.get(
        toxiproxy_server.url + "/proxies", headers={"User-Agent": "Mozilla/5.0"}, timeout=5
    )
    assert response.status_code == 403
    assert response.text == "User agent not allowed\n"


def test_version(toxiproxy_server: ToxiproxyServer) -> None:
    response = requests.get(toxiproxy_server.url + "/version", headers=HEADERS, timeout=5)
    assert response.text == '{"version": "2.12.0"}\n'
    assert response.headers["Content-Type"] == "application/json;charset=utf-8"


def test_shapes_and_defaults(client: ToxiproxyClient, is_real: bool) -> None:
    with BackgroundServer("echo") as echo:
        created = client.create("shape", "127.0.0.1:0", f"127.0.0.1:{echo.port}")
        assert set(created) - {"Logger"} == {"name", "listen", "upstream", "enabled", "toxics"}
        assert created["enabled"] is True and created["toxics"] == []
        toxic = client.add_toxic("shape", "", "latency", attributes={"latency": 5})
        assert toxic == {
            "name": "latency_downstream",
            "type": "latency",
            "stream": "downstream",
            "toxicity": 1.0,
            "attributes": {"latency": 5, "jitter": 0},
        }
        assert client.toxics("shape") == [toxic]
        assert client.get("shape")["toxics"] == [toxic]
        assert client.proxies()["shape"]["toxics"] == [toxic]
        if is_real:
            with pytest.raises(ProxyError, match="does not support stats"):
                client.stats("shape")
            return
        stats = client.stats("shape")  # a tradechaos extension
        assert set(stats) == {
            "connections_total",
            "connections_active",
            "bytes_upstream",
            "bytes_downstream",
            "refused",
            "resets",
            "toxics",
        }
        assert stats["toxics"] == {"latency_downstream": 0}


def test_status_codes_of_successes(
    toxiproxy_server: ToxiproxyServer, client: ToxiproxyClient
) -> None:
    url = toxiproxy_server.url
    body = json.dumps({"name": "codes", "upstream": "127.0.0.1:1"})
    assert _post(url + "/proxies", body).status_code == 201
    toxic = json.dumps({"type": "slicer", "attributes": {"average_size": 10}})
    assert _post(url + "/proxies/codes/toxics", toxic).status_code == 200
    update = json.dumps({"attributes": {"delay": 5}})
    updated = _post(url + "/proxies/codes/toxics/slicer_downstream", update)
    assert updated.status_code == 200
    assert updated.json()["attributes"] == {"average_size": 10, "size_variation": 0, "delay": 5}
    removed = requests.delete(
        url + "/proxies/codes/toxics/slicer_downstream", headers=HEADERS, timeout=5
    )
    assert removed.status_code == 204
    populated = _post(url + "/populate", "[]")
    assert (populated.status_code, populated.json()) == (201, {"proxies": None})
    assert client.populate([]) == []
    assert _post(url + "/reset", "").status_code == 204
    assert requests.delete(url + "/proxies/codes", headers=HEADERS, timeout=5).status_code == 204


def test_refused_upstream_closes_the_client(client: ToxiproxyClient, is_real: bool) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead_port = unused.getsockname()[1]
    proxy = client.create("dead", "127.0.0.1:0", f"127.0.0.1:{dead_port}")
    host, _, port = proxy["listen"].rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.settimeout(5)
        assert sock.recv(10) == b""
    if not is_real:
        assert client.stats("dead")["refused"] == 1


def test_client_errors_are_one_sentence(client: ToxiproxyClient) -> None:
    with pytest.raises(ProxyError, match="404 proxy not found"):
        client.get("ghost")
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with ToxiproxyClient(f"http://127.0.0.1:{port}", timeout_s=1.0) as nobody:
        with pytest.raises(ProxyError, match="did not answer"):
            nobody.version()
        with pytest.raises(ProxyError, match="not ready within"):
            nobody.wait_ready(0.3)


# -- our proxy's process and command line ------------------------------------------------------


def test_sigterm_stops_cleanly_and_closes_connections(tmp_path: Path) -> None:
    with BackgroundServer("echo") as echo, ProxyProcess() as process:
        api = ToxiproxyClient(process.url)
        api.wait_ready(5)
        proxy = api.create("term", "127.0.0.1:0", f"127.0.0.1:{echo.port}")
        host, _, port = proxy["listen"].rpartition(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"x")
            assert sock.recv(1) == b"x"
            os.kill(process.pid, signal.SIGTERM)
            os.kill(process.pid, signal.SIGTERM)  # a repeated signal is harmless
            assert process.stop() == 0  # (stop() sends a third)
            sock.settimeout(5)
            with contextlib.suppress(ConnectionResetError):  # closed: FIN or RST
                assert sock.recv(1) == b""
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((host, int(port)), timeout=5)


def test_cli_serves_and_stops_on_sigint(tmp_path: Path) -> None:
    port_file = tmp_path / "api.port"
    process = subprocess.Popen(
        [sys.executable, "-m", "chaos", "proxy", "--port", "0", "--port-file", str(port_file)],
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while not port_file.exists():
            assert process.poll() is None and time.monotonic() < deadline, "did not start"
            time.sleep(0.02)
        with ToxiproxyClient(f"http://127.0.0.1:{int(port_file.read_text())}") as api:
            assert api.version() == "2.12.0"
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        assert process.stderr is not None
        process.stderr.close()


def test_cli_rejects_bad_port_and_busy_port() -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "chaos", "proxy", "--port", "70000"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2
    assert "not a port number" in bad.stderr and "Traceback" not in bad.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = subprocess.run(
            [sys.executable, "-m", "chaos", "proxy", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert taken.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in taken.stderr
    assert "Traceback" not in taken.stderr


def test_cli_refuses_a_non_loopback_api_host_without_allow_remote() -> None:
    """The API is unauthenticated: it must not listen beyond 127.0.0.0/8 by accident."""
    refused = subprocess.run(
        [sys.executable, "-m", "chaos", "proxy", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 2
    assert "not a loopback address" in refused.stderr and "--allow-remote" in refused.stderr
    assert "Traceback" not in refused.stderr
