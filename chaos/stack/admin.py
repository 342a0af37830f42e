"""Operator actions on the exchange engine (pure, like the engine): cancel every open order
except some order types, and replay kept events after a rollback.

``cancel_all`` cancels, in order_id order, every resting and pending order whose type is not
in ``except`` (optionally only of some accounts / markets), in any trading mode, even while
access is disabled: one ``order_cancelled`` event per order with ``reason: "cancel_all"``,
``source`` and ``order_type``. Its answer lists what it cancelled and what it kept.

``replay_kept`` re-applies rolled-back events the operator chose to keep, in their seq order,
as new events with new seqs (each carries ``replay_of``: the seq it had): ``deposit`` (credited
again), ``order_accepted`` (submitted again and matched against today's book: it may fill
differently than it did), ``order_cancelled`` (the order is cancelled if it is open again)
and ``mode``. Fills, liquidations, funding settlements and triggers are consequences of
orders and prices, not decisions: a selection holding one is refused (``BadRequest``)
before anything is applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chaos.stack.book import ORDER_TYPES
from chaos.stack.changes import BadRequest, Changes
from chaos.stack.engine import Engine, order_view

REPLAYABLE = ("deposit", "order_accepted", "order_cancelled", "mode")


def cancel_all(engine: Engine, req: dict[str, Any], changes: Changes, now: float) -> dict[str, Any]:
    """Cancel all open orders but those of the types in ``req["except"]``; see the module."""
    excepted = _names(req.get("except", []), ORDER_TYPES, "except")
    accounts = _ids(req.get("accounts"), "accounts")
    markets = None if req.get("markets") is None else set(_names(req["markets"], None, "markets"))
    source = str(req.get("source") or "admin")
    at_seq = engine.seq
    cancelled, kept = [], []
    for order in sorted(engine.orders_by_id.values(), key=lambda o: o.order_id):
        if (accounts is not None and order.account not in accounts) or (
            markets is not None and order.market not in markets
        ):
            continue
        if order.order_type in excepted:
            kept.append(order_view(order))
            continue
        view = order_view(order)
        view["seq"] = engine.cancel_order(order, changes, now, reason="cancel_all", source=source)
        view["status"] = "cancelled"
        cancelled.append(view)
    return {
        "status": "accepted",
        "time": now,
        "except": excepted,
        "at_seq": at_seq,
        "last_seq": engine.seq,
        "cancelled": len(cancelled),
        "kept": len(kept),
        "cancelled_orders": cancelled,
        "kept_orders": kept,
    }


def replay_kept(
    engine: Engine, events: Sequence[dict[str, Any]], changes: Changes, now: float
) -> dict[str, Any]:
    """Apply the chosen rolled-back ``events`` again; see the module. Raises BadRequest
    (nothing applied) when one of them is not a decision that can be replayed."""
    for event in events:
        if event.get("kind") not in REPLAYABLE:
            raise BadRequest(
                f"seq {event.get('seq')}: a {event.get('kind')} event cannot be replayed (it "
                f"follows from orders and prices); replayable kinds: {', '.join(REPLAYABLE)}"
            )
    results = []
    for event in sorted(events, key=lambda e: int(e["seq"])):
        kind, was = event["kind"], int(event["seq"])
        if kind == "deposit":
            seq = engine.deposit(
                int(event["account"]), float(event["amount"]), changes, now, replay_of=was
            )
            results.append({"replay_of": was, "kind": kind, "status": "accepted", "seq": seq})
            continue
        if kind == "order_accepted":
            answer = engine.place_order(_order_request(event), changes, now, True, was)
        elif kind == "order_cancelled":
            answer = _cancel_again(engine, event, changes, now, was)
        else:
            answer = engine.set_mode({"mode": event["mode"], "source": "replay"}, changes, now)
        results.append(
            {
                "replay_of": was,
                "kind": kind,
                "status": answer.get("status"),
                "seq": answer.get("seq"),
                "reason": answer.get("reason"),
            }
        )
    return {
        "status": "accepted",
        "time": now,
        "replayed": sum(1 for r in results if r["status"] == "accepted"),
        "results": results,
        "at_seq": engine.seq,
        "accounts": engine.accounts_state(),
    }


def _order_request(event: dict[str, Any]) -> dict[str, Any]:
    req = {
        k: event.get(k)
        for k in ("client_order_id", "account", "market", "side", "price", "qty", "post_only")
    }
    req["type"] = event.get("order_type", "limit")
    if event.get("trigger_price") is not None:
        req["trigger_price"] = event["trigger_price"]
    return {k: v for k, v in req.items() if v is not None}


def _cancel_again(
    engine: Engine, event: dict[str, Any], changes: Changes, now: float, was: int
) -> dict[str, Any]:
    order = engine.orders_by_id.get(int(event["order_id"]))
    if order is None:
        return {"status": "rejected", "reason": "the order is not open", "seq": None}
    seq = engine.cancel_order(order, changes, now, reason="replay", source="replay")
    return {"status": "accepted", "seq": seq, "replay_of": was}


def _names(value: Any, allowed: Sequence[str] | None, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"{what} must be a list of names")
    if allowed is not None:
        unknown = [v for v in value if v not in allowed]
        if unknown:
            raise BadRequest(f"{what}: unknown {', '.join(unknown)} (known: {', '.join(allowed)})")
    return list(value)


def _ids(value: Any, what: str) -> set[int] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise BadRequest(f"{what} must be a list of integers")
    return set(value)
