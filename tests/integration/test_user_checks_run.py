"""User-defined checks in real runs: the ledger stack (tests/data/ledger: a builtin postgres,
no traders) declares a SQL check, the experiment one of its own, and a checker comes from
a ``tradechaos.checkers`` entry point (tests/data/plugins on PYTHONPATH). ``tradechaos run``
runs the SQL at export time into history/checks.jsonl; the verdicts, JUnit and HTML report
carry them like built-ins. The clean variant passes every check; the planted one (the
stack's genesis drives an account below zero with a negative deposit) is expected to
violate the SQL check and the entry-point checker, and does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from run_cli_helpers import REPO, processes_mentioning

pytestmark = pytest.mark.integration

STACK = REPO / "tests" / "data" / "ledger" / "stack.yaml"
PLUGINS = REPO / "tests" / "data" / "plugins"
# The stack file's SQL check, one of the experiment's own, an entry point's checker.
EXPERIMENT = """\
name: ledger-checks
stack: {file: %s}
duration: 1s
method: []
checks:
  entries_have_accounts:
    help: every entry names its account
    sql: {database: db, query: "SELECT id FROM entries WHERE account IS NULL"}
invariants: [no_negative_balances, entries_have_accounts, deposits_positive, sequence_integrity]
variants:
  clean: {options: {plant: false}}
  planted:
    options: {plant: true}
    expect: {violated: [no_negative_balances, deposits_positive]}
"""


def run(out: Path, variant: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out.mkdir(parents=True)
    experiment = out / "experiment.yaml"
    experiment.write_text(EXPERIMENT % STACK)
    paths = [str(PLUGINS), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    done = subprocess.run(
        [sys.executable, "-m", "chaos", "run", str(experiment), "--variant", variant,
         "--out", str(out), "--json", "--quiet"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    [run_dir] = [p for p in out.iterdir() if p.is_dir()]
    journal = json.loads((run_dir / "journal.json").read_text())
    return done, journal


def verdicts(journal: dict[str, Any]) -> dict[str, object]:
    return {v["invariant"]: v["valid"] for v in journal["verdicts"]}


def test_user_checks_hold_on_a_clean_run_and_catch_their_planted_harm(tmp_path: Path) -> None:
    done, clean = run(tmp_path / "clean", "clean")
    assert done.returncode == 0, done.stderr[-2000:]
    assert verdicts(clean) == {"no_negative_balances": True, "entries_have_accounts": True,
                               "deposits_positive": True, "sequence_integrity": True}  # fmt: skip
    run_dir = Path(clean["run_dir"])
    records = [json.loads(line) for line in (run_dir / "history" / "checks.jsonl").open()]
    assert [(r["check"], r["count"]) for r in records] == [
        ("no_negative_balances", 0), ("entries_have_accounts", 0)]  # fmt: skip

    done, planted = run(tmp_path / "planted", "planted")
    assert done.returncode == 0, done.stderr[-2000:]  # exactly the expected violations
    expected = {"no_negative_balances": False, "entries_have_accounts": True,
                "deposits_positive": False, "sequence_integrity": True}  # fmt: skip
    assert verdicts(planted) == expected
    by_name = {v["invariant"]: v for v in planted["verdicts"]}
    assert by_name["no_negative_balances"]["counterexamples"] == [{"account": 3, "balance": -500}]
    assert by_name["deposits_positive"]["counterexamples"][0]["amount"] == -500
    run_dir = Path(planted["run_dir"])
    junit = (run_dir / "junit.xml").read_text()
    for name in ("no_negative_balances", "entries_have_accounts", "deposits_positive"):
        assert f'name="{name}"' in junit
        assert name in (run_dir / "report.html").read_text()
    # the recorded run is judged again from its files alone
    again = subprocess.run(
        [sys.executable, "-m", "chaos", "check", str(run_dir), "--json"], cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(PLUGINS)}, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert {v["invariant"]: v["valid"] for v in json.loads(again.stdout)["verdicts"]} == (
        verdicts(planted))  # fmt: skip
    assert processes_mentioning(str(tmp_path)) == []
