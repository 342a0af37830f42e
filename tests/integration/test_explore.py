"""``tradechaos explore`` on the real stack (issue 17): the dYdX incident's vulnerable
variant, with the incident's own oracle steps left out and faults searched around its
maintenance backbone (tests/integration/explore-dydx-space.yaml), yields a stale-price violation
within the budget, shrinks it to a minimal.yaml with fewer steps than the first find, and
``tradechaos run minimal.yaml`` reproduces it; the mitigated variant with the same space and
budget yields nothing; a SIGINT stops an exploration cleanly and keeps what it found.

Wall time (2 cores): about 4-5 minutes for the three tests, two trials side by side.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
from run_cli_helpers import REPO, processes_mentioning, tradechaos

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
]
DYDX = str(REPO / "experiments" / "incidents" / "dydx-2025-oracle-restart.yaml")
SPACE = str(Path(__file__).with_name("explore-dydx-space.yaml"))
BUDGET = "4"
STALE = "no_stale_price_execution"


def explore(out: Path, variant: str, *extra: str) -> tuple[int, dict[str, Any], Path]:
    done = tradechaos(
        "explore", DYDX, "--variant", variant, "--space", SPACE, "--budget", BUDGET,
        "--jobs", "2", "--out", str(out), "--json", "--quiet", *extra, timeout=900,
    )  # fmt: skip
    summary = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
    assert summary, done.stdout[-2000:] + done.stderr[-3000:]
    folder = Path(summary["folder"])
    doc = json.loads((folder / "explore.json").read_text())
    return done.returncode, doc, folder


@pytest.mark.timeout(900)
def test_vulnerable_finds_shrinks_and_the_minimal_experiment_reproduces(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    code, doc, folder = explore(out, "vulnerable")
    assert code == 1, doc.get("message")
    assert doc["status"] == "found" and doc["target"] == STALE
    first = doc["finds"][0]
    assert STALE in first["violated"] and first["solid"]
    first_trial = doc["trials"][first["trials"][0] - 1]
    assert first_trial["purpose"] == "search"
    # searched, not the incident's own schedule: its oracle steps are not in any trial
    for trial in doc["trials"]:
        text = Path(trial["file"]).read_text()
        assert "oracle_down" not in text and "start-5" not in text
    minimal = doc["minimal"]
    assert minimal["method_steps"] < minimal["first_find_method_steps"]
    assert minimal["expect_violated"][0] == STALE and not minimal["flaky"]
    assert [p["reason"] for p in doc["shrink"]["path"]][:2] == ["found", "removed a step"]
    assert (folder / "explore.html").is_file()
    assert processes_mentioning(str(out)) == []

    path = folder / "minimal.yaml"
    checked = tradechaos("validate", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    run = tradechaos("run", str(path), "--out", str(tmp_path / "again"), "--json", "--quiet")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    (journal,) = json.loads(run.stdout)
    verdicts = {v["invariant"]: v["valid"] for v in journal["verdicts"]}
    assert verdicts[STALE] is False and journal["expectation_met"] is True
    assert processes_mentioning(str(tmp_path)) == []


@pytest.mark.timeout(900)
def test_mitigated_finds_nothing_with_the_same_budget(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    code, doc, folder = explore(out, "mitigated")
    assert code == 0, doc.get("message")
    assert doc["status"] == "none" and doc["minimal"] is None
    assert not (folder / "minimal.yaml").exists()
    searched = [t for t in doc["trials"] if t["purpose"] == "search"]
    assert len(searched) == int(BUDGET)
    assert all(t["status"] == "passed" and not t["violated"] for t in searched)
    # the same space and seed: the schedules the vulnerable variant was offered
    assert any("stop oracle" in t["schedule"] for t in searched)
    assert processes_mentioning(str(out)) == []


@pytest.mark.timeout(600)
def test_sigint_stops_the_exploration_and_keeps_the_find(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    out = tmp_path / "runs"
    argv = [
        sys.executable, "-m", "chaos", "explore", DYDX, "--variant", "vulnerable",
        "--space", SPACE, "--budget", BUDGET, "--jobs", "2", "--confirm", "0",
        "--shrink-budget", "4", "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.Popen(
        argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        seen = []
        deadline = time.monotonic() + 300
        for line in proc.stderr:
            seen.append(line)
            if "] shrink" in line or time.monotonic() > deadline:
                break
        assert any("found (" in line for line in seen), "".join(seen[-20:])
        proc.send_signal(signal.SIGINT)  # during the second batch of shrink trials
        code = proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert code == 130
    (folder,) = out.glob("*-explore")
    doc = json.loads((folder / "explore.json").read_text())
    assert doc["status"] == "interrupted" and doc["stopped_by"] == "interrupted"
    assert (folder / "minimal.yaml").is_file() and doc["minimal"] is not None
    assert "stopped before the end" in (folder / "minimal.yaml").read_text()
    assert processes_mentioning(str(out)) == []
    journals = [json.loads(p.read_text()) for p in out.glob("*-x0*/journal.json")]
    assert journals and all(j["status"] != "running" for j in journals)
