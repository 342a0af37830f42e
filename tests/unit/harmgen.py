"""Generated histories with planted harm and with a recorded response (snapshot, cancel_all,
rollback, replay), on top of ``histgen.Builder``'s clean run.

Each ``plant_*`` adds one harm to a built clean history and returns the exact loss per
account it must cost (computed here from the truth the same way a person would: price paid
against the true price, false funding booked). Times are moved to the middle of a funding
interval so no funding boundary falls inside a planted window unless the plant wants one.
``rollback`` turns the events after a snapshot into rolled-back events, records the steps
in faults.jsonl as the response steps would, and lets the run go on with new events.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from histgen import DEEP, INSURANCE, Builder, clean_history

Obj = dict[str, Any]
BTC = "BTC-PERP"


def mid_interval(b: Builder) -> None:
    """Move the clock past a quiet stretch to 0.4 s into a funding interval (1 s)."""
    b.t += 2.5
    b.t = math.floor(b.t - b.epoch) + b.epoch + 0.4


def write(b: Builder, run_dir: Path, insurance_fund: int | None = INSURANCE, **extra: Any) -> Path:
    """``b.write`` plus run.json's ``insurance_fund`` and ``rolled_back.jsonl``."""
    b.write(run_dir)
    run_json = run_dir / "history" / "run.json"
    run = json.loads(run_json.read_text())
    if insurance_fund is not None:
        run["insurance_fund"] = insurance_fund
    run["params"] = {**run.get("params", {}), **extra}
    run_json.write_text(json.dumps(run))
    if b.rolled_back:
        with (run_dir / "history" / "rolled_back.jsonl").open("w") as fh:
            for event in b.rolled_back:
                fh.write(json.dumps(event, separators=(",", ":")) + "\n")
    return run_dir


def fresh_account(b: Builder, account: int, amount: float = DEEP) -> None:
    b.deposit(account, amount)


def plant_unintended_liquidation_at_false_price(b: Builder, account: int = 60) -> Obj:
    """A healthy long of 1 BTC liquidated at 80% of the true price; the insurance fund
    takes it at that price. Loss: true price minus the price it got (no funding moves)."""
    mid_interval(b)
    fresh_account(b, account)
    price = round(b.truth.price(BTC, b.t + 0.01), 2)
    b.fill(BTC, price, 1.0, taker=account, maker=1, oracle_age=0.1)
    t_liq = b.t + 0.01
    false_mark = round(0.8 * b.truth.price(BTC, t_liq), 2)
    event = b.emit(
        "liquidation",
        account=account,
        market=BTC,
        qty=1.0,
        mark_price=false_mark,
        oracle_ts=round(t_liq - 0.1, 6),
        funding_index=b.truth.funding_index(BTC, t_liq),
        equity=0.0,
        maintenance=0.0,
    )
    fill = b.fill(
        BTC, false_mark, 1.0, taker=account, maker=INSURANCE, taker_side="sell",
        liquidation=True, oracle_age=0.1,
    )  # fmt: skip
    true = b.truth.price(BTC, event["time"])
    b.build_chain()
    return {
        "seq": event["seq"],
        "account": account,
        "loss": true - false_mark,
        "fund_won": b.truth.price(BTC, fill["time"]) - false_mark,
    }


def plant_zero_funding_liquidation(b: Builder, account: int = 64) -> Obj:
    """The Paradex harm: a healthy short of 1 BTC is liquidated at the true mark, and the
    stack settles its funding at a funding index of 0.0 (the true one is ~30,000): it books
    the short a loss of the whole index. Loss: the index (plus the cents of rounding)."""
    mid_interval(b)
    fresh_account(b, account)
    price = round(b.truth.price(BTC, b.t + 0.01), 2)
    b.fill(BTC, price, 1.0, taker=account, maker=1, taker_side="sell", oracle_age=0.1)
    t_liq = b.t + 0.01
    mark = round(b.truth.price(BTC, t_liq), 2)
    event = b.emit(
        "liquidation",
        account=account,
        market=BTC,
        qty=1.0,
        mark_price=mark,
        oracle_ts=round(t_liq - 0.1, 6),
        funding_index=0.0,
        equity=-1.0,
        maintenance=1.0,
    )
    fill = b.fill(BTC, mark, 1.0, taker=account, maker=INSURANCE, liquidation=True, oracle_age=0.1)
    fill["funding_index"] = 0.0  # what the stack used
    t = event["time"]
    true_index = b.truth.funding_index(BTC, t)
    loss = mark - b.truth.price(BTC, t) + true_index
    b.build_chain()
    return {"seq": event["seq"], "account": account, "loss": loss, "funding": true_index}


