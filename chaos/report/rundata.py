"""The history of one run folder, read for plotting (docs/contracts.md section 2).

Tolerant by contract: a missing, empty or partly written file (a truncated last line, a
record without a field) yields fewer points, never an exception. Times stay wall-clock
seconds; ``RunData.t0`` is the origin the plots and tables subtract: the method's t=0 (the
end of the steady-state check, where the experiment file's ``at`` times count from), as
run.json or the journal records it; a run recorded before that was kept falls back to the
price epoch, and ``RunData.t0_label`` says so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from chaos.report.junit import to_epoch

_T = TypeVar("_T")
MAX_POINTS = 4000  # per series; longer series are thinned evenly
MAINTENANCE_ACTIONS = frozenset({"trading_mode"})  # when the journal does not say
_SEQ_KEYS = ("seq", "liquidation_seq", "event_seq")


@dataclass(frozen=True)
class Window:
    """A fault (``fault=True``) or maintenance step between ``start`` and ``end``."""

    label: str
    start: float
    end: float
    fault: bool


@dataclass(frozen=True)
class Liquidation:
    time: float
    market: str
    account: Any
    mark_price: float | None
    seq: int | None
    intended: bool


METHOD_T0 = "the method's t=0"


@dataclass
class RunData:
    run: dict[str, Any]
    t0: float
    t_end: float
    t_start: float = 0.0  # the earliest time shown (before t0: stack start, steady state)
    t0_label: str = METHOD_T0
    windows: list[Window] = field(default_factory=list)
    moves: list[dict[str, Any]] = field(default_factory=list)
    published: dict[str, list[tuple[float, float, float | None]]] = field(default_factory=dict)
    client_ops: list[tuple[float, str, float | None]] = field(default_factory=list)
    load_samples: list[dict[str, Any]] = field(default_factory=list)
    liquidations: list[Liquidation] = field(default_factory=list)
    event_seq: list[tuple[float, int]] = field(default_factory=list)
    chain: list[tuple[float, int, int]] = field(default_factory=list)
    modes: list[tuple[float, str]] = field(default_factory=list)

    @property
    def markets(self) -> list[str]:
        names = [str(m) for m in self.run.get("markets") or []]
        names += [m for m in self.published if m not in names]
        return names


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSON-lines file; unreadable lines and a missing file are skipped."""
    if not path.is_file():
        return
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    yield record
    except OSError:
        return


def num(value: Any) -> float | None:
    """A finite float, or None for anything else (bools, strings, NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def load_run(run_dir: Path, journal: Mapping[str, Any]) -> RunData:
    """Everything the plots need from ``run_dir/history`` and the journal."""
    history = run_dir / "history"
    run = _read_json(history / "run.json")
    data = RunData(run=run, t0=0.0, t_end=0.0)
    unintended = unintended_liquidation_keys(journal)
    _read_faults(history / "faults.jsonl", data, _fault_steps(journal))
    _read_oracle(history / "oracle.jsonl", data)
    _read_client(history / "client.jsonl", data)
    data.load_samples = [r for r in iter_jsonl(history / "load.jsonl") if num(r.get("time"))]
    _read_events(history / "events.jsonl", data, unintended)
    for block in iter_jsonl(history / "chain.jsonl"):
        t, height, last = (
            num(block.get("time")),
            num(block.get("height")),
            num(block.get("last_seq")),
        )
        if t is not None and height is not None and last is not None:
            data.chain.append((t, int(height), int(last)))
    for record in iter_jsonl(history / "modes.jsonl"):
        t = num(record.get("time"))
        if t is not None:
            data.modes.append((t, str(record.get("mode"))))
    _set_span(data, journal)
    _close_open_windows(data)
    data.event_seq = thin(data.event_seq)
    return data


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _fault_steps(journal: Mapping[str, Any]) -> dict[str, bool]:
    """Step id -> whether the journal's timeline calls it a fault (else maintenance)."""
    return {
        str(step.get("id")): bool(step.get("fault"))
        for step in journal.get("timeline") or []
        if isinstance(step, Mapping) and step.get("id") is not None
    }


def _read_faults(path: Path, data: RunData, fault_steps: Mapping[str, bool]) -> None:
    begins: dict[str, tuple[str, float, bool]] = {}
    for record in iter_jsonl(path):
        t = num(record.get("time"))
        phase = record.get("phase")
        action = str(record.get("action") or "?")
        if phase == "world" and action == "price_move" and isinstance(record.get("params"), dict):
            data.moves.append(dict(record["params"]))
            continue
        if t is None or phase not in ("begin", "end"):
            continue
        key = str(record.get("id") or f"{action}:{record.get('target')}")
        if phase == "begin":
            target = record.get("target")
            if isinstance(target, list):
                target = ",".join(str(x) for x in target)
            label = f"{action} {target}" if target else action
            if record.get("id") and record.get("id") != action:
                label = f"{record['id']}: {label}"
            fault = fault_steps.get(key, action not in MAINTENANCE_ACTIONS)
            begins[key] = (label, t, fault)
        elif key in begins:
            label, start, fault = begins.pop(key)
            data.windows.append(Window(label, start, t, fault))
    for label, start, fault in begins.values():
        data.windows.append(Window(label, start, math.inf, fault))


