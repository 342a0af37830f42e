"""Recovered-state invariants of orders (docs/checkers.md, "After the response").

no_unreported_lost_orders holds when every order acknowledged ``ok`` to a client is, after
the response, either in the final event log (its acceptance; if the runbook's
``cancel_all`` cancelled it, that cancellation is its fate) or was removed by a recorded
rollback that reported it (the rollback step's ``rolled_back.orders``, or, when the step
does not list orders, the events in ``rolled_back.jsonl``). An acknowledged order in
neither is lost. The verdict's message reports, per account, what the runbook cancelled
and what its rollbacks reverted. Memory: the acknowledged orders.

trigger_orders_survive_cancel_all holds when every recorded ``cancel_all`` did what it says:
no order of an excepted type (e.g. take_profit, stop_loss) was cancelled by it, and every
order of another type that was open when it ran was cancelled by it. Its cancellations are
the ``order_cancelled`` events with ``reason: "cancel_all"`` in its seq range (the log as
written: a later rollback may have removed them); the open orders are replayed from the
log as written up to that point.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chaos.checkers.base import Findings, Verdict
from chaos.checkers.params import CheckParams
from chaos.history.events import ClientOp, Event, OrderCancelledEvent
from chaos.history.reader import History
from chaos.history.response import CancelAllRecord, RollbackRecord, response_log
from chaos.history.timeline import replay_as_written

LOST = "no_unreported_lost_orders"
SURVIVE = "trigger_orders_survive_cancel_all"


def check_lost(history: History, params: CheckParams) -> Verdict:
    found = Findings(LOST, params.max_counterexamples)
    if not history.has("client"):
        return found.verdict("acknowledged orders", unknown="no client.jsonl in the history")
    response = response_log(history)
    acked: dict[str, ClientOp] = {}
    for op in history.client_ops():
        if op.get("type") == "ok" and op.get("f") == "order":
            acked.setdefault(str(op.get("client_order_id")), op)
    found.checked = len(acked)
    cancelled: dict[int, int] = {}
    for record in response.cancel_alls:  # what each cancel_all reported it cancelled
        for order in record.cancelled:
            account = int(order.get("account") or 0)
            cancelled[account] = cancelled.get(account, 0) + 1
    for event in history.events():
        if event["kind"] == "order_accepted":
            acked.pop(str(event.get("client_order_id")), None)
        elif (
            not response.cancel_alls
            and event["kind"] == "order_cancelled"
            and event.get("reason") == "cancel_all"
        ):
            account = int(event["account"])
            cancelled[account] = cancelled.get(account, 0) + 1
    reverted: dict[int, int] = {}
    for _, coid in _reverted(history, response.rollbacks):
        if coid in acked:
            account = int(acked.pop(coid)["account"])
            reverted[account] = reverted.get(account, 0) + 1
    for coid, op in acked.items():
        found.add(
            {
                "problem": f"order {coid} of account {op.get('account')} was acknowledged to "
                "the client but is in no log and no rollback reported it: lost",
                "client_order_id": coid,
                "account": op.get("account"),
                "time": op.get("time"),
                "seq_told": op.get("seq"),
            }
        )
    verdict = found.verdict("acknowledged orders")
    report = (
        f"; the runbook's cancel_all cancelled {_per_account(cancelled)}, its rollbacks "
        f"reverted {_per_account(reverted)}"
    )
    return dataclasses.replace(verdict, message=verdict.message + report)


def _reverted(history: History, rollbacks: list[RollbackRecord]) -> list[tuple[Any, str]]:
    """(rollback, client_order_id) of every acceptance a rollback removed and reported."""
    out = []
    listed = [r for r in rollbacks if r.reverted_orders]
    for rollback in listed:
        out += [
            (rollback.rollback, str(o.get("client_order_id"))) for o in rollback.reverted_orders
        ]
    unlisted = {str(r.rollback) for r in rollbacks if not r.reverted_orders}
    if unlisted and history.has("rolled_back"):
        for event in history.rolled_back():
            if event["kind"] == "order_accepted" and str(event.get("rollback")) in unlisted:
                out.append((event.get("rollback"), str(event.get("client_order_id"))))
    return out


def _per_account(counts: Mapping[int, int]) -> str:
    if not counts:
        return "none"
    total = sum(counts.values())
    parts = ", ".join(f"{a}: {n}" for a, n in sorted(counts.items()))
    return f"{total} (by account {parts})"


@dataclass
class _Run:
    """What one cancel_all did, seen in the log as written."""

    record: CancelAllRecord
    open_before: dict[Any, tuple[int, str]] | None = None  # order_id -> (account, type)
    cancelled: dict[Any, str] = field(default_factory=dict)  # order_id -> type


class _OpenOrders:
    """A Replayer tracking the open (resting or pending) orders and the cancel_all runs."""

    def __init__(self, records: list[CancelAllRecord]) -> None:
        self.open: dict[Any, tuple[int, str]] = {}
        self.remaining: dict[Any, float] = {}
        self.runs = [_Run(r) for r in records]

    def apply(self, event: Event, reverted_by: RollbackRecord | None) -> None:
        for run in self.runs:  # a cancel_all that cancelled nothing: open orders at its time
            record = run.record
            idle = record.at_seq == record.last_seq  # cancelled nothing
            if run.open_before is None and idle and event["time"] >= record.time:
                run.open_before = dict(self.open)
        if event["kind"] == "order_accepted":
            order_type = str(event.get("order_type") or "limit")
            if order_type != "market":
                self.open[event["order_id"]] = (int(event["account"]), order_type)
                self.remaining[event["order_id"]] = float(event.get("qty") or 0.0)
        elif event["kind"] == "order_triggered" and event.get("price") is None:
            self.open.pop(event["order_id"], None)  # a market order now: nothing rests
            self.remaining.pop(event["order_id"], None)
        elif event["kind"] == "fill":
            for oid in (event.get("maker_order_id"), event.get("taker_order_id")):
                if oid in self.remaining:
                    self.remaining[oid] -= float(event["qty"])
                    if self.remaining[oid] <= 1e-9:
                        self.open.pop(oid, None)
                        self.remaining.pop(oid, None)
        elif event["kind"] == "order_cancelled":
            order_id = event["order_id"]
            by = self._run_of(event)
            if by is not None:
                if by.open_before is None:
                    by.open_before = dict(self.open)
                by.cancelled[order_id] = str(
                    event.get("order_type") or self.open.get(order_id, (0, "limit"))[1]
                )
            self.open.pop(order_id, None)
            self.remaining.pop(order_id, None)

    def _run_of(self, event: OrderCancelledEvent) -> _Run | None:
        if event.get("reason") != "cancel_all":
            return None
        seq, t = event["seq"], event["time"]
        candidates = [
            r
            for r in self.runs
            if r.record.at_seq is not None
            and r.record.last_seq is not None
            and r.record.at_seq < seq <= r.record.last_seq
        ]
        return min(candidates, key=lambda r: abs(r.record.time - t), default=None)

    def checkpoint(self) -> Any:
        return dict(self.open), dict(self.remaining)

    def restore(self, saved: Any, rollback: RollbackRecord) -> None:
        if saved is not None:
            self.open, self.remaining = dict(saved[0]), dict(saved[1])


def check_survive(history: History, params: CheckParams) -> Verdict:
    found = Findings(SURVIVE, params.max_counterexamples)
    response = response_log(history)
    if not response.cancel_alls:
        return found.verdict("orders", nothing="no cancel_all in the history")
    tracker = _OpenOrders(response.cancel_alls)
    timeline = replay_as_written(
        history.events,
        history.rolled_back if history.has("rolled_back") else None,
        response.rollbacks,
        tracker,
    )
    for run in tracker.runs:
        _judge(found, run)
    if timeline.problems:
        return found.verdict("orders", unknown="; ".join(timeline.problems))
    return found.verdict("orders open at a cancel_all")


def _judge(found: Findings, run: _Run) -> None:
    record = run.record
    excepted = set(record.excepted)
    open_before = run.open_before or {}
    for order_id, order_type in run.cancelled.items():
        found.checked += 1
        if order_type in excepted:
            account = open_before.get(order_id, (None, ""))[0]
            found.add(
                {
                    "problem": f"{record.step}: cancel_all cancelled {order_type} order "
                    f"{order_id} of account {account}, a type it was told to keep",
                    "step": record.step,
                    "order_id": order_id,
                    "order_type": order_type,
                    "account": account,
                    "excepted": sorted(excepted),
                }
            )
    for order_id, (account, order_type) in open_before.items():
        if order_id in run.cancelled or (
            record.accounts is not None and account not in record.accounts
        ):
            continue
        found.checked += 1
        if order_type not in excepted:
            found.add(
                {
                    "problem": f"{record.step}: {order_type} order {order_id} of account "
                    f"{account} was open and not excepted, but cancel_all left it open",
                    "step": record.step,
                    "order_id": order_id,
                    "order_type": order_type,
                    "account": account,
                }
            )
