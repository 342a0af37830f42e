"""User-defined checks: SQL checks (judged from history/checks.jsonl) and checkers that
``tradechaos.checkers`` entry points register (a fixture dist-info in tests/data/plugins),
each caught when its harm is planted and holding on a clean history; declared and
validated in stack and experiment files; reported like the built-ins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from histgen import clean_history

from chaos.checkers import run_all
from chaos.checkers.params import CheckParams
from chaos.checkers.user import PluginError, entry_point_names, load_entry_point
from chaos.experiment.loader import problems as experiment_problems
from chaos.history.reader import History
from chaos.report import write_reports
from chaos.stackfile import load, problems

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "tests" / "data" / "plugins"
BROKEN = ROOT / "tests" / "data" / "plugins-broken"


def history_with(tmp_path: Path, checks: list[dict[str, Any]] | None = None,
                 declared: tuple[str, ...] = ()) -> History:  # fmt: skip
    """A clean synthetic history (+ checks.jsonl, + the SQL checks run.json declares)."""
    run_dir = clean_history(7).write(tmp_path / "run")
    run_json = run_dir / "history" / "run.json"
    run = json.loads(run_json.read_text())
    run["checks"] = list(declared)
    run_json.write_text(json.dumps(run))
    if checks is not None:
        lines = "".join(json.dumps(c) + "\n" for c in checks)
        (run_dir / "history" / "checks.jsonl").write_text(lines)
    return History.open(run_dir)


def result(name: str, rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"time": 1.0, "check": name, "database": "engine-db", "query": "SELECT ...",
            "count": len(rows), "rows": rows, **extra}  # fmt: skip


# -- SQL checks ---------------------------------------------------------------------------


def test_a_sql_check_is_violated_by_every_row_it_returned(tmp_path: Path) -> None:
    rows = [{"account": 3, "balance": -500.0}, {"account": 9, "balance": -1.0}]
    history = history_with(tmp_path, [result("no_negative_balances", rows)],
                           ("no_negative_balances",))  # fmt: skip
    [verdict] = run_all(history, ["no_negative_balances"], CheckParams(max_counterexamples=1))
    assert (verdict.valid, verdict.count) == (False, 2)
    assert verdict.counterexamples == [{"account": 3, "balance": -500.0}]
    assert "2 row(s) from engine-db; first: account=3, balance=-500.0" in verdict.message


def test_a_sql_check_holds_when_no_row_comes_back(tmp_path: Path) -> None:
    history = history_with(tmp_path, [result("no_negative_balances", [])],
                           ("no_negative_balances",))  # fmt: skip
    [verdict] = run_all(history, ["no_negative_balances"])
    assert verdict.valid is True and verdict.count == 0


@pytest.mark.parametrize(
    ("checks", "reason"),
    [
        (None, "has no result of this SQL check"),
        ([result("no_negative_balances", [], error="UndefinedTable: balances")],
         "its query failed: UndefinedTable: balances"),
    ],
)  # fmt: skip
def test_a_sql_check_without_a_result_is_unknown(
    tmp_path: Path, checks: list[dict[str, Any]] | None, reason: str
) -> None:
    history = history_with(tmp_path, checks, ("no_negative_balances",))
    [verdict] = run_all(history, ["no_negative_balances"])
    assert verdict.valid == "unknown" and reason in verdict.message


def test_an_undeclared_name_is_still_an_unknown_invariant(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown invariant 'nope'"):
        run_all(history_with(tmp_path), ["nope"])


# -- entry points -------------------------------------------------------------------------


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(PLUGINS))


def test_entry_points_are_found_without_importing_them(plugins: None) -> None:
    names = entry_point_names()
    assert names["deposits_positive"] == "acme_checks:DepositsPositive"
    assert names["no_self_trades"] == "acme_checks:no_self_trades"


@pytest.mark.parametrize("name", ["deposits_positive", "no_self_trades"])
def test_an_entry_point_checker_holds_on_a_clean_history(
    plugins: None, tmp_path: Path, name: str
) -> None:
    [verdict] = run_all(history_with(tmp_path), [name])
    assert verdict.valid is True and verdict.checked > 0, verdict


def test_an_entry_point_checker_catches_its_planted_harm(plugins: None, tmp_path: Path) -> None:
    builder = clean_history(7)
    builder.deposit(12, -250.0)  # the harm deposits_positive looks for
    fill = next(e for e in builder.events if e["kind"] == "fill")
    builder.emit("fill", **{**{k: v for k, v in fill.items() if k not in
                               ("seq", "epoch", "sequencer", "time", "kind")},
                            "maker_account": fill["taker_account"]})  # fmt: skip
    history = History.open(builder.write(tmp_path / "run"))
    positive, self_trades = run_all(history, ["deposits_positive", "no_self_trades"])
    assert (positive.valid, positive.count) == (False, 1)
    assert positive.counterexamples[0]["amount"] == -250.0
    assert (self_trades.valid, self_trades.count) == (False, 1)
    assert self_trades.invariant == "no_self_trades"


def test_a_broken_entry_point_is_named_and_its_verdict_unknown(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.syspath_prepend(str(BROKEN))
    where = r"missing_module = no_such_module_anywhere:Checker \(tradechaos.checkers\)"
    with pytest.raises(PluginError, match=f"{where} cannot be loaded: ModuleNotFoundError"):
        load_entry_point("missing_module")
    with pytest.raises(PluginError, match="its name is 'deposits_positive', not 'wrong_name'"):
        load_entry_point("wrong_name")
    [verdict] = run_all(history_with(tmp_path), ["missing_module"])
    assert verdict.valid == "unknown" and "cannot be loaded" in verdict.message


def test_a_checker_that_raises_or_returns_nonsense_is_unknown(
    plugins: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import acme_checks

    monkeypatch.setattr(acme_checks.DepositsPositive, "check", lambda self, h, p: 1 / 0)
    monkeypatch.setattr(acme_checks, "no_self_trades", lambda h, p: "fine")
    raised, nonsense = run_all(history_with(tmp_path), ["deposits_positive", "no_self_trades"])
    assert raised.valid == "unknown" and "raised ZeroDivisionError" in raised.message
    assert nonsense.valid == "unknown" and "returned str, not a Verdict" in nonsense.message


# -- declared in stack and experiment files ----------------------------------------------

STACK = """\
name: ledger
services:
  db: {builtin: postgres, database: ledger}
  app: {command: [sleep, "60"], health: {tcp: true}}
