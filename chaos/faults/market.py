"""The market around the stack: true price moves (a world event) and adversarial traders.

``price_move`` is not a fault: it posts ``/admin/move`` to every built-in venues service
(directly) with an absolute start (now + ``start``), and records one ``phase: "world"``
record with ``{market, start, duration, pct}`` so that the checkers' truth includes it.

``aggressive_orders`` sends ``count`` post-only limit orders from ``accounts`` (default
``bindings.accounts.adversaries``, kept apart from the load's traders) at ``offset_pct``
(or a draw from [low, high] with the run's seeded rng) away from the price the stack shows
(``bindings.orders.market_data``; the true price from the venues when the stack shows
none), bids below it and asks above it: quotes that do not cross, so post-only accepts
them unless a price band guards it, and that a liquidation sweeping the book then fills
far from the fair price. They go through the orders link (``bindings.orders.via``) like
any client. Each order is a client op in the ``client`` stream (invoke, then ok / fail /
info) with ``adversary: true``.

``trigger_orders`` (not a fault: ordinary traders protecting themselves, kept by
``--no-faults``) sends ``count`` take-profit / stop-loss orders (``types`` in turn) from
``accounts`` (default ``bindings.accounts.traders``) through the orders link, each with a
``trigger_price`` ``distance_pct`` away from the price the stack shows on the side where it
waits (a sell stop-loss and a buy take-profit below it, a buy stop-loss and a sell
take-profit above it; sides alternate by pairs), no limit price. They rest as the
protective orders a runbook's ``cancel_all`` keeps. Client ops as above, without
``adversary``.
"""

from __future__ import annotations

import time
from typing import Any

from chaos.bindings.orders import (
    HttpOrders,
    OrderAnswer,
    OrderRequest,
    outcome_of_error,
    requests_transport,
)
from chaos.errors import FaultError
from chaos.experiment.actions import ActionInfo, StepLike
from chaos.experiment.partition import ADVERSARY_PROCESS, TRIGGER_PROCESS
from chaos.faults import http
from chaos.faults.base import FaultContext, RecordedFault, step_target
from chaos.faults.data import venues_of
from chaos.faults.process import _seconds
from chaos.load.ops import op_record


class PriceMove(RecordedFault):
    """Records only ``world`` (no begin/end): the move is a fact about the world."""

    def inject(self) -> None:
        with self._op_lock:
            if self._injected:
                return
            self._injected = True
            start = self.ctx.clock.now() + _seconds(self.params.get("start"))
            over = self.params.get("over")
            duration = _seconds(over if over is not None else self.params.get("duration"))
            move = {
                "market": self.params.get("market") or "*",
                "start": start,
                "duration": duration,
                "pct": _seconds(self.params["pct"]),
            }
            venues = [self.ctx.backend.endpoint(v).url for v in self.target or venues_of(self.ctx)]
            for url in venues:
                http.call("POST", f"{url}/admin/move", move)
            self.params = move
            self._record("world", {"venues": venues})

    def heal(self) -> None:
        """A move of the world is not undone."""

    def _inject(self) -> None:  # pragma: no cover - inject is overridden
        raise NotImplementedError

    def _heal(self) -> dict[str, Any]:
        return {}


