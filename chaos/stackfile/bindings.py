"""The typed bindings of a stack file: the only ways the engine talks to a stack.

Pure data (docs/stack-file.md, section "bindings"); what acts on them lives in
``chaos.bindings``. Every binding is optional: ``Bindings.orders is None`` means the stack
declares no way to send orders, and a step or invariant that needs it says so.
Link names here are already resolved (``clients->sequencer`` becomes the link's name).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ORDER_FIELDS = ("client_order_id", "account", "market", "side", "type", "price", "qty",
                "post_only", "trigger_price")  # fmt: skip
CANCEL_FIELDS = ("client_order_id", "account")
TRADING_MODES = ("normal", "post_only", "cancel_only", "halt")


@dataclass(frozen=True)
class Request:
    """An HTTP request template. ``body`` is JSON with ``{field}`` placeholders in its
    strings; ``values`` maps a field's tradechaos value to the stack's own word.
    ``service``/``via`` say where it goes when the binding lets the stack choose."""

    method: str
    path: str
    body: Any = None
    query: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    service: str | None = None
    via: str | None = None
    timeout_s: float = 5.0


@dataclass(frozen=True)
class Rule:
    """Matches an HTTP answer: any of ``statuses`` (a code or ``4xx``), every ``json``
    path having one of its values, and any of ``text`` in the body (case-insensitive)."""

    statuses: tuple[int | str, ...] = ()
    json: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    text: tuple[str, ...] = ()


@dataclass(frozen=True)
class Answer:
    """How an order or cancel answer is classified and read."""

    ok: tuple[Rule, ...] = (Rule(statuses=("2xx",)),)
    info: tuple[Rule, ...] = ()  # checked before fail: e.g. a 5xx that says "unknown"
    fail: tuple[Rule, ...] = (Rule(statuses=("4xx",)),)
    seq: str | None = None
    fills: str | None = None
    fill_qty: str = "qty"
    reason: tuple[str, ...] = ()


@dataclass(frozen=True)
class PricesAt:
    """Where market data holds prices: ``at`` an object keyed by market (``market`` None)
    or a list of objects whose ``market`` field names the market; ``price`` the field."""

    at: str
    price: str
    market: str | None = None


@dataclass(frozen=True)
class MarketData:
    request: Request
    mode: str | None = None
    prices: PricesAt | None = None


@dataclass(frozen=True)
class OrdersBinding:
    via: str  # the link the traders call
    failover: str | None = None
    submit: Request | None = None
    cancel: Request | None = None
    answer: Answer = Answer()
    market_data: MarketData | None = None
    python: str | None = None  # "module:Class" implementing chaos.bindings.orders.OrdersClient


@dataclass(frozen=True)
class SqlRun:
    database: str  # a link or a built-in postgres service
    run: str


@dataclass(frozen=True)
class AccountsBinding:
    traders: tuple[int, ...]
    adversaries: tuple[int, ...] = ()
    collateral: float = 0.0
    insurance_fund: int | None = None
    fund: Request | None = None
    fund_sql: SqlRun | None = None


@dataclass(frozen=True)
class TradingModeBinding:
    services: tuple[str, ...]
    set: Request
    get: Request | None = None
    get_mode: str | None = None  # JSON path of the mode in the get answer
    modes: Mapping[str, str] = field(default_factory=lambda: {m: m for m in TRADING_MODES})

    def stack_mode(self, mode: str) -> str:
        return self.modes[mode]

    def our_mode(self, stack_mode: str) -> str | None:
        """tradechaos's name for the stack's mode word (None when it has none)."""
        for ours, theirs in self.modes.items():
            if theirs == stack_mode:
                return ours
        return None


@dataclass(frozen=True)
class DbUpgradeBinding:
    database: str  # a built-in postgres service
    clients: tuple[str, ...] = ()  # links to move (empty: every link to the database)
    tables: tuple[str, ...] = ()  # migrate: copy order (empty: every table, by name)
    command: tuple[str, ...] = ()  # the stack's own migration: argv with {old} {new}


@dataclass(frozen=True)
class SqlSource:
    database: str
    query: str
    merge: tuple[str, ...] = ()
    json: tuple[str, ...] = ()


@dataclass(frozen=True)
class Page:
    param: str
    next: str  # a field of the last item; the next page starts after it
    start: int = 1
    size_param: str | None = None
    size: int = 500


@dataclass(frozen=True)
class HttpSource:
    service: str
    path: str
    items: str = "$"
    page: Page | None = None


@dataclass(frozen=True)
class FileSource:
    service: str
    path: str


@dataclass(frozen=True)
class Source:
    sql: SqlSource | None = None
    http: HttpSource | None = None
    file: FileSource | None = None
    sort: str | None = None


@dataclass(frozen=True)
class Reading:
    """One number read from the stack: an SQL scalar or a JSON path of an HTTP answer."""

    sql: SqlSource | None = None
    http_service: str | None = None
    http_path: str | None = None
    http_value: str | None = None


@dataclass(frozen=True)
class Settle:
    timeout_s: float
    until: tuple[tuple[Reading, Reading], ...]


HISTORY_SOURCES = ("events", "oracle", "modes", "chain", "rolled_back")


@dataclass(frozen=True)
class HistoryBinding:
    sources: Mapping[str, tuple[Source, ...]] = field(default_factory=dict)
    settle: Settle | None = None
    python: str | None = None  # "module:function" called as f(run_dir, endpoints)

    @property
    def provides(self) -> tuple[str, ...]:
        """The History sources this binding exports (all of them for a Python exporter)."""
        if self.python is not None:
            return HISTORY_SOURCES
        return tuple(s for s in HISTORY_SOURCES if s in self.sources)


# -- the response binding (issue 21) ------------------------------------------------------

# The fields each response request may use as placeholders (docs/stack-file.md, "response").
RESPONSE_FIELDS: Mapping[str, tuple[str, ...]] = {
    "snapshot": ("label",),
    "rollback": ("snapshot", "seq", "chain_height", "wait_s"),
    "cancel_all": ("except", "accounts", "markets"),
    "disable_access": ("reason",),
    "enable_access": (),
    "replay": ("seqs", "kinds", "rollback"),
}


@dataclass(frozen=True)
class ResponseRequest:
    """One operator request: the template, and ``answer``: History field -> JSON path of
    the stack's answer (for stacks whose answers use other names; the answer is recorded
    as it is, with these fields set over it)."""

    request: Request
    answer: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ResponseBinding:
    """The operator's runbook: each request is sent directly (not through a link) to the
    first running service of ``services`` that takes it; a 503 moves on to the next."""

    services: tuple[str, ...]
    snapshot: ResponseRequest | None = None
    rollback: ResponseRequest | None = None
    cancel_all: ResponseRequest | None = None
    disable_access: ResponseRequest | None = None
    enable_access: ResponseRequest | None = None
    replay: ResponseRequest | None = None

    def get(self, name: str) -> ResponseRequest | None:
        """The request named ``name`` (a key of ``RESPONSE_FIELDS``), or None."""
        found = getattr(self, name)
        assert found is None or isinstance(found, ResponseRequest)
        return found


# -- end of the response binding -----------------------------------------------------------


@dataclass(frozen=True)
class SqlCheck:
    """A user-defined invariant (``checks:`` of a stack or experiment file): after the run
    ``query`` runs against ``database`` (a link to a built-in postgres, or the service);
    every row it returns is a counterexample, no row means it held."""

    name: str
    database: str
    query: str
    help: str = ""
    line: int = 0


@dataclass(frozen=True)
class Bindings:
    orders: OrdersBinding | None = None
    accounts: AccountsBinding | None = None
    trading_mode: TradingModeBinding | None = None
    db_upgrade: DbUpgradeBinding | None = None
    history: HistoryBinding | None = None
    response: ResponseBinding | None = None  # issue 21
