"""The process backend against a tiny fake stack of real processes (no reference stack).

Run as a script, this file is the fake service: ``python test_process_backend.py serve
--name N --port P [--requires HOST:PORT] [--burn] [--fail] [--unhealthy] [--grandchild]
[--ignore-term]``.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TypedDict, Unpack

FAKE = Path(__file__).resolve()


# --------------------------------------------------------------------------- fake service
def _serve(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--requires", default=None, help="host:port that must be healthy")
    parser.add_argument("--burn", action="store_true")
    parser.add_argument("--fail", action="store_true")
    parser.add_argument("--unhealthy", action="store_true")
    parser.add_argument("--grandchild", action="store_true")
    parser.add_argument("--ignore-term", action="store_true")
    args = parser.parse_args(argv)
    print(f"{args.name} starting", flush=True)
    if args.fail:
        print(f"{args.name}: boom, configuration missing", flush=True)
        raise SystemExit(1)
    if args.requires:
        url = f"http://{args.requires}/health"
        with urllib.request.urlopen(url, timeout=2) as response:  # raises if not up
            assert response.status == 200
    if args.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if args.grandchild:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print(f"grandchild {child.pid}", flush=True)
    if args.burn:
        threading.Thread(target=lambda: [None for _ in iter(int, 1)], daemon=True).start()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path != "/health" or not args.unhealthy
            body = json.dumps({"name": args.name, "pid": os.getpid()}).encode()
            self.send_response(200 if ok else 503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *a: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"{args.name} listening on {args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    _serve(sys.argv[2:])
    raise SystemExit(0)

# --------------------------------------------------------------------------- tests
import pytest  # noqa: E402

from chaos.backends.base import Endpoint  # noqa: E402
from chaos.backends.process import ProcessBackend  # noqa: E402
from chaos.errors import StackError  # noqa: E402
from chaos.host import ports, processes  # noqa: E402
from chaos.host.runs import RunFolder, load_state  # noqa: E402
from chaos.stackfile.definition import HealthCheck, LinkSpec, ServiceSpec, StackDefinition  # noqa: E402

pytestmark = pytest.mark.integration


class FakeOptions(TypedDict, total=False):
    """The ServiceSpec fields a test sets on a fake service."""

    health: HealthCheck
    depends_on: tuple[str, ...]
    site: str
    setup: tuple[tuple[str, ...], ...]
    after_healthy: tuple[tuple[str, ...], ...]
    optional: bool
    stop_grace_s: float


def fake(name: str, *flags: str, **kw: Unpack[FakeOptions]) -> ServiceSpec:
    command = ("{python}", str(FAKE), "serve", "--name", name, "--port", "{port}", *flags)
    kw.setdefault("health", HealthCheck(timeout_s=15.0))
    kw.setdefault("stop_grace_s", 2.0)
    return ServiceSpec(name=name, command=command, **kw)


def two_services(*b_flags: str, links: bool = False) -> StackDefinition:
    """``api`` depends on ``db``, and at start refuses to run unless ``db`` is healthy.
    ``api`` is listed first, so only dependency ordering makes the start succeed."""
    # a setup that needs a link runs only once the proxy is up
    link_setup = (
        (
            "{python}",
            "-c",
            "import sys; open(sys.argv[1], 'w').write(sys.argv[2])",
            "{run_dir}/api-link.txt",
            "{link:api-db}",
        ),
    )
    api = fake(
        "api",
        "--requires",
        "{service:db}",
        *b_flags,
        depends_on=("db",),
        site="a",
        setup=link_setup if links else (),
    )
    db = fake(
        "db",
        "--grandchild",
        site="core",
        setup=(
            (
                "{python}",
                "-c",
                "import sys; open(sys.argv[1], 'a').write('setup\\n')",
                "{data_dir}/setup.txt",
            ),
        ),
        after_healthy=(
            (
                "{python}",
                "-c",
                "import sys; open(sys.argv[1], 'a').write('x\\n')",
                "{run_dir}/after_healthy.txt",
            ),
        ),
    )
    link_specs = (LinkSpec("api-db", "api", "db"), LinkSpec("clients-api", "clients", "api"))
    return StackDefinition("fake", (api, db), link_specs if links else ())


@pytest.fixture
def run(tmp_path: Path) -> RunFolder:
    return RunFolder.create(tmp_path / "runs", "fake", "test")


@pytest.fixture
def backend(run: RunFolder) -> Iterator[ProcessBackend]:
    be = ProcessBackend(two_services(), run, {"seed": "7"}, embedded_proxy=False)
    be.start_stack()
    try:
        yield be
    finally:
        be.stop_stack()


def get_json(endpoint: Endpoint, path: str = "/") -> dict[str, object]:
    with urllib.request.urlopen(endpoint.url + path, timeout=3) as response:
        result: dict[str, object] = json.loads(response.read())
        return result


def grandchild_pid(run: RunFolder, service: str) -> int:
    for line in run.log_path(service).read_text().splitlines():
        if line.startswith("grandchild "):
            return int(line.split()[1])
    raise AssertionError(f"no grandchild line in {service}.log")


def cpu_share(pid: int, window_s: float = 1.0) -> float:
    before = processes.cpu_seconds(pid)
    time.sleep(window_s)
    after = processes.cpu_seconds(pid)
    assert before is not None and after is not None
    return (after - before) / window_s


def test_starts_in_dependency_order_and_records_state(
    backend: ProcessBackend, run: RunFolder
) -> None:
    statuses = {s.name: s for s in backend.status()}
    assert statuses["db"].healthy and statuses["api"].healthy
    assert get_json(backend.endpoint("api"))["name"] == "api"
    state = load_state(run.path)
    assert state.status == "running"
    recorded = {p.service: p for p in state.processes}
    assert set(recorded) == {"api", "db"}
    db_pid = backend.pid("db")
    assert db_pid is not None
    assert recorded["db"].pid == recorded["db"].pgid == db_pid
    assert recorded["db"].start_time == processes.start_time(db_pid)
    assert (run.data_dir("db") / "setup.txt").read_text() == "setup\n"
    assert (run.path / "after_healthy.txt").read_text() == "x\n"
    assert "db listening" in backend.logs("db")


def test_stop_stack_leaves_no_process_port_or_data(run: RunFolder) -> None:
    backend = ProcessBackend(two_services(), run, embedded_proxy=False)
    backend.start_stack()
    pids = [backend.pid("api"), backend.pid("db"), grandchild_pid(run, "db")]
    endpoints = [backend.endpoint("api"), backend.endpoint("db")]
    backend.pause("db")
    backend.throttle("api", 0.3)
    backend.stop_stack()
    backend.stop_stack()  # idempotent
    for pid in pids:
        assert pid is not None and processes.proc_state(pid) in (None, "Z"), pid
    for endpoint in endpoints:
        assert not ports.is_listening(endpoint.port)
    assert not run.data.exists()
    assert (run.logs / "db.log").exists()
    state = load_state(run.path)
    assert state.status == "finished" and state.processes == [] and state.data_dirs == []


def test_kill_start_and_restart_change_pid(backend: ProcessBackend, run: RunFolder) -> None:
    first = backend.pid("api")
    backend.kill("api")
    assert not backend.is_running("api") and backend.pid("api") is None
    assert first is not None and processes.proc_state(first) is None
    assert [p.service for p in load_state(run.path).processes] == ["db"]
    backend.start("api")
    second = backend.pid("api")
    assert second not in (None, first)
    backend.restart("api", downtime_s=0.2)
    third = backend.pid("api")
    assert third not in (None, second)
    assert get_json(backend.endpoint("api"))["pid"] == third
    assert backend.pid_history("api") == [first, second, third]
    # after_healthy ran once only, setup once only
    assert (run.path / "after_healthy.txt").read_text() == "x\n"


def test_stop_escalates_to_sigkill_after_grace(run: RunFolder) -> None:
    definition = StackDefinition("fake", (fake("stubborn", "--ignore-term"),), ())
    with ProcessBackend(definition, run, embedded_proxy=False) as backend:
        pid = backend.pid("stubborn")
        started = time.monotonic()
        backend.stop("stubborn", grace_s=0.5)
        elapsed = time.monotonic() - started
        assert pid is not None and processes.proc_state(pid) is None
        assert 0.5 <= elapsed < 4.0


def test_pause_stops_progress_and_resume_restores_it(run: RunFolder) -> None:
    definition = StackDefinition("fake", (fake("burner", "--burn"),), ())
    with ProcessBackend(definition, run, embedded_proxy=False) as backend:
        pid = backend.pid("burner")
        assert pid is not None
        backend.pause("burner")
        assert processes.proc_state(pid) == "T"
        assert cpu_share(pid, 0.5) == 0.0
        assert not {s.name: s for s in backend.status()}["burner"].healthy
        backend.resume("burner")
        assert cpu_share(pid, 0.5) > 0.05
        backend.wait_healthy("burner", timeout_s=5)


def test_throttle_reduces_cpu_share(run: RunFolder) -> None:
    definition = StackDefinition("fake", (fake("burner", "--burn"),), ())
    with ProcessBackend(definition, run, embedded_proxy=False) as backend:
        pid = backend.pid("burner")
        assert pid is not None
        free = cpu_share(pid)
        backend.throttle("burner", 0.2)
        throttled = cpu_share(pid)
        backend.throttle("burner", None)
        print(f"cpu share: free {free:.2f}, throttled to 0.2: {throttled:.2f}")
        assert throttled <= 0.3 and throttled < free * 0.6
        assert processes.proc_state(pid) != "T"
        assert cpu_share(pid, 0.5) > 0.05
        backend.wait_healthy("burner", timeout_s=5)


def test_throttle_keeps_an_explicit_pause(run: RunFolder) -> None:
    definition = StackDefinition("fake", (fake("burner", "--burn"),), ())
    with ProcessBackend(definition, run, embedded_proxy=False) as backend:
        pid = backend.pid("burner")
        assert pid is not None
        backend.throttle("burner", 0.5)
        backend.pause("burner")
        assert cpu_share(pid, 0.3) == 0.0
        backend.throttle("burner", None)
        assert processes.proc_state(pid) == "T"
        backend.resume("burner")
        assert processes.proc_state(pid) != "T"


def test_start_failure_cleans_up_and_raises_with_log_tail(run: RunFolder) -> None:
    backend = ProcessBackend(two_services("--fail"), run, embedded_proxy=False)
    db_port = backend.endpoint("db").port
    with pytest.raises(StackError) as caught:
        backend.start_stack()
    message = str(caught.value)
    assert "service api did not become healthy" in message
    assert "its process exited" in message
    assert "boom, configuration missing" in message
    assert not backend.is_running("db")
    assert not ports.is_listening(db_port)
    assert processes.proc_state(grandchild_pid(run, "db")) in (None, "Z")
    assert not run.data.exists()
    assert load_state(run.path).processes == []


def test_health_timeout_names_what_it_waited_for(run: RunFolder) -> None:
    svc = fake("sick", "--unhealthy", health=HealthCheck(timeout_s=1.0))
    backend = ProcessBackend(StackDefinition("fake", (svc,), ()), run, embedded_proxy=False)
    started = time.monotonic()
    with pytest.raises(StackError) as caught:
        backend.start_stack()
    assert time.monotonic() - started < 5.0
    message = str(caught.value)
    assert f"GET {backend.endpoint('sick').url}/health to answer 200" in message
    assert "timed out after" in message and "HTTP 503" in message
    assert "sick listening" in message  # the log tail
    assert not backend.is_running("sick")


def test_add_service_is_owned_and_stopped(backend: ProcessBackend, run: RunFolder) -> None:
    endpoint = backend.add_service(fake("db2"))
    assert get_json(endpoint)["name"] == "db2"
    pid = backend.pid("db2")
    assert "db2" in {p.service for p in load_state(run.path).processes}
    backend.stop_stack()
    assert pid is not None and processes.proc_state(pid) is None
    assert not ports.is_listening(endpoint.port)


def test_a_failed_add_service_leaves_nothing_and_can_be_retried(
    backend: ProcessBackend, run: RunFolder
) -> None:
    with pytest.raises(StackError, match="service db2 did not become healthy"):
        backend.add_service(fake("db2", "--fail"), timeout_s=10)
    assert "db2" not in {s.name for s in backend.status()}
    assert not run.data_dir("db2").exists()
    endpoint = backend.add_service(fake("db2"))
    assert get_json(endpoint)["name"] == "db2"


def test_optional_service_starts_only_when_asked(run: RunFolder) -> None:
    definition = StackDefinition(
        "fake", (fake("main"), fake("standby", optional=True, site="b")), ()
    )
    with ProcessBackend(definition, run, embedded_proxy=False) as backend:
        assert backend.is_running("main") and not backend.is_running("standby")
        backend.start("standby", timeout_s=15)
        assert get_json(backend.endpoint("standby"))["name"] == "standby"


def test_links_go_through_the_embedded_proxy(run: RunFolder) -> None:
    with ProcessBackend(two_services(links=True), run) as backend:
        link = backend.link_endpoint("api-db")
        assert link != backend.endpoint("db")
        assert (run.path / "api-link.txt").read_text() == str(link)
        assert get_json(link)["name"] == "db"
        assert get_json(backend.link_endpoint("clients-api"))["name"] == "api"
        state = load_state(run.path)
        assert state.proxy is not None and state.proxy.embedded
        assert sorted(state.proxy.proxies) == ["api-db", "clients-api"]
        backend.set_link_upstream("api-db", backend.endpoint("api"))
        assert get_json(link)["name"] == "api"
        proxy_pid = state.proxy.pid
    assert proxy_pid is not None and processes.proc_state(proxy_pid) is None
    assert load_state(run.path).proxy is None


def test_spawned_service_dies_with_its_owner(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: a SIGKILLed owner takes its service with it."""
    port = ports.free_port()
    code = (
        "import sys, pathlib\n"
        "from chaos.host import processes\n"
        f"proc = processes.spawn([sys.executable, {str(FAKE)!r}, 'serve', '--name', 'x',"
        f" '--port', '{port}'], pathlib.Path({str(tmp_path / 'x.log')!r}))\n"
        "print(proc.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert owner.stdout is not None
    child = int(owner.stdout.readline())
    deadline = time.monotonic() + 10
    while not ports.is_listening(port):
        assert time.monotonic() < deadline, "service did not listen"
        time.sleep(0.02)
    owner.kill()
    owner.wait(timeout=5)
    deadline = time.monotonic() + 5
    while processes.proc_state(child) not in (None, "Z"):
        assert time.monotonic() < deadline, "service outlived its owner"
        time.sleep(0.02)


def test_free_ports_are_not_handed_out_twice() -> None:
    chosen = {ports.free_port() for _ in range(50)}
    assert len(chosen) == 50
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert ports.is_listening(sock.getsockname()[1])
