"""Trading users for Locust: market makers and takers against a stack.

Imported only inside the load worker process (``python -m chaos.load.worker``): importing
locust monkey-patches the process with gevent. The traders are tradechaos's; the wire
format is the stack's: every request is shaped by the stack file's ``bindings.orders``
(request templates and answer mapping, ``chaos.bindings.http``; or a Python
``OrdersClient`` named by ``orders.python``) and prices and the trading mode come from its
``market_data`` (the built-in venues' median when the stack shows none).

Every order or cancel is one client operation in ``client.jsonl`` (``chaos.load.ops``):
``invoke`` then exactly one of ``ok`` / ``fail`` / ``info``. An unknown outcome (a timeout
or a reset after the request was sent, a 5xx that says so) is ``info`` and is retried with
the same client_order_id, up to ``RETRIES`` more attempts, as trading bots do. A
connection refused before sending is ``fail``. When the primary does not serve (refused,
503 not leader) and a standby URL is configured, the user fails over to the standby.

Market makers quote post-only limits 0.05..0.3% around the sequencer's oracle price and
cancel their oldest quotes; takers send market orders and crossing limits toward a target
position of ``leverage x collateral`` (leverage drawn per account from 5x to 45x, so some
accounts end up below maintenance margin in a normal run). In a maintenance window
(cancel_only, post_only, halt) makers pull their quotes and wait for normal trading, as
market makers do, so the book is thin; takers cancel what they have resting and, in
cancel_only and post_only, keep trying the orders they want (the sequencer rejects them:
fail); in halt (the stack's market data says so also while a guard holds a price) they
send nothing new.

In a distributed load (``load.workers``; ``chaos.load.distributed``) each worker process
runs ``MixedTrader`` users for its own share of the accounts, and every op carries the
worker's index (``worker``); a user's ``process`` (and so its client_order_ids
``u<process>-<n>``) comes from ``chaos.experiment.partition.process_id``, unique across workers.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from typing import Any

from locust import HttpUser, User, between, task
from requests import ConnectionError as RequestsConnectionError
from requests import ConnectTimeout

from chaos.bindings.http import classify, render
from chaos.bindings.orders import OrderRequest, OrdersClient, market_view, python_client
from chaos.experiment.partition import process_id
from chaos.load.ops import op_record
from chaos.stackfile.bindings import OrdersBinding

TIMEOUT_S = 5.0
RETRIES = 3
MARKETS_TTL_S = 1.0
FAILBACK_AFTER_S = 2.0  # on the standby this long, a client tries the primary again
DEFAULT_COLLATERAL = 100_000.0
CONFIGURED_TIMEOUT_S = 60.0


class Config:
    """Set by the worker before users start."""

    seed = 0
    binding: OrdersBinding | None = None
    modes: dict[str, str] | None = None
    standby_url: str | None = None  # the failover link's URL
    venues_url: str | None = None
    accounts: list[int] = list(range(1, 37))  # a worker's: its share (chaos.experiment.partition)
    retry_unknown = True
    ops_fd: int | None = None
    ops_as_records = False  # each op as {"stream": "client", "record": op} (on Kubernetes)
    worker: int | None = None  # this process's worker index; None: the single local process
    configured = threading.Event()  # set once the above hold: no user starts before
    stopping = threading.Event()


_process_ids = iter(range(1, 1_000_000))
_lock = threading.Lock()


def write_op(record: dict[str, Any]) -> None:
    """One line, one ``write``: the worker process is this file's only writer here. A
    worker's ops carry its index (``worker``)."""
    if Config.ops_fd is None:
        return
    if Config.worker is not None:
        record["worker"] = Config.worker
    line = {"stream": "client", "record": record} if Config.ops_as_records else record
    os.write(Config.ops_fd, (json.dumps(line, default=str) + "\n").encode())


def _outcome_of_error(error: BaseException) -> str:
    """fail when the request certainly was not sent, else info."""
    if isinstance(error, ConnectTimeout):
        return "fail"
    if isinstance(error, RequestsConnectionError) and "refused" in str(error).lower():
        return "fail"
    if "refused" in str(error).lower():
        return "fail"
    return "info"


