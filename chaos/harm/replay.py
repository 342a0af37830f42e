"""The harm items of a run: the event log replayed as written (rollbacks included) against
the truth, one ``HarmItem`` per harm per account it cost (docs/harm.md). Pure.

- **unintended_liquidation**: a liquidation decision (its legs and fills) of an account that
  was not truly below maintenance (the rule of ``no_unintended_liquidations``: at no instant
  of [t - price_lag_s, t] was true equity below true maintenance x (1 + margin_tolerance)),
  or any liquidation while halted. Loss = the account's true equity just before the
  decision (fair books, true prices at t) minus what it was left with (the stack's books
  after the decision's last fill, open positions at true prices at t): the slippage of its
  fills against the true price plus any funding the stack booked on it beyond the truth.
  The other side of each of its fills (a maker, the insurance fund) gets the slippage it
  won as a negative loss.
- **off_market_fill**: a fill (any mode; not a fill of an unintended liquidation, which is
  counted there) more than ``off_market_bps`` from the true price at its time. The side that
  paid too much (bought above / sold below) loses |price - true| x qty; the other side wins
  it (negative loss).
- **duplicate_execution**: a fill of an order accepted a second time for the same intent
  (account + client_order_id), or of an order that was no longer open (filled beyond its
  quantity, after its cancel). The account whose order it was loses what that unintended
  exposure cost at true prices by the end of the history: -s x qty x (true price at the end
  - fill price), s = +1 for a buy (negative: it happened to gain).

Every item carries ``reverted_by``: the rollback that later removed its event (its harm was
made whole by the rollback), or None (still owed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chaos.history.books import BookAccount, Books
from chaos.history.events import Event, FillEvent, LiquidationEvent
from chaos.history.response import RollbackRecord
from chaos.history.truth import Account, Ledger, RunTruth

_QTY_EPS = 1e-9


@dataclass(frozen=True)
class HarmParams:
    """The tolerances the ledger applies (defaults: ``chaos.checkers.params.CheckParams``)."""

    off_market_bps: float = 500.0
    margin_tolerance: float = 0.05
    price_lag_s: float = 2.0


@dataclass(frozen=True)
class HarmItem:
    kind: str
    account: int
    loss: float  # quote currency; negative: the account won what another lost
    seq: int | None
    time: float | None
    market: str | None
    reverted_by: RollbackRecord | None
    counterparty: bool = False  # the other side of someone else's harm
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Decision:
    """One liquidation decision of one account (one or more legs, their fills)."""

    account: int
    t: float
    seq: int
    market: str
    mode: str
    unintended: bool
    why: str
    before: BookAccount
    after: BookAccount
    reverted_by: RollbackRecord | None
    mark_price_used: float | None
    legs: list[int] = field(default_factory=list)
    fills: list[tuple[int, str, float, float, float]] = field(default_factory=list)


@dataclass
class _Saved:
    truth_accounts: dict[int, Account]
    books: dict[int, BookAccount]
    mode: str
    open_orders: dict[Any, list[float]]
    intents: dict[tuple[Any, Any], Any]
    duplicates: dict[Any, Any]
    deposited: dict[int, float]


class HarmReplayer:
    """A ``chaos.history.timeline.Replayer`` that collects harm items (see the module)."""

    def __init__(self, truth: RunTruth, params: HarmParams) -> None:
        self.truth = truth
        self.params = params
        self.ledger = Ledger(truth)
        self.books = Books(truth)
        self.mode = "normal"
        self.open_orders: dict[Any, list[float]] = {}  # order_id -> [remaining, account]
        self.intents: dict[tuple[Any, Any], Any] = {}  # (account, coid) -> first order_id
        self.duplicates: dict[Any, Any] = {}  # order_id of a second acceptance -> the first
        self.deposited: dict[int, float] = {}
        self.decisions: list[_Decision] = []
        self.active: dict[int, _Decision] = {}  # open multi-leg window per account
        self.run: _Decision | None = None  # the decision whose fills come now
        self.items: list[HarmItem] = []
        self.unintended_fills: list[tuple[int, str, float, float, FillEvent, Any, str]] = []
        self.end_time = 0.0
        self.events = 0

    # -- the Replayer protocol --------------------------------------------------------
    def apply(self, event: Event, reverted_by: RollbackRecord | None) -> None:
        self.events += 1
        self.end_time = max(self.end_time, float(event["time"]))
        if event["kind"] == "fill":
            self._fill(event, reverted_by)
            return
        if event["kind"] not in ("funding_settle", "order_triggered"):
            self.run = None
        if event["kind"] == "liquidation":
            self._liquidation(event, reverted_by)
        elif event["kind"] == "deposit":
            account, amount = int(event["account"]), float(event["amount"])
            self.active.pop(account, None)
            self.ledger.deposit(account, amount)
            self.books.deposit(account, amount)
            self.deposited[account] = self.deposited.get(account, 0.0) + amount
        elif event["kind"] == "mode":
            self.mode = str(event["mode"])
        elif event["kind"] == "order_accepted":
            key = (event.get("account"), event.get("client_order_id"))
            order_id = event.get("order_id")
            if key in self.intents:
                self.duplicates[order_id] = self.intents[key]
            else:
                self.intents[key] = order_id
            qty = event.get("qty")
            if isinstance(qty, int | float):
                self.open_orders[order_id] = [float(qty), float(event.get("account") or 0)]
        elif event["kind"] == "order_cancelled":
            self.open_orders.pop(event.get("order_id"), None)

    def checkpoint(self) -> _Saved:
        return _Saved(
            {a: acct.copy() for a, acct in self.ledger.accounts.items()},
            {a: acct.copy() for a, acct in self.books.accounts.items()},
            self.mode,
            {k: list(v) for k, v in self.open_orders.items()},
            dict(self.intents),
            dict(self.duplicates),
            dict(self.deposited),
        )

    def restore(self, saved: Any, rollback: RollbackRecord) -> None:
        self.active.clear()
        self.run = None
        if saved is None:
            return
        assert isinstance(saved, _Saved)
        self.ledger.accounts = {a: acct.copy() for a, acct in saved.truth_accounts.items()}
        self.books.accounts = {a: acct.copy() for a, acct in saved.books.items()}
        self.mode = saved.mode
        self.open_orders = {k: list(v) for k, v in saved.open_orders.items()}
        self.intents, self.duplicates = dict(saved.intents), dict(saved.duplicates)
        self.deposited = dict(saved.deposited)

    # -- events ---------------------------------------------------------------------------
    def _liquidation(self, event: LiquidationEvent, reverted_by: RollbackRecord | None) -> None:
        account, t = int(event["account"]), float(event["time"])
        earlier = self.active.get(account)
        if earlier is not None and t - earlier.t <= self.params.price_lag_s:
            earlier.legs.append(event["seq"])
            self.run = earlier
            return
        state = self.ledger.account(account).copy()
        unintended, why = self._judge(state, t)
        books = self.books.account(account).copy()
        decision = _Decision(
            account,
            t,
            event["seq"],
            event["market"],
            self.mode,
            unintended,
            why,
            books,
            books,
            reverted_by,
            event.get("mark_price"),
            [event["seq"]],
        )
        self.decisions.append(decision)
        self.active[account] = decision
        self.run = decision

    def _judge(self, state: Account, t: float) -> tuple[bool, str]:
        if self.mode == "halt":
            return True, "liquidated while trading was halted"
        lag, tol = self.params.price_lag_s, self.params.margin_tolerance
        for instant in self.truth.instants(t - lag, t):
            margin = self.ledger.margin(state, instant)
            if margin.equity < margin.maintenance * (1 + tol):
                return False, ""
        return True, (f"true equity stayed >= maintenance x {1 + tol:g} throughout [t-{lag:g}s, t]")

    def _fill(self, event: FillEvent, reverted_by: RollbackRecord | None) -> None:
        taker, maker = int(event["taker_account"]), int(event["maker_account"])
        run = self.run if event.get("liquidation") and self.run is not None else None
        if run is not None and taker != run.account:
            run = None
        if not event.get("liquidation"):
            self.run = None
            self.active.pop(taker, None)
            self.active.pop(maker, None)
        if run is None or not run.unintended:
            self._off_market(event, reverted_by)
        self._executions(event, reverted_by)
        qty = float(event["qty"])
        signed = qty if event.get("taker_side") == "buy" else -qty
        t, price, market = float(event["time"]), float(event["price"]), event["market"]
        if market in self.truth.markets:
            self.ledger.trade(taker, market, signed, price, t)
            self.ledger.trade(maker, market, -signed, price, t)
        self.books.fill(event)
        if run is not None:
            run.after = self.books.account(run.account).copy()
            run.fills.append((maker, market, -signed, price, t))

    def _off_market(self, event: FillEvent, reverted_by: RollbackRecord | None) -> None:
        market = event["market"]
        taker, maker = int(event["taker_account"]), int(event["maker_account"])
        if market not in self.truth.markets or taker == maker:
            return
        t, price, qty = float(event["time"]), float(event["price"]), float(event["qty"])
        true_price = self.truth.price(market, t)
        off_bps = (price / true_price - 1.0) * 1e4
        if abs(off_bps) <= self.params.off_market_bps:
            return
        buyer, seller = (taker, maker) if event.get("taker_side") == "buy" else (maker, taker)
        loser, winner = (buyer, seller) if price > true_price else (seller, buyer)
        loss = abs(price - true_price) * qty
        details = {
            "price": price,
            "true_price": true_price,
            "off_bps": round(off_bps, 1),
            "qty": qty,
            "liquidation": bool(event.get("liquidation")),
        }
        for account, amount, other in ((loser, loss, False), (winner, -loss, True)):
            self.items.append(
                HarmItem(
                    "off_market_fill",
                    account,
                    amount,
                    event["seq"],
                    t,
                    market,
                    reverted_by,
                    other,
                    {**details, "side": "buy" if account == buyer else "sell"},
                )
            )

    def _executions(self, event: FillEvent, reverted_by: RollbackRecord | None) -> None:
        """Count the fill against its orders; note the fills that executed an intent twice."""
        qty = float(event["qty"])
        for side, account_key in (("taker", "taker_account"), ("maker", "maker_account")):
            order_id = event.get(f"{side}_order_id")
            if order_id is None:
                continue
            why = None
            if order_id in self.duplicates:
                why = (
                    f"order {order_id} is a second acceptance of order {self.duplicates[order_id]}"
                )
            order = self.open_orders.get(order_id)
            if order is not None:
                order[0] -= qty
                if order[0] <= _QTY_EPS * max(1.0, qty):
                    del self.open_orders[order_id]
            elif why is None:
                why = f"order {order_id} was no longer open (filled or cancelled)"
            if why is None:
                continue
            account = int(event[account_key])  # type: ignore[literal-required]
            bought = (event.get("taker_side") == "buy") == (side == "taker")
            signed = qty if bought else -qty
            self.unintended_fills.append(
                (account, event["market"], signed, float(event["price"]), event, reverted_by, why)
            )

    # -- the end ----------------------------------------------------------------------------
    def finish(self) -> list[HarmItem]:
        """Every harm item (valued now that the history's end is known)."""
        items = list(self.items)
        for decision in self.decisions:
            if decision.unintended:
                items += self._decision_items(decision)
        end = self.end_time
        for account, market, signed, price, event, reverted_by, why in self.unintended_fills:
            if market not in self.truth.markets:
                continue
            end_price = self.truth.price(market, end)
            items.append(
                HarmItem(
                    "duplicate_execution",
                    account,
                    -signed * (end_price - price),
                    event["seq"],
                    float(event["time"]),
                    market,
                    reverted_by,
                    False,
                    {"qty": signed, "price": price, "true_price_at_end": end_price, "why": why},
                )
            )
        return items

    def _decision_items(self, decision: _Decision) -> list[HarmItem]:
        t = decision.t
        before = self.books.equity(decision.before, t, "fair")
        left = self.books.equity(decision.after, t, "book")
        slippage = 0.0
        items = []
        for other, market, other_signed, price, t_fill in decision.fills:
            if market not in self.truth.markets:
                continue
            won = other_signed * (self.truth.price(market, t_fill) - price)
            slippage += won
            items.append(
                HarmItem(
                    "unintended_liquidation",
                    other,
                    -won,
                    decision.seq,
                    t_fill,
                    market,
                    decision.reverted_by,
                    True,
                    {"liquidated_account": decision.account, "price": price, "qty": other_signed},
                )
            )
        true_price = (
            self.truth.price(decision.market, t) if decision.market in self.truth.markets else None
        )
        items.append(
            HarmItem(
                "unintended_liquidation",
                decision.account,
                before - left,
                decision.seq,
                t,
                decision.market,
                decision.reverted_by,
                False,
                {
                    "legs": decision.legs,
                    "mode": decision.mode,
                    "why": decision.why,
                    "mark_price_used": decision.mark_price_used,
                    "true_price": true_price,
                    "true_equity_before": before,
                    "equity_left": left,
                    "slippage": slippage,
                    "funding_beyond_truth": decision.after.fair - decision.after.book,
                },
            )
        )
        return items
