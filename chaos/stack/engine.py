"""The sequencer's in-memory exchange: order books, positions, collateral, trading mode.

Pure and synchronous: every call mutates the state and appends what must be persisted to a
``Changes`` (events with their sequence numbers, changed orders, positions, accounts). The
caller writes a ``Changes`` in one database transaction; if that fails it must rebuild the
engine from the database (``Engine.load``), because the memory is then ahead of the db.

Accounting (matches ``chaos.world.equity``): a position has size, average entry price and
entry funding index. On every change of a position its accrued funding
``-size * (F_now - F_entry)`` is settled into collateral (a ``funding_settle`` event) and
``F_entry`` becomes ``F_now``; reducing realises ``closed * (price - entry)`` into collateral.

Trigger orders (``take_profit``, ``stop_loss``) wait with a ``trigger_price`` outside the book
until the mark price crosses it (``fire_triggers``, called by the sequencer after every
price poll): then an ``order_triggered`` event is written and the order executes as a market
order (no ``price``) or a limit order (``price``; its remainder rests). A sell stop-loss
fires at mark <= trigger, a buy stop-loss at mark >= trigger; a sell take-profit at
mark >= trigger, a buy take-profit at mark <= trigger. They fire only in normal mode and
when the guards allow matching (``price_block``); they are not reduce-only.

Operator actions (cancel_all, snapshots, rollbacks, replays) live in ``chaos.stack.admin``
and ``chaos.stack.replay``; access control is ``access_enabled``: when False, traders'
orders and cancels raise ``AccessRefused`` (liquidations and operator actions go on).
"""

from __future__ import annotations

import time
from typing import Any

from chaos.stack.book import EPS, TRIGGER_TYPES, Book, Order
from chaos.stack.changes import (
    AccessRefused,
    BadRequest,
    Changes,
    NotServing,
    OraclePrice,
    Position,
    dumps,
)
from chaos.stack.liquidator import INSURANCE_FUND, LIQUIDATION_SLIPPAGE, Liquidations
from chaos.stack.orderspec import order_view, parse_order
from chaos.stack.triggers import TriggerOrders, trigger_crossed

__all__ = [
    "INSURANCE_FUND",
    "LIQUIDATION_SLIPPAGE",
    "MODES",
    "AccessRefused",
    "BadRequest",
    "Changes",
    "Engine",
    "NotServing",
    "OraclePrice",
    "Position",
    "order_view",
    "trigger_crossed",
]

MODES = ("normal", "post_only", "cancel_only", "halt")


