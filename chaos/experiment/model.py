"""The typed experiment model (docs/experiment-format.md). Built only by ``loader.load``,
which guarantees every invariant stated here; the runner and the fault registry trust it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from chaos.stackfile.bindings import SqlCheck
from chaos.stackfile.loader import reference_stack_path

ProbeKind = Literal["health", "error_rate", "p99_latency", "trading_mode"]
PROBE_KINDS: tuple[ProbeKind, ...] = ("health", "error_rate", "p99_latency", "trading_mode")


@dataclass(frozen=True)
class Incident:
    date: str | None = None
    operator: str | None = None
    sources: tuple[str, ...] = ()
    mechanism: str | None = None
    assumptions: str | None = None


@dataclass(frozen=True)
class StackRef:
    """The stack an experiment runs on: its stack file (absolute) and the option values the
    experiment sets for every variant (a variant may set more: ``Variant.options``)."""

    path: Path = field(default_factory=reference_stack_path)
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadSpec:
    users: int = 10
    spawn_rate: float = 10.0
    retry_unknown: bool = True
    accounts: int | None = None  # accounts 1..N trade; None: the load driver's default
    workers: int = 0  # Locust workers under a master (chaos.load.distributed); 0: one process


@dataclass(frozen=True)
class Probe:
    """A steady-state probe: holds when the measured value is within bounds.

    ``health``: every running service healthy. ``error_rate``: load error rate <= ``limit``
    (a fraction). ``p99_latency``: load p99 <= ``limit`` seconds. ``trading_mode``: the
    sequencer's mode equals ``mode``."""

    kind: ProbeKind
    limit: float | None = None
    mode: str | None = None
    line: int = 0

    def describe(self) -> str:
        if self.kind == "error_rate":
            return f"error_rate <= {self.limit:g}"
        if self.kind == "p99_latency":
            return f"p99_latency <= {(self.limit or 0.0) * 1000:g}ms"
        if self.kind == "trading_mode":
            return f"trading_mode == {self.mode}"
        return "health"


@dataclass(frozen=True)
class AbortCondition:
    """Stop the run when this holds continuously for ``for_s`` seconds.

    ``error_rate``/``p99_latency``: measured value > ``above`` (p99 in seconds);
    ``health``: some service is unhealthy; ``trading_mode``: the mode equals ``mode``."""

    kind: ProbeKind
    for_s: float
    above: float | None = None
    mode: str | None = None
    line: int = 0

    def describe(self) -> str:
        if self.kind == "error_rate":
            what = f"error_rate > {self.above:g}"
        elif self.kind == "p99_latency":
            what = f"p99_latency > {(self.above or 0.0) * 1000:g}ms"
        elif self.kind == "trading_mode":
            what = f"trading_mode == {self.mode}"
        else:
            what = "a service unhealthy"
        return f"{what} for {self.for_s:g}s"


@dataclass(frozen=True)
class Variant:
    """``mitigations``: the switches that are ON (sorted). ``expect_violated``: invariants
    that must be found violated (a subset of the experiment's invariants). ``options``: the
    stack option values of this variant (the experiment's, overridden by the variant's).
    ``require_evidence``: invariants whose verdict must not be "unknown" for lack of
    evidence in this variant's run with faults (``expect.require_evidence``)."""

    name: str
    mitigations: tuple[str, ...]
    expect_violated: tuple[str, ...] = ()
    line: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)
    require_evidence: tuple[str, ...] = ()

    @property
    def mitigations_flag(self) -> str:
        """The value for a service's ``--mitigations`` flag."""
        return ",".join(self.mitigations) if self.mitigations else "none"


@dataclass(frozen=True)
class Step:
    """One method step.

    Starts ``at_s`` seconds after the steady-state check ended, or, with ``after``, that
    long after the step named ``after`` ended (``after`` always names an earlier step).
    A fault with ``for_s`` heals after that long; without, at the end of the method.
    ``params`` holds the action's own parameters as written (plain YAML values), already
    accepted by ``chaos.experiment.actions.validate_step``. ``fault``: ``--no-faults``
    skips the step (``ActionInfo.is_fault``)."""

    id: str
    index: int
    action: str
    target: str | tuple[str, ...] | None
    params: Mapping[str, Any]
    at_s: float = 0.0
    after: str | None = None
    for_s: float | None = None
    variants: tuple[str, ...] | None = None
    line: int = 0
    fault: bool = True

    @property
    def targets(self) -> tuple[str, ...]:
        if self.target is None:
            return ()
        if isinstance(self.target, str):
            return (self.target,)
        return self.target

    def runs_in(self, variant: str) -> bool:
        return self.variants is None or variant in self.variants

    def describe(self) -> str:
        where = f" {','.join(self.targets)}" if self.targets else ""
        extra = " ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.action}{where}" + (f" {extra}" if extra else "")


@dataclass(frozen=True)
class Experiment:
    name: str
    path: str
    description: str
    seed: int
    duration_s: float
    variants: tuple[Variant, ...]
    method: tuple[Step, ...]
    invariants: tuple[str, ...]
    incident: Incident | None = None
    stack: StackRef = StackRef()
    load: LoadSpec = LoadSpec()
    params: Mapping[str, Any] = field(default_factory=dict)
    steady_state: tuple[Probe, ...] = ()
    abort_when: tuple[AbortCondition, ...] = ()
    checks: tuple[SqlCheck, ...] = ()  # its own SQL checks (the stack file may add more)
    require_evidence: tuple[str, ...] = ()  # in every run, controls too (top level)

    def sql_checks(self, stack_checks: tuple[SqlCheck, ...]) -> tuple[SqlCheck, ...]:
        """The SQL checks this experiment runs: those of ``invariants``, its own or the
        stack file's (``stack_checks``), in the order of ``invariants``."""
        by_name = {c.name: c for c in (*stack_checks, *self.checks)}
        return tuple(by_name[name] for name in self.invariants if name in by_name)

    @property
    def variant_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variants)

    def variant(self, name: str) -> Variant:
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise KeyError(name)

    def evidence_required(self, variant: str, no_faults: bool = False) -> tuple[str, ...]:
        """The invariants a run of ``variant`` must have evidence for: the top-level
        ``require_evidence``, plus the variant's own unless it is a control run (a control
        drops the variant's expectation, as it drops ``expect.violated``)."""
        own = () if no_faults else self.variant(variant).require_evidence
        return tuple(dict.fromkeys((*self.require_evidence, *own)))

    def steps_for(self, variant: str, no_faults: bool = False) -> list[Step]:
        """The steps that run in ``variant``, in file order; with ``no_faults`` the fault
        steps are left out."""
        return [
            step for step in self.method if step.runs_in(variant) and not (no_faults and step.fault)
        ]
