"""recovery_within_rto: after a node loss, trading resumes within the RTO budget.

For every loss in ``faults.jsonl`` (``node_loss`` or ``site_loss`` of any target, or
``kill``/``crash`` of a service that takes orders: run.json's ``stack.order_services``, the
servers of the stack's orders links), the outage starts at the loss itself: the time of the
fault's ``evidence`` record saying ``lost: true`` (or its ``lost_at``) when recorded, else
its ``begin`` time plus its ``ramp`` (a cooling-style loss degrades first), else its
``begin`` time. Trading has resumed at the
first client ``ok`` whose ``invoke`` was issued at or after the outage start. It holds when
that is at most ``rto_s`` after the start. If no client op succeeded afterwards, it is
violated when the client history runs on past start + ``rto_s``, and unknown when the run
ended sooner. Unit: losses. With no loss in the history there is no evidence (unknown).
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos.checkers.base import Findings, Verdict, rel, since_t0, when
from chaos.checkers.params import CheckParams
from chaos.history.events import FaultRecord
from chaos.history.reader import History

NAME = "recovery_within_rto"
LOSS_ACTIONS = frozenset({"node_loss", "site_loss"})
KILL_ACTIONS = frozenset({"kill", "crash"})


@dataclass(frozen=True)
class Outage:
    fault_id: str
    action: str
    target: str | None
    start: float


def outages(history: History) -> list[Outage]:
    """Node losses and sequencer kills, with the instant each took effect."""
    begins: dict[str, FaultRecord] = {}
    lost_at: dict[str, float] = {}
    order_services = set(history.run.order_services)
    for fault in history.faults():
        is_loss = fault.action in LOSS_ACTIONS
        targets = set((fault.target or "").split(","))
        is_kill = fault.action in KILL_ACTIONS and bool(targets & order_services)
        if not (is_loss or is_kill):
            continue
        if fault.phase == "begin":
            begins.setdefault(fault.id, fault)
        elif fault.phase == "evidence":
            when = fault.evidence.get("lost_at")
            if isinstance(when, int | float):
                lost_at.setdefault(fault.id, float(when))
            elif fault.evidence.get("lost") is True:
                lost_at.setdefault(fault.id, fault.time)
    result = []
    for fault_id, begin in begins.items():
        ramp = begin.params.get("ramp") if begin.action in LOSS_ACTIONS else None
        start = lost_at.get(fault_id)
        if start is None:
            start = begin.time + (float(ramp) if isinstance(ramp, int | float) else 0.0)
        result.append(Outage(fault_id, begin.action, begin.target, start))
    return sorted(result, key=lambda o: o.start)


def check(history: History, params: CheckParams) -> Verdict:
    found = Findings(NAME, params.max_counterexamples)
    losses = outages(history)
    if not losses:
        return found.verdict(
            "node losses", nothing="no node loss or sequencer kill in faults.jsonl"
        )
    if not history.has("client"):
        return found.verdict("node losses", unknown="no client.jsonl in the history")
    resumed: list[float | None] = [None] * len(losses)
    invoked_at: dict[object, float] = {}
    last_time = float("-inf")
    for op in history.client_ops():
        t = op["time"]
        last_time = max(last_time, t)
        if op["type"] == "invoke":
            invoked_at[op.get("process")] = t
            continue
        if op["type"] != "ok":
            continue
        invoked = invoked_at.get(op.get("process"), t)
        for i, loss in enumerate(losses):
            if resumed[i] is None and invoked >= loss.start:
                resumed[i] = t
    unknown_reason = None
    for loss, at in zip(losses, resumed, strict=True):
        found.checked += 1
        what = f"{loss.action} of {loss.target} ({loss.fault_id})"
        if at is not None and at - loss.start <= params.rto_s:
            continue
        if at is None and last_time < loss.start + params.rto_s:
            unknown_reason = f"the run ended {last_time - loss.start:.1f}s after {what}"
            continue
        took = "never resumed" if at is None else f"resumed after {at - loss.start:.2f}s"
        found.add(
            {
                "problem": f"trading {took} following {what} at "
                f"{since_t0(history, loss.start)} "
                f"(RTO {params.rto_s:g}s)",
                "fault_id": loss.fault_id,
                "action": loss.action,
                "target": loss.target,
                **when(history, loss.start),
                "resumed_t": rel(history, at),
                "downtime_s": None if at is None else round(at - loss.start, 3),
                "rto_s": params.rto_s,
                "last_client_op_t": rel(history, last_time),
            },
            unit=loss.fault_id,
        )
    return found.verdict("node losses", unknown=unknown_reason)