class Engine(TriggerOrders, Liquidations):
    """One sequencer's exchange state. ``instance`` names the sequencer in events."""

    def __init__(
        self,
        instance: str,
        epoch: int,
        markets: tuple[str, ...],
        mitigations: frozenset[str],
        band_bps: float = 200.0,
        stale_after_s: float = 3.0,
        fresh_after: float | None = None,
    ) -> None:
        """``fresh_after``: with readiness_gates, a price counts as the first fresh one only
        when published after this instant (the process's start: a price the database held
        from before it is not one it has seen since start)."""
        self.instance = instance
        self.epoch = epoch
        self.markets = markets
        self.mitigations = mitigations
        self.band_bps = band_bps
        self.stale_after_s = stale_after_s
        self.fresh_after = fresh_after
        self.seq = 0
        self.mode = "normal"
        self.books: dict[str, Book] = {m: Book() for m in markets}
        self.orders_by_id: dict[int, Order] = {}
        self.open_by_client_id: dict[str, list[int]] = {}
        self.positions: dict[tuple[int, str], Position] = {}
        self.collateral: dict[int, float] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self.prices: dict[str, OraclePrice] = {}
        self.fresh_price_seen = False
        self.triggers: dict[int, Order] = {}  # pending trigger orders by order_id
        self.access_enabled = True
        self.access_reason = ""

    # -- state ------------------------------------------------------------------------
    def rest(self, order: Order) -> None:
        self.orders_by_id[order.order_id] = order
        self.open_by_client_id.setdefault(order.client_order_id, []).append(order.order_id)
        self.books[order.market].add(order)

    def set_price(self, market: str, price: OraclePrice, now: float | None = None) -> None:
        self.prices[market] = price
        now = time.time() if now is None else now
        if self.fresh_after is not None and price.ts < self.fresh_after:
            return
        if now - price.ts <= self.stale_after_s and all(
            m in self.prices and now - self.prices[m].ts <= self.stale_after_s for m in self.markets
        ):
            self.fresh_price_seen = True

    def shown_mode(self, now: float) -> str:
        """The mode market data shows traders: ``halt`` while a guard holds any market's
        price (a mitigated stack does not present a price it will not trade on: a quote
        cached from it would rest the moment the price is fresh again), else the mode."""
        if any(self.price_block(market, now) is not None for market in self.books):
            return "halt"
        return self.mode

    # -- requests ---------------------------------------------------------------------
    def check_access(self) -> None:
        if not self.access_enabled:
            why = f": {self.access_reason}" if self.access_reason else ""
            raise AccessRefused(f"access disabled by the operator{why}")

    def place_order(
        self,
        req: dict[str, Any],
        changes: Changes,
        now: float,
        admin: bool = False,
        replay_of: int | None = None,
    ) -> dict[str, Any]:
        """A trader's order (``admin``: the operator's, e.g. a replay; not refused when
        access is disabled). ``replay_of`` is written on the acceptance (the seq of the
        rolled-back acceptance being replayed)."""
        order = parse_order(req, self.markets)
        coid = order["client_order_id"]
        if not admin:
            self.check_access()
        idempotent = "idempotency_keys" in self.mitigations
        if idempotent and coid in self.results:
            return self.results[coid]
        if self.mode == "halt":
            raise NotServing("trading is halted")
        reason = self._order_rejection(order, now)
        if reason is not None:  # not remembered: a retry is judged again
            return {
                "status": "rejected",
                "reason": reason,
                "order_id": None,
                "seq": None,
                "fills": [],
            }
        body = {
            "client_order_id": coid,
            "order_id": self.seq + 1,
            "account": order["account"],
            "market": order["market"],
            "side": order["side"],
            "order_type": order["type"],
            "price": order["price"],
            "qty": order["qty"],
            "post_only": order["post_only"],
        }
        if order["trigger_price"] is not None:
            body["trigger_price"] = order["trigger_price"]
        if replay_of is not None:
            body["replay_of"] = replay_of
        seq = self._emit(changes, now, "order_accepted", body)
        if order["type"] in TRIGGER_TYPES:
            return self._remember(coid, self._wait_for_trigger(order, seq, changes), changes)
        fills, remaining = self._take(
            changes,
            now,
            order["market"],
            order["side"],
            order["account"],
            seq,
            order["price"],
            order["qty"],
            liquidation=False,
        )
        if remaining > EPS and order["type"] == "limit":
            resting = Order(
                seq,
                coid,
                order["account"],
                order["market"],
                order["side"],
                order["price"],
                order["qty"],
                remaining,
            )
            self.rest(resting)
            changes.orders[seq] = resting
        result = {
            "status": "accepted",
            "order_id": seq,
            "seq": seq,
            "fills": fills,
            "remaining": max(0.0, remaining) if order["type"] == "limit" else 0.0,
        }
        return self._remember(coid, result, changes)

    def _remember(self, coid: str, result: dict[str, Any], changes: Changes) -> dict[str, Any]:
        if "idempotency_keys" in self.mitigations:
            self.results[coid] = result
            changes.idempotency.append((coid, dumps(result), self.seq))
        return result

    def _order_rejection(self, order: dict[str, Any], now: float) -> str | None:
        if self.mode == "cancel_only":
            return "cancel_only: only cancels are accepted"
        if order["type"] in TRIGGER_TYPES:
            return None  # waits outside the book: nothing to match or band-check yet
        market, side, limit = order["market"], order["side"], order["price"]
        crosses = self.books[market].crosses(side, limit)
        if self.mode == "post_only":
            if order["type"] == "market":
                return "post_only: market orders are rejected"
            if crosses:
                return "post_only: order would cross"
        if order["post_only"] and crosses:
            return "post_only order would cross"
        if self.mode != "normal" and "post_only_band" in self.mitigations and limit is not None:
            oracle = self.prices.get(market)
            if oracle is None:
                return "no oracle price for the band"
            if abs(limit / oracle.mark_price - 1.0) * 1e4 > self.band_bps:
                return f"price outside +-{self.band_bps:g} bps of the oracle price"
        # no new order on a price the guards distrust, resting or not: a bid quoted on a
        # stale mark would be hit the moment matching resumes (the dYdX harm)
        return self.price_block(market, now)

    def cancel(self, req: dict[str, Any], changes: Changes, now: float) -> dict[str, Any]:
        coid = req.get("client_order_id")
        account = req.get("account")
        if not isinstance(coid, str) or not isinstance(account, int):
            raise BadRequest("cancel needs client_order_id (string) and account (int)")
        self.check_access()
        if self.mode == "halt":
            raise NotServing("trading is halted")
        ids = [
            i
            for i in self.open_by_client_id.get(coid, [])
            if self.orders_by_id[i].account == account
        ]
        if not ids:
            return {
                "status": "rejected",
                "reason": "no open order with that client_order_id",
                "order_id": None,
                "seq": None,
                "fills": [],
            }
        seq = 0
        for order_id in ids:
            seq = self.cancel_order(self.orders_by_id[order_id], changes, now)
        return {"status": "accepted", "order_id": ids[-1], "seq": seq, "fills": []}

    def cancel_order(self, order: Order, changes: Changes, now: float, **why: Any) -> int:
        """Cancel one open or pending ``order``; its ``order_cancelled`` event (with the
        extra fields ``why``, e.g. reason and source) and its seq."""
        self.books[order.market].remove(order)
        self.triggers.pop(order.order_id, None)
        order.status = "cancelled"
        changes.orders[order.order_id] = order
        self._forget_open(order)
        body = {
            "order_id": order.order_id,
            "account": order.account,
            "client_order_id": order.client_order_id,
            "market": order.market,
        }
        if why:
            body.update(order_type=order.order_type, **why)
        return self._emit(changes, now, "order_cancelled", body)

    def deposit(
        self, account: int, amount: float, changes: Changes, now: float, **extra: Any
    ) -> int:
        """Credit ``amount`` to ``account`` (a ``deposit`` event); its seq."""
        self.collateral[account] = self.collateral.get(account, 0.0) + amount
        changes.accounts.add(account)
        return self._emit(changes, now, "deposit", {"account": account, "amount": amount, **extra})

    def set_mode(self, req: dict[str, Any], changes: Changes, now: float) -> dict[str, Any]:
        mode = req.get("mode")
        if mode not in MODES:
            raise BadRequest(f"mode must be one of {', '.join(MODES)}")
        source = str(req.get("source") or "admin")
        self.mode = mode
        changes.mode = mode
        seq = self._emit(changes, now, "mode", {"mode": mode, "source": source})
        return {"status": "accepted", "mode": mode, "seq": seq}

    def account_view(self, account: int) -> dict[str, Any]:
        return {
            "account": account,
            "collateral": self.collateral.get(account),
            "positions": {
                m: vars(p) for (a, m), p in self.positions.items() if a == account and p.size
            },
            "orders": [order_view(o) for o in self.orders_by_id.values() if o.account == account],
        }

    def accounts_state(self) -> dict[str, dict[str, Any]]:
        """Every account's collateral and open positions (size, entry price), keyed by the
        account as a string: what a rollback or a replay reports as the recovered state."""
        state: dict[str, dict[str, Any]] = {
            str(a): {"collateral": c, "positions": {}} for a, c in sorted(self.collateral.items())
        }
        for (account, market), pos in sorted(self.positions.items()):
            if pos.size == 0.0:
                continue
            entry = state.setdefault(str(account), {"collateral": 0.0, "positions": {}})
            entry["positions"][market] = {"size": pos.size, "entry_price": pos.entry_price}
        return state
