"""Typed records of a run's History (docs/contracts.md section 2).

The hot records (events, blocks, client ops, oracle publications) are ``TypedDict``s: the
reader yields the decoded JSON objects themselves, so typing costs nothing per record on
histories of 10^7 events. Events form a tagged union on ``kind``; narrowing with
``if event["kind"] == "fill":`` gives the fields of that kind. A record may carry more
fields than declared here (a newer stack); readers and checkers ignore what they do not use.
The few small records (run, faults, modes) are frozen dataclasses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict

ClientOpType = Literal["invoke", "ok", "fail", "info"]
TradingMode = Literal["normal", "post_only", "cancel_only", "halt"]
TRADING_MODES: tuple[str, ...] = ("normal", "post_only", "cancel_only", "halt")


class ClientOp(TypedDict):
    """One Jepsen-style client operation: an ``invoke`` and exactly one completion."""

    type: ClientOpType
    process: int
    f: Literal["order", "cancel"]
    client_order_id: str
    account: int
    time: float
    market: NotRequired[str]
    side: NotRequired[str]
    order_type: NotRequired[str]
    price: NotRequired[float | None]
    qty: NotRequired[float]
    latency: NotRequired[float]
    error: NotRequired[str]
    seq: NotRequired[int | None]
    attempt: NotRequired[int]


class _EventBase(TypedDict):
    seq: int
    epoch: int
    sequencer: str
    time: float


class DepositEvent(_EventBase):
    kind: Literal["deposit"]
    account: int
    amount: float


class OrderAcceptedEvent(_EventBase):
    kind: Literal["order_accepted"]
    client_order_id: str
    order_id: str | int
    account: int
    market: str
    side: str
    order_type: str  # limit | market | take_profit | stop_loss
    price: float | None
    qty: float
    trigger_price: NotRequired[float]  # take_profit / stop_loss only
    replay_of: NotRequired[int]  # re-applied after a rollback: the seq it had


class OrderCancelledEvent(_EventBase):
    kind: Literal["order_cancelled"]
    order_id: str | int
    account: int
    reason: NotRequired[str]  # "cancel_all" (the operator's), "replay"; absent: the client's
    order_type: NotRequired[str]


class OrderTriggeredEvent(_EventBase):
    """A take-profit / stop-loss order whose trigger price the mark crossed: it executes
    now (its fills follow, with this order as the taker)."""

    kind: Literal["order_triggered"]
    order_id: str | int
    client_order_id: str
    account: int
    market: str
    side: str
    order_type: str
    trigger_price: float
    price: float | None
    mark_price: float
    oracle_ts: float | None


class FillEvent(_EventBase):
    kind: Literal["fill"]
    market: str
    price: float
    qty: float
    taker_side: str
    maker_account: int
    taker_account: int
    maker_order_id: str | int | None
    taker_order_id: str | int | None
    liquidation: bool
    oracle_price: float | None
    oracle_ts: float | None
    funding_index: float | None


class LiquidationEvent(_EventBase):
    kind: Literal["liquidation"]
    account: int
    market: str
    qty: float
    mark_price: float
    oracle_ts: float | None
    funding_index: float | None
    equity: NotRequired[float | None]  # what risk believed: shown, never used to decide
    maintenance: NotRequired[float | None]


class ModeEvent(_EventBase):
    kind: Literal["mode"]
    mode: str


class FundingSettleEvent(_EventBase):
    kind: Literal["funding_settle"]
    account: int
    market: str
    amount: float
    funding_index: float


Event = (
    DepositEvent
    | OrderAcceptedEvent
    | OrderCancelledEvent
    | OrderTriggeredEvent
    | FillEvent
    | LiquidationEvent
    | ModeEvent
    | FundingSettleEvent
)


class MarketData(TypedDict):
    """One market's oracle data as a block carries it."""

    market: str
    mark_price: float
    funding_index: float
    ts: float


class Block(TypedDict):
    """One chain block; ``events`` are the same objects as the db event log's."""

    height: int
    prev_hash: str
    hash: str
    first_seq: int
    last_seq: int
    events: list[Event]
    market_data: list[MarketData]
    time: float


class OraclePublication(TypedDict):
    time: float
    market: str
    mark_price: float
    funding_index: float
    interval: int
    inputs: NotRequired[list[float]]
    restored: NotRequired[bool]


