"""The market around the stack: true price moves (a world event) and adversarial traders.

``price_move`` is not a fault: it posts ``/admin/move`` to the feeds (directly) with an
absolute start (now + ``start``), and records one ``phase: "world"`` record with
``{market, start, duration, pct}`` so that the checkers' truth includes the move.

``aggressive_orders`` sends ``count`` post-only limit orders from ``accounts`` (default
37..40, kept apart from the load's accounts) at ``offset_pct`` (or a draw from [low, high]
with the run's seeded rng) away from the sequencer's oracle price, bids below it and asks
above it: quotes that do not cross, so post-only accepts them unless a price band guards
it, and that a liquidation sweeping the book then fills far from the fair price. They go
through the ``clients-sequencer`` link like any client. Each order is a client op
in the ``client`` stream (invoke, then ok / fail / info) with ``adversary: true``.
"""

from __future__ import annotations

import time
from typing import Any

from chaos.errors import FaultError
from chaos.faults import http
from chaos.faults.base import FaultContext, RecordedFault, step_target
from chaos.faults.process import _seconds
from chaos.faults.registry import ActionInfo, StepLike
from chaos.load.ops import classify_answer, op_record, reason_of

ADVERSARY_ACCOUNTS = (37, 38, 39, 40)
ADVERSARY_PROCESS = 900_000  # client-op process ids of adversaries: 900000 + account
CLIENTS_LINK = "clients-sequencer"


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
            feeds = self.ctx.backend.endpoint((self.target or ["feeds"])[0]).url
            http.call("POST", f"{feeds}/admin/move", move)
            self.params = move
            self._record("world", {"feeds": feeds})

    def heal(self) -> None:
        """A move of the world is not undone."""

    def _inject(self) -> None:  # pragma: no cover - inject is overridden
        raise NotImplementedError

    def _heal(self) -> dict[str, Any]:
        return {}


def oracle_price(markets_answer: object, market: str) -> float:
    """The sequencer's oracle price of ``market`` from its ``GET /markets`` answer."""
    if isinstance(markets_answer, dict):
        entry = markets_answer.get("markets", {}).get(market)
        if isinstance(entry, dict):
            for key in ("oracle_price", "mark_price", "price"):
                value = entry.get(key)
                if isinstance(value, int | float) and value > 0:
                    return float(value)
    raise FaultError(f"the sequencer reports no oracle price for {market}")


class AggressiveOrders(RecordedFault):
    def _current_price(self, base: str, market: str | None) -> tuple[str, float | None]:
        """(market, the sequencer's oracle price), the price None while it has none (it is
        restarting, or reloading from a database that is being migrated)."""
        try:
            answer = http.call("GET", f"{base}/markets")
            market = market or str(next(iter(answer["markets"])))
            return market, oracle_price(answer, market)
        except (FaultError, StopIteration, KeyError, TypeError):
            return market or "", None

    def _inject(self) -> None:
        base = self.ctx.backend.link_endpoint(CLIENTS_LINK).url
        wanted = self.params.get("market")
        market, price = self._current_price(base, str(wanted) if wanted else None)
        given = self.params.get("accounts")
        accounts = (
            [int(str(a)) for a in given] if isinstance(given, list) else list(ADVERSARY_ACCOUNTS)
        )
        offset_param = self.params["offset_pct"]
        assert isinstance(offset_param, list)
        offsets = [float(str(o)) for o in offset_param]
        side_param = str(self.params["side"])
        outcomes: dict[str, int] = {"ok": 0, "fail": 0, "info": 0, "no_price": 0}
        prices: list[float] = []
        for i in range(int(_seconds(self.params["count"]))):
            if i:
                self.wait(_seconds(self.params.get("interval")))
                market, price = self._current_price(base, market or None)
            if price is None:
                outcomes["no_price"] += 1  # an adversary quotes off the price it can see
                continue
            prices.append(price)
            side = side_param if side_param != "both" else ("buy", "sell")[i % 2]
            pct = offsets[0] if len(offsets) == 1 else self.ctx.rng.uniform(*offsets[:2])
            limit = price * (1 - pct / 100) if side == "buy" else price * (1 + pct / 100)
            order = {
                "client_order_id": f"adv-{self.step_id}-{i}",
                "account": accounts[i % len(accounts)],
                "market": market,
                "side": side,
                "type": "limit",
                "price": round(limit, 2),
                "qty": _seconds(self.params["qty"]),
                "post_only": True,
            }
            outcomes[self._send(base, order)] += 1
        self.evidence(market=market, oracle_prices=prices[:3] + prices[-3:], sent=outcomes)
        if not prices:
            raise FaultError(f"the sequencer reported no oracle price for {market} at any try")

    def _send(self, base: str, order: dict[str, Any]) -> str:
        import requests

        process = ADVERSARY_PROCESS + int(order["account"])
        record = self.ctx.recorder.record
        record(
            "client", op_record("invoke", process, "order", order, time.time(), 1, adversary=True)
        )
        began = time.monotonic()
        extra: dict[str, Any] = {}
        try:
            response = requests.post(f"{base}/orders", json=order, timeout=5.0)
            try:
                body = response.json()
            except ValueError:
                body = {}
            kind = classify_answer(response.status_code, body)
            extra["seq"] = body.get("seq") if isinstance(body, dict) else None
            if kind != "ok":
                extra["error"] = reason_of(body) or f"HTTP {response.status_code}"
        except requests.ConnectionError as err:
            # refused before anything was sent: certainly not placed; otherwise unknown
            kind = "fail" if "refused" in str(err).lower() else "info"
            extra["error"] = str(err)[:200]
        except requests.RequestException as err:
            kind, extra["error"] = "info", str(err)[:200]
        record(
            "client",
            op_record(
                kind,
                process,
                "order",
                order,
                time.time(),
                1,
                adversary=True,
                latency=round(time.monotonic() - began, 4),
                **extra,
            ),
        )
        return kind

    def _heal(self) -> dict[str, Any]:
        return {}  # resting orders stay: the adversary does not take them back


def build(
    step: StepLike, info: ActionInfo, params: dict[str, object], ctx: FaultContext
) -> RecordedFault:
    targets = step_target(step.target)
    if info.name == "price_move":
        return PriceMove(ctx, step.id, info.name, targets, params)
    return AggressiveOrders(ctx, step.id, info.name, targets, params)
