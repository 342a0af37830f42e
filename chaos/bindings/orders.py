"""The orders binding at work: how a trader's order or cancel reaches a stack.

``OrdersClient`` is the protocol (implement it in Python and name it in the stack file as
``orders: {python: module:Class}``); ``HttpOrders`` implements it from the stack file's
request templates and answer mapping. Both speak in tradechaos's terms: an ``OrderRequest``
in, an ``OrderAnswer`` (ok / fail / info, Jepsen's model) out. Which link to call is the
caller's business (the traders call ``orders.via``; a failover client may switch).

Outcome of transport errors (fixed, for every stack): a connection refused or a connect
timeout means nothing was sent: ``fail``; any other error after the request may have been
sent (a reset, a read timeout) means the outcome is unknown: ``info``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from chaos.bindings.http import Classified, Rendered, classify, get, parse_json, render
from chaos.stackfile.bindings import OrdersBinding

ORDER_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class OrderRequest:
    client_order_id: str
    account: int
    market: str
    side: str  # buy | sell
    type: str  # limit | market | take_profit | stop_loss
    qty: float
    price: float | None = None
    post_only: bool = False
    trigger_price: float | None = None  # take_profit / stop_loss: the mark that triggers it

    def fields(self) -> dict[str, Any]:
        return {
            "client_order_id": self.client_order_id,
            "account": self.account,
            "market": self.market,
            "side": self.side,
            "type": self.type,
            "qty": self.qty,
            "price": self.price,
            "post_only": True if self.post_only else None,
            "trigger_price": self.trigger_price,
        }


@dataclass(frozen=True)
class OrderAnswer:
    kind: str  # ok | fail | info
    seq: int | None = None
    filled_qty: float = 0.0
    reason: str = ""
    status: int | None = None


@dataclass(frozen=True)
class MarketView:
    """What a trader sees of the market: the price of each market and the trading mode
    (tradechaos's name; None when the stack does not say)."""

    prices: Mapping[str, float] = field(default_factory=dict)
    mode: str | None = None


@runtime_checkable
class OrdersClient(Protocol):
    """Submit and cancel orders on one stack endpoint. Never raises for an answer the
    stack gave; raises only for transport errors (see ``outcome_of_error``)."""

    def submit(self, order: OrderRequest) -> OrderAnswer: ...

    def cancel(self, client_order_id: str, account: int) -> OrderAnswer: ...

    def market(self) -> MarketView | None: ...


class Transport(Protocol):
    """One HTTP exchange: (status, body text). ``requests`` or Locust's session."""

    def __call__(self, rendered: Rendered, url: str, timeout_s: float) -> tuple[int, str]: ...


def outcome_of_error(error: BaseException) -> str:
    """fail when the request certainly was not sent, else info."""
    text = f"{type(error).__name__}: {error}".lower()
    if "connecttimeout" in text or "refused" in text:
        return "fail"
    return "info"


def answer_of(classified: Classified, status: int) -> OrderAnswer:
    return OrderAnswer(
        classified.kind, classified.seq, classified.filled_qty, classified.reason, status
    )


def market_view(binding: OrdersBinding, text: str, modes: Mapping[str, str] | None) -> MarketView:
    """Prices and mode out of a market-data answer (``binding.market_data`` mapping)."""
    data = binding.market_data
    document = parse_json(text)
    prices: dict[str, float] = {}
    mode: str | None = None
    if data is None or document is None:
        return MarketView(prices, mode)
    if data.mode:
        raw = get(document, data.mode)
        if isinstance(raw, str):
            mode = _our_mode(raw, modes)
    if data.prices is not None:
        found = get(document, data.prices.at)
        entries: list[tuple[str, Any]] = []
        if isinstance(found, Mapping) and data.prices.market is None:
            entries = [(str(m), e) for m, e in found.items()]
        elif isinstance(found, list) and data.prices.market is not None:
            entries = [(str(e.get(data.prices.market)), e) for e in found if isinstance(e, Mapping)]
        for market, entry in entries:
            value = entry.get(data.prices.price) if isinstance(entry, Mapping) else None
            try:
                price = float(value) if value is not None else 0.0
            except (TypeError, ValueError):
                continue
            if price > 0:
                prices[market] = price
    return MarketView(prices, mode)


def _our_mode(stack_mode: str, modes: Mapping[str, str] | None) -> str:
    if not modes:
        return stack_mode
    for ours, theirs in modes.items():
        if theirs == stack_mode:
            return ours
    return stack_mode


class HttpOrders:
    """``OrdersClient`` from the binding's templates, over ``transport`` to ``base_url``."""

    def __init__(
        self,
        binding: OrdersBinding,
        base_url: str,
        transport: Transport,
        modes: Mapping[str, str] | None = None,
    ) -> None:
        self.binding = binding
        self.base_url = base_url.rstrip("/")
        self.transport = transport
        self.modes = modes

    def _exchange(self, request: Any, fields: Mapping[str, Any]) -> OrderAnswer:
        rendered = render(request, fields)
        status, text = self.transport(rendered, self.base_url + rendered.path, request.timeout_s)
        return answer_of(classify(self.binding.answer, status, text), status)

    def submit(self, order: OrderRequest) -> OrderAnswer:
        if self.binding.submit is None:
            raise NotImplementedError("the stack's orders binding has no submit request")
        return self._exchange(self.binding.submit, order.fields())

    def cancel(self, client_order_id: str, account: int) -> OrderAnswer:
        if self.binding.cancel is None:
            return OrderAnswer("fail", reason="the stack's orders binding has no cancel request")
        fields = {"client_order_id": client_order_id, "account": account}
        return self._exchange(self.binding.cancel, fields)

    def market(self) -> MarketView | None:
        data = self.binding.market_data
        if data is None:
            return None
        rendered = render(data.request, {})
        status, text = self.transport(
            rendered, self.base_url + rendered.path, data.request.timeout_s
        )
        if status != 200:
            return MarketView()
        return market_view(self.binding, text, self.modes)


def python_client(spec: str, base_url: str, binding: OrdersBinding) -> OrdersClient:
    """An instance of the class ``module:Class`` named by ``orders.python``, made with
    ``Class(base_url, binding)``; ValueError (one sentence) when it cannot be used."""
    module_name, _, class_name = spec.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"orders.python {spec!r} cannot be imported: {err}") from None
    client = cls(base_url, binding)
    if not isinstance(client, OrdersClient):
        raise ValueError(f"orders.python {spec!r} lacks submit/cancel/market (OrdersClient)")
    return client


def requests_transport(session: Any) -> Transport:
    """A ``Transport`` over a ``requests`` session (the engine's own calls)."""

    def send(rendered: Rendered, url: str, timeout_s: float) -> tuple[int, str]:
        response = session.request(
            rendered.method, url, json=rendered.body, headers=rendered.headers, timeout=timeout_s
        )
        return int(response.status_code), str(response.text)

    return send
