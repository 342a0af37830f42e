"""The exploration loop: search, confirm, shrink, write. A loop around a trial function.

``Exploration(plan, settings, trials, folder).explore()`` proposes schedules (``Searcher``),
runs them as trials (``TrialFunction``, up to ``jobs`` at once), confirms the first
violating one (``confirm``), keeps searching while finds are only flaky, shrinks the best
find (``shrink``), confirms the minimal schedule, and writes ``minimal.yaml``,
``explore.json`` and ``explore.html`` into ``folder``. It knows nothing of any stack.

Contract
- Every trial is an ordinary experiment file under ``folder/schedules/`` (it loads with
  ``chaos.experiment.loader.load``; that experiment is what runs).
- ``budget`` counts search trials; confirmation and shrinking have their own limits
  (``confirm`` re-runs, ``shrink_budget`` trials). ``time_s`` bounds the whole
  exploration: no trial starts after it (the one running finishes).
- A stop (a signal, the time limit) ends the exploration at once and keeps what was found:
  a find is written as ``minimal.yaml`` unshrunk, or shrunk as far as it got.
- Infrastructure failure (a trial whose stack never reached its method): the first trial,
  or ``INFRA_LIMIT`` in a row, ends the exploration with status ``error`` (exit 3).
- ``explore.json`` is rewritten after every batch of trials.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from chaos.errors import (
    EXIT_EXPECTATION_NOT_MET,
    EXIT_INFRASTRUCTURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
)
from chaos.experiment.loader import load
from chaos.experiment.writer import to_yaml
from chaos.explore import report
from chaos.explore.confirm import Find, confirm
from chaos.explore.progress import ExploreProgress
from chaos.explore.schedule import Candidate, Plan
from chaos.explore.search import Proposal, Searcher
from chaos.explore.shrink import ShrinkResult, shrink
from chaos.explore.state import Settings, Status, TrialRecord
from chaos.explore.trial import Purpose, TrialFunction, TrialOutcome, TrialRequest

INFRA_LIMIT = 3


@dataclass
class ExploreResult:
    status: Status
    exit_code: int
    folder: Path
    minimal: Path | None = None
    message: str = ""
    paths: dict[str, Path] = field(default_factory=dict)


class Exploration:
    def __init__(
        self,
        plan: Plan,
        settings: Settings,
        trials: TrialFunction,
        folder: Path,
        *,
        interrupted: Callable[[], bool] = lambda: False,
        progress: ExploreProgress | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.plan = plan
        self.settings = settings
        self.trial_fn = trials
        self.folder = folder
        self.interrupted = interrupted
        self.progress = progress or ExploreProgress(quiet=True)
        self.clock = clock
        self.started = clock()
        self.started_wall = time.time()
        self.searcher = Searcher(plan, settings.seed)
        self.records: list[TrialRecord] = []
        self.finds: list[Find] = []
        self.target: str | None = None
        self.shrunk: ShrinkResult | None = None
        self.minimal_find: Find | None = None
        self.status: Status = "none"
        self.message = ""
        self._stop_reason: str | None = None
        self._infra_run = 0

    # -- the loop ----------------------------------------------------------------------

    def explore(self) -> ExploreResult:
        (self.folder / "schedules").mkdir(parents=True, exist_ok=True)
        self.progress.start(self)
        try:
            find = self._search()
            if find is not None:
                self._shrink(find)
        finally:
            self._settle()
            paths = report.write(self)
            self.progress.finish(self)
        minimal = paths.get("minimal.yaml")
        return ExploreResult(
            self.status, self._exit_code(), self.folder, minimal, self.message, paths
        )

    def _search(self) -> Find | None:
        while not self.stopped and not self._budget_spent():
            count = self.settings.jobs
            if self.settings.budget is not None:
                count = min(count, self.settings.budget - self.search_trials)
            proposals = [self.searcher.propose() for _ in range(count)]
            outcomes = self._run_proposals(proposals)
            for proposal, outcome in zip(proposals, outcomes, strict=False):
                self.searcher.observe(outcome.trial, proposal.candidate, outcome.pressures())
            for proposal, outcome in zip(proposals, outcomes, strict=False):
                if self.stopped or not outcome.violates(self.settings.invariant):
                    continue
                found = confirm(self, proposal.candidate, outcome, self.settings.confirm, "confirm")
                self.finds.append(found)
                self.progress.found(self, found)
                if found.solid(self.settings.invariant):
                    return found
        return self.best_find()

    def _shrink(self, find: Find) -> None:
        self.target = find.target(self.settings.invariant, self.plan.invariants)
        if self.target is None:
            return
        first = next(o for o in find.outcomes if o.violates(self.target))
        self.shrunk = shrink(
            self.plan,
            find.candidate,
            first,
            self.target,
            self,
            self.settings.shrink_budget,
            self.settings.jobs,
        )
        minimal = self.shrunk.minimal
        if minimal.key == find.candidate.key:
            self.minimal_find = find
            return
        if self.stopped:
            self.minimal_find = Find(minimal, (self.shrunk.outcome,))
            return
        self.minimal_find = confirm(
            self, minimal, self.shrunk.outcome, self.settings.confirm, "minimal"
        )

    def best_find(self) -> Find | None:
        """The most reproducible find (ties: the first)."""
        if not self.finds:
            return None
        return max(
            self.finds, key=lambda f: (f.rate(self.settings.invariant), -self.finds.index(f))
        )

    def _settle(self) -> None:
        if self._stop_reason == "infrastructure":
            self.status = "error"
        elif self._stop_reason == "interrupted":
            self.status = "interrupted"
        if self.minimal_find is None and self.finds:  # stopped before shrinking finished
            find = self.best_find()
            assert find is not None
            self.target = self.target or find.target(self.settings.invariant, self.plan.invariants)
            self.minimal_find = find
        if self.status == "none" and self.minimal_find is not None:
            self.status = "found"

    def _exit_code(self) -> int:
        if self.status == "interrupted":
            return EXIT_INTERRUPTED
        if self.status == "error":
            return EXIT_INFRASTRUCTURE
        return EXIT_EXPECTATION_NOT_MET if self.status == "found" else EXIT_OK

    # -- Runs (for confirm and shrink) -------------------------------------------------

    @property
    def stopped(self) -> bool:
        if self._stop_reason is None and self.interrupted():
            self._stop_reason = "interrupted"
        if self._stop_reason is None and self.time_left() == 0.0:
            self._stop_reason = "time"
        return self._stop_reason is not None

    def run(self, candidates: Sequence[Candidate], purpose: Purpose) -> list[TrialOutcome]:
        """Run ``candidates`` as trials (``chaos.explore.confirm.Runs``)."""
        return self._run([(c, purpose, None) for c in candidates])

    def _run_proposals(self, proposals: Sequence[Proposal]) -> list[TrialOutcome]:
        return self._run([(p.candidate, "search", p) for p in proposals])

    def _run(
        self, items: Sequence[tuple[Candidate, Purpose, Proposal | None]]
    ) -> list[TrialOutcome]:
        if self.stopped or not items:
            return []
        requests = []
        for candidate, purpose, proposal in items:
            number = len(self.records) + 1
            request = self._request(number, candidate, purpose)
            record = TrialRecord(number, purpose, candidate, str(request.file))
            if proposal is not None:
                record.kind, record.parent = proposal.kind, proposal.parent
            self.records.append(record)
            requests.append((record, request))
        outcomes = self.trial_fn([request for _, request in requests])
        for (record, _), outcome in zip(requests, outcomes, strict=False):
            outcome.trial = record.number
            record.outcome = outcome
            self._watch(outcome)
        for record, _ in requests[len(outcomes) :]:
            self.records.remove(record)  # never ran
        if len(outcomes) < len(requests) and self._stop_reason is None:
            self._stop_reason = "interrupted"
        report.write_json(self)
        self.progress.trials(self, outcomes)
        return outcomes

    def _request(self, number: int, candidate: Candidate, purpose: Purpose) -> TrialRequest:
        experiment = self.plan.experiment_for(candidate)
        name = f"{self.plan.experiment.name[:70]}-x{number:04d}"
        experiment = replace(experiment, name=name)
        path = self.folder / "schedules" / f"trial-{number:04d}-{purpose}.yaml"
        text = to_yaml(experiment, [f"trial {number} ({purpose})"], path.parent)
        path.write_text(text, encoding="utf-8")
        return TrialRequest(number, purpose, candidate, load(path), path)

    def _watch(self, outcome: TrialOutcome) -> None:
        if outcome.interrupted:
            self._stop_reason = self._stop_reason or "interrupted"
        if outcome.infrastructure:
            self._infra_run += 1
            if outcome.trial == 1 or self._infra_run >= INFRA_LIMIT:
                self._stop_reason = "infrastructure"
                self.message = f"the stack did not reach the method: {outcome.error}"
        else:
            self._infra_run = 0

    # -- figures -----------------------------------------------------------------------

    @property
    def search_trials(self) -> int:
        return sum(1 for r in self.records if r.purpose == "search")

    def _budget_spent(self) -> bool:
        budget = self.settings.budget
        return budget is not None and self.search_trials >= budget

    def time_left(self) -> float | None:
        if self.settings.time_s is None:
            return None
        return max(0.0, self.settings.time_s - (self.clock() - self.started))

    def elapsed(self) -> float:
        return self.clock() - self.started

    def stop_reason(self) -> str | None:
        return self._stop_reason
