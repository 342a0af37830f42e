"""minidex's exchange: orders, cancels, trading statuses, the two guards, liquidations, and
replay of the journal (the engine's restart)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from minidex.entry import Entry
from minidex.exchange import (
    BadRequest,
    Exchange,
    Mark,
    OrderRequest,
    parse_order,
)

BTC = "BTC-USD"
NOW = 1_800_000_000.0


def exchange(guard_s: float = 0.0, dedupe: bool = False, mark: str = "100") -> Exchange:
    ex = Exchange((BTC,), 0.02, guard_s, dedupe, insurance_acct=0)
    ex.marks[BTC] = Mark(Decimal(mark), NOW - 0.1)
    for acct in range(1, 6):
        ex.credit(acct, Decimal(1000), NOW, "test")
    return ex


def order(
    cid: str, acct: int, side: str, sz: str, px: str | None = None, po: bool = False
) -> OrderRequest:
    kind = "LIMIT" if px is not None else "MARKET"
    return OrderRequest(cid, acct, BTC, side, kind, Decimal(px) if px else None, Decimal(sz), po)


def typs(entries: list[Entry]) -> list[str]:
    return [e.typ for e in entries]


def test_an_order_that_crosses_trades_at_the_makers_price_and_rests_the_rest() -> None:
    ex = exchange()
    assert ex.place(order("m1", 1, "SELL", "1", "101"), NOW).reply["result"] == "RESTING"
    out = ex.place(order("t1", 2, "BUY", "1.5", "102"), NOW + 1)
    assert out.reply == {
        "result": "RESTING",
        "txn": out.entries[0].n,
        "trades": [{"sz": "1", "px": "101"}],
        "left": "0.5",
    }
    placed, trade = out.entries
    assert (placed.typ, placed.cid, placed.sz) == ("ORDER", "t1", Decimal("1.5"))
    assert (trade.typ, trade.acct, trade.counterparty, trade.side) == ("TRADE", 2, 1, "BUY")
    assert (trade.ref, trade.cp_ref, trade.liq) == (placed.n, placed.n - 1, False)
    assert (trade.mark, trade.mark_at) == (Decimal("100"), NOW - 0.1)  # the mark it held
    assert ex.books[BTC].best("BUY") == Decimal("102") and ex.books[BTC].best("SELL") is None
    assert ex.ledger.cash[1] == 1000.0 and ex.ledger.open_positions(2)[BTC].size == 1


def test_rejections_write_nothing() -> None:
    ex = exchange()
    n = ex.n
    why = ex.place(order("t", 1, "BUY", "1"), NOW).reply["why"]
    assert why == "no liquidity for a market order"
    ex.place(order("m", 2, "SELL", "1", "101"), NOW)
    po = ex.place(order("p", 1, "BUY", "1", "101", po=True), NOW)
    assert po.reply["result"] == "REJECTED" and po.entries == []
    assert ex.n == n + 1


def test_cancel_removes_the_order_once() -> None:
    ex = exchange()
    ex.place(order("m", 1, "BUY", "1", "99"), NOW)
    out = ex.cancel(1, "m", NOW)
    assert out.reply["result"] == "CANCELLED" and typs(out.entries) == ["CANCEL"]
    assert out.entries[0].ref == out.entries[0].n - 1 and ex.books[BTC].best("BUY") is None
    assert ex.cancel(1, "m", NOW).reply["result"] == "REJECTED"
    assert ex.cancel(2, "m", NOW).reply["result"] == "REJECTED"  # not account 2's


def test_statuses() -> None:
    ex = exchange()
    ex.place(order("m", 1, "SELL", "1", "101"), NOW)
    ex.place(order("long", 2, "BUY", "0.5"), NOW)
    ex.place(order("bid", 3, "BUY", "1", "99"), NOW)
    ex.set_status("CANCEL_ONLY", "test", NOW)
    assert ex.place(order("x", 2, "BUY", "0.1"), NOW).reply["result"] == "REJECTED"
    assert ex.cancel(1, "m", NOW).reply["result"] == "CANCELLED"
    ex.set_status("REDUCE_ONLY", "test", NOW)
    assert ex.place(order("more", 2, "BUY", "0.1", "99"), NOW).reply["result"] == "REJECTED"
    assert ex.place(order("flip", 2, "SELL", "0.6"), NOW).reply["result"] == "REJECTED"
    assert ex.place(order("less", 2, "SELL", "0.5"), NOW).reply["result"] == "FILLED"
    ex.set_status("HALTED", "test", NOW)
    assert ex.cancel(3, "bid", NOW).reply["result"] == "REJECTED"
    assert [e.status for e in ex.set_status("OPEN", "test", NOW).entries] == ["OPEN"]
    with pytest.raises(BadRequest):
        ex.set_status("CLOSED", "test", NOW)


def test_a_retried_cid_is_a_new_order_without_dedupe_and_the_first_reply_with_it() -> None:
    plain, deduped = exchange(), exchange(dedupe=True)
    for ex in (plain, deduped):
        first = ex.place(order("same", 1, "BUY", "1", "99"), NOW)
        again = ex.place(order("same", 1, "BUY", "1", "99"), NOW + 1)
        if ex is plain:
            assert again.reply["txn"] != first.reply["txn"] and len(again.entries) == 1
        else:
            assert again.reply == first.reply and again.entries == []
    assert len(plain.open) == 2 and len(deduped.open) == 1
    # another account may use the same cid
    assert deduped.place(order("same", 2, "BUY", "1", "99"), NOW).entries


def test_the_mark_age_guard_refuses_trading_and_liquidating_on_an_old_mark() -> None:
    ex = exchange(guard_s=3.0)
    ex.place(order("m", 1, "SELL", "30", "101"), NOW)
    ex.place(order("l", 2, "BUY", "20"), NOW)
    later = NOW + 10  # the mark (published at NOW - 0.1) is 10.1 s old
    assert "old" in ex.place(order("t", 3, "BUY", "0.1"), later).reply["why"]
    # resting too: a bid on the old mark would be hit the moment a fresh mark comes
    assert "old" in ex.place(order("r", 3, "BUY", "0.1", "90"), later).reply["why"]
    assert ex.shown_status(later) == "HALTED" and ex.status == "OPEN"
    ex.marks[BTC] = Mark(Decimal("1"), NOW)  # would wipe out account 2
    assert ex.liquidate(later) == []
    ex.marks[BTC] = Mark(Decimal("1"), later)
    assert "LIQ" in typs(ex.liquidate(later))


def test_without_the_guard_the_engine_uses_the_old_mark() -> None:
    ex = exchange()
    assert ex.shown_status(NOW + 60) == "OPEN"
    ex.place(order("m", 1, "SELL", "1", "101"), NOW)
    out = ex.place(order("t", 2, "BUY", "1"), NOW + 60)
    assert out.entries[1].mark_at == NOW - 0.1  # recorded: 60.1 s old


def position(ex: Exchange, acct: int) -> Decimal:
    pos = ex.ledger.open_positions(acct).get(BTC)
    return pos.size if pos else Decimal(0)


def test_liquidation_cancels_sells_into_the_book_and_gives_the_rest_to_insurance() -> None:
    ex = exchange(mark="100")
    ex.place(order("ask", 1, "SELL", "40", "100"), NOW)
    ex.place(order("long", 2, "BUY", "40"), NOW)  # 40 x 100 on 1000 cash: 4x
    ex.place(order("own", 2, "BUY", "1", "50"), NOW)  # its own resting bid goes first
    ex.place(order("bid", 3, "BUY", "10", "96"), NOW)
    ex.place(order("far", 4, "BUY", "10", "70"), NOW)  # beyond 5% of the mark
    assert ex.liquidate(NOW) == []  # equity 1000 >= 0.02 * 4000
    ex.marks[BTC] = Mark(Decimal("76"), NOW + 1)  # equity 40 < maintenance 60.8
    out = ex.liquidate(NOW + 1)
    assert typs(out) == ["CANCEL", "LIQ", "TRADE", "TRADE"]
    cancel, liq, book, insurance = out
    assert (cancel.cid, liq.acct, liq.side, liq.sz) == ("own", 2, "SELL", Decimal(40))
    assert (liq.mark, liq.mark_at, liq.equity) == (Decimal(76), NOW + 1, 40.0)
    assert liq.maint == pytest.approx(60.8)
    assert (book.counterparty, book.px, book.sz, book.liq, book.ref) == (
        3,
        Decimal(96),
        Decimal(10),
        True,
        None,
    )
    assert book.cp_ref is not None
    rest = insurance
    assert (rest.counterparty, rest.px, rest.sz, rest.cp_ref) == (0, Decimal(76), Decimal(30), None)
    assert position(ex, 2) == 0 and position(ex, 0) == 30
    assert ex.books[BTC].best("BUY") == Decimal(70)
    assert ex.liquidate(NOW + 2) == []  # the insurance account is never liquidated
    ex.place(order("short", 5, "SELL", "10"), NOW)  # hits the 70 bid: account 5 short 10
    ex.set_status("HALTED", "test", NOW)
    ex.marks[BTC] = Mark(Decimal("1000"), NOW + 3)  # far under water, but halted
    assert ex.liquidate(NOW + 3) == []
    ex.set_status("OPEN", "test", NOW)
    liquidated = [e.acct for e in ex.liquidate(NOW + 3) if e.typ == "LIQ"]
    assert len(liquidated) == 2 and set(liquidated) == {1, 5}


def test_parse_order_wants_strings_for_numbers() -> None:
    body: dict[str, Any] = {"cid": "c", "acct": 3, "sym": BTC, "side": "BUY"}
    body |= {"kind": "LIMIT", "px": "60000.5", "sz": "0.01"}
    assert parse_order(body, (BTC,)) == order("c", 3, "BUY", "0.01", "60000.5")
    market = {**body, "kind": "MARKET", "px": None}
    assert parse_order(market, (BTC,)).px is None  # a market order's px is ignored
    bad_fields = [("sz", 0.01), ("sz", "-1"), ("px", "abc"), ("acct", "3"), ("side", "buy")]
    bad_fields += [("sym", "ETH-USD"), ("kind", "STOP"), ("cid", ""), ("po", "yes")]
    for field, bad in bad_fields:
        with pytest.raises(BadRequest, match=field):
            parse_order({**body, field: bad}, (BTC,))


OPS = st.lists(
    st.tuples(
        st.sampled_from(["limit", "market", "cancel", "mark", "liquidate", "status"]),
        st.integers(1, 4),
        st.integers(90, 110),
        st.integers(1, 30),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(OPS, st.booleans())
def test_replaying_the_journal_rebuilds_the_same_exchange(
    ops: list[tuple[str, int, int, int]], dedupe: bool
) -> None:
    live = exchange(dedupe=dedupe)
    journal = [Entry(n, NOW, "CREDIT", acct=n, amount=Decimal(1000)) for n in range(1, 6)]
    replies: dict[tuple[int, str], dict[str, Any]] = {}
    for i, (op, acct, px, sz) in enumerate(ops):
        side = "BUY" if i % 2 else "SELL"
        if op == "limit":
            out = live.place(order(f"c{i % 7}", acct, side, str(sz / 10), str(px)), NOW)
        elif op == "market":
            out = live.place(order(f"c{i % 7}", acct, side, str(sz / 10)), NOW)
        elif op == "cancel":
            out = live.cancel(acct, f"c{px % 7}", NOW)
        elif op == "status":
            status = ["OPEN", "REDUCE_ONLY", "CANCEL_ONLY", "OPEN"][acct - 1]
            out = live.set_status(status, "t", NOW)
        elif op == "mark":
            live.marks[BTC] = Mark(Decimal(px * sz), NOW)
            continue
        else:
            journal += live.liquidate(NOW)
            continue
        journal += out.entries
        if out.reply_key and out.entries:
            replies.setdefault(out.reply_key, out.reply)
    assert [e.n for e in journal] == list(range(1, len(journal) + 1))
    replayed = Exchange((BTC,), 0.02, 0.0, dedupe)
    replayed.restore(journal, replies)
    assert replayed.n == live.n and replayed.status == live.status
    assert replayed.ledger == live.ledger
    assert replayed.open == live.open
    assert replayed.books[BTC].sides == live.books[BTC].sides
    assert replayed.replies == live.replies


def test_a_pass_decides_from_one_snapshot_and_a_cascade_waits_for_the_next() -> None:
    """Account 2's liquidation buys from account 3's stale resting ask, which pushes 3
    below maintenance: this pass liquidates only 2 (as the pass began, 3 was sound), the
    next pass 3, on the state it is decided from."""
    ex = exchange(mark="100")
    ex.place(order("short", 2, "SELL", "40", "100"), NOW)
    ex.place(order("take", 5, "BUY", "40"), NOW)  # account 2 short 40 at 100: 4x
    ex.place(order("small", 3, "SELL", "1", "100"), NOW)
    ex.place(order("lift", 4, "BUY", "1"), NOW)  # account 3 short 1 at 100
    ex.place(order("stale", 3, "SELL", "39", "101"), NOW)  # a quote the price runs past
    ex.marks[BTC] = Mark(Decimal("124"), NOW + 1)  # 2: equity 1000 - 960 = 40 < 99.2
    first = ex.liquidate(NOW + 1)
    assert [e.acct for e in first if e.typ == "LIQ"] == [2]
    assert position(ex, 3) == -40  # sold 39 at 101 to 2's liquidation: equity 79 < 99.2
    second = [e for e in ex.liquidate(NOW + 2) if e.typ == "LIQ"]
    assert [e.acct for e in second] == [3]
    assert second[0].equity == pytest.approx(1000 - 24 - 39 * 23)


def test_an_account_this_pass_lifts_above_maintenance_is_spared() -> None:
    """Account 2's liquidation sells into account 3's resting bid, which covers half of 3's
    losing short: 3 was below maintenance as the pass began, is not when its turn comes,
    and is not liquidated (docker control run: such an account was liquidated anyway)."""
    ex = exchange(mark="100")
    ex.place(order("long", 1, "SELL", "40", "100"), NOW)
    ex.place(order("buy", 2, "BUY", "40"), NOW)  # account 2 long 40 at 100
    ex.place(order("short", 3, "SELL", "60", "60"), NOW)
    ex.place(order("cover", 4, "BUY", "60"), NOW)  # account 3 short 60 at 60
    ex.place(order("bid", 3, "BUY", "30", "75"), NOW)  # 3's bid, within 5% of the mark
    ex.marks[BTC] = Mark(Decimal("76"), NOW + 1)
    # 2: equity 1000 - 960 = 40 < 60.8; 3: equity 1000 - 960 = 40 < 91.2
    liquidated = [e.acct for e in ex.liquidate(NOW + 1) if e.typ == "LIQ"]
    assert liquidated == [2]
    assert position(ex, 3) == -30  # bought 30 at 75 from 2's liquidation
    equity, maintenance = ex._margin(3) or (0.0, 0.0)
    assert equity > maintenance  # 70 > 45.6
