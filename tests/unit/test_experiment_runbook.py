"""Validating the response steps of an experiment (issue 21): each needs its request of the
stack's ``bindings.response`` (exit 2 from ``validate``, naming it), a rollback ``to:`` names
a snapshot an earlier step takes in every variant it runs in, and each step's parameters
are checked with the allowed values."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from chaos.cli import main
from chaos.experiment.actions import ACTIONS
from chaos.experiment.loader import load, problems
from chaos.experiment.steps import missing_requirement
from chaos.stackfile import load as load_stack
from chaos.stackfile import reference_stack_path, resolve

TINY_STACK = """\
name: tiny
services:
  db: {builtin: postgres, database: tiny}
  api:
    command: ["{python}", -m, tiny.api, --port, "{port}", --db, "{dsn:api-db}"]
    depends_on: [db]
links: [api->db, clients->api]
bindings:
  orders:
    via: clients->api
    submit: {POST: /orders, body: {id: "{client_order_id}", qty: "{qty}"}}
"""

RUNBOOK = """\
  - {id: pre, at: 1s, action: snapshot}
  - {at: 2s, action: disable_access, reason: incident}
  - {at: 3s, action: cancel_all, except: [take_profit, stop_loss], markets: [BTC-PERP]}
  - {id: back, at: 4s, action: chain_rollback, to: pre, wait: 12s}
  - {at: 5s, action: replay, kinds: [deposit], rollback: back}
  - {at: 6s, action: enable_access}
