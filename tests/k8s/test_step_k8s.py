"""`tradechaos step`: the existing faults, run against services' URLs (as a Chaos Mesh Task
does); its records on stdout; and the pure parts of the Kubernetes path (abort, records)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_services import FakeService

from chaos.cli import main
from chaos.k8s.abort import HealthAbort
from chaos.k8s.records import main as records_main
from chaos.k8s.records import split

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake() -> Iterator[FakeService]:
    service = FakeService()
    service.thread.start()
    yield service
    service.server.shutdown()
    service.server.server_close()


def records(out: str) -> list[dict[str, Any]]:
    return split(out.splitlines()).get("faults", [])


def test_a_feed_fault_is_injected_held_and_healed_with_its_records_on_stdout(
    fake: FakeService, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "step",
            "feed_fault",
            "--id",
            "zero",
            "--param",
            'kind="zero"',
            "--param",
            "venue=1",
            "--hold",
            "0.2",
            "--service-url",
            f"feeds={fake.url}",
        ]
    )
    assert code == 0
    calls = [(m, p) for m, p, _ in fake.calls]
    assert calls[0] == ("POST", "/admin/fault") and calls[-1] == ("DELETE", "/admin/fault/fault-1")
    assert fake.calls[0][2] == {"venue": 1, "market": "*", "kind": "zero"}
    phases = [r["phase"] for r in records(capsys.readouterr().out)]
    assert phases == ["begin", "evidence", "end"]


def test_a_trading_mode_step_reaches_the_sequencer(
    fake: FakeService, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "step",
                "trading_mode",
                "--param",
                'mode="cancel_only"',
                "--service-url",
                f"sequencer={fake.url}",
            ]
        )
        == 0
    )
    assert fake.mode == "cancel_only"
    evidence = [r for r in records(capsys.readouterr().out) if r["phase"] == "evidence"]
    assert evidence[0]["evidence"]["mode"] == "cancel_only"


def test_a_step_needing_the_kubernetes_api_without_it_fails_clearly(
    fake: FakeService, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "step",
            "db_upgrade",
            "--param",
            'strategy="in_place"',
            "--service-url",
            f"db=pg://127.0.0.1:{fake.server.server_address[1]}",
        ]
    )
    assert code == 3
    assert "needs the Kubernetes API" in capsys.readouterr().err


def test_bad_step_input_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "step",
                "feed_fault",
                "--param",
                'kind="melt"',
                "--service-url",
                "feeds=http://127.0.0.1:1/health",
            ]
        )
        == 2
    )
    assert "kind" in capsys.readouterr().err
    assert main(["step", "trading_mode", "--service-url", "sequencer=ftp://x"]) == 2


def test_wait_healthy_runs_the_command_once_healthy_and_fails_on_timeout(fake: FakeService) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "chaos", "step", "wait_healthy", "--timeout", "10",
         "--service-url", f"feeds={fake.url}", "--then", sys.executable, "-c", "print('after')"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert ok.returncode == 0 and ok.stdout.strip() == "after", ok.stderr
    late = subprocess.run(
        [sys.executable, "-m", "chaos", "step", "wait_healthy", "--timeout", "0.5",
         "--service-url", "db=tcp://127.0.0.1:1"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert late.returncode == 3 and "db not healthy" in late.stderr


def test_health_abort_is_armed_by_a_ready_stack_then_fires_after_its_duration() -> None:
    watcher = HealthAbort(2.0)
    assert watcher.update({"db": False, "oracle": False}, 0.0) is None  # starting: not armed
    assert watcher.update({"db": True, "oracle": True}, 1.0) is None and watcher.armed
    assert watcher.update({"db": True, "oracle": False}, 2.0) is None
    assert watcher.update({"db": True, "oracle": True}, 3.0) is None  # recovered: reset
    assert watcher.update({"db": True, "oracle": False}, 4.0) is None
    assert watcher.update({"db": True, "oracle": False}, 6.0) == "not ready for 2s: oracle"


def test_step_records_are_split_into_history_streams(tmp_path: Path) -> None:
    logs = tmp_path / "steps.jsonl"
    lines = [
        "healthy: db",
        json.dumps({"stream": "faults", "record": {"time": 2.0, "phase": "end"}}),
        json.dumps({"stream": "faults", "record": {"time": 1.0, "phase": "begin"}}),
        json.dumps({"stream": "client", "record": {"time": 1.5, "type": "invoke"}}),
        json.dumps({"stream": "../etc", "record": {"time": 1.5}}),
        "{not json",
    ]
    logs.write_text("\n".join(lines) + "\n")
    assert records_main([str(logs), str(tmp_path / "history")]) == 0
    faults = [
        json.loads(x) for x in (tmp_path / "history" / "faults.jsonl").read_text().splitlines()
    ]
    assert [f["phase"] for f in faults] == ["begin", "end"]
    assert (tmp_path / "history" / "client.jsonl").is_file()
    assert sorted(p.name for p in (tmp_path / "history").iterdir()) == [
        "client.jsonl",
        "faults.jsonl",
    ]
