"""The engine's matching core, one home for what the engine and its halves (liquidations,
trigger orders) all use: the guards' verdict on a market's price (``price_block``), the
event sequence (``_emit``), funding, position accounting (``_trade``), taking liquidity from
the book (``_take``, ``_fill``) and forgetting a closed order.

A base of ``chaos.stack.engine.Engine`` (through ``Liquidations`` and ``TriggerOrders``);
the engine's ``__init__`` sets the state below.
"""

from __future__ import annotations

from typing import Any

from chaos.stack.book import EPS, Book, Order
from chaos.stack.changes import Changes, OraclePrice, Position, dumps


class Matching:
    """The state every part of the engine reads, and the moves they share."""

    instance: str
    epoch: int
    seq: int
    mode: str
    markets: tuple[str, ...]
    mitigations: frozenset[str]
    stale_after_s: float
    fresh_price_seen: bool
    books: dict[str, Book]
    prices: dict[str, OraclePrice]
    positions: dict[tuple[int, str], Position]
    collateral: dict[int, float]
    orders_by_id: dict[int, Order]
    open_by_client_id: dict[str, list[int]]

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
        changes.events.append((self.seq, self.epoch, self.instance, now, kind, dumps(body)))
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
        limit: float | None,
        qty: float,
        liquidation: bool,
    ) -> tuple[list[dict[str, Any]], float]:
        """Fill up to ``qty`` for ``account`` against the resting makers of ``market`` that
        cross ``limit`` (None: any price), best price first; the fills and the quantity
        left over."""
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

    def _forget_open(self, order: Order) -> None:
        ids = self.open_by_client_id.get(order.client_order_id)
        if ids and order.order_id in ids:
            ids.remove(order.order_id)
            if not ids:
                del self.open_by_client_id[order.client_order_id]
        self.orders_by_id.pop(order.order_id, None)
