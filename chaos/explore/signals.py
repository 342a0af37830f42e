"""Near-miss signals: how close a run came to violating an invariant, from its History.

Pure functions of a run's History and the checkers' tolerances (``CheckParams``), using the
same truth the checkers use (``History.truth()``, ``chaos.history.truth.Ledger``). Each
``Signal`` has its measured ``value`` and a ``pressure``: the value scaled so that 1 is the
checkers' threshold (a run at pressure >= 1 on ``oracle_age`` executed on a stale price).
The search steers toward schedules that push a pressure up, the way Hypothesis's
``target()`` does. A source the history lacks gives no signal, never an error.

Signals
- ``oracle_age``: the oldest oracle price a fill or liquidation executed on (s), against
  ``stale_after_s``.
- ``mark_error``: the largest relative deviation of a published mark price from the true
  price, against ``price_tolerance``.
- ``funding_error``: the largest relative deviation of a published funding index from the
  true one, against ``funding_tolerance``.
- ``margin_cushion``: the lowest true equity / maintenance ratio of an account right after
  one of its ordinary trades (liquidation fills, accounts already liquidated and accounts
  with no equity left out); pressure is maintenance / equity, so
  1 is the maintenance requirement itself (such an account may rightly be liquidated: the
  signal steers toward states where an unintended liquidation is possible).
- ``unacknowledged``: client orders whose outcome was unknown (``info``); pressure
  approaches 1 as they grow (n / (n + 10)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from chaos.checkers.params import CheckParams
from chaos.history.reader import History
from chaos.history.truth import Ledger

MAX_PRESSURE = 10.0


@dataclass(frozen=True)
class Signal:
    name: str
    value: float
    pressure: float
    unit: str = ""

    def to_dict(self) -> dict[str, float | str]:
        return {
            "value": round(self.value, 6),
            "pressure": round(self.pressure, 4),
            "unit": self.unit,
        }

    def describe(self) -> str:
        return f"{self.name} {self.value:.3g}{self.unit} ({self.pressure:.2f})"


def measure(history: History, params: CheckParams) -> dict[str, Signal]:
    """Every signal the history can give, by name."""
    found: list[Signal | None] = [
        oracle_age(history, params),
        *publication_errors(history, params),
        margin_cushion(history),
        unacknowledged(history),
    ]
    return {s.name: s for s in found if s is not None}


def _pressure(x: float) -> float:
    return min(MAX_PRESSURE, max(0.0, x)) if math.isfinite(x) else MAX_PRESSURE


def oracle_age(history: History, params: CheckParams) -> Signal | None:
    oldest: float | None = None
    for event in history.events():
        if event["kind"] not in ("fill", "liquidation"):
            continue
        used = event.get("oracle_ts")
        if isinstance(used, int | float):
            age = float(event["time"]) - float(used)
            oldest = age if oldest is None else max(oldest, age)
    if oldest is None:
        return None
    limit = params.stale_after_s or 1.0
    return Signal("oracle_age", oldest, _pressure(oldest / limit), "s")


def publication_errors(history: History, params: CheckParams) -> list[Signal | None]:
    """``mark_error`` and ``funding_error`` over the oracle's publications."""
    if not history.has("oracle"):
        return [None, None]
    truth = history.truth()
    worst_mark: float | None = None
    worst_funding: float | None = None
    for publication in history.oracle():
        market, t = publication.get("market"), publication.get("time")
        if market not in truth.markets or not isinstance(t, int | float):
            continue
        true_price = truth.price(market, t)
        mark = publication.get("mark_price")
        if isinstance(mark, int | float) and true_price > 0:
            error = abs(mark - true_price) / true_price if math.isfinite(mark) else math.inf
            worst_mark = error if worst_mark is None else max(worst_mark, error)
        true_funding = truth.funding_index(market, t)
        funding = publication.get("funding_index")
        if isinstance(funding, int | float) and true_funding:
            off = abs(funding - true_funding) if math.isfinite(funding) else math.inf
            error = off / abs(true_funding)
            worst_funding = error if worst_funding is None else max(worst_funding, error)
    mark_signal = funding_signal = None
    if worst_mark is not None:
        pressure = _pressure(worst_mark / (params.price_tolerance or 1.0))
        mark_signal = Signal("mark_error", worst_mark, pressure)
    if worst_funding is not None:
        pressure = _pressure(worst_funding / (params.funding_tolerance or 1.0))
        funding_signal = Signal("funding_error", worst_funding, pressure)
    return [mark_signal, funding_signal]


def margin_cushion(history: History) -> Signal | None:
    ledger = Ledger(history.truth())
    liquidated: set[int] = set()
    lowest: float | None = None
    for event in history.events():
        if event["kind"] == "deposit":
            ledger.deposit(event["account"], event["amount"])
        elif event["kind"] == "liquidation":
            liquidated.add(event["account"])
        elif event["kind"] == "fill":
            taker, maker = event["taker_account"], event["maker_account"]
            signed = event["qty"] if event.get("taker_side") == "buy" else -event["qty"]
            t, market = event["time"], event["market"]
            ledger.trade(taker, market, signed, event["price"], t)
            ledger.trade(maker, market, -signed, event["price"], t)
            if event.get("liquidation") or market not in ledger.truth.markets:
                continue
            for account in (taker, maker):
                if account in liquidated:
                    continue
                margin = ledger.margin(ledger.account(account), t)
                if margin.maintenance <= 0 or margin.equity <= 0:
                    continue
                ratio = margin.equity / margin.maintenance
                lowest = ratio if lowest is None else min(lowest, ratio)
    if lowest is None:
        return None
    return Signal("margin_cushion", lowest, _pressure(1.0 / lowest), "x")


def unacknowledged(history: History) -> Signal | None:
    if not history.has("client"):
        return None
    unknown = sum(1 for op in history.client_ops() if op.get("type") == "info")
    return Signal("unacknowledged", float(unknown), unknown / (unknown + 10.0))