def plant_off_market_fill(b: Builder, buyer: int = 61, seller: int = 62, off: float = 0.10) -> Obj:
    """``buyer`` pays ``1 + off`` times the true price for 0.5 BTC (normal mode)."""
    mid_interval(b)
    fresh_account(b, buyer)
    fresh_account(b, seller)
    t = b.t + 0.01
    price = round(b.truth.price(BTC, t) * (1 + off), 2)
    fill = b.fill(BTC, price, 0.5, taker=buyer, maker=seller)
    loss = (price - b.truth.price(BTC, fill["time"])) * 0.5
    b.build_chain()
    return {"seq": fill["seq"], "buyer": buyer, "seller": seller, "loss": loss}


def plant_duplicate_execution(b: Builder, account: int = 63, maker: int = 2) -> Obj:
    """A client order accepted twice (a retry without idempotency), both copies filled."""
    mid_interval(b)
    fresh_account(b, account)
    first = b.order(account, BTC, "buy", round(b.truth.price(BTC, b.t) * 1.001, 2), 0.3)
    b.fill(BTC, first["price"], 0.3, taker=account, maker=maker, taker_order=first["order_id"])
    fields = {k: first[k] for k in ("client_order_id", "account", "market", "side", "order_type",
                                    "price", "qty")}  # fmt: skip
    again = b.emit("order_accepted", order_id=first["order_id"] + 100_000, **fields)
    dup = b.fill(
        BTC, first["price"], 0.3, taker=account, maker=maker, taker_order=again["order_id"]
    )
    b.build_chain()
    return {"seq": dup["seq"], "account": account, "qty": 0.3, "price": first["price"]}


def end_loss_of_duplicate(b: Builder, planted: Obj) -> float:
    """What the duplicated buy cost by the end of the history, at true prices."""
    end = max(e["time"] for e in b.events)
    qty: float = planted["qty"]
    paid: float = planted["price"]
    return -qty * (b.truth.price(BTC, end) - paid)


# -- the response -------------------------------------------------------------------------


def record(b: Builder, step: str, action: str, evidence: Obj, **params: Any) -> None:
    b.faults.append(
        {
            "time": round(b.t, 6),
            "id": step,
            "action": action,
            "target": None,
            "phase": "evidence",
            "params": params,
            "evidence": evidence,
        }
    )


def snapshot(b: Builder, label: str = "pre") -> Obj:
    """A snapshot at the log's current seq, the chain as built so far being its chain."""
    b.build_chain()
    head = b.blocks[-1] if b.blocks else None
    answer = {
        "status": "accepted",
        "snapshot": label,
        "seq": len(b.events),
        "time": round(b.t, 6),
        "chain_height": head["height"] if head else 0,
        "chain_last_seq": head["last_seq"] if head else 0,
        "chain_hash": head["hash"] if head else "",
    }
    record(b, "snap", "snapshot", answer, label=label)
    b.snapshot_blocks = [json.loads(json.dumps(x)) for x in b.blocks]
    return answer


