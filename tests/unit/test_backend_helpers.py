"""Command placeholders, wait strategies, process identity and the backend factory."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.backends.base import Endpoint
from chaos.backends.factory import make_backend
from chaos.backends.health import HttpWait, NotReady, TcpWait, wait_ready
from chaos.backends.placeholders import Placeholders
from chaos.errors import StackError, UsageError
from chaos.host import ports, processes
from chaos.host.runs import RunFolder
from chaos.stackfile.definition import StackDefinition


def placeholders(tmp_path: Path) -> Placeholders:
    return Placeholders(
        python="/usr/bin/python3",
        port=4000,
        run_dir=tmp_path,
        data_dir=tmp_path / "data" / "db",
        params={"seed": "7", "run_id": "r1"},
        toxiproxy_url="http://127.0.0.1:8474",
        links={"api-db": Endpoint("127.0.0.1", 5000)},
        services={"db": Endpoint("127.0.0.1", 4001)},
    )


def test_placeholders_fill_every_documented_name(tmp_path: Path) -> None:
    fill = placeholders(tmp_path)
    argv = fill.argv(
        (
            "{python}",
            "--listen={host}:{port}",
            "--db",
            "{link:api-db}",
            "--direct",
            "{service:db}",
            "{run_dir}/x",
            "{data_dir}",
            "{seed}-{epoch}-{mitigations}-{run_id}",
            "{toxiproxy_url}",
        )
    )
    assert argv == [
        "/usr/bin/python3",
        "--listen=127.0.0.1:4000",
        "--db",
        "127.0.0.1:5000",
        "--direct",
        "127.0.0.1:4001",
        f"{tmp_path}/x",
        str(tmp_path / "data" / "db"),
        "7-1-all-r1",  # epoch and mitigations take their defaults
        "http://127.0.0.1:8474",
    ]
    assert fill.fill("{pg_bin}").endswith("pginstall/bin")


def test_placeholders_leave_other_braces_and_reject_unknown_links(tmp_path: Path) -> None:
    fill = placeholders(tmp_path)
    assert fill.fill("print({x: 1}, {}, '{port_x}')") == "print({x: 1}, {}, '{port_x}')"
    with pytest.raises(StackError, match=r"unknown link 'api-dbx'.*known: api-db"):
        fill.fill("{link:api-dbx}")
    with pytest.raises(StackError, match="unknown service 'nope'"):
        fill.fill("{service:nope}")


@pytest.fixture
def http_server() -> Iterator[tuple[Endpoint, list[int]]]:
    status = [503]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status[0])
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"no")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Endpoint("127.0.0.1", server.server_address[1]), status
    server.shutdown()
    server.server_close()


def test_http_wait_times_out_naming_what_it_waited_for(
    http_server: tuple[Endpoint, list[int]],
) -> None:
    endpoint, _ = http_server
    started = time.monotonic()
    with pytest.raises(NotReady) as caught:
        wait_ready(HttpWait(endpoint, "/health"), timeout_s=0.3, interval_s=0.02)
    assert 0.3 <= time.monotonic() - started < 2.0
    assert f"GET {endpoint.url}/health to answer 200" in str(caught.value)
    assert "HTTP 503 no" in str(caught.value) and not caught.value.exited


def test_http_wait_returns_once_healthy(http_server: tuple[Endpoint, list[int]]) -> None:
    endpoint, status = http_server
    threading.Timer(0.2, lambda: status.__setitem__(0, 200)).start()
    waited = wait_ready(HttpWait(endpoint, "/health"), timeout_s=5.0, interval_s=0.02)
    assert 0.15 <= waited < 2.0


def test_wait_stops_early_when_the_process_exits() -> None:
    port = ports.free_port()
    started = time.monotonic()
    with pytest.raises(NotReady) as caught:
        wait_ready(TcpWait(Endpoint("127.0.0.1", port)), timeout_s=10.0, alive=lambda: False)
    assert caught.value.exited and time.monotonic() - started < 1.0


def test_process_identity_uses_the_start_time() -> None:
    me = os.getpid()
    mine = processes.start_time(me)
    assert mine is not None and processes.is_same_process(me, mine)
    assert not processes.is_same_process(me, mine + 1)
    assert processes.start_time(2**22 + 12345) is None  # beyond pid_max: no such process
    assert processes.proc_state(me) in ("R", "S")


def test_factory_rejects_unknown_backends(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path, "x", "v")
    definition = StackDefinition("empty", (), ())
    with pytest.raises(UsageError, match="unknown backend 'k8s'"):
        make_backend("k8s", definition, run, {})
    backend = make_backend("process", definition, run, {}, embedded_proxy=False)
    assert backend.name == "process"


HOLDER = """
import sys
from chaos.host import ports
port = ports.free_port()
print(port, flush=True)
sys.stdin.read()  # hold the claim until the test closes our stdin
"""


def test_a_port_claimed_by_another_process_is_never_handed_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two runners side by side (``run --jobs``): a port another live process chose is not
    chosen here even when nothing listens on it; the claim dies with that process."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        taken = int(holder.stdout.readline())
        assert ports.is_listening(taken) is False  # chosen, not bound: only the claim guards it
        assert ports.claim(taken) is False
        spare = ports.free_port()
        ports.release(spare)
        draws = iter([taken, taken, spare])
        monkeypatch.setattr(ports._rng, "randint", lambda lo, hi: next(draws))
        assert ports.free_port() == spare
        ports.release(spare)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    assert ports.claim(taken) is True  # the holder exited: its claim went with it
    ports.unclaim(taken)


def test_image_builds_wait_for_each_other(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes building the stack image at once (``run --jobs 2 --backend docker``):
    the second waits for the first's lock, and gives up with one sentence at the deadline."""
    from chaos.backends import images
    from chaos.errors import InfrastructureError

    lock_path = tmp_path / ".wheelhouse" / ".build.lock"
    lock_path.parent.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    said: list[str] = []
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(images, "LOCK_TIMEOUT_S", 0.3)
        with (
            pytest.raises(InfrastructureError, match=r"has held .*build\.lock for 0 s"),
            images._build_lock(tmp_path, said.append),
        ):
            pass
        assert said == ["images: another tradechaos process is building; waiting for it"]
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    with images._build_lock(tmp_path, said.append):
        pass  # the holder is gone: the lock is free at once
    assert len(said) == 1


HOLD_LOCK = """
import fcntl, sys
lock = open(sys.argv[1], "a+b")
fcntl.flock(lock, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


def test_docker_shared_tmp_is_made_once_from_many_threads(tmp_path: Path) -> None:
    """Setup containers start from several threads at once; each asks for the run's /tmp."""
    from chaos.backends.docker import DockerBackend

    run = RunFolder.create(tmp_path, "x", "v")
    backend = DockerBackend(StackDefinition("empty", (), ()), run, image="x")
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def make() -> None:
        barrier.wait(timeout=10)
        try:
            backend._shared_tmp()
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert errors == []
    made = [d for d in run.state().data_dirs if d.endswith("/.tmp")]
    assert len(made) == 1
