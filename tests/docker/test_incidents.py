"""The incident experiments on the docker backend, through the command line a user types.

Each variant must meet its file's expectation (the verdicts the process backend gives:
exactly the expected invariants violated, exit code 0), and leave no container behind. A
runner killed with SIGKILL leaves its containers; ``tradechaos cleanup`` must remove them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from chaos.backends.docker import RUN_LABEL, sweep_containers

REPO = Path(__file__).resolve().parents[2]
INCIDENTS = REPO / "experiments" / "incidents"
FILES = {
    "paradex": "paradex-2026-db-upgrade.yaml",
    "cme": "cme-2025-cooling.yaml",
    "paradex-response": "paradex-2026-response.yaml",
}
CASES = [(name, variant) for name in FILES for variant in ("vulnerable", "mitigated")]
RUN_TIMEOUT_S = 400.0


def incident(name: str) -> Path:
    return INCIDENTS / FILES[name]


def tradechaos(*args: str, timeout_s: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaos", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def the_run_dir(out: Path) -> Path:
    dirs = [d for d in out.iterdir() if d.is_dir()]
    assert len(dirs) == 1, f"expected one run folder in {out}: {dirs}"
    return dirs[0]


def labelled(client: Any, run_id: str) -> list[str]:
    found = client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})
    return [str(c.name) for c in found]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "variant"), CASES)
def test_incident_variant_gives_the_expected_verdicts_on_docker(
    name: str, variant: str, tmp_path: Path, stack_image: str, docker_client: Any
) -> None:
    path = incident(name)
    done = tradechaos(
        "run", str(path), "--backend", "docker", "--variant", variant, "--out", str(tmp_path)
    )
    run_dir = the_run_dir(tmp_path)
    try:
        journal = json.loads((run_dir / "journal.json").read_text())
        found = {v["invariant"]: v["valid"] for v in journal["verdicts"]}
        assert done.returncode == 0, (
            f"exit {done.returncode}; verdicts {found}; expected violated "
            f"{journal['expected_violations']}; error {journal.get('error')}\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
        assert journal["backend"] == "docker"
        assert journal["expectation_met"] is True
        violated = {inv for inv, valid in found.items() if valid is False}
        assert violated == set(journal["expected_violations"])
        undecided = [  # unknown is allowed only for lack of evidence (nothing to check)
            v["invariant"]
            for v in journal["verdicts"]
            if v["valid"] == "unknown" and v.get("no_evidence") is not True
        ]
        assert undecided == []
        assert labelled(docker_client, run_dir.name) == []
    finally:
        sweep_containers(run_dir.name, docker_client)


@pytest.mark.slow
def test_cleanup_removes_the_containers_of_a_runner_killed_with_sigkill(
    tmp_path: Path, stack_image: str, docker_client: Any
) -> None:
    path = incident("paradex")
    runner = subprocess.Popen(
        [sys.executable, "-m", "chaos", "run", str(path), "--backend", "docker",
         "--variant", "mitigated", "--out", str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    run_id = ""
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and runner.poll() is None:
            dirs = [d for d in tmp_path.iterdir() if (d / "state.json").exists()]
            if dirs:
                run_id = dirs[0].name
                if len(labelled(docker_client, run_id)) >= 4:  # the proxy and 3+ services
                    break
            time.sleep(0.2)  # polling the engine for the run's containers, not a readiness wait
        assert run_id and len(labelled(docker_client, run_id)) >= 4, "the stack never came up"
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(timeout=30)
        assert labelled(docker_client, run_id), "containers should outlive a SIGKILLed runner"
        done = tradechaos("cleanup", "--out", str(tmp_path), "--json", timeout_s=120)
        assert done.returncode == 0, done.stderr
        assert labelled(docker_client, run_id) == []
        removed = json.loads(done.stdout)["removed"]
        assert any("container" in line for line in removed), removed
        state = json.loads((tmp_path / run_id / "state.json").read_text())
        assert state["status"] == "cleaned"
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait(timeout=30)
        if run_id:
            sweep_containers(run_id, docker_client)