def _fields(f: str, body: dict[str, Any]) -> dict[str, Any]:
    """A request's fields (docs/stack-file.md) from the operation's body."""
    if f == "order":
        return OrderRequest(**_order_fields(body)).fields()
    return {"client_order_id": body["client_order_id"], "account": body["account"]}


def _order_fields(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "client_order_id": str(body["client_order_id"]),
        "account": int(body["account"]),
        "market": str(body["market"]),
        "side": str(body["side"]),
        "type": str(body["type"]),
        "qty": float(body["qty"]),
        "price": body.get("price"),
        "post_only": bool(body.get("post_only")),
    }


class Trader(HttpUser):
    abstract = True
    wait_time = between(0.1, 0.3)

    def on_start(self) -> None:
        if not Config.configured.wait(timeout=CONFIGURED_TIMEOUT_S):
            raise RuntimeError("the load process was not configured in time")
        with _lock:
            local = next(_process_ids)
        self.local = local  # this user's number in this process
        self.process = process_id(Config.worker, local)  # unique across workers
        self.rng = random.Random(Config.seed * 1_000_003 + self.process)
        accounts = Config.accounts or [self.process]
        self.account = accounts[(local - 1) % len(accounts)]
        self.leverage = self.rng.uniform(5.0, 45.0)
        self.base = self.host.rstrip("/") if self.host else ""
        self.primary = self.base
        self.counter = 0
        self.prices: dict[str, float] = {}
        self.mode = "normal"
        self.fetched_at = 0.0
        self.failed_over_at = 0.0
        self.open_orders: list[str] = []
        self.position: dict[str, float] = {}
        self.collateral = DEFAULT_COLLATERAL
        self.direction = "buy"  # a taker's (drawn at its start)

    # -- market data (not a client operation) -----------------------------------------------
    def refresh(self) -> bool:
        self.maybe_fail_back()
        if time.monotonic() - self.fetched_at < MARKETS_TTL_S and self.prices:
            return True
        binding = Config.binding
        assert binding is not None
        if binding.market_data is None:
            return self.refresh_from_venues()
        rendered = render(binding.market_data.request, {})
        try:
            response = self.client.request(
                rendered.method, f"{self.base}{rendered.path}", timeout=TIMEOUT_S, name="markets"
            )
            ok, text = response.status_code == 200, response.text
        except Exception:
            ok, text = False, ""
        view = market_view(binding, text, Config.modes) if ok else None
        if view is None or not view.prices:
            self.maybe_fail_over()
            return bool(self.prices)
        self.mode = view.mode or self.mode
        self.prices.update(view.prices)
        self.fetched_at = time.monotonic()
        return bool(self.prices)

    def refresh_from_venues(self) -> bool:
        """The world's prices (the built-in venues' median) when the stack shows none; the
        mode is then unknown to the traders and taken as normal."""
        if not Config.venues_url:
            return bool(self.prices)
        try:
            response = self.client.get(
                f"{Config.venues_url}/prices", timeout=TIMEOUT_S, name="venues"
            )
            quotes = response.json().get("venues", []) if response.status_code == 200 else []
        except Exception:
            quotes = []
        by_market: dict[str, list[float]] = {}
        for quote in quotes:
            if isinstance(quote.get("price"), int | float) and quote["price"] > 0:
                by_market.setdefault(str(quote["market"]), []).append(float(quote["price"]))
        for market, prices in by_market.items():
            self.prices[market] = sorted(prices)[len(prices) // 2]
        self.fetched_at = time.monotonic()
        return bool(self.prices)

    def maybe_fail_over(self) -> None:
        if Config.standby_url:
            standby = Config.standby_url.rstrip("/")
            self.base = standby if self.base == self.primary else self.primary
            self.failed_over_at = time.monotonic()

    def maybe_fail_back(self) -> None:
        """Clients prefer the primary: after FAILBACK_AFTER_S on the standby they try it again
        (as DNS caches expire and reconnecting clients resolve the primary first)."""
        if self.base != self.primary and time.monotonic() - self.failed_over_at >= FAILBACK_AFTER_S:
            self.base = self.primary
            self.fetched_at = 0.0

    # -- one client operation, with retries of unknown outcomes ------------------------------
    def new_id(self) -> str:
        self.counter += 1
        return f"u{self.process}-{self.counter}"

    def operate(self, f: str, body: dict[str, Any]) -> tuple[str, Any]:
        """Send ``body``; record invoke/completion per attempt; retry ``info`` outcomes."""
        outcome, answer = "info", None
        for attempt in range(1, RETRIES + 2):
            write_op(op_record("invoke", self.process, f, body, time.time(), attempt))
            began = time.monotonic()
            outcome, answer = "info", None
            extra: dict[str, Any] = {}
            try:
                outcome, answer, extra = self._send(f, body)
            except BaseException as err:  # killed mid-request: the outcome is unknown
                extra = {"error": f"interrupted: {type(err).__name__}"}
                raise
            finally:
                write_op(
                    op_record(
                        outcome,
                        self.process,
                        f,
                        body,
                        time.time(),
                        attempt,
                        latency=round(time.monotonic() - began, 4),
                        **extra,
                    )
                )
            if outcome != "info" or not Config.retry_unknown or Config.stopping.is_set():
                break
        return outcome, answer

    def _send(self, f: str, body: dict[str, Any]) -> tuple[str, Any, dict[str, Any]]:
        """One attempt: (outcome, the filled quantity, extra fields for the history)."""
        binding = Config.binding
        assert binding is not None
        if binding.python is not None:
            return self._send_python(f, body)
        request = binding.submit if f == "order" else binding.cancel
        if request is None:
            return "fail", 0.0, {"error": f"the stack's orders binding has no {f} request"}
        fields = _fields(f, body)
        rendered = render(request, fields)
        with self.client.request(
            rendered.method,
            f"{self.base}{rendered.path}",
            json=rendered.body,
            headers=rendered.headers,
            timeout=request.timeout_s,
            name=f,
            catch_response=True,
        ) as response:
            error = getattr(response, "error", None)
            if error is not None and response.status_code == 0:
                outcome = _outcome_of_error(error)
                response.failure(str(error)[:200])
                if outcome == "fail":
                    self.maybe_fail_over()
                return outcome, 0.0, {"error": str(error)[:200]}
            answer = classify(binding.answer, response.status_code, response.text)
            extra: dict[str, Any] = {"status": response.status_code}
            if answer.seq is not None:
                extra["seq"] = answer.seq
            if answer.kind != "ok":
                extra["error"] = answer.reason
            if 200 <= response.status_code < 300:
                response.success()  # a business rejection is an answer, not a load error
            else:
                response.failure(extra.get("error") or f"HTTP {response.status_code}")
                if answer.kind == "fail":
                    self.maybe_fail_over()
            return answer.kind, answer.filled_qty, extra

    def _send_python(self, f: str, body: dict[str, Any]) -> tuple[str, Any, dict[str, Any]]:
        """One attempt through the stack's Python ``OrdersClient``; Locust sees a request."""
        client = self.python_client()
        began = time.perf_counter()
        exception: BaseException | None = None
        try:
            if f == "order":
                answer = client.submit(OrderRequest(**_order_fields(body)))
            else:
                answer = client.cancel(str(body["client_order_id"]), int(body["account"]))
        except Exception as err:
            exception = err
            outcome = _outcome_of_error(err)
            if outcome == "fail":
                self.maybe_fail_over()
            return outcome, 0.0, {"error": str(err)[:200]}
        finally:
            self.environment.events.request.fire(
                request_type="python",
                name=f,
                response_time=(time.perf_counter() - began) * 1000,
                response_length=0,
                exception=exception,
                context={},
            )
        extra: dict[str, Any] = {"status": answer.status}
        if answer.seq is not None:
            extra["seq"] = answer.seq
        if answer.kind != "ok":
            extra["error"] = answer.reason
        return answer.kind, answer.filled_qty, extra

    def python_client(self) -> OrdersClient:
        binding = Config.binding
        assert binding is not None and binding.python is not None
        cached = getattr(self, "_python_clients", {})
        if self.base not in cached:
            cached[self.base] = python_client(binding.python, self.base, binding)
            self._python_clients = cached
        return cached[self.base]  # type: ignore[no-any-return]

    # -- order helpers -----------------------------------------------------------------------
    def order(
        self,
        market: str,
        side: str,
        kind: str,
        qty: float,
        price: float | None = None,
        post_only: bool = False,
    ) -> tuple[str, Any]:
        body: dict[str, Any] = {
            "client_order_id": self.new_id(),
            "account": self.account,
            "market": market,
            "side": side,
            "type": kind,
            "qty": qty,
        }
        if price is not None:
            body["price"] = round(price, 2)
        if post_only:
            body["post_only"] = True
        outcome, filled = self.operate("order", body)
        if outcome == "ok":
            filled = float(filled or 0.0)
            sign = 1.0 if side == "buy" else -1.0
            self.position[market] = self.position.get(market, 0.0) + sign * filled
            if kind == "limit" and filled < qty:  # something rests on the book
                self.open_orders.append(body["client_order_id"])
        return outcome, filled

    def cancel_oldest(self) -> None:
        if self.open_orders:
            client_order_id = self.open_orders.pop(0)
            self.operate("cancel", {"client_order_id": client_order_id, "account": self.account})

    def notional_qty(self, market: str, fraction: float) -> float:
        price = self.prices[market]
        qty = self.leverage * self.collateral * fraction / price
        return float(f"{qty:.4g}")

    # -- the traders' rounds ------------------------------------------------------------------
    def quote_round(self) -> None:
        """A market maker's round: quote both sides around the price (none in a window)."""
        if not self.refresh():
            return
        if self.mode != "normal" or len(self.open_orders) >= 6:
            self.cancel_oldest()
            if self.mode != "normal":  # a maintenance window: quotes pulled until normal
                return
        market = self.rng.choice(sorted(self.prices))
        price = self.prices[market]
        spread = self.rng.uniform(0.0005, 0.003)
        qty = self.notional_qty(market, 0.02)
        self.order(market, "buy", "limit", qty, price * (1 - spread), post_only=True)
        self.order(market, "sell", "limit", qty, price * (1 + spread), post_only=True)

    def trade_round(self) -> None:
        """A taker's round: move toward its target position (``direction`` set at start)."""
        if not self.refresh():
            return
        if self.mode == "halt":  # nothing trades: a limit priced now would rest on this view
            if self.open_orders:
                self.cancel_oldest()
            return
        if self.mode in ("cancel_only", "post_only"):
            if self.open_orders:
                self.cancel_oldest()
            else:  # keeps trying what it wants; the sequencer rejects it (fail)
                market = self.rng.choice(sorted(self.prices))
                self.order(market, self.direction, "market", self.notional_qty(market, 0.05))
            return
        market = self.rng.choice(sorted(self.prices))
        price = self.prices[market]
        target = self.leverage * self.collateral / price
        held = abs(self.position.get(market, 0.0))
        side = self.direction if held < target else self.rng.choice(("buy", "sell"))
        if self.rng.random() < 0.2:
            side = "sell" if side == "buy" else "buy"
        qty = self.notional_qty(market, 0.12)
        if self.rng.random() < 0.7:
            self.order(market, side, "market", qty)
        else:
            cross = 0.005 if side == "buy" else -0.005
            self.order(market, side, "limit", qty, price * (1 + cross))


class MarketMaker(Trader):
    weight = 1

    @task
    def quote(self) -> None:
        self.quote_round()


class Taker(Trader):
    weight = 1

    def on_start(self) -> None:
        super().on_start()
        self.direction = self.rng.choice(("buy", "sell"))

    @task
    def trade(self) -> None:
        self.trade_round()


class MixedTrader(Trader):
    """The one user class of a distributed load: a worker's odd-numbered users make markets,
    its even-numbered ones take (as a single process's users alternate). Two user classes
    of equal weight would not do: Locust's dispatcher deals them over the workers in
    lockstep, so with two workers every maker would be on one worker."""

    weight = 1

    def on_start(self) -> None:
        super().on_start()
        self.maker = self.local % 2 == 1
        if not self.maker:
            self.direction = self.rng.choice(("buy", "sell"))

    @task
    def trade(self) -> None:
        if self.maker:
            self.quote_round()
        else:
            self.trade_round()


def user_classes(distributed: bool) -> list[type[User]]:
    """The user classes of a single process (makers and takers), or of a distributed load's
    master and workers (one class that is both; see ``MixedTrader``)."""
    return [MixedTrader] if distributed else [MarketMaker, Taker]
