"""The sequencer's in-memory exchange: order books, positions, collateral, trading mode.

Pure and synchronous: every call mutates the state and appends what must be persisted to a
``Changes`` (events with their sequence numbers, changed orders, positions, accounts). The
caller writes a ``Changes`` in one database transaction; if that fails it must rebuild the
engine from the database (``Engine.load``), because the memory is then ahead of the db.

Accounting (matches ``chaos.truth.equity``): a position has size, average entry price and
entry funding index. On every change of a position its accrued funding
``-size * (F_now - F_entry)`` is settled into collateral (a ``funding_settle`` event) and
``F_entry`` becomes ``F_now``; reducing realises ``closed * (price - entry)`` into collateral.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from chaos.stack.book import EPS, Book, Order
from chaos.truth import equity

MODES = ("normal", "post_only", "cancel_only", "halt")
INSURANCE_FUND = 0
# A liquidation takes book liquidity within 5% of the mark (towards the bankruptcy price, as
# venues do on thin books); the insurance fund takes what is left at the mark. On a book
# that holds quotes far from the fair price, this is how liquidations fill off-market.
LIQUIDATION_SLIPPAGE = 0.05


class NotServing(Exception):
    """The request cannot be served now (halted, not leader): HTTP 503."""


class BadRequest(Exception):
    """The request is malformed: HTTP 400."""


@dataclass
class Position:
    size: float = 0.0
    entry_price: float = 0.0
    entry_funding_index: float = 0.0
    realised_pnl: float = 0.0


@dataclass(frozen=True)
class OraclePrice:
    mark_price: float
    funding_index: float
    ts: float


@dataclass
class Changes:
    """What one batch must persist, in one transaction."""

    events: list[tuple[int, int, str, float, str, str]] = field(default_factory=list)
    orders: dict[int, Order] = field(default_factory=dict)
    positions: set[tuple[int, str]] = field(default_factory=set)
    accounts: set[int] = field(default_factory=set)
    idempotency: list[tuple[str, str]] = field(default_factory=list)
    mode: str | None = None

    def empty(self) -> bool:
        return not (self.events or self.orders or self.positions or self.accounts or self.mode)


def _dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


class Engine:
    """One sequencer's exchange state. ``instance`` names the sequencer in events."""

    def __init__(
        self,
        instance: str,
        epoch: int,
        markets: tuple[str, ...],
        mitigations: frozenset[str],
        band_bps: float = 200.0,
        stale_after_s: float = 3.0,
    ) -> None:
        self.instance = instance
        self.epoch = epoch
        self.markets = markets
        self.mitigations = mitigations
        self.band_bps = band_bps
        self.stale_after_s = stale_after_s
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

    # -- state ------------------------------------------------------------------------
    def rest(self, order: Order) -> None:
        self.orders_by_id[order.order_id] = order
        self.open_by_client_id.setdefault(order.client_order_id, []).append(order.order_id)
        self.books[order.market].add(order)

    def set_price(self, market: str, price: OraclePrice, now: float | None = None) -> None:
        self.prices[market] = price
        now = time.time() if now is None else now
        if now - price.ts <= self.stale_after_s and all(
            m in self.prices and now - self.prices[m].ts <= self.stale_after_s for m in self.markets
        ):
            self.fresh_price_seen = True

    def price_block(self, market: str, now: float) -> str | None:
        """Why matching in ``market`` must not happen now (guards), or None."""
        price = self.prices.get(market)
        if "staleness_guard" in self.mitigations and (
            price is None or now - price.ts > self.stale_after_s
        ):
            return "stale oracle price"
        if "readiness_gates" in self.mitigations and not self.fresh_price_seen:
            return "no fresh oracle price since start"
        return None

    def _emit(self, changes: Changes, now: float, kind: str, body: dict[str, Any]) -> int:
        self.seq += 1
        changes.events.append((self.seq, self.epoch, self.instance, now, kind, _dumps(body)))
        return self.seq

    def _funding(self, market: str) -> float:
        price = self.prices.get(market)
        return price.funding_index if price is not None else 0.0

    def _trade(
        self,
        changes: Changes,
        now: float,
        account: int,
        market: str,
        signed_qty: float,
        price: float,
        funding_index: float,
    ) -> None:
        pos = self.positions.setdefault(
            (account, market), Position(entry_funding_index=funding_index)
        )
        collateral = self.collateral.get(account, 0.0)
        if pos.size != 0.0:
            amount = -pos.size * (funding_index - pos.entry_funding_index)
            if amount != 0.0:
                collateral += amount
                self._emit(
                    changes,
                    now,
                    "funding_settle",
                    {
                        "account": account,
                        "market": market,
                        "amount": amount,
                        "funding_index": funding_index,
                    },
                )
        pos.entry_funding_index = funding_index
        old = pos.size
        new = old + signed_qty
        if abs(new) < EPS:
            new = 0.0
        if old == 0.0 or old * signed_qty > 0:
            pos.entry_price = (abs(old) * pos.entry_price + abs(signed_qty) * price) / abs(new)
        else:
            closed = min(abs(signed_qty), abs(old))
            pnl = closed * (price - pos.entry_price) * (1.0 if old > 0 else -1.0)
            collateral += pnl
            pos.realised_pnl += pnl
            if new == 0.0:
                pos.entry_price = 0.0
            elif old * new < 0:
                pos.entry_price = price
        pos.size = new
        self.collateral[account] = collateral
        changes.positions.add((account, market))
        changes.accounts.add(account)

    def _take(
        self,
        changes: Changes,
        now: float,
        market: str,
        side: str,
        account: int,
        taker_order_id: int | None,
        limit: float,
        qty: float,
        liquidation: bool,
    ) -> tuple[list[dict[str, Any]], float]:
        """Fill up to ``qty`` for ``account`` against the resting makers of ``market`` that
        cross ``limit``, best price first; the fills and the quantity left over."""
        fills = []
        remaining = qty
        for maker, price, traded in self.books[market].take(side, limit, qty):
            remaining -= traded
            fills.append(
                self._fill(
                    changes,
                    now,
                    market,
                    side,
                    account,
                    taker_order_id,
                    maker.account,
                    maker.order_id,
                    price,
                    traded,
                    liquidation=liquidation,
                )
            )
            changes.orders[maker.order_id] = maker
            if maker.status != "open":
                self._forget_open(maker)
        return fills, remaining

    def _fill(
        self,
        changes: Changes,
        now: float,
        market: str,
        taker_side: str,
        taker_account: int,
        taker_order_id: int | None,
        maker_account: int,
        maker_order_id: int | None,
        price: float,
        qty: float,
        liquidation: bool,
    ) -> dict[str, Any]:
        oracle = self.prices.get(market)
        funding_index = self._funding(market)
        body = {
            "market": market,
            "price": price,
            "qty": qty,
            "taker_side": taker_side,
            "maker_account": maker_account,
            "taker_account": taker_account,
            "maker_order_id": maker_order_id,
            "taker_order_id": taker_order_id,
            "liquidation": liquidation,
            "oracle_price": oracle.mark_price if oracle else None,
            "oracle_ts": oracle.ts if oracle else None,
            "funding_index": funding_index,
        }
        seq = self._emit(changes, now, "fill", body)
        sign = 1.0 if taker_side == "buy" else -1.0
        self._trade(changes, now, taker_account, market, sign * qty, price, funding_index)
        self._trade(changes, now, maker_account, market, -sign * qty, price, funding_index)
        return {"seq": seq, "price": price, "qty": qty, "maker_account": maker_account}

    # -- requests ---------------------------------------------------------------------
    def place_order(self, req: dict[str, Any], changes: Changes, now: float) -> dict[str, Any]:
        order = _parse_order(req, self.markets)
        coid = order["client_order_id"]
        idempotent = "idempotency_keys" in self.mitigations
        if idempotent and coid in self.results:
            return self.results[coid]
        if self.mode == "halt":
            raise NotServing("trading is halted")
        reason = self._order_rejection(order, now)
        if reason is not None:
            return {
                "status": "rejected",
                "reason": reason,
                "order_id": None,
                "seq": None,
                "fills": [],
            }
        seq = self._emit(
            changes,
            now,
            "order_accepted",
            {
                "client_order_id": coid,
                "order_id": self.seq + 1,
                "account": order["account"],
                "market": order["market"],
                "side": order["side"],
                "order_type": order["type"],
                "price": order["price"],
                "qty": order["qty"],
                "post_only": order["post_only"],
            },
        )
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
        if idempotent:
            self.results[coid] = result
            changes.idempotency.append((coid, _dumps(result)))
        return result

    def _order_rejection(self, order: dict[str, Any], now: float) -> str | None:
        if self.mode == "cancel_only":
            return "cancel_only: only cancels are accepted"
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
        if crosses:
            return self.price_block(market, now)
        return None

    def _forget_open(self, order: Order) -> None:
        ids = self.open_by_client_id.get(order.client_order_id)
        if ids and order.order_id in ids:
            ids.remove(order.order_id)
            if not ids:
                del self.open_by_client_id[order.client_order_id]
        self.orders_by_id.pop(order.order_id, None)

    def cancel(self, req: dict[str, Any], changes: Changes, now: float) -> dict[str, Any]:
        coid = req.get("client_order_id")
        account = req.get("account")
        if not isinstance(coid, str) or not isinstance(account, int):
            raise BadRequest("cancel needs client_order_id (string) and account (int)")
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
            order = self.orders_by_id[order_id]
            self.books[order.market].remove(order)
            order.status = "cancelled"
            changes.orders[order_id] = order
            self._forget_open(order)
            seq = self._emit(
                changes,
                now,
                "order_cancelled",
                {
                    "order_id": order_id,
                    "account": account,
                    "client_order_id": coid,
                    "market": order.market,
                },
            )
        return {"status": "accepted", "order_id": ids[-1], "seq": seq, "fills": []}

    def liquidate(self, req: dict[str, Any], changes: Changes, now: float) -> dict[str, Any]:
        try:
            account = int(req["account"])
            market = str(req["market"])
            qty = float(req["qty"])
            mark = float(req["mark_price"])
        except (KeyError, TypeError, ValueError) as err:
            raise BadRequest(f"liquidation needs account, market, qty, mark_price: {err}") from err
        if market not in self.books:
            raise BadRequest(f"unknown market {market!r}")
        if self.mode == "halt":
            raise NotServing("trading is halted")
        rejected = {"status": "rejected", "order_id": None, "seq": None, "fills": []}
        if account == INSURANCE_FUND:
            return {**rejected, "reason": "the insurance fund is not liquidated"}
        block = self.price_block(market, now)
        oracle_ts = req.get("oracle_ts")
        if (
            block is None
            and "staleness_guard" in self.mitigations
            and (not isinstance(oracle_ts, (int, float)) or now - oracle_ts > self.stale_after_s)
        ):
            block = "liquidation price is stale"
        if block is not None:
            return {**rejected, "reason": block}
        if not (math.isfinite(mark) and mark > 0):
            return {**rejected, "reason": "invalid mark price"}
        pos = self.positions.get((account, market))
        if pos is None or pos.size == 0.0:
            return {**rejected, "reason": "no position"}
        if not self._below_maintenance(account, market, req):
            # risk decided from an older snapshot (another leg of the same decision already
            # closed, or the account traded since): nothing to liquidate any more
            return {**rejected, "reason": "the account is no longer below maintenance"}
        qty = min(abs(qty), abs(pos.size)) if qty > 0 else abs(pos.size)
        side = "sell" if pos.size > 0 else "buy"
        seq = self._emit(
            changes,
            now,
            "liquidation",
            {
                "account": account,
                "market": market,
                "qty": qty,
                "mark_price": mark,
                "oracle_ts": oracle_ts,
                "funding_index": req.get("funding_index"),
                "equity": req.get("equity"),
                "maintenance": req.get("maintenance"),
            },
        )
        limit = mark * (1 - LIQUIDATION_SLIPPAGE if side == "sell" else 1 + LIQUIDATION_SLIPPAGE)
        fills, remaining = self._take(
            changes, now, market, side, account, None, limit, qty, liquidation=True
        )
        if remaining > EPS:
            fills.append(
                self._fill(
                    changes,
                    now,
                    market,
                    side,
                    account,
                    None,
                    INSURANCE_FUND,
                    None,
                    mark,
                    remaining,
                    liquidation=True,
                )
            )
        return {"status": "accepted", "order_id": None, "seq": seq, "fills": fills}

    def _below_maintenance(self, account: int, market: str, req: dict[str, Any]) -> bool:
        """Whether ``account`` is below maintenance now, on the engine's own positions and
        collateral, with the mark and funding risk sent for ``market`` and the engine's
        oracle prices for the others. True when a price is missing (risk's call stands)."""
        rows = []
        for (acct, mkt), pos in self.positions.items():
            if acct != account or pos.size == 0.0:
                continue
            if mkt == market:
                mark = float(req["mark_price"])
                sent = req.get("funding_index")
                funding = float(sent) if isinstance(sent, int | float) else self._funding(mkt)
            elif mkt in self.prices:
                mark, funding = self.prices[mkt].mark_price, self.prices[mkt].funding_index
            else:
                return True
            rows.append((pos.size, pos.entry_price, pos.entry_funding_index, mark, funding))
        value, maintenance = equity(self.collateral.get(account, 0.0), rows)
        return value < maintenance

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
        }


