"""A schema-valid stack document -> the ``StackFile`` model.

The document has passed ``STACK_SCHEMA``, so shapes are trusted here; what is checked is
what the schema cannot say about single values (an option's default fits its type, a
request names exactly one method). Cross-references are ``chaos.stackfile.semantics``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chaos.files.durations import parse_duration
from chaos.files.fields import Reader
from chaos.files.yamlsource import LineDict, LineList
from chaos.stackfile import bindings as B
from chaos.stackfile.definition import BuildSpec, HealthCheck, KubernetesAllow
from chaos.stackfile.model import (
    Arg,
    ArgGroup,
    Command,
    LinkDecl,
    MitigationDecl,
    OptionDecl,
    ServiceDecl,
    ServiceEffect,
    StackFile,
    VenueDecl,
)
from chaos.stackfile.schema import METHODS
from chaos.world import MARKETS, MarketSpec


def build(r: Reader, doc: LineDict, path: Path) -> StackFile | None:
    options = _options(r, doc.get("options") or LineDict())
    links = _links(doc.get("links") or LineList())
    services = tuple(_service(r, name, body, doc["services"].line_of(name), path)
                     for name, body in doc["services"].items())  # fmt: skip
    return StackFile(
        name=str(doc["name"]),
        path=path.resolve(),
        description=str(doc.get("description") or ""),
        services=services,
        links=links,
        options=options,
        markets=_markets(doc.get("markets")),
        mitigations=_mitigations(doc.get("mitigations") or LineDict()),
        bindings=_bindings(r, doc.get("bindings") or LineDict(), links),
        kubernetes=_kubernetes(doc.get("kubernetes") or {}),
        checks=sql_checks(doc.get("checks") or LineDict(), links),
    )


def sql_checks(section: LineDict, links: tuple[LinkDecl, ...]) -> tuple[B.SqlCheck, ...]:
    """The ``checks:`` section (already shaped by the schema, or the experiment loader)."""
    return tuple(
        B.SqlCheck(
            name=str(name),
            database=link_name(str(body["sql"]["database"]), links),
            query=str(body["sql"]["query"]),
            help=str(body.get("help") or ""),
            line=section.line_of(name),
        )
        for name, body in section.items()
    )


def seconds(value: Any, default: float) -> float:
    return default if value is None else parse_duration(value)


def _text(value: Any) -> str:
    """A scalar as the text a command line or environment gets."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- options, markets, links, mitigations -------------------------------------------------


def _options(r: Reader, section: LineDict) -> dict[str, OptionDecl]:
    result = {}
    for name, body in section.items():
        decl = OptionDecl(
            name=str(name),
            type=body["type"],
            default=body["default"],
            choices=tuple(body.get("choices") or ()),
            min=body.get("min"),
            max=body.get("max"),
            help=str(body.get("help") or ""),
            line=section.line_of(name),
        )
        if decl.type == "choice" and not decl.choices:
            r.fail(decl.line, f"options.{name}.choices", "a choice option needs its choices")
            continue
        try:
            decl.check(decl.default)
        except ValueError as err:
            r.fail(body.line_of("default"), f"options.{name}.default", str(err))
            continue
        result[decl.name] = decl
    return result


def _markets(section: LineDict | None) -> tuple[MarketSpec, ...]:
    if not section:
        return MARKETS
    return tuple(
        MarketSpec(
            name=str(name),
            initial_price=float(body["initial_price"]),
            volatility=float(body.get("volatility", 0.002)),
            initial_funding_index=float(body.get("funding_index", 0.0)),
            max_funding_rate=float(body.get("max_funding_rate", 0.0)),
            tick=float(body.get("tick", 0.01)),
            maintenance_margin=float(body.get("maintenance_margin", 0.02)),
        )
        for name, body in section.items()
    )


def _links(section: LineList) -> tuple[LinkDecl, ...]:
    links = []
    for index, item in enumerate(section):
        line = section.line_of(index)
        if isinstance(item, str):
            client, server = item.split("->")
            links.append(LinkDecl(f"{client}-{server}", client, server, None, line))
        elif "link" in item:
            client, server = str(item["link"]).split("->")
            name = str(item.get("name") or f"{client}-{server}")
            links.append(LinkDecl(name, client, server, item.get("when"), line))
        else:
            client, server = str(item["from"]), str(item["to"])
            name = str(item.get("name") or f"{client}-{server}")
            links.append(LinkDecl(name, client, server, item.get("when"), line))
    return tuple(links)


def link_name(text: str, links: tuple[LinkDecl, ...]) -> str:
    """The link ``text`` refers to: a name, or ``client->server`` (the link between them)."""
    if "->" not in text:
        return text
    client, _, server = text.partition("->")
    for link in links:
        if link.client == client and link.server == server:
            return link.name
    return f"{client}-{server}"  # reported by semantics as unknown


