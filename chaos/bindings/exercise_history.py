"""``stack check``: the history binding, once (export into the check's folder, read one
record of each kind: the History's fields must be there, and the order and the mode
switch the check made must be among the records)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chaos.bindings import history as history_binding
from chaos.bindings.exercise_base import Result, State
from chaos.bindings.places import Places
from chaos.history.reader import SOURCES
from chaos.stackfile.definition import StackDefinition

EVENT_FIELDS = {
    "deposit": ("account", "amount"),
    "order_accepted": (
        "client_order_id",
        "order_id",
        "account",
        "market",
        "side",
        "order_type",
        "qty",
    ),
    "order_cancelled": ("order_id", "account"),
    "fill": ("market", "price", "qty", "taker_side", "maker_account", "taker_account"),
    "liquidation": ("account", "market", "qty", "mark_price"),
    "mode": ("mode",),
    "funding_settle": ("account", "market", "amount", "funding_index"),
}
SOURCE_FIELDS = {
    "events": ("seq", "epoch", "sequencer", "time", "kind"),
    "oracle": ("time", "market", "mark_price", "funding_index"),
    "modes": ("time", "mode"),
    "chain": ("height", "prev_hash", "hash", "first_seq", "last_seq", "events"),
}


def check_history(
    definition: StackDefinition, places: Places, scratch: Path, state: State
) -> list[Result]:
    binding = definition.bindings.history
    if binding is None:
        return [Result("history", "SKIP", "no bindings.history: every invariant is unknown")]
    said: list[str] = []
    written = history_binding.export(definition, scratch, places, said.append)
    if binding.python is not None:
        return [
            Result(
                "history.python",
                "OK" if not said else "FAIL",
                "; ".join(said) or f"exported {', '.join(written)}",
                fix="bindings.history.python",
            )
        ]
    results = []
    for name in binding.sources:
        problem = next((line for line in said if f"bindings.history.{name}" in line), None)
        if name not in written:
            results.append(
                Result(
                    f"history.{name}",
                    "FAIL",
                    "not exported",
                    got=problem or "",
                    fix=f"bindings.history.{name}",
                )
            )
            continue
        records = list(_read(scratch / "history" / SOURCES[name]))
        results.append(_judge_source(name, records, state))
    return results


def _read(path: Path) -> Iterator[dict[str, Any]]:
    with path.open() as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _judge_source(name: str, records: list[dict[str, Any]], state: State) -> Result:
    """One record of each kind has the History's fields; the check's own order and mode
    are among the records."""
    key = f"bindings.history.{name}"
    kinds: dict[str, int] = {}
    for record in records:
        kind = str(record.get("kind", name))
        kinds[kind] = kinds.get(kind, 0) + 1
        if kinds[kind] > 1:
            continue
        needed = (*SOURCE_FIELDS[name], *(EVENT_FIELDS.get(kind, ()) if name == "events" else ()))
        lacking = [f for f in needed if f not in record]
        if lacking:
            return Result(
                f"history.{name}",
                "FAIL",
                f"a {kind} record lacks {', '.join(lacking)}",
                got=json.dumps(record)[:300],
                fix=f"{key} (the query's columns)",
            )
    counts = ", ".join(f"{k} {n}" for k, n in kinds.items()) if name == "events" else ""
    detail = f"{len(records)} records" + (f" ({counts})" if counts else "")
    if (
        name == "events"
        and state.accepted
        and not any(r.get("client_order_id") == state.client_order_id for r in records)
    ):
        return Result(
            f"history.{name}",
            "FAIL",
            f"{detail}, but not the order stack check submitted ({state.client_order_id})",
            fix=key,
        )
    if (
        name == "modes"
        and state.mode_set
        and not any(r.get("mode") == state.mode_set for r in records)
    ):
        return Result(
            f"history.{name}",
            "FAIL",
            f"{detail}, but not the switch to {state.mode_set} stack check made",
            fix=key,
        )
    return Result(f"history.{name}", "OK", detail)