@dataclass(frozen=True)
class ModeChange:
    """A trading-mode change as recorded in ``modes.jsonl`` (or a ``mode`` event)."""

    time: float
    mode: str
    source: str = ""


@dataclass(frozen=True)
class FaultRecord:
    """One line of ``faults.jsonl``: a fault's begin/end/evidence, or a world event."""

    time: float
    id: str
    action: str
    target: str | None
    phase: str
    params: Mapping[str, Any] = field(default_factory=dict)
    evidence: Mapping[str, Any] = field(default_factory=dict)
    scheduled: float | None = None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> FaultRecord:
        target = obj.get("target")
        scheduled = obj.get("scheduled")
        return cls(
            time=float(obj.get("time", 0.0)),
            id=str(obj.get("id", "")),
            action=str(obj.get("action", "")),
            target=_target_text(target),
            phase=str(obj.get("phase", "")),
            params=dict(obj.get("params") or {}),
            evidence=dict(obj.get("evidence") or {}),
            scheduled=None if scheduled is None else float(scheduled),
        )


@dataclass(frozen=True)
class RunInfo:
    """``run.json``: what the run was and where its truth comes from (seed, epoch)."""

    run_id: str
    experiment: str
    variant: str
    seed: int
    epoch: float
    started_at: float | str | None
    mitigations: tuple[str, ...]
    markets: tuple[str, ...]
    params: Mapping[str, Any]
    # each market's parameters (chaos.world.MarketSpec fields) as the run recorded them
    market_specs: tuple[Mapping[str, Any], ...] = ()
    # what the runner recorded of the stack (its file, the services that take orders, the
    # History sources its bindings export, accounts): ``chaos.runner.wiring.stack_record``
    stack: Mapping[str, Any] = field(default_factory=dict)
    # the SQL checks the run declared (their results: history/checks.jsonl)
    checks: tuple[str, ...] = ()

    # the stack's insurance-fund account, when it has one (the harm ledger shows its side)
    insurance_fund: int | None = None
    # wall-clock s when the method's clock started (the end of the steady-state check):
    # t=0 of the experiment file's ``at`` times; None for runs recorded before it was kept
    method_t0: float | None = None

    @property
    def order_services(self) -> tuple[str, ...]:
        return tuple(str(s) for s in self.stack.get("order_services") or ())

    @property
    def history_sources(self) -> tuple[str, ...] | None:
        """The sources the stack's history binding exports (None: not recorded)."""
        sources = self.stack.get("history_sources")
        return None if sources is None else tuple(str(s) for s in sources)

    @property
    def t0(self) -> float:
        """The time base every report uses: the method's t=0, else (an older run) the
        price epoch."""
        return self.epoch if self.method_t0 is None else self.method_t0

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> RunInfo:
        """Build from the decoded ``run.json``; ``seed`` and ``epoch`` are required."""
        missing = [k for k in ("seed", "epoch") if obj.get(k) is None]
        if missing:
            raise ValueError(f"run.json lacks {', '.join(missing)} (the truth depends on it)")
        return cls(
            run_id=str(obj.get("run_id", "")),
            experiment=str(obj.get("experiment", "")),
            variant=str(obj.get("variant", "")),
            seed=int(obj["seed"]),
            epoch=float(obj["epoch"]),
            started_at=obj.get("started_at"),
            mitigations=tuple(str(m) for m in obj.get("mitigations") or ()),
            markets=tuple(str(m) for m in obj.get("markets") or ()),
            params=dict(obj.get("params") or {}),
            market_specs=tuple(
                dict(m) for m in obj.get("market_specs") or () if isinstance(m, dict)
            ),
            stack=dict(obj.get("stack") or {}),
            insurance_fund=_account_or_none(
                obj.get("insurance_fund", (obj.get("stack") or {}).get("insurance_fund"))
            ),
            checks=tuple(str(c) for c in obj.get("checks") or ()),
            method_t0=_number_or_none(obj.get("method_t0")),
        )


def _account_or_none(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _number_or_none(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _target_text(target: object) -> str | None:
    """A fault target as text: a list of services becomes ``"sequencer,risk"``."""
    if target is None:
        return None
    if isinstance(target, list | tuple):
        return ",".join(str(t) for t in target)
    return str(target)