def _mitigations(section: LineDict) -> tuple[MitigationDecl, ...]:
    result = []
    for name, body in section.items():
        body = body or {}
        effects = {}
        for service, change in (body.get("services") or {}).items():
            env = change.get("env") or {}
            args = change.get("args") or {}
            effects[str(service)] = ServiceEffect(
                env_on={k: _text(v["on"]) for k, v in env.items()},
                env_off={k: _text(v["off"]) for k, v in env.items()},
                args_on=tuple(str(a) for a in args.get("on") or ()),
                args_off=tuple(str(a) for a in args.get("off") or ()),
            )
        result.append(
            MitigationDecl(str(name), str(body.get("help") or ""), effects, section.line_of(name))
        )
    return tuple(result)


def _kubernetes(section: Mapping[str, Any]) -> KubernetesAllow:
    return KubernetesAllow(
        tuple(str(c) for c in section.get("contexts") or ()),
        tuple(str(n) for n in section.get("namespaces") or ()),
    )


# -- services ----------------------------------------------------------------------------


def _command(items: Any) -> Command:
    result: list[Arg] = []
    for item in items or ():
        if isinstance(item, dict):
            result.append(ArgGroup(str(item["when"]), tuple(_text(a) for a in item["args"])))
        else:
            result.append(_text(item))
    return tuple(result)


def _health(body: LineDict | None) -> HealthCheck | None:
    if body is None:
        return None
    timeout = seconds(body.get("timeout"), 20.0)
    interval = seconds(body.get("interval"), 0.05)
    if "http" in body:
        return HealthCheck(
            "http", str(body["http"]), timeout, interval, int(body.get("status", 200))
        )
    if "tcp" in body:
        return HealthCheck("tcp", timeout_s=timeout, interval_s=interval)
    if "pg" in body:
        return HealthCheck("pg", timeout_s=timeout, interval_s=interval)
    if "log" in body:
        return HealthCheck("log", timeout_s=timeout, interval_s=interval, pattern=str(body["log"]))
    if "command" in body:
        argv = tuple(_text(a) for a in body["command"])
        return HealthCheck("command", timeout_s=timeout, interval_s=interval, command=argv)
    return HealthCheck("http", "/health", timeout, interval)


def _build_spec(value: Any, stack_dir: Path) -> BuildSpec | None:
    if value is None:
        return None
    if value == "tradechaos":
        return BuildSpec(tradechaos=True)
    return BuildSpec(
        context=(stack_dir / str(value["context"])).resolve(),
        dockerfile=str(value.get("dockerfile") or "Dockerfile"),
        args={k: _text(v) for k, v in (value.get("args") or {}).items()},
        wheelhouse=tuple(str(w) for w in value.get("wheelhouse") or ()),
    )


def _service(r: Reader, name: str, body: LineDict, line: int, path: Path) -> ServiceDecl:
    stack_dir = path.resolve().parent
    health = _health(body.get("health"))
    kinds = [k for k in ("http", "tcp", "pg", "log", "command") if k in (body.get("health") or {})]
    if len(kinds) > 1:
        r.fail(body["health"].line, f"services.{name}.health",
               f"give one check, not {' and '.join(kinds)}")  # fmt: skip
    docker = body.get("docker") or {}
    stop = body.get("stop") or {}
    schema = body.get("schema")
    return ServiceDecl(
        name=str(name),
        builtin=body.get("builtin"),
        command=_command(body.get("command")),
        image=body.get("image"),
        build=_build_spec(body.get("build"), stack_dir),
        docker_command=_command(docker["command"]) if "command" in docker else None,
        docker_env={k: _text(v) for k, v in docker["env"].items()} if "env" in docker else None,
        env={str(k): _text(v) for k, v in (body.get("env") or {}).items()},
        cwd=body.get("cwd"),
        health=health,
        depends_on=tuple(body.get("depends_on") or ()),
        site=str(body.get("site") or "core"),
        optional=bool(body.get("optional", False)),
        when=body.get("when"),
        stop_signal=str(stop.get("signal") or "TERM"),
        stop_grace_s=seconds(stop["grace"], 5.0) if "grace" in stop else None,
        setup=tuple(_command(c) for c in body.get("setup") or ()),
        after_healthy=tuple(_command(c) for c in body.get("after_healthy") or ()),
        database=body.get("database"),
        schema=(stack_dir / str(schema)).resolve() if schema else None,
        count=len(body["venues"]) if "venues" in body else body.get("count", 3),
        venues=_venues(body.get("venues")),
        line=line,
    )


def _venues(items: LineList | None) -> tuple[VenueDecl, ...]:
    if items is None:
        return ()
    return tuple(
        VenueDecl(
            str(item["shape"]),
            {str(k): str(v) for k, v in (item.get("symbols") or {}).items()},
            items.line_of(index),
        )
        for index, item in enumerate(items)
    )


