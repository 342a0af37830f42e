"""The operator's response as a run recorded it: snapshots, rollbacks, cancel_all, access
changes and replays (docs/history.md, "Response steps").

Each response step records its stack binding's answer as the fields of an ``evidence``
record in ``faults.jsonl`` (``action`` = the step's action). ``response_log(history)``
reads them into typed records, in the order recorded. A field a stack cannot provide may
be missing; the checkers that need it then answer ``unknown``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chaos.history.events import FaultRecord

if TYPE_CHECKING:
    from chaos.history.reader import History

RESPONSE_ACTIONS = frozenset(
    {"snapshot", "chain_rollback", "cancel_all", "disable_access", "enable_access", "replay"}
)
AccountsState = Mapping[str, Mapping[str, Any]]  # account -> {collateral, positions}


@dataclass(frozen=True)
class SnapshotRecord:
    step: str
    time: float
    label: str | None
    seq: int
    chain_height: int | None
    chain_hash: str | None


@dataclass(frozen=True)
class RollbackRecord:
    step: str
    time: float
    rollback: Any  # the stack's id of the rollback (matches ``rollback`` in rolled_back.jsonl)
    snapshot: str | None
    to_seq: int
    chain_height: int | None
    chain_rolled_back: bool | None
    at_seq: int | None
    accounts: AccountsState | None
    reverted_orders: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class CancelAllRecord:
    step: str
    time: float
    excepted: tuple[str, ...]
    at_seq: int | None
    last_seq: int | None
    cancelled: tuple[Mapping[str, Any], ...]
    kept: tuple[Mapping[str, Any], ...]
    accounts: frozenset[int] | None = None  # only these accounts' orders (None: all)
    markets: frozenset[str] | None = None


@dataclass(frozen=True)
class StateReport:
    """A step that reported the stack's accounts after it (a rollback, a replay)."""

    step: str
    action: str
    time: float
    at_seq: int
    accounts: AccountsState


@dataclass
class ResponseLog:
    snapshots: list[SnapshotRecord] = field(default_factory=list)
    rollbacks: list[RollbackRecord] = field(default_factory=list)
    cancel_alls: list[CancelAllRecord] = field(default_factory=list)
    state_reports: list[StateReport] = field(default_factory=list)
    access: list[tuple[float, bool]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def snapshot(self, label: str | None) -> SnapshotRecord | None:
        return next((s for s in reversed(self.snapshots) if s.label == label), None)

    @property
    def empty(self) -> bool:
        return not (self.snapshots or self.rollbacks or self.cancel_alls or self.access)


def response_log(history: History) -> ResponseLog:
    """The response steps recorded in ``history`` (see the module)."""
    return read_response(history.faults())


def read_response(faults: Iterable[FaultRecord]) -> ResponseLog:
    log = ResponseLog()
    for record in faults:
        if record.phase != "evidence" or record.action not in RESPONSE_ACTIONS:
            continue
        answer = record.evidence
        if answer.get("cancelled") is True and len(answer) == 1:
            continue  # the step was cancelled before it acted
        try:
            _read_one(log, record, answer)
        except (KeyError, TypeError, ValueError) as err:
            log.problems.append(
                f"faults.jsonl: {record.action} step {record.id!r}: unreadable answer ({err})"
            )
    log.rollbacks.sort(key=lambda r: r.time)
    return log


def _read_one(log: ResponseLog, record: FaultRecord, answer: Mapping[str, Any]) -> None:
    when = float(answer.get("time") or record.time)
    action = record.action
    if action == "snapshot":
        log.snapshots.append(
            SnapshotRecord(
                record.id,
                when,
                _text(answer.get("snapshot", record.params.get("label"))),
                int(answer["seq"]),
                _int(answer.get("chain_height")),
                _text(answer.get("chain_hash")),
            )
        )
    elif action == "chain_rollback":
        chain = answer.get("chain") or {}
        reverted = (answer.get("rolled_back") or {}).get("orders") or ()
        rollback = RollbackRecord(
            record.id,
            when,
            answer.get("rollback"),
            _text(answer.get("snapshot")),
            int(answer["to_seq"]),
            _int(answer.get("chain_height")),
            chain.get("rolled_back") if isinstance(chain, Mapping) else None,
            _int(answer.get("at_seq")),
            answer.get("accounts"),
            tuple(o for o in reverted if isinstance(o, Mapping)),
        )
        log.rollbacks.append(rollback)
        _state_report(log, record, when, answer)
    elif action == "cancel_all":
        log.cancel_alls.append(
            CancelAllRecord(
                record.id,
                when,
                tuple(str(x) for x in answer.get("except") or record.params.get("except") or ()),
                _int(answer.get("at_seq")),
                _int(answer.get("last_seq")),
                tuple(o for o in answer.get("cancelled_orders") or () if isinstance(o, Mapping)),
                tuple(o for o in answer.get("kept_orders") or () if isinstance(o, Mapping)),
                _set(answer.get("accounts", record.params.get("accounts")), int),
                _set(answer.get("markets", record.params.get("markets")), str),
            )
        )
    elif action in ("disable_access", "enable_access"):
        log.access.append((when, action == "enable_access"))
    else:  # replay
        _state_report(log, record, when, answer)


def _state_report(
    log: ResponseLog, record: FaultRecord, when: float, answer: Mapping[str, Any]
) -> None:
    accounts, at_seq = answer.get("accounts"), _int(answer.get("at_seq"))
    if isinstance(accounts, Mapping) and at_seq is not None:
        log.state_reports.append(StateReport(record.id, record.action, when, at_seq, accounts))


def _set(value: Any, kind: type[Any]) -> frozenset[Any] | None:
    if not isinstance(value, list | tuple):
        return None
    return frozenset(kind(v) for v in value)


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    return int(value)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