links: [app->db]
checks:
  no_negative_balances:
    help: no account's balance is below zero
    sql: {database: app->db, query: "SELECT account FROM balances WHERE balance < 0"}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_stack_file_declares_sql_checks(tmp_path: Path) -> None:
    stack = load(write(tmp_path, "stack.yaml", STACK))
    [check] = stack.checks
    assert (check.name, check.database, check.help) == (
        "no_negative_balances", "app-db", "no account's balance is below zero")  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("database: app->db", "database: app"),
         "checks.no_negative_balances.sql.database: 'app' does not lead to a builtin postgres"),
        (("database: app->db", "database: dbx"), "unknown database 'dbx'"),
        (("no_negative_balances:", "sequence_integrity:"),
         "checks.sequence_integrity: 'sequence_integrity' is a built-in invariant's name"),
        (("no_negative_balances:", "No-Neg:"),
         "checks: 'No-Neg' is not a check name (lowercase letters, digits, '_')"),
        (("    sql: {", "    sq: {"), "checks.no_negative_balances.sq: unknown field"),
    ],
)  # fmt: skip
def test_a_bad_check_in_a_stack_file_is_named(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    found = problems(write(tmp_path, "stack.yaml", STACK.replace(*change)))
    assert found and any(message in str(p) for p in found), found


EXPERIMENT = """\
name: ledger-checks
stack: {file: stack.yaml}
duration: 1s
method: []
checks:
  entries_have_accounts:
    sql: {database: app-db, query: "SELECT id FROM entries WHERE account IS NULL"}
invariants: [no_negative_balances, entries_have_accounts, deposits_positive, sequence_integrity]
variants:
  clean: {}
  planted: {expect: {violated: [no_negative_balances, deposits_positive]}}
"""


def test_an_experiment_names_user_checks_in_its_invariants(plugins: None, tmp_path: Path) -> None:
    from chaos.experiment.loader import load as load_experiment
    from chaos.stackfile import resolve

    write(tmp_path, "stack.yaml", STACK)
    experiment = load_experiment(write(tmp_path, "exp.yaml", EXPERIMENT))
    assert [c.name for c in experiment.checks] == ["entries_have_accounts"]
    definition = resolve(load(tmp_path / "stack.yaml"))
    assert [c.name for c in experiment.sql_checks(definition.checks)] == [
        "no_negative_balances", "entries_have_accounts"]  # fmt: skip
    assert experiment.variant("planted").expect_violated == (
        "no_negative_balances", "deposits_positive")  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("deposits_positive,", "deposits_negative,"), "unknown invariant 'deposits_negative'"),
        (("database: app-db", "database: app"), "does not lead to a builtin postgres service"),
        (("entries_have_accounts:", "no_negative_balances:"),
         "stack ledger declares a check 'no_negative_balances' already"),
        (("entries_have_accounts:", "deposits_positive:"),
         "'deposits_positive' is the checker the entry point acme_checks:DepositsPositive "
         "registers"),
    ],
)  # fmt: skip
def test_a_bad_user_check_in_an_experiment_is_named(
    plugins: None, tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    write(tmp_path, "stack.yaml", STACK)
    found = experiment_problems(write(tmp_path, "exp.yaml", EXPERIMENT.replace(*change)))
    assert found and any(message in str(p) for p in found), found


def test_an_experiment_naming_a_broken_entry_point_is_invalid(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.syspath_prepend(str(BROKEN))
    write(tmp_path, "stack.yaml", STACK)
    text = EXPERIMENT.replace("deposits_positive,", "missing_module,").replace(
        "[no_negative_balances, deposits_positive]", "[no_negative_balances]")  # fmt: skip
    found = experiment_problems(write(tmp_path, "exp.yaml", text))
    assert any("invariants[2]: entry point missing_module" in str(p) for p in found), found


def test_user_verdicts_are_reported_like_the_built_ins(tmp_path: Path) -> None:
    journal = {
        "status": "passed", "experiment": "ledger-checks", "variant": "planted", "seed": 1,
        "expected_violations": ["no_negative_balances"], "expectation_met": True,
        "verdicts": [
            {"invariant": "no_negative_balances", "valid": False, "count": 1, "checked": 1,
             "counterexamples": [{"account": 3, "balance": -500}], "message": "1 row(s)"},
            {"invariant": "deposits_positive", "valid": True, "count": 0, "checked": 4,
             "counterexamples": [], "message": "held over 4 deposits"},
        ],
        "steady_state": {"before": None, "after": None}, "timeline": [],
    }  # fmt: skip
    (tmp_path / "history").mkdir()
    write_reports(tmp_path, journal)
    junit = (tmp_path / "junit.xml").read_text()
    assert 'name="no_negative_balances"' in junit and 'name="deposits_positive"' in junit
    assert "<failure" not in junit  # violated as expected, held as expected
    html = (tmp_path / "report.html").read_text()
    assert "no_negative_balances" in html and "deposits_positive" in html