# -- bindings ----------------------------------------------------------------------------


def request(r: Reader, body: LineDict, field: str, links: tuple[LinkDecl, ...]) -> B.Request | None:
    methods = [m for m in METHODS if m in body]
    if len(methods) != 1:
        found = " and ".join(methods) if methods else "none"
        r.fail(body.line, field, f"a request names exactly one of {', '.join(METHODS)} "
               f"with its path (found {found})")  # fmt: skip
        return None
    method = methods[0]
    via = body.get("via")
    return B.Request(
        method=method,
        path=str(body[method]),
        body=body.get("body"),
        query=dict(body.get("query") or {}),
        headers={str(k): str(v) for k, v in (body.get("headers") or {}).items()},
        values={str(k): dict(v) for k, v in (body.get("values") or {}).items()},
        service=body.get("service"),
        via=link_name(str(via), links) if via is not None else None,
        timeout_s=seconds(body.get("timeout"), 5.0),
    )


def _rules(value: Any) -> tuple[B.Rule, ...]:
    items = value if isinstance(value, list) else [value]
    rules = []
    for item in items:
        status = item.get("status")
        statuses = tuple(status) if isinstance(status, list) else ((status,) if status else ())
        checks = {
            str(k): tuple(v) if isinstance(v, list) else (v,)
            for k, v in (item.get("json") or {}).items()
        }
        rules.append(B.Rule(statuses, checks, tuple(str(t) for t in item.get("text") or ())))
    return tuple(rules)


def _answer(body: LineDict | None) -> B.Answer:
    if body is None:
        return B.Answer()
    default = B.Answer()
    reason = body.get("reason")
    return B.Answer(
        ok=_rules(body["ok"]) if "ok" in body else default.ok,
        info=_rules(body["info"]) if "info" in body else default.info,
        fail=_rules(body["fail"]) if "fail" in body else default.fail,
        seq=body.get("seq"),
        fills=body.get("fills"),
        fill_qty=str(body.get("fill_qty") or "qty"),
        reason=tuple(reason) if isinstance(reason, list) else ((reason,) if reason else ()),
    )


def _orders(r: Reader, body: LineDict, links: tuple[LinkDecl, ...]) -> B.OrdersBinding | None:
    field = "bindings.orders"
    if "via" not in body:
        r.fail(body.line, f"{field}.via", "missing: the link the traders call (e.g. clients->api)")
        return None
    if "python" not in body and "submit" not in body:
        r.fail(body.line, field, "give submit (and cancel) requests, or python: module:Class")
        return None
    market_data = None
    if "market_data" in body:
        md = body["market_data"]
        req = request(r, md, f"{field}.market_data", links)
        prices = md.get("prices")
        if req is not None:
            market_data = B.MarketData(
                req,
                md.get("mode"),
                B.PricesAt(str(prices["at"]), str(prices["price"]), prices.get("market"))
                if prices
                else None,
            )
    submit = request(r, body["submit"], f"{field}.submit", links) if "submit" in body else None
    cancel = request(r, body["cancel"], f"{field}.cancel", links) if "cancel" in body else None
    failover = body.get("failover")
    return B.OrdersBinding(
        via=link_name(str(body["via"]), links),
        failover=link_name(str(failover), links) if failover else None,
        submit=submit,
        cancel=cancel,
        answer=_answer(body.get("answer")),
        market_data=market_data,
        python=body.get("python"),
    )


def account_set(value: Any) -> tuple[int, ...]:
    if isinstance(value, list):
        return tuple(int(v) for v in value)
    result: list[int] = []
    for part in str(value).split(","):
        low, _, high = part.partition("-")
        result.extend(range(int(low), int(high or low) + 1))
    return tuple(result)


def _accounts(r: Reader, body: LineDict, links: tuple[LinkDecl, ...]) -> B.AccountsBinding:
    fund = body.get("fund")
    fund_request = fund_sql = None
    if fund is not None and "sql" in fund:
        fund_sql = B.SqlRun(str(fund["sql"]["database"]), str(fund["sql"]["run"]))
    elif fund is not None:
        fund_request = request(r, fund, "bindings.accounts.fund", links)
    return B.AccountsBinding(
        traders=account_set(body["traders"]),
        adversaries=account_set(body["adversaries"]) if "adversaries" in body else (),
        collateral=float(body.get("collateral", 0.0)),
        insurance_fund=body.get("insurance_fund"),
        fund=fund_request,
        fund_sql=fund_sql,
    )


