"""Steady-state probes and abort conditions, measured on a running stack.

Measurements: ``health`` from ``backend.status()`` (every non-optional service running and
healthy, every running one healthy); ``error_rate`` and ``p99_latency`` from the load's
``sample()``; ``trading_mode`` through the stack's ``bindings.trading_mode.get``, asked of
the first running service the binding names. A measurement that cannot be taken counts
as "does not hold" for steady state and as "does not hold" for an abort condition (we never
abort on missing data).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from chaos.backends.base import Backend
from chaos.bindings.modes import read_mode
from chaos.bindings.places import Places
from chaos.experiment.model import AbortCondition, Probe
from chaos.stackfile.definition import StackDefinition

POLL_S = 0.25


class LoadSampler(Protocol):
    def sample(self) -> Any: ...


@dataclass(frozen=True)
class Measurement:
    ok: bool  # the measurement could be taken
    value: Any
    message: str


class ProbeEnv:
    """Where probes measure: the backend, the load (or None) and the stack's mode."""

    def __init__(
        self, backend: Backend, load: LoadSampler | None, definition: StackDefinition | None = None
    ) -> None:
        self.backend = backend
        self.load = load
        self.definition = definition or backend.definition

    def health(self) -> Measurement:
        try:
            statuses = {s.name: s for s in self.backend.status()}
        except Exception as err:
            return Measurement(False, None, f"backend status failed: {err}")
        bad = []
        for spec in self.backend.definition.services:
            status = statuses.get(spec.name)
            running = status is not None and status.running
            if (running and status is not None and not status.healthy) or (
                not running and not spec.optional
            ):
                bad.append(spec.name)
        text = "every service healthy" if not bad else f"unhealthy: {', '.join(bad)}"
        return Measurement(True, not bad, text)

    def load_sample(self) -> Any | None:
        if self.load is None:
            return None
        try:
            return self.load.sample()
        except Exception:
            return None

    def trading_mode(self) -> Measurement:
        binding = self.definition.bindings.trading_mode
        if binding is None:
            return Measurement(False, None, "the stack declares no bindings.trading_mode")
        places = Places(self.definition, self.backend)
        for service in binding.services:
            try:
                if not self.definition.has_service(service) or not self.backend.is_running(service):
                    continue
                mode = read_mode(binding, places, service)
            except Exception as err:
                return Measurement(False, None, f"reading the mode of {service} failed: {err}")
            return Measurement(mode is not None, mode, f"mode {mode}")
        return Measurement(False, None, "no service of bindings.trading_mode is running")


@dataclass(frozen=True)
class ProbeResult:
    probe: str
    ok: bool
    value: Any
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"probe": self.probe, "ok": self.ok, "value": self.value, "message": self.message}


def evaluate(probe: Probe, env: ProbeEnv) -> ProbeResult:
    """Whether ``probe`` holds now."""
    name = probe.describe()
    if probe.kind == "health":
        m = env.health()
        return ProbeResult(name, m.ok and m.value is True, m.value, m.message)
    if probe.kind == "trading_mode":
        m = env.trading_mode()
        return ProbeResult(name, m.ok and m.value == probe.mode, m.value, m.message)
    sample = env.load_sample()
    if sample is None:
        return ProbeResult(name, False, None, "no load sample (is the load running?)")
    if probe.kind == "error_rate":
        rate = float(sample.error_rate)
        limit = probe.limit or 0.0
        return ProbeResult(name, rate <= limit, rate, f"error rate {rate:.3f} (max {limit:g})")
    p99 = float(sample.p99_ms) / 1000.0
    limit = probe.limit or 0.0
    return ProbeResult(name, p99 <= limit, p99, f"p99 {p99 * 1000:.0f}ms (max {limit * 1000:g}ms)")


def condition_holds(condition: AbortCondition, env: ProbeEnv) -> tuple[bool, str]:
    """Whether the abort condition's measurement is over its limit now, and what it saw."""
    if condition.kind == "health":
        m = env.health()
        return (m.ok and m.value is False), m.message
    if condition.kind == "trading_mode":
        m = env.trading_mode()
        return (m.ok and m.value == condition.mode), m.message
    sample = env.load_sample()
    if sample is None:
        return False, "no load sample"
    if condition.kind == "error_rate":
        rate = float(sample.error_rate)
        return rate > (condition.above or 0.0), f"error rate {rate:.3f}"
    p99 = float(sample.p99_ms) / 1000.0
    return p99 > (condition.above or 0.0), f"p99 {p99 * 1000:.0f}ms"


@dataclass(frozen=True)
class SteadyState:
    ok: bool
    probes: tuple[ProbeResult, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "probes": [p.to_dict() for p in self.probes]}

    def failures(self) -> str:
        return "; ".join(f"{p.probe}: {p.message}" for p in self.probes if not p.ok)


def steady_state(
    probes: Sequence[Probe], env: ProbeEnv, within_s: float, stop: threading.Event | None = None
) -> SteadyState:
    """Poll every ``POLL_S`` until every probe holds at once or ``within_s`` has passed;
    the result is the last evaluation."""
    deadline = time.monotonic() + within_s
    while True:
        results = tuple(evaluate(p, env) for p in probes)
        if all(r.ok for r in results) or time.monotonic() >= deadline:
            return SteadyState(all(r.ok for r in results), results)
        if stop is not None and stop.wait(POLL_S):
            return SteadyState(False, results)
        if stop is None:
            time.sleep(POLL_S)


class AbortWatcher:
    """Checks abort conditions every ``interval_s`` in a thread; when one holds for its
    ``for``, sets ``reason`` and calls ``on_abort`` once."""

    def __init__(
        self,
        conditions: Sequence[AbortCondition],
        env: ProbeEnv,
        on_abort: Callable[[str], None],
        interval_s: float = POLL_S,
    ) -> None:
        self.conditions = list(conditions)
        self.env = env
        self.on_abort = on_abort
        self.interval_s = interval_s
        self.reason: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="abort-watcher", daemon=True)

    def __enter__(self) -> AbortWatcher:
        if self.conditions:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)

    def _watch(self) -> None:
        since: dict[int, float] = {}
        while not self._stop.wait(self.interval_s):
            now = time.monotonic()
            for index, condition in enumerate(self.conditions):
                try:
                    holds, seen = condition_holds(condition, self.env)
                except Exception as err:
                    holds, seen = False, str(err)
                if not holds:
                    since.pop(index, None)
                    continue
                first = since.setdefault(index, now)
                if now - first >= condition.for_s:
                    self.reason = f"abort condition held: {condition.describe()} ({seen})"
                    self.on_abort(self.reason)
                    return
