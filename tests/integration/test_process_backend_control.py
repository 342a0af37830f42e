"""The control API lets another process start, restart and disturb the owner's services."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.backends.control import ControlClient, ControlServer
from chaos.backends.process import ProcessBackend
from chaos.errors import BadInput, StackError
from chaos.host import processes
from chaos.host.runs import RunFolder
from chaos.stackfile.definition import HealthCheck, ServiceSpec, StackDefinition

pytestmark = pytest.mark.integration

FAKE = Path(__file__).with_name("test_process_backend.py")


def fake(name: str) -> ServiceSpec:
    return ServiceSpec(
        name,
        ("{python}", str(FAKE), "serve", "--name", name, "--port", "{port}"),
        HealthCheck(timeout_s=15.0),
        stop_grace_s=2.0,
    )


@pytest.fixture
def owner(tmp_path: Path) -> Iterator[tuple[ProcessBackend, ControlClient]]:
    run = RunFolder.create(tmp_path, "control", "test")
    backend = ProcessBackend(StackDefinition("fake", (fake("api"),), ()), run, embedded_proxy=False)
    backend.start_stack()
    server = ControlServer(backend)
    try:
        yield backend, ControlClient(server.url, timeout_s=30)
    finally:
        server.close()
        backend.stop_stack()


def test_remote_restart_kill_start_and_pause(
    owner: tuple[ProcessBackend, ControlClient],
) -> None:
    backend, client = owner
    first = backend.pid("api")
    second = client.call("api", "restart", downtime_s=0.1)
    assert second is not None and second != first and backend.pid("api") == second
    assert client.call("api", "kill") is None and not backend.is_running("api")
    third = client.call("api", "start", timeout_s=15)
    assert third is not None and third not in (first, second)
    client.call("api", "pause")
    assert processes.proc_state(third) == "T"
    client.call("api", "resume")
    assert processes.proc_state(third) != "T"
    assert [(s["name"], s["running"], s["pid"]) for s in client.status()] == [("api", True, third)]


def test_remote_errors_are_one_sentence(owner: tuple[ProcessBackend, ControlClient]) -> None:
    _, client = owner
    with pytest.raises(BadInput, match="unknown service 'nope'"):
        client.call("nope", "kill")
    with pytest.raises(BadInput, match="unknown operation 'explode'"):
        client.call("api", "explode")
    with pytest.raises(BadInput, match="cpu_fraction must be in"):
        client.call("api", "throttle", cpu_fraction=2.5)
    client.call("api", "kill")
    with pytest.raises(StackError, match="cannot pause api: it is not running"):
        client.call("api", "pause")


def test_unreachable_owner_is_an_infrastructure_error() -> None:
    from chaos.host import ports

    client = ControlClient(f"http://127.0.0.1:{ports.free_port()}", timeout_s=2)
    with pytest.raises(StackError, match="unreachable"):
        client.status()