def _trading_mode(
    r: Reader, body: LineDict, links: tuple[LinkDecl, ...]
) -> B.TradingModeBinding | None:
    field = "bindings.trading_mode"
    setter = request(r, body["set"], f"{field}.set", links)
    getter = request(r, body["get"], f"{field}.get", links) if "get" in body else None
    if setter is None:
        return None
    modes = (
        dict(body["modes"]) if "modes" in body else dict(B.TradingModeBinding(("x",), setter).modes)
    )
    return B.TradingModeBinding(
        services=tuple(body["services"]),
        set=setter,
        get=getter,
        get_mode=(body.get("get") or {}).get("mode"),
        modes={str(k): str(v) for k, v in modes.items()},
    )


def _db_upgrade(body: LineDict, links: tuple[LinkDecl, ...]) -> B.DbUpgradeBinding:
    return B.DbUpgradeBinding(
        database=str(body["database"]),
        clients=tuple(link_name(str(c), links) for c in body.get("clients") or ()),
        tables=tuple(str(t) for t in body.get("tables") or ()),
        command=tuple(_text(a) for a in body.get("command") or ()),
    )


def _sql(body: Mapping[str, Any], links: tuple[LinkDecl, ...]) -> B.SqlSource:
    return B.SqlSource(
        database=link_name(str(body["database"]), links),
        query=str(body["query"]),
        merge=tuple(str(c) for c in body.get("merge") or ()),
        json=tuple(str(c) for c in body.get("json") or ()),
    )


def _source(body: Mapping[str, Any], links: tuple[LinkDecl, ...]) -> B.Source:
    http = body.get("http")
    page = (http or {}).get("page")
    return B.Source(
        sql=_sql(body["sql"], links) if "sql" in body else None,
        http=B.HttpSource(
            str(http["service"]),
            str(http["path"]),
            str(http.get("items") or "$"),
            B.Page(
                str(page["param"]),
                str(page["next"]),
                int(page.get("start", 1)),
                page.get("size_param"),
                int(page.get("size", 500)),
            )
            if page
            else None,
        )
        if http
        else None,
        file=B.FileSource(str(body["file"]["service"]), str(body["file"]["path"]))
        if "file" in body
        else None,
        sort=body.get("sort"),
    )


def _reading(body: Mapping[str, Any], links: tuple[LinkDecl, ...]) -> B.Reading:
    if "sql" in body:
        return B.Reading(sql=_sql(body["sql"], links))
    http = body.get("http") or {}
    return B.Reading(
        http_service=http.get("service"), http_path=http.get("path"), http_value=http.get("value")
    )


def _history(r: Reader, body: LineDict, links: tuple[LinkDecl, ...]) -> B.HistoryBinding:
    sources = {}
    for name in [key for key in body if key in B.HISTORY_SOURCES]:  # read in file order
        items = body[name] if isinstance(body[name], list) else [body[name]]
        for index, item in enumerate(items):
            given = [k for k in ("sql", "http", "file") if k in item]
            if len(given) != 1:
                r.fail(getattr(item, "line", body.line_of(name)), f"bindings.history.{name}"
                       + (f"[{index}]" if isinstance(body[name], list) else ""),
                       "a source is one of sql, http or file")  # fmt: skip
        sources[name] = tuple(_source(item, links) for item in items)
    settle = None
    if "settle" in body:
        until = tuple(
            (_reading(item["value"], links), _reading(item["at_least"], links))
            for item in body["settle"]["until"]
        )
        settle = B.Settle(seconds(body["settle"].get("timeout"), 10.0), until)
    return B.HistoryBinding(sources, settle, body.get("python"))


def _bindings(r: Reader, body: LineDict, links: tuple[LinkDecl, ...]) -> B.Bindings:
    return B.Bindings(
        orders=_orders(r, body["orders"], links) if "orders" in body else None,
        accounts=_accounts(r, body["accounts"], links) if "accounts" in body else None,
        trading_mode=_trading_mode(r, body["trading_mode"], links)
        if "trading_mode" in body
        else None,
        db_upgrade=_db_upgrade(body["db_upgrade"], links) if "db_upgrade" in body else None,
        history=_history(r, body["history"], links) if "history" in body else None,
        response=_response(r, body["response"], links) if "response" in body else None,
    )


# -- the response binding (issue 21) ------------------------------------------------------


def _response(r: Reader, body: LineDict, links: tuple[LinkDecl, ...]) -> B.ResponseBinding:
    requests: dict[str, B.ResponseRequest | None] = {}
    for name in B.RESPONSE_FIELDS:
        if name not in body:
            continue
        made = request(r, body[name], f"bindings.response.{name}", links)
        answer = {str(k): str(v) for k, v in (body[name].get("answer") or {}).items()}
        requests[name] = B.ResponseRequest(made, answer) if made is not None else None
    return B.ResponseBinding(services=tuple(str(s) for s in body["services"]), **requests)


# -- end of the response binding ----------------------------------------------------------