"""


def experiment(tmp_path: Path, method: str, stack: str | None = None, extra: str = "") -> Path:
    head = "name: runbook\nduration: 10s\n"
    if stack is not None:
        (tmp_path / "stack.yaml").write_text(stack)
        head += "stack: {file: stack.yaml}\n"
    path = tmp_path / "exp.yaml"
    path.write_text(head + extra + "method:\n" + textwrap.dedent(method) + "invariants: "
                    "[rollback_restores_snapshot]\n")  # fmt: skip
    return path


def texts(path: Path) -> list[str]:
    return [str(p) for p in problems(path)]


def test_the_runbook_loads_on_the_reference_stack_and_is_kept_by_no_faults(
    tmp_path: Path,
) -> None:
    loaded = load(experiment(tmp_path, RUNBOOK))
    assert [s.action for s in loaded.method] == [
        "snapshot", "disable_access", "cancel_all", "chain_rollback", "replay", "enable_access"
    ]  # fmt: skip
    assert not any(s.fault for s in loaded.method)
    for name in ("snapshot", "chain_rollback", "cancel_all", "disable_access", "enable_access",
                 "replay"):  # fmt: skip
        assert ACTIONS[name].family == "response" and not ACTIONS[name].is_fault
    assert ACTIONS["chain_rollback"].requires == ("response.rollback",)


def test_validate_exits_2_for_a_rollback_on_a_stack_without_the_binding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = experiment(tmp_path, "  - {at: 2s, action: chain_rollback, seq: 10}\n", TINY_STACK)
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr().out
    assert (
        "exp.yaml:5: method[0].action: chain_rollback needs bindings.response.rollback, "
        "which stack tiny's file" in out
    ), out
    # a response binding without that request is named the same way
    with_snapshot = TINY_STACK + "  response:\n    services: [api]\n    snapshot: {POST: /snap}\n"
    path = experiment(tmp_path, "  - {at: 2s, action: chain_rollback, seq: 10}\n", with_snapshot)
    assert main(["validate", str(path)]) == 2
    assert "chain_rollback needs bindings.response.rollback" in capsys.readouterr().out
    snapshot_only = experiment(tmp_path, "  - {at: 2s, action: snapshot}\n", with_snapshot)
    assert main(["validate", str(snapshot_only)]) == 0


def test_missing_requirement_names_the_sub_request() -> None:
    reference = resolve(load_stack(reference_stack_path()))
    assert missing_requirement("chain_rollback", reference) is None
    assert missing_requirement("replay", reference) is None


def test_a_rollback_to_a_snapshot_no_earlier_step_takes_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = experiment(
        tmp_path,
        """\
        - {at: 1s, action: chain_rollback, to: pre}
        - {id: pre, at: 2s, action: snapshot}
        - {at: 3s, action: chain_rollback, to: pree}
        """,
    )
    found = texts(path)
    assert any("exp.yaml:4: method[0].to: no earlier snapshot step takes snapshot 'pre' "
               "(snapshots taken before this step: none)" in p for p in found), found  # fmt: skip
    assert any("exp.yaml:6: method[2].to: no earlier snapshot step takes snapshot 'pree' "
               "(snapshots taken before this step: pre)" in p for p in found), found  # fmt: skip
    assert main(["validate", str(path)]) == 2
    capsys.readouterr()


def test_the_snapshot_must_be_taken_in_each_variant_the_rollback_runs_in(tmp_path: Path) -> None:
    variants = "variants:\n  a: {mitigations: none}\n  b: {mitigations: all}\n"
    path = experiment(
        tmp_path,
        """\
        - {id: s, at: 1s, action: snapshot, label: before, variants: [a]}
        - {at: 2s, action: chain_rollback, to: before}
        - {at: 3s, action: chain_rollback, to: before, variants: [a]}
        """,
        extra=variants,
    )
    found = texts(path)
    assert len(found) == 1, found
    assert "method[1].to: no earlier snapshot step takes snapshot 'before'" in found[0]
    assert found[0].endswith("(variant b)")


def test_cross_step_rules_of_the_runbook(tmp_path: Path) -> None:
    path = experiment(
        tmp_path,
        """\
        - {id: first, at: 1s, action: snapshot}
        - {at: 2s, action: snapshot, label: first}
        - {id: late, after: first, at: 5s, action: snapshot}
        - {at: 3s, action: chain_rollback, to: late}
        - {at: 4s, action: replay, kinds: [deposit], rollback: nowhere}
        """,
    )
    found = texts(path)
    assert any("method[1].label: step 'first' takes snapshot 'first' already" in p
               for p in found), found  # fmt: skip
    assert any("method[3].to: step 'late' is planned at 6s, after this step (3s)" in p
               for p in found), found  # fmt: skip
    assert any("method[4].rollback: no earlier chain_rollback step has id 'nowhere' (earlier "
               "chain_rollback steps: chain_rollback-3)" in p for p in found), found  # fmt: skip


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ("{at: 1s, action: chain_rollback}", "method[0].to: required: a snapshot's label"),
        ("{at: 1s, action: chain_rollback, to: x, seq: 3}", "method[0].seq: give either to"),
        ("{at: 1s, action: chain_rollback, seq: -1}", "method[0].seq: must be >= 0"),
        ("{at: 1s, action: cancel_all, except: [take_profit, trailing]}",
         "method[0].except[1]: unknown order type 'trailing' (allowed: limit, market, "
         "take_profit, stop_loss)"),
        ("{at: 1s, action: cancel_all, markets: [DOGE-PERP]}",
         "method[0].markets[0]: unknown market 'DOGE-PERP' (markets: BTC-PERP, ETH-PERP)"),
        ("{at: 1s, action: cancel_all, accounts: [a]}", "method[0].accounts[0]: expected an "
         "integer"),
        ("{at: 1s, action: replay}", "method[0].kinds: a replay needs seqs and/or kinds"),
        ("{at: 1s, action: enable_access, reason: x}", "method[0].reason: unknown parameter"),
        ("{at: 1s, action: snapshot, target: sequencer}", "method[0].target: action "
         "'snapshot' takes no target"),
        ("{at: 1s, action: trigger_orders, types: [limit]}", "method[0].types[0]: unknown order "
         "type 'limit' (allowed: take_profit, stop_loss)"),
    ],
)  # fmt: skip
def test_each_bad_parameter_is_one_sentence(tmp_path: Path, step: str, expected: str) -> None:
    found = texts(experiment(tmp_path, f"  - {step}\n"))
    assert any(expected in p for p in found), found


def test_trigger_orders_need_an_orders_binding_that_sends_the_trigger(tmp_path: Path) -> None:
    assert texts(experiment(tmp_path, "  - {at: 1s, action: trigger_orders, count: 2}\n")) == []
    found = texts(experiment(tmp_path, "  - {at: 1s, action: trigger_orders}\n", TINY_STACK))
    assert any("method[0].action: trigger_orders needs bindings.orders.submit to send "
               "{trigger_price}; stack tiny's does not" in p for p in found), found  # fmt: skip
