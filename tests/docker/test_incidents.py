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
from collections.abc import Iterator
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


@pytest.fixture(scope="module")
def docker_runs(
    tmp_path_factory: pytest.TempPathFactory, stack_image: str, docker_client: Any
) -> Iterator[dict[tuple[str, str], tuple[Path, subprocess.CompletedProcess[str]]]]:
    """Every case's run folder: one `tradechaos run` of the three incidents on docker, two
    runs at a time (as a user would run them; half the wall time of one after another)."""
    out = tmp_path_factory.mktemp("docker-incidents")
    files = [str(incident(name)) for name in FILES]
    done = tradechaos(
        "run", *files, "--backend", "docker", "--jobs", "2", "--out", str(out), "--quiet",
        timeout_s=RUN_TIMEOUT_S * 2,
    )  # fmt: skip
    runs: dict[tuple[str, str], tuple[Path, subprocess.CompletedProcess[str]]] = {}
    by_file = {incident(name).stem: name for name in FILES}
    for run_dir in sorted(d for d in out.iterdir() if (d / "journal.json").exists()):
        journal = json.loads((run_dir / "journal.json").read_text())
        runs[(by_file[journal["experiment"]], journal["variant"])] = (run_dir, done)
    yield runs
    for run_dir, _ in runs.values():
        sweep_containers(run_dir.name, docker_client)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "variant"), CASES)
def test_incident_variant_gives_the_expected_verdicts_on_docker(
    name: str,
    variant: str,
    docker_runs: dict[tuple[str, str], tuple[Path, subprocess.CompletedProcess[str]]],
    docker_client: Any,
) -> None:
    assert (name, variant) in docker_runs, sorted(docker_runs)
    run_dir, done = docker_runs[(name, variant)]
    journal = json.loads((run_dir / "journal.json").read_text())
    found = {v["invariant"]: v["valid"] for v in journal["verdicts"]}
    assert journal["expectation_met"] is True, (
        f"verdicts {found}; expected violated {journal['expected_violations']}; "
        f"error {journal.get('error')}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    )
    assert journal["backend"] == "docker"
    violated = {inv for inv, valid in found.items() if valid is False}
    assert violated == set(journal["expected_violations"])
    undecided = [  # unknown is allowed only for lack of evidence (nothing to check)
        v["invariant"]
        for v in journal["verdicts"]
        if v["valid"] == "unknown" and v.get("no_evidence") is not True
    ]
    assert undecided == []
    assert labelled(docker_client, run_dir.name) == []


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
