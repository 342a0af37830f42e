"""Request templates and answer mappings of bindings: what is sent, how answers are read."""

from __future__ import annotations

import json
from typing import Any

from chaos.bindings.http import MISSING, Rendered, classify, get, render
from chaos.bindings.orders import HttpOrders, OrderRequest, market_view
from chaos.stackfile import load, reference_stack_path
from chaos.stackfile.bindings import Answer, MarketData, OrdersBinding, PricesAt, Request, Rule

REFERENCE = load(reference_stack_path()).bindings.orders
ORDER = OrderRequest("u1-7", 5, "BTC-PERP", "buy", "limit", 0.25, price=60000.5)


def test_the_reference_stack_gets_the_body_the_load_always_sent() -> None:
    assert REFERENCE is not None and REFERENCE.submit is not None
    sent = render(REFERENCE.submit, ORDER.fields())
    assert (sent.method, sent.path) == ("POST", "/orders")
    assert sent.body == {"client_order_id": "u1-7", "account": 5, "market": "BTC-PERP",
                         "side": "buy", "type": "limit", "price": 60000.5, "qty": 0.25}  # fmt: skip
    market = OrderRequest("u1-8", 5, "ETH-PERP", "sell", "market", 1.0, post_only=True)
    body = render(REFERENCE.submit, market.fields()).body
    assert "price" not in body and body["post_only"] is True  # None drops the key


def test_string_numbers_value_maps_paths_and_queries() -> None:
    request = Request(
        "DELETE",
        "/v1/orders/{client_order_id}",
        body={"sz": "{qty|str}", "side": "{side}", "note": "acct {account}", "tags": ["{market}"]},
        query={"acct": "{account}", "absent": "{price}"},
        values={"side": {"buy": "BUY", "sell": "SELL"}},
    )
    sent = render(request, {**ORDER.fields(), "client_order_id": "a/b c", "price": None})
    assert sent.path == "/v1/orders/a%2Fb%20c?acct=5"
    assert sent.body == {"sz": "0.25", "side": "BUY", "note": "acct 5", "tags": ["BTC-PERP"]}
    assert sent.headers["Content-Type"] == "application/json"


def test_classification_order_ok_then_info_then_fail_else_unknown() -> None:
    answer = Answer(
        ok=(Rule(("2xx",), {"$.result": ("FILLED", "RESTING")}),),
        info=(Rule(("5xx",), text=("unknown",)),),
        fail=(Rule(("2xx", "4xx")), Rule(("5xx",), text=("halted",))),
        seq="$.txn",
        fills="$.trades",
        fill_qty="sz",
        reason=("$.why",),
    )
    ok = classify(
        answer,
        200,
        json.dumps({"result": "FILLED", "txn": 9, "trades": [{"sz": "0.1"}, {"sz": 0.2}]}),
    )
    assert (ok.kind, ok.seq, round(ok.filled_qty, 9)) == ("ok", 9, 0.3)
    rejected = classify(answer, 200, json.dumps({"result": "REJECTED", "why": "post only"}))
    assert (rejected.kind, rejected.reason) == ("fail", "post only")
    assert classify(answer, 503, '{"why": "halted; outcome unknown"}').kind == "info"
    assert classify(answer, 503, '{"why": "halted"}').kind == "fail"
    assert classify(answer, 502, "<html>bad gateway</html>").kind == "info"
    default = Answer()
    assert [classify(default, c, "").kind for c in (201, 404, 500)] == ["ok", "fail", "info"]


def test_json_paths() -> None:
    document = {"a": {"b": [1, {"c": 2}]}}
    assert get(document, "$.a.b[1].c") == 2 and get(document, "$.a.b[-2]") == 1
    assert get(document, "$.a.x") is MISSING and get(document, "$.a.b[5]") is MISSING
    assert get(document, "$") == document


def test_market_data_keyed_by_market_or_as_a_list() -> None:
    data = MarketData(Request("GET", "/m"), "$.mode", PricesAt("$.markets", "oracle_price"))
    keyed = OrdersBinding("x", market_data=data)
    markets = {"BTC": {"oracle_price": 5.0}, "ETH": {"oracle_price": None}}
    view = market_view(keyed, json.dumps({"mode": "OPEN", "markets": markets}), {"normal": "OPEN"})
    assert view.prices == {"BTC": 5.0} and view.mode == "normal"
    data = MarketData(Request("GET", "/m"), None, PricesAt("$.data", "px", "sym"))
    listed = OrdersBinding("x", market_data=data)
    view = market_view(listed, json.dumps({"data": [{"sym": "BTC", "px": "7.5"}]}), None)
    assert view.prices == {"BTC": 7.5} and view.mode is None


def test_http_orders_speaks_through_a_transport() -> None:
    assert REFERENCE is not None
    seen: list[tuple[str, str, Any]] = []  # method, url, the JSON body

    def transport(rendered: Rendered, url: str, timeout_s: float) -> tuple[int, str]:
        seen.append((rendered.method, url, rendered.body))
        return 503, '{"error": "not serving (standby)"}'

    client = HttpOrders(REFERENCE, "http://127.0.0.1:9/", transport)
    assert client.submit(ORDER).kind == "fail"
    assert client.cancel("u1-7", 5).kind == "fail"
    assert seen[0][1] == "http://127.0.0.1:9/orders" and seen[1][1].endswith("/orders/cancel")
