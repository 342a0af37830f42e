"""``stack check``: the orders binding, once (a tiny limit buy under the market that
cannot fill, then its cancel), and the market data it reads on the way."""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

from chaos.bindings.client import BindingError, send
from chaos.bindings.exercise_base import Result, State, http_failure
from chaos.bindings.http import classify, render
from chaos.bindings.orders import OrderRequest, market_view, python_client
from chaos.bindings.places import Places
from chaos.stackfile.bindings import OrdersBinding, Request
from chaos.stackfile.definition import StackDefinition

BELOW_MARKET = 0.98  # the check's order rests 2% under the market: it must not fill
QTY = 0.01


def check_orders(definition: StackDefinition, places: Places, state: State) -> list[Result]:
    orders = definition.bindings.orders
    if orders is None:
        return [Result("orders", "SKIP", "no bindings.orders: experiments run without traders")]
    results: list[Result] = []
    price, where = _reference_price(definition, places, orders, results)
    market = definition.markets[0]
    limit = math.floor(price * BELOW_MARKET / market.tick) * market.tick
    order = OrderRequest(
        f"stack-check-{uuid.uuid4().hex[:12]}",
        state.account,
        market.name,
        "buy",
        "limit",
        QTY,
        round(limit, 10),
    )
    state.client_order_id = order.client_order_id
    base = places.url(orders.via)
    if orders.python is not None:
        return [*results, *_python_orders(orders, base, order, state)]
    submit = _exchange("orders.submit", orders, orders.submit, base, order.fields())
    if submit.status == "OK":
        state.accepted = True
        submit.detail = (
            f"{submit.detail}; a limit buy of {QTY:g} {market.name} at {limit:g} ({where})"
        )
    results.append(submit)
    if orders.cancel is None:
        results.append(Result("orders.cancel", "SKIP", "no cancel request"))
    elif state.accepted:
        fields = {"client_order_id": order.client_order_id, "account": order.account}
        results.append(_exchange("orders.cancel", orders, orders.cancel, base, fields))
    else:
        results.append(Result("orders.cancel", "SKIP", "no order to cancel (submit failed)"))
    return results


def _exchange(
    name: str, orders: OrdersBinding, request: Request | None, base: str, fields: dict[str, Any]
) -> Result:
    """One order or cancel through the binding's template and answer mapping."""
    key = f"bindings.{name}"
    if request is None:
        return Result(name, "FAIL", "no request declared", fix=key)
    rendered = render(request, fields)
    try:
        status, text = send(base, rendered, request.timeout_s)
    except BindingError as err:
        refused = "refused" in str(err).lower()
        return Result(
            name,
            "FAIL",
            "no answer",
            rendered.describe(),
            str(err),
            "bindings.orders.via (is its server up?)" if refused else key,
        )
    answer = classify(orders.answer, status, text)
    if answer.kind == "ok":
        seq = f" (seq {answer.seq})" if answer.seq is not None else ""
        return Result(name, "OK", f"accepted{seq}", rendered.describe())
    if 200 <= status < 300:
        return Result(
            name,
            "FAIL",
            f"HTTP {status}, but bindings.orders.answer calls it {answer.kind}: {answer.reason}",
            rendered.describe(),
            f"HTTP {status} {' '.join(text.split())[:300]}",
            "bindings.orders.answer (or the order was refused: see the reason)",
        )
    hint = " (path or method)" if status in (404, 405) else " (body)" if status < 500 else ""
    return http_failure(name, rendered.describe(), status, text, key + hint)


def _python_orders(
    orders: OrdersBinding, base: str, order: OrderRequest, state: State
) -> list[Result]:
    assert orders.python is not None
    try:
        client = python_client(orders.python, base, orders)
        answer = client.submit(order)
    except Exception as err:
        return [
            Result(
                "orders.submit",
                "FAIL",
                "the Python client failed",
                orders.python,
                f"{type(err).__name__}: {err}",
                "bindings.orders.python",
            )
        ]
    if answer.kind != "ok":
        return [
            Result(
                "orders.submit",
                "FAIL",
                f"{answer.kind}: {answer.reason}",
                orders.python,
                f"HTTP {answer.status}",
                "bindings.orders.python",
            )
        ]
    state.accepted = True
    cancelled = client.cancel(order.client_order_id, order.account)
    status = "OK" if cancelled.kind == "ok" else "FAIL"
    return [
        Result("orders.submit", "OK", "accepted (Python client)"),
        Result(
            "orders.cancel",
            status,
            cancelled.reason or cancelled.kind,
            fix="" if status == "OK" else "bindings.orders.python",
        ),
    ]


def _reference_price(
    definition: StackDefinition, places: Places, orders: OrdersBinding, results: list[Result]
) -> tuple[float, str]:
    """The first market's price: from the market data binding (checked on the way), else
    the world's truth (builtin venues), else the market's initial price."""
    market = definition.markets[0]
    data = orders.market_data
    if data is not None:
        rendered = render(data.request, {})
        try:
            status, text = send(places.url(orders.via), rendered, data.request.timeout_s)
        except BindingError as err:
            status, text = 0, str(err)
        view = market_view(orders, text, _modes(definition)) if status == 200 else None
        missing = [m.name for m in definition.markets if view is None or m.name not in view.prices]
        if status != 200:
            results.append(
                http_failure(
                    "orders.market_data",
                    rendered.describe(),
                    status,
                    text,
                    "bindings.orders.market_data",
                )
            )
        elif missing:
            results.append(
                Result(
                    "orders.market_data",
                    "FAIL",
                    f"no price for {', '.join(missing)}",
                    rendered.describe(),
                    text.strip()[:300],
                    "bindings.orders.market_data.prices",
                )
            )
        else:
            assert view is not None
            mode = f", mode {view.mode}" if view.mode else ""
            results.append(
                Result(
                    "orders.market_data",
                    "OK",
                    ", ".join(f"{m} {p:g}" for m, p in view.prices.items()) + mode,
                )
            )
            return view.prices[market.name], "under the market data's price"
    venues = definition.builtins("venues")
    if venues:
        try:
            status, text = send(
                places.url(venues[0]),
                render(Request("GET", f"/admin/truth/{market.name}"), {}),
                2.0,
            )
            if status == 200:
                return float(json.loads(text)["price"]), "under the true price"
        except (BindingError, ValueError, KeyError):
            pass
    return market.initial_price, "under the market's initial price"


def _modes(definition: StackDefinition) -> dict[str, str] | None:
    """tradechaos's mode names for the stack's words (None: no trading_mode binding)."""
    binding = definition.bindings.trading_mode
    return dict(binding.modes) if binding is not None else None
