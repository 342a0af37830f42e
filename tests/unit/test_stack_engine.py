"""The sequencer's exchange engine: matching, trading modes, guards, accounting."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.stack.engine import BadRequest, Changes, Engine, NotServing, OraclePrice
from chaos.world import MARKET_NAMES, equity

BTC = "BTC-PERP"
NOW = 1_000_000.0
ALL = frozenset({"post_only_band", "staleness_guard", "idempotency_keys", "readiness_gates"})


def make_engine(
    mitigations: frozenset[str] = ALL,
    price: float = 100.0,
    funding_index: float = 10.0,
    price_age: float = 0.1,
) -> Engine:
    engine = Engine("a", 1, MARKET_NAMES, mitigations, band_bps=200, stale_after_s=3.0)
    for market in MARKET_NAMES:
        engine.set_price(market, OraclePrice(price, funding_index, NOW - price_age), now=NOW)
    for account in range(0, 6):
        engine.collateral[account] = 1_000.0
    return engine


def order(
    coid: str, account: int, side: str, qty: float, price: float | None = None, **extra: object
) -> dict[str, object]:
    body: dict[str, object] = {
        "client_order_id": coid,
        "account": account,
        "market": BTC,
        "side": side,
        "qty": qty,
    }
    if price is None:
        body["type"] = "market"
    else:
        body.update(type="limit", price=price)
    body.update(extra)
    return body


def place(
    engine: Engine, body: dict[str, object], now: float = NOW
) -> tuple[dict[str, Any], Changes]:
    changes = Changes()
    return engine.place_order(body, changes, now), changes


def test_price_time_priority_and_partial_fill() -> None:
    engine = make_engine()
    place(engine, order("s1", 1, "sell", 1.0, 101.0))
    place(engine, order("s2", 2, "sell", 1.0, 100.5))
    place(engine, order("s3", 3, "sell", 1.0, 100.5))  # same price, later: after s2
    result, changes = place(engine, order("b1", 4, "buy", 1.5, 101.0))
    assert [(f["price"], f["qty"], f["maker_account"]) for f in result["fills"]] == [
        (100.5, 1.0, 2),
        (100.5, 0.5, 3),
    ]
    assert result["remaining"] == 0.0
    book = engine.books[BTC]
    assert book.best("sell") == 100.5  # s3 keeps 0.5
    assert engine.positions[(4, BTC)].size == pytest.approx(1.5)
    assert engine.positions[(3, BTC)].size == pytest.approx(-0.5)
    seqs = [e[0] for e in changes.events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_limit_remainder_rests_and_market_remainder_is_dropped() -> None:
    engine = make_engine()
    place(engine, order("s1", 1, "sell", 1.0, 100.0))
    result, _ = place(engine, order("b1", 2, "buy", 3.0, 100.0))
    assert result["remaining"] == pytest.approx(2.0)
    assert engine.books[BTC].best("buy") == 100.0
    result, _ = place(engine, order("s2", 3, "sell", 5.0))
    assert sum(f["qty"] for f in result["fills"]) == pytest.approx(2.0)
    assert engine.books[BTC].best("buy") is None and engine.books[BTC].best("sell") is None


def test_cancel_removes_the_order_and_records_an_event() -> None:
    engine = make_engine()
    place(engine, order("s1", 1, "sell", 1.0, 100.0))
    changes = Changes()
    result = engine.cancel({"client_order_id": "s1", "account": 1}, changes, NOW)
    assert result["status"] == "accepted"
    assert [e[4] for e in changes.events] == ["order_cancelled"]
    assert engine.books[BTC].best("sell") is None
    again = engine.cancel({"client_order_id": "s1", "account": 1}, Changes(), NOW)
    assert again["status"] == "rejected"


def test_idempotency_keys_return_the_first_result_without_a_new_event() -> None:
    engine = make_engine()
    first, _ = place(engine, order("x", 1, "sell", 1.0, 100.0))
    second, changes = place(engine, order("x", 1, "sell", 1.0, 100.0))
    assert second == first and changes.events == []
    vulnerable = make_engine(frozenset())
    a, _ = place(vulnerable, order("x", 1, "sell", 1.0, 100.0))
    b, changes = place(vulnerable, order("x", 1, "sell", 1.0, 100.0))
    assert a["order_id"] != b["order_id"] and changes.events  # a NEW order


def test_modes() -> None:
    engine = make_engine()
    place(engine, order("s1", 1, "sell", 1.0, 100.0))
    engine.set_mode({"mode": "post_only"}, Changes(), NOW)
    assert place(engine, order("b1", 2, "buy", 1.0))[0]["status"] == "rejected"  # market
    assert place(engine, order("b2", 2, "buy", 1.0, 100.0))[0]["status"] == "rejected"  # crosses
    assert place(engine, order("b3", 2, "buy", 1.0, 99.0))[0]["status"] == "accepted"
    engine.set_mode({"mode": "cancel_only"}, Changes(), NOW)
    assert place(engine, order("b4", 2, "buy", 1.0, 98.0))[0]["status"] == "rejected"
    assert (
        engine.cancel({"client_order_id": "b3", "account": 2}, Changes(), NOW)["status"]
        == "accepted"
    )
    engine.set_mode({"mode": "halt"}, Changes(), NOW)
    with pytest.raises(NotServing):
        place(engine, order("b5", 2, "buy", 1.0, 98.0))
    with pytest.raises(BadRequest):
        engine.set_mode({"mode": "sideways"}, Changes(), NOW)


def test_post_only_band_rejects_prices_far_from_the_oracle_while_not_normal() -> None:
    for mitigations, expected in ((ALL, "rejected"), (frozenset(), "accepted")):
        engine = make_engine(mitigations)
        engine.set_mode({"mode": "post_only"}, Changes(), NOW)
        result, _ = place(engine, order("b", 1, "buy", 1.0, 103.0))  # +300 bps, book empty
        assert result["status"] == expected
    engine = make_engine()
    engine.set_mode({"mode": "post_only"}, Changes(), NOW)
    assert place(engine, order("b", 1, "buy", 1.0, 101.5))[0]["status"] == "accepted"


def test_staleness_guard_holds_every_new_order_and_liquidation_on_an_old_price() -> None:
    """A bid resting on a stale mark is hit once matching resumes (dYdX): the guard takes no
    new order at all while the price is stale, resting or crossing."""
    for mitigations, expected in ((ALL, "rejected"), (frozenset(), "accepted")):
        engine = make_engine(mitigations, price_age=10.0)
        engine.fresh_price_seen = True
        resting, _ = place(engine, order("s1", 1, "sell", 1.0, 100.0))
        assert resting["status"] == expected, mitigations
        result, _ = place(engine, order("b1", 2, "buy", 1.0))
        assert result["status"] == expected, mitigations
        liq = engine.liquidate(
            {"account": 1, "market": BTC, "qty": 1.0, "mark_price": 100.0, "oracle_ts": NOW - 10.0},
            Changes(),
            NOW,
        )
        if expected == "rejected":
            assert liq["status"] == "rejected"
            assert resting["reason"] == "stale oracle price"


def test_market_data_shows_halt_while_a_guard_holds_a_price() -> None:
    """Makers quote off the market data they cached (dYdX mitigated: a bid cached from the
    stale mark rested a moment after the fresh price came and was swept 10% off the market)."""
    for mitigations, shown in ((ALL, "halt"), (frozenset(), "normal")):
        engine = make_engine(mitigations, price_age=10.0)
        engine.fresh_price_seen = True
        assert engine.shown_mode(NOW) == shown, mitigations
        for market in MARKET_NAMES:
            engine.set_price(market, OraclePrice(100.0, 0.0, NOW), now=NOW)
        assert engine.shown_mode(NOW) == "normal"
        engine.mode = "post_only"
        assert engine.shown_mode(NOW) == "post_only"


def test_readiness_gates_want_a_price_published_since_start() -> None:
    """A sequencer restarted next to a database whose last price is a few seconds old has
    seen no fresh price yet: that row is from before it started."""
    engine = Engine("a", 1, MARKET_NAMES, ALL, stale_after_s=3.0, fresh_after=NOW)
    for market in MARKET_NAMES:
        engine.set_price(market, OraclePrice(100.0, 0.0, NOW - 1.0), now=NOW)
    assert not engine.fresh_price_seen
    result, _ = place(engine, order("s1", 1, "sell", 1.0, 100.0))
    assert result["status"] == "rejected", result
    for market in MARKET_NAMES:
        engine.set_price(market, OraclePrice(100.0, 0.0, NOW + 0.5), now=NOW + 0.6)
    assert engine.fresh_price_seen


def test_liquidation_takes_the_book_then_the_insurance_fund_at_the_mark() -> None:
    engine = make_engine()
    place(engine, order("s1", 1, "sell", 2.0, 100.0))
    place(engine, order("b1", 2, "buy", 2.0))  # account 2 long 2 @ 100
    place(engine, order("q", 3, "buy", 0.5, 99.5))  # within 1% of the mark
    engine.collateral[2] = 1.0  # a thin margin: below maintenance at the mark
    changes = Changes()
    result = engine.liquidate(
        {
            "account": 2,
            "market": BTC,
            "qty": 2.0,
            "mark_price": 99.8,
            "oracle_ts": NOW,
            "equity": 1.0,
            "maintenance": 2.0,
        },
        changes,
        NOW,
    )
    assert result["status"] == "accepted"
    assert [(f["maker_account"], f["price"], f["qty"]) for f in result["fills"]] == [
        (3, 99.5, 0.5),
        (0, 99.8, 1.5),
    ]
    assert engine.positions[(2, BTC)].size == 0.0
    assert engine.positions[(0, BTC)].size == pytest.approx(1.5)
    kinds = [e[4] for e in changes.events]
    assert kinds[0] == "liquidation" and kinds.count("fill") == 2
    fills = [json.loads(e[5]) for e in changes.events if e[4] == "fill"]
    assert all(f["liquidation"] for f in fills)
    assert (
        engine.liquidate(
            {"account": 0, "market": BTC, "qty": 1.0, "mark_price": 99.8, "oracle_ts": NOW},
            Changes(),
            NOW,
        )["status"]
        == "rejected"
    )


def test_funding_settles_on_position_change_and_realised_pnl_on_reduce() -> None:
    engine = make_engine(funding_index=10.0)
    place(engine, order("s1", 1, "sell", 2.0, 100.0))
    place(engine, order("b1", 2, "buy", 2.0))  # long 2 @ 100, F_entry 10; book now empty
    engine.set_price(BTC, OraclePrice(110.0, 12.5, NOW), now=NOW)
    place(engine, order("b9", 4, "buy", 1.0, 110.0))  # a bid for account 2 to sell into
    changes = Changes()
    engine.place_order(order("c2", 2, "sell", 1.0), changes, NOW)
    settle = [json.loads(e[5]) for e in changes.events if e[4] == "funding_settle"]
    assert {"account": 2, "market": BTC, "amount": -5.0, "funding_index": 12.5} in settle
    pos = engine.positions[(2, BTC)]
    assert pos.size == pytest.approx(1.0) and pos.entry_funding_index == 12.5
    # collateral: 1000 - 2 * (12.5 - 10) funding + 1 * (110 - 100) realised
    assert engine.collateral[2] == pytest.approx(1000.0 - 5.0 + 10.0)
    assert pos.realised_pnl == pytest.approx(10.0)
    assert pos.entry_price == pytest.approx(100.0)


def test_equity_and_maintenance() -> None:
    eq, maintenance = equity(1000.0, [(2.0, 100.0, 10.0, 110.0, 12.5)])
    assert eq == pytest.approx(1000.0 + 20.0 - 5.0)
    assert maintenance == pytest.approx(0.02 * 2.0 * 110.0)
    eq, _ = equity(1000.0, [(-2.0, 100.0, 10.0, 110.0, 12.5)])
    assert eq == pytest.approx(1000.0 - 20.0 + 5.0)  # shorts receive positive funding


def test_bad_orders_are_rejected_as_bad_requests() -> None:
    engine = make_engine()
    for body in (
        order("", 1, "buy", 1.0, 100.0),
        order("x", 1, "up", 1.0, 100.0),
        order("x", 1, "buy", -1.0, 100.0),
        order("x", 1, "buy", 1.0, 0.0),
        {**order("x", 1, "buy", 1.0, 100.0), "market": "DOGE"},
    ):
        with pytest.raises(BadRequest):
            place(engine, body)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 5),
            st.sampled_from(["buy", "sell"]),
            st.integers(1, 20),
            st.one_of(st.none(), st.integers(95, 105)),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_positions_net_to_zero_and_books_never_cross(
    ops: list[tuple[int, str, int, int | None]],
) -> None:
    engine = make_engine(frozenset())
    seqs: list[int] = []
    for i, (account, side, qty, price) in enumerate(ops):
        _, changes = place(
            engine, order(f"o{i}", account, side, qty / 10, None if price is None else float(price))
        )
        seqs += [e[0] for e in changes.events]
        book = engine.books[BTC]
        bid, ask = book.best("buy"), book.best("sell")
        assert bid is None or ask is None or bid < ask
    assert seqs == list(range(1, len(seqs) + 1))
    assert sum(p.size for (_, m), p in engine.positions.items() if m == BTC) == pytest.approx(
        0.0, abs=1e-9
    )
    # trading is zero-sum: total equity at any mark is the total deposit (funding constant)
    total = sum(
        equity(
            engine.collateral.get(a, 0.0),
            [
                (p.size, p.entry_price, p.entry_funding_index, 100.0, 10.0)
                for (acc, _), p in engine.positions.items()
                if acc == a
            ],
        )[0]
        for a in range(6)
    )
    assert total == pytest.approx(6 * 1_000.0)


def liquidation(account: int, market: str, mark: float) -> dict[str, object]:
    return {
        "account": account,
        "market": market,
        "qty": 0.0,
        "mark_price": mark,
        "oracle_ts": NOW,
        "funding_index": 10.0,
    }


def test_a_liquidation_of_an_account_no_longer_below_maintenance_is_rejected() -> None:
    engine = make_engine()
    place(engine, order("s1", 1, "sell", 2.0, 100.0))
    place(engine, order("b1", 2, "buy", 2.0))  # account 2 long 2 @ 100, collateral 1000
    result = engine.liquidate(liquidation(2, BTC, 99.8), Changes(), NOW)
    assert result["status"] == "rejected"
    assert "no longer below maintenance" in result["reason"]
    assert engine.positions[(2, BTC)].size == 2.0


def test_second_leg_of_one_decision_is_rejected_once_the_first_leg_restored_margin() -> None:
    """Risk sends one request per position from one snapshot; after the losing leg is closed
    the account is healthy, and the other leg must not be liquidated on the old verdict."""
    eth = MARKET_NAMES[1]
    engine = make_engine()
    place(engine, order("s1", 1, "sell", 10.0, 100.0))
    place(engine, order("b1", 2, "buy", 10.0))  # a large BTC long
    place(engine, {**order("s2", 1, "sell", 0.1, 100.0), "market": eth})
    place(engine, {**order("b2", 2, "buy", 0.1), "market": eth})  # a small ETH long
    engine.collateral[2] = 40.0
    # BTC marked at 97: equity 40 - 30 = 10 < maintenance 0.02 * (970 + 10) = 19.6
    btc = engine.liquidate(liquidation(2, BTC, 97.0), Changes(), NOW)
    assert btc["status"] == "accepted"
    assert engine.positions[(2, BTC)].size == 0.0
    eth_leg = engine.liquidate(liquidation(2, eth, 100.0), Changes(), NOW)
    assert eth_leg["status"] == "rejected", eth_leg
