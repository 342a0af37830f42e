"""A trial: one experiment variant run with a candidate schedule, and what it showed.

``TrialFunction`` is the seam between the explorer and the runner: it takes a batch of
``TrialRequest`` (run them, up to ``--jobs`` at once) and returns one ``TrialOutcome`` per
request it ran, in request order; after a signal it may return fewer. The real one is
``chaos.explore.stacktrials.StackTrials``; unit tests pass a fake.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from chaos.experiment.model import Experiment
from chaos.explore.schedule import Candidate
from chaos.explore.signals import Signal

Purpose = Literal["search", "confirm", "shrink", "minimal"]
Validity = bool | Literal["unknown"]


@dataclass(frozen=True)
class TrialRequest:
    """Trial ``number`` of the exploration: ``experiment`` (one variant) is ``candidate``
    made into an experiment; ``file`` is that experiment written out (it loads)."""

    number: int
    purpose: Purpose
    candidate: Candidate
    experiment: Experiment
    file: Path | None = None

    @property
    def variant(self) -> str:
        return self.experiment.variants[0].name


@dataclass
class TrialOutcome:
    """What one trial showed.

    ``status`` is the run's journal status (passed, failed, error, interrupted);
    ``verdicts`` maps each checked invariant to True, False or "unknown"; ``evidence`` the
    first counterexample of each violated one; ``method_ran`` is False when the run ended
    before its method began (the stack did not start or never reached steady state)."""

    status: str
    verdicts: dict[str, Validity]
    signals: dict[str, Signal] = field(default_factory=dict)
    wall_s: float = 0.0
    run_dir: str | None = None
    error: str | None = None
    method_ran: bool = True
    evidence: dict[str, str] = field(default_factory=dict)
    trial: int = 0  # its number in the exploration (set when it is recorded)

    @property
    def completed(self) -> bool:
        """The run went through and was judged without an error."""
        return self.status in ("passed", "failed")

    @property
    def violated(self) -> tuple[str, ...]:
        if not self.completed:
            return ()
        return tuple(name for name, valid in self.verdicts.items() if valid is False)

    def violates(self, invariant: str | None) -> bool:
        """``invariant`` was found violated (any invariant when None)."""
        if invariant is None:
            return bool(self.violated)
        return invariant in self.violated

    @property
    def infrastructure(self) -> bool:
        return self.status == "error" and not self.method_ran

    @property
    def interrupted(self) -> bool:
        return self.status == "interrupted"

    def pressures(self) -> dict[str, float]:
        return {name: signal.pressure for name, signal in self.signals.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial": self.trial,
            "status": self.status,
            "verdicts": dict(self.verdicts),
            "violated": list(self.violated),
            "evidence": dict(self.evidence),
            "signals": {name: s.to_dict() for name, s in self.signals.items()},
            "wall_s": round(self.wall_s, 3),
            "run_dir": self.run_dir,
            "error": self.error,
        }


class TrialFunction(Protocol):
    def __call__(self, requests: Sequence[TrialRequest]) -> list[TrialOutcome]: ...


def outcome_of(
    journal: Mapping[str, Any], wall_s: float, signals: Mapping[str, Signal] | None = None
) -> TrialOutcome:
    """The outcome a run's journal (docs/contracts.md section 3) records."""
    verdicts: dict[str, Validity] = {}
    evidence: dict[str, str] = {}
    for verdict in journal.get("verdicts") or ():
        name = str(verdict.get("invariant"))
        valid = verdict.get("valid")
        verdicts[name] = valid if isinstance(valid, bool) else "unknown"
        if valid is False:
            evidence[name] = str(verdict.get("message", ""))
    before = (journal.get("steady_state") or {}).get("before") or {}
    started = any(entry.get("started") for entry in journal.get("timeline") or ())
    return TrialOutcome(
        status=str(journal.get("status", "error")),
        verdicts=verdicts,
        signals=dict(signals or {}),
        wall_s=wall_s,
        run_dir=str(journal["run_dir"]) if journal.get("run_dir") else None,
        error=journal.get("error"),
        method_ran=bool(before.get("ok")) or started,
        evidence=evidence,
    )
