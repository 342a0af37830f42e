"""Trials on real stacks: each trial is an ordinary run of its experiment on a fresh stack.

One at a time (``jobs`` 1, or a batch of one) a trial runs in this process with
``chaos.runner.runner.execute_variant``; several at once they run side by side as
``tradechaos run FILE --variant V`` children through ``chaos.runner.jobs.run_jobs``, each
on its own stack and ports. Either way a trial's run folder is an ordinary one under
``out_dir`` (so ``tradechaos cleanup`` finds what a crash leaves), and its signals are
measured from its History here.

Signals: the guard is shielded between trials (a SIGINT then is only recorded) and
unshielded while a trial runs, so the run heals and stops as ``tradechaos run`` does; after
a signal no further trial starts.

In-process trials skip junit.xml and report.html (``tradechaos report RUN_DIR`` writes
them); the children of a side-by-side batch write them as every run does.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from chaos.checkers.params import CheckParams
from chaos.explore.signals import Signal, measure
from chaos.explore.trial import TrialOutcome, TrialRequest, outcome_of
from chaos.history.reader import History, HistoryError
from chaos.runner.runner import Deps, RunOptions, execute_variant
from chaos.runner.signals import SignalGuard, Terminated


def _no_reports(run_dir: Path, journal: Mapping[str, Any]) -> dict[str, Path]:
    return {}


class StackTrials:
    """``TrialFunction`` on real stacks (see the module doc)."""

    def __init__(
        self, options: RunOptions, jobs: int, guard: SignalGuard, deps: Deps | None = None
    ) -> None:
        """``deps``: the runner's seams for in-process trials (default: the real modules
        without junit.xml/report.html)."""
        self.options = replace(options, quiet=True, ticker=False, no_faults=False, seed=None)
        self.jobs = max(1, jobs)
        self.guard = guard
        self.deps = deps or Deps(reports=_no_reports)

    def __call__(self, requests: Sequence[TrialRequest]) -> list[TrialOutcome]:
        if self.guard.interrupted or not requests:
            return []
        if self.jobs > 1 and len(requests) > 1:
            return self._side_by_side(requests)
        outcomes = []
        for request in requests:
            if self.guard.interrupted:
                break
            outcomes.append(self._here(request))
        return outcomes

    def _here(self, request: TrialRequest) -> TrialOutcome:
        started = time.monotonic()
        try:
            self.guard.unshield()
            result = execute_variant(
                request.experiment,
                request.variant,
                self.options,
                deps=self.deps,
                guard=self.guard,
            )
        except (KeyboardInterrupt, Terminated):
            return TrialOutcome("interrupted", {}, wall_s=time.monotonic() - started)
        finally:
            self.guard.shield()
        return self._outcome(request, result.journal, time.monotonic() - started)

    def _side_by_side(self, requests: Sequence[TrialRequest]) -> list[TrialOutcome]:
        from chaos.runner.jobs import Job, run_jobs

        jobs = []
        for request in requests:
            if request.file is None:
                raise ValueError(f"trial {request.number} has no experiment file to run")
            jobs.append(Job(str(request.file), request.experiment.name, request.variant, False))
        started = time.monotonic()
        try:
            self.guard.unshield()
            results = run_jobs(jobs, self.options, self.jobs, self.guard)
        except (KeyboardInterrupt, Terminated):
            results = []
        finally:
            self.guard.shield()
        wall = time.monotonic() - started
        outcomes = []
        for request, result in zip(requests, results, strict=False):
            journal = result.journal
            run_wall = _journal_wall(journal) or wall
            outcomes.append(self._outcome(request, journal, run_wall))
        return outcomes

    def _outcome(
        self, request: TrialRequest, journal: Mapping[str, Any], wall_s: float
    ) -> TrialOutcome:
        run_dir = journal.get("run_dir")
        signals = _signals(Path(run_dir), request.experiment.params) if run_dir else {}
        return outcome_of(journal, wall_s, signals)


def _signals(run_dir: Path, params: Mapping[str, Any]) -> dict[str, Signal]:
    try:
        return measure(History.open(run_dir), CheckParams.from_mapping(params))
    except (HistoryError, ValueError, KeyError, TypeError, ArithmeticError, OSError):
        return {}


def _journal_wall(journal: Mapping[str, Any]) -> float | None:
    began, ended = journal.get("started_at"), journal.get("ended_at")
    if isinstance(began, int | float) and isinstance(ended, int | float):
        return float(ended - began)
    return None
