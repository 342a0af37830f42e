"""``tradechaos stack check`` on real stacks: every binding of the reference stack holds
(checked where `stack up` runs it), and the same stack described with a wrong orders
path fails naming that key; a stack of its own is started and stopped, and a SQL check
whose query is wrong fails naming it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from run_cli_helpers import REPO, processes_mentioning, tradechaos

pytestmark = pytest.mark.integration

REFERENCE = REPO / "chaos" / "stack"
LEDGER = REPO / "tests" / "data" / "ledger"
MINIDEX = REPO / "examples" / "minidex" / "stack.yaml"


def results(stdout: str) -> dict[str, dict[str, Any]]:
    return {r["binding"]: r for r in json.loads(stdout)["results"]}


def test_the_reference_stack_passes_and_a_wrong_orders_path_is_named(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    shutil.copy(REFERENCE / "schema.sql", wrong / "schema.sql")
    text = (REFERENCE / "stack.yaml").read_text()
    assert text.count("POST: /orders\n") == 1
    (wrong / "stack.yaml").write_text(text.replace("POST: /orders\n", "POST: /orderz\n"))
    up = tradechaos("stack", "up", "--detach", "--out", str(out), timeout=180)
    assert up.returncode == 0, up.stderr
    try:
        done = tradechaos("stack", "check", "--out", str(out), "--json", timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        found = results(done.stdout)
        assert json.loads(done.stdout)["attached"] is True
        for binding in ("orders.submit", "orders.cancel", "orders.market_data",
                        "trading_mode.get", "trading_mode.set", "db_upgrade", "history.events",
                        "history.oracle", "history.modes", "history.chain"):  # fmt: skip
            assert found[binding]["status"] == "OK", found[binding]
        assert found["accounts.fund"]["status"] == "SKIP"  # the genesis funds them

        done = tradechaos("stack", "check", "--out", str(out), "--stack",
                          str(wrong / "stack.yaml"), timeout=180)  # fmt: skip
        assert done.returncode == 1, done.stdout + done.stderr
        assert "orders.submit" in done.stdout and "FAIL" in done.stdout
        assert "sent: POST /orderz" in done.stdout
        assert "got:  HTTP 404" in done.stdout
        assert "fix:  bindings.orders.submit (path or method)" in done.stdout
    finally:
        down = tradechaos("stack", "down", "--out", str(out), timeout=120)
    assert down.returncode == 0, down.stderr
    assert processes_mentioning(str(tmp_path)) == []


def test_a_stack_of_its_own_is_started_and_a_broken_sql_check_named(tmp_path: Path) -> None:
    stack = tmp_path / "ledger"
    shutil.copytree(LEDGER, stack)
    text = (stack / "stack.yaml").read_text().replace("checks:\n", """checks:
  broken_query:
    sql: {database: db, query: SELECT nope FROM nowhere}
""")  # fmt: skip
    (stack / "stack.yaml").write_text(text)
    done = tradechaos("stack", "check", "--stack", str(stack / "stack.yaml"), "--out",
                      str(tmp_path / "runs"), "--json", timeout=180)  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    found = results(done.stdout)
    assert found["history.events"]["status"] == "OK"
    assert found["checks.no_negative_balances"]["status"] == "OK"
    assert found["checks.broken_query"]["status"] == "FAIL"
    assert found["checks.broken_query"]["fix"] == "checks.broken_query.sql"
    assert "UndefinedTable" in found["checks.broken_query"]["got"]
    assert json.loads(done.stdout)["attached"] is False
    assert processes_mentioning(str(tmp_path)) == []


def test_the_example_stack_passes(tmp_path: Path) -> None:
    done = tradechaos("stack", "check", "--stack", str(MINIDEX), "--out", str(tmp_path / "runs"),
                      "--json", timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    found = results(done.stdout)
    for binding in ("accounts.fund", "orders.submit", "orders.cancel", "trading_mode.set",
                    "history.events"):  # fmt: skip
        assert found[binding]["status"] == "OK", found[binding]
    assert processes_mentioning(str(tmp_path)) == []
