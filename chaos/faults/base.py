"""The Fault protocol, the context faults run in, and the recording base class.

Contract
- ``Fault.inject()`` returns when the fault is in effect; a fault that is a procedure (a
  restart's downtime, a node loss's ramp, a database copy) returns when its procedure is
  done, so the runner runs each step in its own thread. ``inject`` runs at most once.
- ``Fault.heal()`` undoes the fault: idempotent, safe before ``inject`` and safe while
  ``inject`` is still running in another thread (it cancels the procedure, waits for it to
  stop touching the stack, then heals). A heal that raised may be called again.
- Every fault records ``begin``, ``evidence`` (one or more) and ``end`` records in the
  ``faults`` stream: ``{"time", "id", "action", "target", "phase", "params", "evidence"}``.
  Actions that are not faults (trading_mode, price_move) record the same way; price moves
  record ``phase: "world"``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chaos.backends.base import Backend
from chaos.bindings.places import Places
from chaos.experiment.params import KnownNames
from chaos.experiment.steps import names_of
from chaos.stackfile.definition import StackDefinition


class Fault(Protocol):
    def inject(self) -> None: ...
    def heal(self) -> None: ...
    def describe(self) -> str: ...


class HistorySink(Protocol):
    """``chaos.history.recorder.Recorder``: thread-safe append of one record to a stream."""

    def record(self, stream: str, obj: dict[str, Any]) -> None: ...


class ProxyControl(Protocol):
    """The Toxiproxy HTTP API calls faults make (``chaos.proxy.client.ToxiproxyClient``).

    Proxies and toxics are Toxiproxy's JSON objects. ``remove_toxic`` of a toxic that does
    not exist raises; callers check ``toxics`` first where that matters.
    """

    def get(self, proxy: str, /) -> Mapping[str, Any]: ...
    def update(self, proxy: str, /, *, enabled: bool = ..., upstream: str = ...) -> Any: ...
    def add_toxic(
        self,
        proxy: str,
        name: str,
        type: str,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: Mapping[str, int] | None = None,
    ) -> Any: ...
    def remove_toxic(self, proxy: str, name: str, /) -> Any: ...
    def toxics(self, proxy: str, /) -> Sequence[Mapping[str, Any]]: ...
    def stats(self, proxy: str, /) -> Mapping[str, Any]: ...


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock seconds (``time.time()`` by default)."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


@dataclass
class FaultContext:
    """Everything a fault may touch. ``load`` is the running ``LoadDriver`` or None.
    ``runbook``: what response steps tell later ones (``chaos.faults.response``), e.g.
    ``"snapshot:pre"`` -> the answer of the step that took snapshot ``pre``."""

    backend: Backend
    proxy: ProxyControl
    recorder: HistorySink
    definition: StackDefinition
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    clock: Clock = field(default_factory=SystemClock)
    load: object | None = None
    runbook: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def places(self) -> Places:
        """Where the stack's services and links listen (for the bindings)."""
        return Places(self.definition, self.backend)


def known_names(definition: StackDefinition) -> KnownNames:
    return names_of(definition)


class Cancelled(Exception):
    """Raised inside ``_inject`` when ``heal`` cancelled the fault's procedure."""


class RecordedFault:
    """Base of every fault: records begin/evidence/end; serialises inject and heal.

    Subclasses implement ``_inject()`` (may call ``self.evidence``, ``self.wait``) and
    ``_heal()`` -> evidence dict; ``_heal`` must undo only what ``_inject`` did (state kept
    on ``self``) and be safe to run twice.
    """

    def __init__(
        self,
        ctx: FaultContext,
        step_id: str,
        action: str,
        target: Sequence[str] | None,
        params: Mapping[str, object],
    ) -> None:
        self.ctx = ctx
        self.step_id = step_id
        self.action = action
        self.target = list(target) if target is not None else None
        self.params = dict(params)
        self._cancel = threading.Event()
        self._op_lock = threading.Lock()
        self._injected = False
        self._ended = False

    # -- the Fault protocol ---------------------------------------------------------
    def inject(self) -> None:
        with self._op_lock:
            if self._injected or self._cancel.is_set():
                return
            self._injected = True
            self._record("begin", {})
            try:
                self._inject()
            except Cancelled:
                self._record("evidence", {"cancelled": True})

    def heal(self) -> None:
        self._cancel.set()
        with self._op_lock:
            if self._ended:
                return
            evidence = self._heal()
            if self._injected:
                self._ended = True
                self._record("end", evidence)
            else:
                self._cancel.clear()  # healed before inject: inject may still run later

    def describe(self) -> str:
        where = f" on {', '.join(self.target)}" if self.target else ""
        shown = {k: v for k, v in self.params.items() if v not in (None, {}, [])}
        return f"{self.action}{where} {shown}".rstrip()

    # -- for subclasses --------------------------------------------------------------
    def _inject(self) -> None:
        raise NotImplementedError

    def _heal(self) -> dict[str, Any]:
        raise NotImplementedError

    def evidence(self, **facts: Any) -> None:
        """Record that the fault took effect (counters, pids, observations)."""
        self._record("evidence", facts)

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``; raise ``Cancelled`` at once if ``heal`` was called."""
        if seconds > 0 and self._cancel.wait(seconds):
            raise Cancelled
        if self._cancel.is_set():
            raise Cancelled

    @property
    def cancel_event(self) -> threading.Event:
        """Set when ``heal`` cancels the procedure: hand it to blocking work that can stop."""
        return self._cancel

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def _record(self, phase: str, evidence: Mapping[str, Any]) -> None:
        self.ctx.recorder.record(
            "faults",
            {
                "time": self.ctx.clock.now(),
                "id": self.step_id,
                "action": self.action,
                "target": self.target,
                "phase": phase,
                "params": _jsonable(self.params),
                "evidence": _jsonable(dict(evidence)),
            },
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def step_target(step_target: str | Sequence[str] | None) -> list[str] | None:
    if step_target is None:
        return None
    if isinstance(step_target, str):
        return [step_target]
    return list(step_target)
