"""What an exploration is and holds, as the progress lines and the report read it: its
settings, its trial records, and ``ExplorationView`` (what ``chaos.explore.engine``'s
``Exploration`` shows of itself), so that neither needs the engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from chaos.explore.confirm import Find
from chaos.explore.schedule import Candidate, Plan
from chaos.explore.search import Searcher
from chaos.explore.shrink import ShrinkResult
from chaos.explore.trial import Purpose, TrialOutcome

Status = Literal["found", "none", "interrupted", "error"]


@dataclass(frozen=True)
class Settings:
    budget: int | None = 20  # search trials; None: until the time limit
    time_s: float | None = None
    jobs: int = 1
    seed: int = 0
    confirm: int = 2
    shrink_budget: int = 40
    invariant: str | None = None
    command: str = ""  # the command line, for the report and minimal.yaml's header


@dataclass
class TrialRecord:
    number: int
    purpose: Purpose
    candidate: Candidate
    file: str
    kind: str | None = None
    parent: int | None = None
    outcome: TrialOutcome | None = None


class ExplorationView(Protocol):
    """An exploration under way or done (``chaos.explore.engine.Exploration``)."""

    plan: Plan
    settings: Settings
    folder: Path
    searcher: Searcher
    records: list[TrialRecord]
    finds: list[Find]
    target: str | None
    shrunk: ShrinkResult | None
    minimal_find: Find | None
    status: Status
    message: str
    started_wall: float

    @property
    def search_trials(self) -> int: ...

    def time_left(self) -> float | None: ...

    def elapsed(self) -> float: ...

    def stop_reason(self) -> str | None: ...
