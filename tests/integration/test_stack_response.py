"""The reference stack rehearses the response against real processes: a take-profit fires on
the real mark, a stop-loss survives cancel_all, disabled access refuses traders with an
answer the load records as ``fail``, a rollback to a snapshot restores the db and the chain
(the writer then writes the kept events again and goes on), and kept events can be replayed.
Trading traffic (and the risk engine's liquidations) runs throughout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from stack_harness import TradingClient, make_stack, wait_until
from test_stack_traffic import assert_chain_equals_event_log, assert_checkers_pass, export

from chaos.bindings.http import classify
from chaos.checkers import run_all
from chaos.harm import harm_ledger
from chaos.history.reader import History
from chaos.stack.blocks import EVENT_COLUMNS, event_record
from chaos.stackfile import load, reference_stack_path

pytestmark = pytest.mark.integration
ACCOUNT = 30  # untouched by the trading client (its accounts are 1..12)


def post(url: str, body: dict[str, Any], timeout: float = 20.0) -> tuple[int, dict[str, Any]]:
    resp = requests.post(url, json=body, timeout=timeout)
    return resp.status_code, resp.json()


def order(coid: str, **fields: Any) -> dict[str, Any]:
    return {"client_order_id": coid, "account": ACCOUNT, "market": "BTC-PERP", **fields}


def test_response_runbook_on_the_running_stack(tmp_path: Path) -> None:
    seed = 5
    with make_stack(tmp_path, mitigations="all", seed=seed) as stack:
        seq_url = stack.url("sequencer")
        client = TradingClient(stack.client_url("sequencer"), seed=seed)
        client.start()
        try:
            marks = wait_until(lambda: len(client.marks()) == 2 and client.marks(), 20, "marks")
            mark = marks["BTC-PERP"]
            wait_until(lambda: stack.query("SELECT 1 FROM events WHERE kind = 'fill'"), 20, "fills")

            # a buy take-profit above the mark fires at once on the next price poll
            status, tp = post(
                f"{seq_url}/orders",
                order("tp-1", side="buy", type="take_profit", qty=0.01, trigger_price=mark * 1.05),
            )
            assert status == 200 and tp["status"] == "accepted", tp
            wait_until(
                lambda: stack.query(
                    "SELECT 1 FROM events WHERE kind = 'order_triggered' AND (body->>'order_id')"
                    "::bigint = %s",
                    (tp["order_id"],),
                ),
                10,
                "the take-profit to trigger",
            )
            fills = stack.query(
                "SELECT body FROM events WHERE kind = 'fill' AND (body->>'taker_order_id')"
                "::bigint = %s",
                (tp["order_id"],),
            )
            assert fills, "the triggered take-profit did not trade"

            # a stop-loss far below the mark waits; a resting limit order of the same account
            _, sl = post(
                f"{seq_url}/orders",
                order("sl-1", side="sell", type="stop_loss", qty=0.01, trigger_price=mark * 0.5),
            )
            _, rest = post(
                f"{seq_url}/orders", order("bid-1", side="buy", type="limit", qty=0.01,
                                           price=round(mark * 0.9, 1))
            )  # fmt: skip
            assert sl["status"] == rest["status"] == "accepted"

            status, snap = post(f"{seq_url}/admin/snapshot", {"label": "pre"})
            assert status == 200, snap
            assert snap["seq"] >= rest["seq"] and snap["chain_height"] >= 0
            assert post(f"{seq_url}/admin/snapshot", {"label": "pre"})[0] == 400

            acked = len(client.acked)
            wait_until(lambda: len(client.acked) > acked + 20, 20, "orders after the snapshot")
            _, after = post(
                f"{seq_url}/orders", order("bid-2", side="buy", type="limit", qty=0.01,
                                           price=round(mark * 0.9, 1))
            )  # fmt: skip
            assert after["seq"] > snap["seq"]

            status, off = post(f"{seq_url}/admin/disable_access", {"reason": "incident"})
            assert status == 200 and off["enabled"] is False
            status, answer = post(
                f"{stack.client_url('sequencer')}/orders",
                order("late", side="buy", type="market", qty=0.01),
            )
            assert status == 403 and "incident" in answer["error"]
            orders = load(reference_stack_path()).bindings.orders
            assert orders is not None
            assert classify(orders.answer, status, json.dumps(answer)).kind == "fail"

            status, cancelled = post(
                f"{seq_url}/admin/cancel_all", {"except": ["take_profit", "stop_loss"]}
            )
            assert status == 200, cancelled
            kept = {o["order_id"] for o in cancelled["kept_orders"]}
            assert sl["order_id"] in kept
            gone = {o["client_order_id"] for o in cancelled["cancelled_orders"]}
            assert {"bid-1", "bid-2"} <= gone
            view = requests.get(f"{seq_url}/accounts/{ACCOUNT}", timeout=5).json()
            assert [o["client_order_id"] for o in view["orders"]] == ["sl-1"]

            max_before = stack.max_seq()
            status, back = post(f"{seq_url}/admin/rollback", {"snapshot": "pre"})
            assert status == 200, back
            assert back["to_seq"] == snap["seq"] and back["from_seq"] >= max_before
            assert back["chain"]["rolled_back"] is True, back["chain"]
            assert back["chain"]["height"] == snap["chain_height"]
            assert back["rolled_back"]["events"] == back["from_seq"] - snap["seq"]
            assert "bid-2" in {o["client_order_id"] for o in back["rolled_back"]["orders"]}
            (moved,) = stack.query(
                "SELECT count(*) FROM rolled_back_events WHERE rollback = %s", (back["rollback"],)
            )[0]
            assert moved == back["rolled_back"]["events"]
            # the state is the snapshot's: bid-1 rests again, bid-2 never happened
            view = requests.get(f"{seq_url}/accounts/{ACCOUNT}", timeout=5).json()
            assert {o["client_order_id"] for o in view["orders"]} == {"sl-1", "bid-1"}
            assert back["accounts"][str(ACCOUNT)] == {
                "collateral": view["collateral"],
                "positions": {
                    m: {"size": p["size"], "entry_price": p["entry_price"]}
                    for m, p in view["positions"].items()
                },
            }

            # the operator keeps the cancellations cancel_all made: bid-1 goes again
            status, replayed = post(
                f"{seq_url}/admin/replay",
                {"seqs": [o["seq"] for o in cancelled["cancelled_orders"]]},
            )
            assert status == 200, replayed
            assert replayed["rollback"] == back["rollback"]
            view = requests.get(f"{seq_url}/accounts/{ACCOUNT}", timeout=5).json()
            assert [o["client_order_id"] for o in view["orders"]] == ["sl-1"]
            assert post(f"{seq_url}/admin/replay", {"kinds": ["fill"]})[0] == 400

            assert post(f"{seq_url}/admin/enable_access", {})[0] == 200
            acked = len(client.acked)
            wait_until(lambda: len(client.acked) > acked + 10, 20, "trading after the rollback")
        finally:
            client.stop()
        last = stack.quiesce()
        assert last > back["to_seq"]
        # a chain-only rollback: the writer follows the new head and writes the same events
        head = stack.chain_head()["height"]
        status, dropped = post(f"{stack.url('chain')}/admin/rollback", {"height": head // 2})
        assert status == 200 and dropped["dropped"] == head - head // 2
        stack.wait_chain_caught_up()
        records = export(stack, tmp_path / "run", seed)
        rolled_back = [
            {**event_record(row[1:]), "rollback": row[0]}
            for row in stack.query(
                f"SELECT rollback, {EVENT_COLUMNS} FROM rolled_back_events ORDER BY rollback, seq"
            )
        ]
    assert_chain_equals_event_log(records)
    chain = records["chain"]
    assert (
        chain[snap["chain_height"] - 1]["hash"] == snap["chain_hash"]
        if snap["chain_height"]
        else True
    )
    assert_checkers_pass(
        tmp_path / "run", ["no_corrupt_chain_writes", "sequence_integrity", "no_duplicate_orders"]
    )
    # the History as the response steps and the stack file's history binding will write it
    history = tmp_path / "run" / "history"
    run = json.loads((history / "run.json").read_text())
    (history / "run.json").write_text(json.dumps({**run, "insurance_fund": 0}))
    steps = [("snap", "snapshot", snap), ("cancel", "cancel_all", cancelled),
             ("rollback", "chain_rollback", back), ("keep", "replay", replayed)]  # fmt: skip
    with (history / "faults.jsonl").open("w") as fh:
        for step, action, answer in steps:
            record = {"time": answer["time"], "id": step, "action": action, "target": None,
                      "phase": "evidence", "params": {}, "evidence": answer}  # fmt: skip
            fh.write(json.dumps(record) + "\n")
    with (history / "rolled_back.jsonl").open("w") as fh:
        for event in rolled_back:
            fh.write(json.dumps(event) + "\n")
    recovered = [
        "rollback_restores_snapshot",
        "no_corrupt_market_data_remains",
        "trigger_orders_survive_cancel_all",
        "recovered_state_matches_replay",
    ]
    verdicts = run_all(History.open(tmp_path / "run"), recovered)
    held = {v.invariant: (v.valid, v.checked, v.message) for v in verdicts}
    assert all(v.valid is True and v.checked > 0 for v in verdicts), held
    harm = harm_ledger(History.open(tmp_path / "run")).to_dict()
    assert harm["unknown"] == [] and len(harm["rollbacks"]) == 1
    assert harm["rollbacks"][0]["to_seq"] == snap["seq"]