def _read_oracle(path: Path, data: RunData) -> None:
    for record in iter_jsonl(path):
        t, mark = num(record.get("time")), num(record.get("mark_price"))
        if t is None or mark is None:
            continue
        market = str(record.get("market"))
        data.published.setdefault(market, []).append((t, mark, num(record.get("funding_index"))))
    for market, series in data.published.items():
        data.published[market] = thin(sorted(series))


def _read_client(path: Path, data: RunData) -> None:
    for record in iter_jsonl(path):
        kind, t = record.get("type"), num(record.get("time"))
        if t is not None and kind in ("ok", "fail", "info"):
            data.client_ops.append((t, str(kind), num(record.get("latency"))))


def _read_events(path: Path, data: RunData, unintended: set[tuple[str, str]]) -> None:
    high = -1
    for event in iter_jsonl(path):
        t, seq = num(event.get("time")), num(event.get("seq"))
        if t is None:
            continue
        if seq is not None and seq > high:
            high = int(seq)
            data.event_seq.append((t, high))
        if event.get("kind") == "liquidation":
            keys = {("seq", str(int(seq)) if seq is not None else "")}
            keys.add(("account", f"{event.get('account')}@{event.get('market')}"))
            data.liquidations.append(
                Liquidation(
                    time=t,
                    market=str(event.get("market")),
                    account=event.get("account"),
                    mark_price=num(event.get("mark_price")),
                    seq=int(seq) if seq is not None else None,
                    intended=not (keys & unintended),
                )
            )


def unintended_liquidation_keys(journal: Mapping[str, Any]) -> set[tuple[str, str]]:
    """Keys of the liquidations the no_unintended_liquidations verdict lists as unintended:
    ``("seq", "<seq>")`` when a counterexample names the sequence number, else
    ``("account", "<account>@<market>")``."""
    keys: set[tuple[str, str]] = set()
    for verdict in journal.get("verdicts") or []:
        if not isinstance(verdict, Mapping) or verdict.get("invariant") != (
            "no_unintended_liquidations"
        ):
            continue
        for example in verdict.get("counterexamples") or []:
            if not isinstance(example, Mapping):
                continue
            seq = next(
                (num(example.get(k)) for k in _SEQ_KEYS if num(example.get(k)) is not None), None
            )
            if seq is not None:
                keys.add(("seq", str(int(seq))))
            elif example.get("account") is not None:
                keys.add(("account", f"{example.get('account')}@{example.get('market')}"))
    return keys


def _set_span(data: RunData, journal: Mapping[str, Any]) -> None:
    times = [t for series in data.published.values() for t, _, _ in series[:1] + series[-1:]]
    times += [t for t, *_ in data.client_ops[:1] + data.client_ops[-1:]]
    times += [t for t, _ in data.event_seq[:1] + data.event_seq[-1:]]
    times += [t for t, *_ in data.chain[:1] + data.chain[-1:]]
    times += [w.start for w in data.windows] + [w.end for w in data.windows if w.end < math.inf]
    times += [num(s.get("time")) or 0.0 for s in data.load_samples[:1] + data.load_samples[-1:]]
    t0, label = time_base(data.run, journal)
    data.t0, data.t0_label = (t0, label) if t0 is not None else (min(times, default=0.0), label)
    data.t_start = min([*times, data.t0])
    end = to_epoch(journal.get("ended_at"))
    data.t_end = max([*times, end or data.t0, data.t0 + 1.0])


def time_base(run: Mapping[str, Any], journal: Mapping[str, Any]) -> tuple[float | None, str]:
    """(t0, what it is): the method's t=0 from run.json or the journal; else the price
    epoch, else the run's start (older runs); (None, ...) when nothing says."""
    for value in (run.get("method_t0"), journal.get("method_t0")):
        t0 = num(value)
        if t0 is not None:
            return t0, METHOD_T0
    epoch = num(run.get("epoch"))
    if epoch is not None:
        return epoch, "the price epoch (this run recorded no method t=0)"
    start = to_epoch(run.get("started_at")) or to_epoch(journal.get("started_at"))
    return start, "the run's start (this run recorded no method t=0)"


def _close_open_windows(data: RunData) -> None:
    data.windows = [
        Window(w.label, w.start, data.t_end, w.fault) if w.end == math.inf else w
        for w in data.windows
    ]
    data.windows.sort(key=lambda w: w.start)


def thin(series: list[_T], limit: int = MAX_POINTS) -> list[_T]:
    """At most ``limit`` items of ``series``, evenly spaced, first and last kept."""
    if len(series) <= limit:
        return series
    step = (len(series) - 1) / (limit - 1)
    return [series[round(i * step)] for i in range(limit)]