def _parse_order(req: dict[str, Any], markets: tuple[str, ...]) -> dict[str, Any]:
    coid = req.get("client_order_id")
    account = req.get("account")
    market = req.get("market")
    side = req.get("side")
    kind = req.get("type", "limit")
    qty = req.get("qty")
    price = req.get("price")
    if not isinstance(coid, str) or not coid:
        raise BadRequest("client_order_id must be a non-empty string")
    if not isinstance(account, int) or isinstance(account, bool) or account < 0:
        raise BadRequest("account must be a non-negative integer")
    if market not in markets:
        raise BadRequest(f"unknown market {market!r}")
    if side not in ("buy", "sell"):
        raise BadRequest("side must be buy or sell")
    if kind not in ("limit", "market"):
        raise BadRequest("type must be limit or market")
    if not isinstance(qty, (int, float)) or not math.isfinite(qty) or qty <= 0:
        raise BadRequest("qty must be a positive number")
    if kind == "limit":
        if not isinstance(price, (int, float)) or not math.isfinite(price) or price <= 0:
            raise BadRequest("a limit order needs a positive price")
        price = float(price)
    else:
        price = None
    return {
        "client_order_id": coid,
        "account": account,
        "market": market,
        "side": side,
        "type": kind,
        "qty": float(qty),
        "price": price,
        "post_only": bool(req.get("post_only", False)),
    }