class AggressiveOrders(RecordedFault):
    def _client(self) -> HttpOrders:
        import requests

        binding = self.ctx.definition.bindings.orders
        if binding is None:
            raise FaultError(f"stack {self.ctx.definition.name} declares no bindings.orders")
        modes = self.ctx.definition.bindings.trading_mode
        return HttpOrders(
            binding,
            self.ctx.places.url(binding.via),
            requests_transport(requests.Session()),
            modes.modes if modes is not None else None,
        )

    def _current_price(self, client: HttpOrders, market: str | None) -> tuple[str, float | None]:
        """(market, the price the stack shows), the price None while it shows none (it is
        restarting, or reloading from a database that is being migrated)."""
        markets = [m.name for m in self.ctx.definition.markets]
        market = market or markets[0]
        try:
            view = client.market()
        except Exception:
            return market, None
        if view is None:  # the stack shows no market data: the true price at the venues
            return market, self._venue_price(market)
        return market, view.prices.get(market)

    def _venue_price(self, market: str) -> float | None:
        try:
            url = self.ctx.backend.endpoint(venues_of(self.ctx)[0]).url
            answer = http.call("GET", f"{url}/prices")
        except FaultError:
            return None
        quotes = [q["price"] for q in answer.get("venues", []) if q.get("market") == market]
        return sorted(quotes)[len(quotes) // 2] if quotes else None

    def _accounts(self) -> list[int]:
        given = self.params.get("accounts")
        if isinstance(given, list):
            return [int(str(a)) for a in given]
        accounts = self.ctx.definition.bindings.accounts
        if accounts is None or not accounts.adversaries:
            raise FaultError(
                "aggressive_orders needs accounts: give them, or declare "
                "bindings.accounts.adversaries in the stack file"
            )
        return list(accounts.adversaries)

    def _inject(self) -> None:
        client = self._client()
        wanted = self.params.get("market")
        market, price = self._current_price(client, str(wanted) if wanted else None)
        accounts = self._accounts()
        offset_param = self.params["offset_pct"]
        assert isinstance(offset_param, list)
        offsets = [float(str(o)) for o in offset_param]
        side_param = str(self.params["side"])
        outcomes: dict[str, int] = {"ok": 0, "fail": 0, "info": 0, "no_price": 0}
        prices: list[float] = []
        for i in range(int(_seconds(self.params["count"]))):
            if i:
                self.wait(_seconds(self.params.get("interval")))
                market, price = self._current_price(client, market)
            if price is None:
                outcomes["no_price"] += 1  # an adversary quotes off the price it can see
                continue
            prices.append(price)
            side = side_param if side_param != "both" else ("buy", "sell")[i % 2]
            pct = offsets[0] if len(offsets) == 1 else self.ctx.rng.uniform(*offsets[:2])
            limit = price * (1 - pct / 100) if side == "buy" else price * (1 + pct / 100)
            order = OrderRequest(
                client_order_id=f"adv-{self.step_id}-{i}",
                account=accounts[i % len(accounts)],
                market=market,
                side=side,
                type="limit",
                price=round(limit, 2),
                qty=_seconds(self.params["qty"]),
                post_only=True,
            )
            outcomes[self._send(client, order)] += 1
        self.evidence(market=market, oracle_prices=prices[:3] + prices[-3:], sent=outcomes)
        if not prices:
            raise FaultError(f"the stack showed no price for {market} at any try")

    adversary = True

    def _send(self, client: HttpOrders, order: OrderRequest) -> str:
        base = ADVERSARY_PROCESS if self.adversary else TRIGGER_PROCESS
        process = base + order.account
        body = order.fields()
        body["type"] = order.type
        record = self.ctx.recorder.record
        adversary = True if self.adversary else None
        record(
            "client",
            op_record("invoke", process, "order", body, time.time(), 1, adversary=adversary),
        )
        began = time.monotonic()
        try:
            answer = client.submit(order)
        except Exception as err:  # the transport failed: refused (fail) or unknown (info)
            answer = OrderAnswer(outcome_of_error(err), reason=str(err)[:200])
        record(
            "client",
            op_record(
                answer.kind,
                process,
                "order",
                body,
                time.time(),
                1,
                adversary=adversary,
                trigger_price=order.trigger_price,
                latency=round(time.monotonic() - began, 4),
                seq=answer.seq,
                error=answer.reason if answer.kind != "ok" else None,
            ),
        )
        return answer.kind

    def _heal(self) -> dict[str, Any]:
        return {}  # resting orders stay: the adversary does not take them back


class TriggerOrders(AggressiveOrders):
    adversary = False

    def _accounts(self) -> list[int]:
        given = self.params.get("accounts")
        if isinstance(given, list):
            return [int(str(a)) for a in given]
        accounts = self.ctx.definition.bindings.accounts
        if accounts is None or not accounts.traders:
            raise FaultError("trigger_orders needs accounts: give them, or declare "
                             "bindings.accounts.traders in the stack file")  # fmt: skip
        return list(accounts.traders)

    def _inject(self) -> None:
        client = self._client()
        wanted = self.params.get("market")
        market, price = self._current_price(client, str(wanted) if wanted else None)
        if price is None:
            raise FaultError(f"the stack showed no price for {market}: no trigger to place")
        accounts = self._accounts()
        types_param = self.params["types"]
        assert isinstance(types_param, list)
        types = [str(t) for t in types_param]
        distance = _seconds(self.params["distance_pct"]) / 100
        outcomes: dict[str, int] = {"ok": 0, "fail": 0, "info": 0}
        placed: list[dict[str, Any]] = []
        for i in range(int(_seconds(self.params["count"]))):
            kind = types[i % len(types)]
            side = ("sell", "buy")[(i // len(types)) % 2]
            below = (kind == "stop_loss") == (side == "sell")  # waits for the mark to fall
            trigger = round(price * (1 - distance if below else 1 + distance), 2)
            order = OrderRequest(
                client_order_id=f"trg-{self.step_id}-{i}",
                account=accounts[i % len(accounts)],
                market=market,
                side=side,
                type=kind,
                qty=_seconds(self.params["qty"]),
                trigger_price=trigger,
            )
            outcome = self._send(client, order)
            outcomes[outcome] += 1
            placed.append({"client_order_id": order.client_order_id, "account": order.account,
                           "type": kind, "side": side, "trigger_price": trigger,
                           "outcome": outcome})  # fmt: skip
        self.evidence(market=market, price=price, sent=outcomes, orders=placed)
        if not outcomes["ok"]:
            raise FaultError(f"the stack accepted none of the {len(placed)} trigger orders")


def build(
    step: StepLike, info: ActionInfo, params: dict[str, object], ctx: FaultContext
) -> RecordedFault:
    targets = step_target(step.target)
    if info.name == "price_move":
        return PriceMove(ctx, step.id, info.name, targets, params)
    if info.name == "trigger_orders":
        return TriggerOrders(ctx, step.id, info.name, targets, params)
    return AggressiveOrders(ctx, step.id, info.name, targets, params)
