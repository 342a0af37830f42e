"""The exchange engine's response side: trigger orders (take-profit / stop-loss on the mark),
cancel_all with exceptions by order type, access control, the state rebuilt from the event
log (what a rollback restores) and the replay of kept events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_stack_engine import BTC, NOW, make_engine, order, place

from chaos.stack.admin import cancel_all, replay_kept
from chaos.stack.engine import (
    AccessRefused,
    BadRequest,
    Changes,
    Engine,
    OraclePrice,
    trigger_crossed,
)
from chaos.stack.replay import rebuild
from chaos.world import MARKET_NAMES


def events_of(changes: Changes) -> list[dict[str, Any]]:
    """``changes.events`` as event-log objects (what the db and the history hold)."""
    return [
        {"seq": seq, "epoch": epoch, "sequencer": who, "time": t, "kind": kind, **json.loads(body)}
        for seq, epoch, who, t, kind, body in changes.events
    ]


def trigger(
    coid: str, account: int, side: str, qty: float, kind: str, trigger_price: float, **extra: Any
) -> dict[str, Any]:
    body = order(coid, account, side, qty, **extra)
    body.update(type=kind, trigger_price=trigger_price)
    return body


def mark(engine: Engine, price: float, now: float = NOW, funding: float = 10.0) -> None:
    for market in MARKET_NAMES:
        engine.set_price(market, OraclePrice(price, funding, now - 0.1), now=now)


@pytest.mark.parametrize(
    ("kind", "side", "at_or_below"),
    [("stop_loss", "sell", True), ("stop_loss", "buy", False), ("take_profit", "sell", False),
     ("take_profit", "buy", True)],
)  # fmt: skip
def test_trigger_direction(kind: str, side: str, at_or_below: bool) -> None:
    assert trigger_crossed(kind, side, 100.0, 100.0)
    assert trigger_crossed(kind, side, 100.0, 99.0) is at_or_below
    assert trigger_crossed(kind, side, 100.0, 101.0) is not at_or_below


def test_a_stop_loss_waits_outside_the_book_then_executes_as_a_market_order() -> None:
    engine = make_engine()
    place(engine, order("b-maker", 1, "buy", 2.0, 95.0))  # the bid the stop will hit
    result, changes = place(engine, trigger("sl", 2, "sell", 1.5, "stop_loss", 96.0))
    assert result["status"] == "accepted" and result["fills"] == [] and not result["triggered"]
    assert [e["kind"] for e in events_of(changes)] == ["order_accepted"]
    assert events_of(changes)[0]["trigger_price"] == 96.0
    assert engine.books[BTC].best("sell") is None  # not resting
    assert not engine.due_triggers(NOW)
    mark(engine, 97.0)
    assert engine.fire_triggers(Changes(), NOW) == []
    mark(engine, 96.0)
    assert engine.due_triggers(NOW)
    fire = Changes()
    fired = engine.fire_triggers(fire, NOW)
    kinds = [e["kind"] for e in events_of(fire)]
    assert kinds[0] == "order_triggered" and "fill" in kinds
    triggered = events_of(fire)[0]
    assert triggered["order_id"] == result["order_id"] and triggered["mark_price"] == 96.0
    assert fired[0]["fills"][0]["price"] == 95.0
    assert engine.positions[(2, BTC)].size == pytest.approx(-1.5)
    assert result["order_id"] not in engine.orders_by_id
    assert fire.orders[result["order_id"]].status == "filled"


def test_a_take_profit_with_a_limit_rests_its_remainder_once_triggered() -> None:
    engine = make_engine()
    place(engine, order("s-maker", 1, "sell", 0.5, 99.0))
    result, _ = place(engine, trigger("tp", 2, "buy", 2.0, "take_profit", 99.5, price=99.0))
    mark(engine, 99.4)
    engine.fire_triggers(Changes(), NOW)
    resting = engine.orders_by_id[result["order_id"]]
    assert resting.status == "open" and resting.remaining == pytest.approx(1.5)
    assert engine.books[BTC].best("buy") == 99.0


def test_triggers_fire_only_in_normal_mode_and_on_a_fresh_price() -> None:
    engine = make_engine()
    place(engine, order("b-maker", 1, "buy", 1.0, 95.0))
    place(engine, trigger("sl", 2, "sell", 1.0, "stop_loss", 96.0))
    engine.set_mode({"mode": "post_only"}, Changes(), NOW)
    mark(engine, 95.0)
    assert not engine.due_triggers(NOW) and engine.fire_triggers(Changes(), NOW) == []
    engine.set_mode({"mode": "normal"}, Changes(), NOW)
    stale = NOW + 10.0  # the staleness guard holds the trigger back
    assert not engine.due_triggers(stale) and engine.fire_triggers(Changes(), stale) == []
    assert len(engine.fire_triggers(Changes(), NOW)) == 1


def test_trigger_orders_are_rejected_in_cancel_only_and_need_a_trigger_price() -> None:
    engine = make_engine()
    with pytest.raises(BadRequest, match="trigger_price"):
        place(engine, {**order("x", 2, "sell", 1.0), "type": "stop_loss"})
    engine.set_mode({"mode": "cancel_only"}, Changes(), NOW)
    result, _ = place(engine, trigger("sl", 2, "sell", 1.0, "stop_loss", 96.0))
    assert result["status"] == "rejected"


def test_a_pending_trigger_can_be_cancelled_by_its_client_order_id() -> None:
    engine = make_engine()
    placed, _ = place(engine, trigger("sl", 2, "sell", 1.0, "stop_loss", 96.0))
    result = engine.cancel({"client_order_id": "sl", "account": 2}, Changes(), NOW)
    assert result["status"] == "accepted"
    assert not engine.triggers and placed["order_id"] not in engine.orders_by_id


def test_cancel_all_keeps_the_excepted_order_types() -> None:
    engine = make_engine()
    place(engine, order("bid", 1, "buy", 1.0, 95.0))
    place(engine, order("ask", 3, "sell", 1.0, 105.0))
    sl, _ = place(engine, trigger("sl", 2, "sell", 1.0, "stop_loss", 90.0))
    tp, _ = place(engine, trigger("tp", 2, "sell", 1.0, "take_profit", 110.0))
    engine.set_mode({"mode": "halt"}, Changes(), NOW)  # the operator acts in any mode
    changes = Changes()
    answer = cancel_all(engine, {"except": ["take_profit", "stop_loss"]}, changes, NOW)
    assert answer["cancelled"] == 2 and answer["kept"] == 2
    assert {o["client_order_id"] for o in answer["cancelled_orders"]} == {"bid", "ask"}
    assert {o["order_id"] for o in answer["kept_orders"]} == {sl["order_id"], tp["order_id"]}
    cancels = events_of(changes)
    assert [e["kind"] for e in cancels] == ["order_cancelled"] * 2
    assert all(e["reason"] == "cancel_all" and e["order_type"] == "limit" for e in cancels)
    assert answer["at_seq"] + 2 == answer["last_seq"] == cancels[-1]["seq"]
    assert engine.books[BTC].best("buy") is None and engine.books[BTC].best("sell") is None
    assert set(engine.triggers) == {sl["order_id"], tp["order_id"]}
    everything = cancel_all(engine, {}, Changes(), NOW)
    assert everything["cancelled"] == 2 and not engine.orders_by_id


def test_cancel_all_refuses_an_unknown_order_type_before_cancelling_anything() -> None:
    engine = make_engine()
    place(engine, order("bid", 1, "buy", 1.0, 95.0))
    with pytest.raises(BadRequest, match="unknown stoploss"):
        cancel_all(engine, {"except": ["stoploss"]}, Changes(), NOW)
    assert engine.books[BTC].best("buy") == 95.0


def test_disabled_access_refuses_orders_and_cancels_but_not_liquidations_or_replays() -> None:
    engine = make_engine()
    place(engine, order("bid", 1, "buy", 1.0, 95.0))
    engine.access_enabled, engine.access_reason = False, "incident"
    with pytest.raises(AccessRefused, match="incident"):
        place(engine, order("b2", 1, "buy", 1.0, 95.0))
    with pytest.raises(AccessRefused):
        engine.cancel({"client_order_id": "bid", "account": 1}, Changes(), NOW)
    answer = engine.place_order(order("admin", 1, "buy", 1.0, 94.0), Changes(), NOW, admin=True)
    assert answer["status"] == "accepted"


def test_refused_answers_are_classified_fail_by_the_load() -> None:
    from chaos.bindings.http import classify
    from chaos.stack.operator_api import refused
    from chaos.stackfile import load, reference_stack_path

    orders = load(reference_stack_path()).bindings.orders
    assert orders is not None
    answer = refused("access disabled by the operator: incident")
    assert classify(orders.answer, answer.status, answer.text or "").kind == "fail"


# -- the state rebuilt from the event log ----------------------------------------------


def state_of(engine: Engine) -> dict[str, Any]:
    """Everything a rollback must restore: accounts, positions, books in queue order."""
    books = {
        market: {
            side: [
                (o.order_id, o.price, o.remaining)
                for key in book.keys[side]
                for o in book.levels[side][key]
            ]
            for side in ("buy", "sell")
        }
        for market, book in engine.books.items()
    }
    return {
        "seq": engine.seq,
        "mode": engine.mode,
        "collateral": dict(engine.collateral),
        "positions": {k: vars(p) for k, p in engine.positions.items()},
        "books": books,
        "triggers": {
            i: (o.order_type, o.trigger_price, o.remaining) for i, o in engine.triggers.items()
        },
        "open": {i: (o.status, o.remaining) for i, o in engine.orders_by_id.items()},
    }


OPS = st.lists(
    st.tuples(
        st.sampled_from(["limit", "market", "stop_loss", "take_profit", "cancel", "mark", "liq"]),
        st.integers(1, 5),
        st.sampled_from(["buy", "sell"]),
        st.integers(1, 20),
        st.integers(94, 106),
    ),
    min_size=1,
    max_size=70,
)


def run_ops(engine: Engine, ops: list[tuple[str, int, str, int, int]]) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = []
    for i, (what, account, side, qty, price) in enumerate(ops):
        changes = Changes()
        now = NOW + i * 0.01
        if what == "mark":  # funding accrues too: positions settle it when they change
            mark(engine, float(price), now, funding=10.0 + i * 0.05)
            engine.fire_triggers(changes, now)
        elif what == "cancel":
            engine.cancel({"client_order_id": f"o{i - 1}", "account": account}, changes, now)
        elif what == "liq":  # at a mark far enough away to liquidate a position of 1+
            for market in MARKET_NAMES:
                engine.liquidate(
                    {"account": account, "market": market, "qty": 0.0,
                     "mark_price": 1.0 if side == "buy" else 2_000.0, "oracle_ts": now,
                     "funding_index": 10.0},
                    changes,
                    now,
                )  # fmt: skip
            engine.deposit(account, 10.0 * qty, changes, now)
        else:
            body = order(f"o{i}", account, side, qty / 10, None if what == "market" else price)
            if what in ("stop_loss", "take_profit"):
                body.update(type=what, trigger_price=float(price), price=None)
                if qty % 2:
                    body["price"] = float(price)
            engine.place_order(body, changes, now)
        log += events_of(changes)
    return log


@settings(max_examples=120, deadline=None)
@given(OPS)
def test_rebuilding_from_the_event_log_restores_the_exact_state(
    ops: list[tuple[str, int, str, int, int]],
) -> None:
    live = make_engine(frozenset({"idempotency_keys"}))
    genesis = [
        {"seq": 0, "kind": "deposit", "account": a, "amount": c, "time": NOW}
        for a, c in live.collateral.items()
    ]
    log = run_ops(live, ops)
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
    fresh = make_engine(frozenset({"idempotency_keys"}))
    fresh.collateral = {}
    rebuild(fresh, genesis + log)
    assert state_of(fresh) == state_of(live)


def test_rebuilding_a_prefix_is_the_state_at_that_seq() -> None:
    live = make_engine()
    first = events_of(place(live, order("s1", 1, "sell", 1.0, 101.0))[1])
    at_first = state_of(live)
    place(live, order("b1", 2, "buy", 0.5))  # fills part of s1
    fresh = make_engine()
    rebuild(fresh, first)
    assert state_of(fresh) == at_first


def test_replay_kept_reapplies_decisions_and_refuses_consequences() -> None:
    engine = make_engine()
    original = Changes()
    engine.place_order(order("s1", 1, "sell", 1.0, 101.0), original, NOW)
    engine.place_order(order("b1", 2, "buy", 1.0), original, NOW)
    logged = events_of(original)
    fill = next(e for e in logged if e["kind"] == "fill")
    with pytest.raises(BadRequest, match="fill event cannot be replayed"):
        replay_kept(make_engine(), [fill], Changes(), NOW)
    again = make_engine()
    deposit = {"seq": 99, "kind": "deposit", "account": 3, "amount": 50.0}
    kept = [e for e in logged if e["kind"] == "order_accepted"] + [deposit]
    changes = Changes()
    answer = replay_kept(again, kept, changes, NOW)
    assert answer["replayed"] == 3
    assert [r["replay_of"] for r in answer["results"]] == [1, 2, 99]
    assert again.positions[(2, BTC)].size == pytest.approx(1.0)
    assert again.collateral[3] == 1_050.0
    assert answer["accounts"]["3"]["collateral"] == 1_050.0
    assert all(e.get("replay_of") for e in events_of(changes) if e["kind"] != "fill")


def test_a_chain_rollback_with_a_hash_refuses_a_block_it_does_not_know(tmp_path: Any) -> None:
    import asyncio

    from chaos.stack.blocks import GENESIS_HASH, make_block
    from chaos.stack.chain import Chain

    async def scenario() -> None:
        chain = Chain(tmp_path)
        prev = GENESIS_HASH
        for height in (1, 2, 3):
            block = make_block(height, prev, [], [], height, height - 1, float(height))
            assert (await chain.append(block)).status == 200
            prev = block["hash"]
        wrong = await chain.rollback(1, "f" * 64)
        assert "error" in wrong and chain.head()["height"] == 3
        assert await chain.rollback(1, chain.blocks[0]["hash"]) == {"height": 1, "dropped": 2}
        assert await chain.rollback(5) == {"height": 1, "dropped": 0}  # above the head

    asyncio.run(scenario())
