"""``stack check``: the trading_mode binding, once (read the mode, set another one, set
it back)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chaos.bindings import modes
from chaos.bindings.client import BindingError
from chaos.bindings.exercise_base import Result, State
from chaos.bindings.places import Places
from chaos.stackfile.definition import StackDefinition

# -- trading mode ------------------------------------------------------------------------


def check_trading_mode(
    definition: StackDefinition, places: Places, running: Callable[[str], bool], state: State
) -> list[Result]:
    binding = definition.bindings.trading_mode
    if binding is None:
        return [Result("trading_mode", "SKIP", "no bindings.trading_mode: no step can set it")]
    services = [s for s in binding.services if definition.has_service(s) and running(s)]
    if not services:
        return [
            Result(
                "trading_mode",
                "FAIL",
                "none of its services runs",
                fix="bindings.trading_mode.services",
            )
        ]
    results: list[Result] = []
    before: str | None = None
    if binding.get is None:
        results.append(
            Result("trading_mode.get", "SKIP", "no get request (a trading_mode probe needs one)")
        )
    else:
        try:
            before = modes.read_mode(binding, places, services[0])
        except BindingError as err:
            results.append(
                Result(
                    "trading_mode.get",
                    "FAIL",
                    "cannot read the mode",
                    f"GET of {services[0]}",
                    str(err),
                    "bindings.trading_mode.get",
                )
            )
        else:
            known = before in binding.modes
            results.append(
                Result(
                    "trading_mode.get",
                    "OK" if known else "FAIL",
                    f"{services[0]}: {before}" + ("" if known else " (a word the modes map lacks)"),
                    fix="" if known else "bindings.trading_mode.modes",
                )
            )
    target = next(
        (m for m in ("cancel_only", "halt", "post_only") if m in binding.modes and m != before),
        None,
    )
    if target is None:
        return [*results, Result("trading_mode.set", "SKIP", "no mode to switch to")]
    back = before if before is not None and before in binding.modes else "normal"
    results.append(_set_and_back(binding, places, running, target, back, state))
    return results


def _set_and_back(
    binding: Any,
    places: Places,
    running: Callable[[str], bool],
    target: str,
    back: str,
    state: State,
) -> Result:
    sent = f"{binding.set.method} {binding.set.path} mode {binding.stack_mode(target)!r}"
    try:
        answers = modes.set_mode(binding, places, target, running)
    finally:
        restored = modes.set_mode(binding, places, back, running)
    wrong = {
        s: a
        for s, a in answers.items()
        if a != "not running"
        and not (isinstance(a, dict) and a.get("mode") in (target, binding.stack_mode(target)))
    }
    if wrong:
        return Result(
            "trading_mode.set",
            "FAIL",
            f"asked for {target}",
            sent,
            json.dumps(wrong)[:300],
            "bindings.trading_mode.set (or .modes)",
        )
    state.mode_set = target
    unrestored = {s: a for s, a in restored.items() if isinstance(a, dict) and "error" in a}
    if unrestored:
        return Result(
            "trading_mode.set",
            "FAIL",
            f"set {target}, but setting {back} back failed",
            sent,
            json.dumps(unrestored)[:300],
            "bindings.trading_mode.set",
        )
    return Result("trading_mode.set", "OK", f"set {target} and back to {back}", sent)
