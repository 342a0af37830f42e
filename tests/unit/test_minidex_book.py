"""minidex's order book and ledger: price-time priority, pure matching, the accounting that
the checkers replay (``chaos.world.equity`` with no funding)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from minidex.book import BUY, SELL, Book, Resting
from minidex.ledger import Ledger

from chaos.world import equity


def resting(ref: int, side: str, px: str, sz: str, acct: int = 1) -> Resting:
    return Resting(ref, f"c{ref}", acct, "BTC-USD", side, Decimal(px), Decimal(sz))


def test_best_price_first_then_earliest() -> None:
    book = Book()
    for order in (
        resting(3, SELL, "101", "1"),
        resting(1, SELL, "102", "1"),
        resting(2, SELL, "101", "1"),
    ):
        book.add(order)
    fills = book.match(BUY, Decimal("102"), Decimal("2.5"))
    assert [(m.ref, str(sz)) for m, sz in fills] == [(2, "1"), (3, "1"), (1, "0.5")]
    assert book.best(SELL) == Decimal("101")


def test_match_respects_the_limit_and_changes_nothing() -> None:
    book = Book()
    book.add(resting(1, BUY, "99", "1"))
    book.add(resting(2, BUY, "98", "1"))
    assert [m.ref for m, _ in book.match(SELL, Decimal("98.5"), Decimal("5"))] == [1]
    assert [m.ref for m, _ in book.match(SELL, None, Decimal("5"))] == [1, 2]
    assert [o.left for o in book.sides[BUY]] == [Decimal("1"), Decimal("1")]
    assert book.crosses(SELL, Decimal("99")) and not book.crosses(SELL, Decimal("99.5"))
    assert not book.crosses(BUY, None)  # no asks at all


def test_remove_takes_out_exactly_that_order() -> None:
    book = Book()
    a, b = resting(1, SELL, "100", "1"), resting(2, SELL, "100", "1")
    book.add(a)
    book.add(b)
    book.remove(a)
    book.remove(a)  # twice is harmless
    assert book.sides[SELL] == [b]


def test_ledger_realises_pnl_on_reduce_and_flip() -> None:
    ledger = Ledger()
    ledger.credit(1, 1000.0)
    ledger.trade(1, "BTC-USD", Decimal("2"), 100.0)
    ledger.trade(1, "BTC-USD", Decimal("-3"), 110.0)  # closes 2 (+20), opens 1 short at 110
    assert ledger.cash[1] == 1020.0
    pos = ledger.open_positions(1)["BTC-USD"]
    assert (pos.size, pos.entry) == (Decimal("-1"), 110.0)
    ledger.trade(1, "BTC-USD", Decimal("1"), 100.0)
    assert ledger.cash[1] == 1030.0 and ledger.open_positions(1) == {}
    assert list(ledger.accounts()) == []


@given(
    st.lists(
        st.tuples(st.integers(-50, 50).filter(bool), st.integers(90, 110)), min_size=1, max_size=30
    ),
    st.integers(80, 120),
)
def test_ledger_margin_is_the_checkers_equity(trades: list[tuple[int, int]], mark: int) -> None:
    """What the engine decides liquidations on equals what the checker recomputes (same
    trades, same mark, funding index constant 0)."""
    ledger, size, entry, cash = Ledger(), 0.0, 0.0, 1000.0
    ledger.credit(7, 1000.0)
    for qty, px in trades:
        signed = Decimal(qty) / 10
        ledger.trade(7, "BTC-USD", signed, float(px))
        s = float(signed)  # the checker's replay (chaos.history.truth.Ledger's rule)
        if size == 0 or (size > 0) == (s > 0):
            entry = (size * entry + s * px) / (size + s)
            size += s
        else:
            cash += min(abs(s), abs(size)) * (px - entry) * (1 if size > 0 else -1)
            new = size + s
            entry = 0.0 if abs(new) < 1e-12 else (px if (new > 0) != (size > 0) else entry)
            size = 0.0 if abs(new) < 1e-12 else new
    margin = ledger.margin(7, {"BTC-USD": float(mark)}, 0.02)
    assert margin is not None
    expected = equity(cash, [(size, entry, 0.0, float(mark), 0.0)] if size else [])
    assert abs(margin[0] - expected[0]) < 1e-6 and abs(margin[1] - expected[1]) < 1e-9
    assert ledger.margin(7, {}, 0.02) is None or size == 0