def rollback(b: Builder, snap: Obj, rollback_id: int = 1, accounts: Obj | None = None) -> Obj:
    """Roll the log back to ``snap``: the events after it move to ``b.rolled_back``; the
    step's record says so (and reports ``accounts`` as the recovered state when given)."""
    to_seq = snap["seq"]
    removed = b.events[to_seq:]
    b.rolled_back = b.rolled_back + [{**e, "rollback": rollback_id} for e in removed]
    del b.events[to_seq:]
    b.tick(0.05)
    orders = [
        {k: e.get(k) for k in ("seq", "order_id", "client_order_id", "account", "market",
                               "order_type")}
        for e in removed
        if e["kind"] == "order_accepted"
    ]  # fmt: skip
    answer: Obj = {
        "status": "accepted",
        "rollback": rollback_id,
        "snapshot": snap["snapshot"],
        "to_seq": to_seq,
        "from_seq": to_seq + len(removed),
        "chain_height": snap["chain_height"],
        "time": round(b.t, 6),
        "rolled_back": {"events": len(removed), "orders": orders},
        "chain": {"rolled_back": True, "height": snap["chain_height"], "dropped": 3},
        "at_seq": to_seq,
    }
    if accounts is not None:
        answer["accounts"] = accounts
    record(b, "rollback", "chain_rollback", answer, to="pre")
    return answer


def cancel_all(b: Builder, cancelled: list[Obj], kept: list[Obj], excepted: list[str]) -> Obj:
    at_seq = len(b.events)
    views = []
    for order in cancelled:
        event = b.emit(
            "order_cancelled",
            order_id=order["order_id"],
            account=order["account"],
            client_order_id=order["client_order_id"],
            market=order["market"],
            order_type=order.get("order_type", "limit"),
            reason="cancel_all",
            source="admin",
        )
        views.append({**_view(order), "seq": event["seq"]})
    answer = {
        "status": "accepted",
        "except": excepted,
        "at_seq": at_seq,
        "last_seq": len(b.events),
        "cancelled": len(views),
        "kept": len(kept),
        "cancelled_orders": views,
        "kept_orders": [_view(o) for o in kept],
        "time": round(b.t, 6),
    }
    record(b, "cancel", "cancel_all", answer, **{"except": excepted})
    return answer


def _view(order: Obj) -> Obj:
    return {k: order.get(k) for k in ("order_id", "client_order_id", "account", "market",
                                      "order_type")}  # fmt: skip


def trigger_order(
    b: Builder, account: int, kind: str, trigger_price: float, qty: float = 0.1
) -> Obj:
    """An acknowledged take-profit / stop-loss order (pending: outside the book)."""
    order = b.order(account, BTC, "sell", trigger_price, qty)
    order["order_type"] = kind
    order["trigger_price"] = trigger_price
    order["price"] = None
    for op in b.client[-2:]:
        op["order_type"] = kind
    return order


def built(seed: int = 3, trades: int = 30) -> Builder:
    return clean_history(seed, trades=trades)


def chain_after_rollback(b: Builder, per_block: int = 25) -> None:
    """The chain as the stack leaves it after a rollback: the snapshot's blocks, then new
    blocks of the final log's events after them, hash-linked (``b.blocks``)."""
    from histgen import seal

    assert b.snapshot_blocks is not None, "chain_after_rollback needs a snapshot() first"
    kept = [json.loads(json.dumps(x)) for x in b.snapshot_blocks]
    last = kept[-1]["last_seq"] if kept else 0
    prev = kept[-1]["hash"] if kept else "0" * 64
    rest = [dict(e) for e in b.events if e["seq"] > last]
    blocks = kept
    for i in range(0, len(rest), per_block):
        chunk = rest[i : i + per_block]
        t = chunk[-1]["time"] + 0.05
        block = seal(
            {
                "height": len(blocks) + 1,
                "prev_hash": prev,
                "first_seq": chunk[0]["seq"],
                "last_seq": chunk[-1]["seq"],
                "events": chunk,
                "market_data": b.market_data_at(t),
                "time": round(t, 6),
            }
        )
        blocks.append(block)
        prev = block["hash"]
    b.blocks = blocks


def stack_state(events: list[Obj]) -> Obj:
    """The reference engine's own rebuild of ``events`` (what its rollback reports)."""
    from chaos.stack.engine import Engine
    from chaos.stack.replay import rebuild
    from chaos.world import MARKET_NAMES

    return rebuild(Engine("a", 1, MARKET_NAMES, frozenset()), events).accounts_state()
