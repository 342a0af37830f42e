"""The attached backend without an owner's control API: signals to the service's group."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.backends.attached import AttachedBackend
from chaos.errors import BadInput, FaultError
from chaos.stackfile.definition import LinkSpec, ServiceSpec, StackDefinition

DEFINITION = StackDefinition(
    "t", (ServiceSpec("risk", ("x",), site="core"),), (LinkSpec("risk-db", "risk", "db"),)
)


def state(pid: int) -> str:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[AttachedBackend, subprocess.Popen[bytes]]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    stack = tmp_path / "current-stack.json"
    stack.write_text(
        json.dumps(
            {
                "toxiproxy_url": "http://127.0.0.1:1",
                "services": {"risk": {"endpoint": "127.0.0.1:9", "pid": proc.pid, "site": "core"}},
                "links": {"risk-db": "127.0.0.1:10"},
            }
        )
    )
    try:
        yield AttachedBackend(stack, DEFINITION), proc
    finally:
        proc.kill()
        proc.wait(5)


def test_pause_resume_and_kill_by_signal(
    service: tuple[AttachedBackend, subprocess.Popen[bytes]],
) -> None:
    backend, proc = service
    assert backend.pid("risk") == proc.pid and backend.is_running("risk")
    assert str(backend.link_endpoint("risk-db")) == "127.0.0.1:10"
    backend.pause("risk")
    deadline = time.monotonic() + 5
    while state(proc.pid) != "T" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert state(proc.pid) == "T"
    backend.resume("risk")
    while state(proc.pid) == "T" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert state(proc.pid) != "T"
    backend.kill("risk")
    proc.wait(5)
    assert not backend.is_running("risk")
    with pytest.raises(FaultError, match="only the process that ran"):
        backend.start("risk", timeout_s=0.2)


def test_unknown_names_and_missing_stack_file(
    service: tuple[AttachedBackend, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    backend, _ = service
    with pytest.raises(BadInput, match="known: risk"):
        backend.pid("oracle")
    with pytest.raises(BadInput, match="stack up"):
        AttachedBackend(tmp_path / "none.json", DEFINITION)


def test_an_unknown_action_is_named_before_looking_for_a_stack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chaos.cli import main

    assert main(["fault", "nosuch", "oracle", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown action 'nosuch'" in err and "latency" in err
    assert "Traceback" not in err
