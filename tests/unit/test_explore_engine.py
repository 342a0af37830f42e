"""The explorer with a fake trial function: a planted two-step cause inside larger schedules
is found, confirmed, shrunk to exactly that cause and written as a minimal experiment;
the same seed and budget give the same schedules; stops keep what was found."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from explore_fakes import (
    LIQ,
    STALE,
    PlantedTrials,
    explore,
    param,
    plan_for,
    planted_cause,
    write_experiment,
)

from chaos.errors import EXIT_EXPECTATION_NOT_MET, EXIT_INFRASTRUCTURE, EXIT_INTERRUPTED, EXIT_OK
from chaos.experiment.loader import load
from chaos.explore.engine import Exploration
from chaos.explore.signals import Signal
from chaos.explore.state import Settings
from chaos.explore.trial import TrialOutcome, TrialRequest


def test_a_planted_two_step_cause_is_found_and_shrunk_to_exactly_it(tmp_path: Path) -> None:
    plan = plan_for(write_experiment(tmp_path))
    checked: list[str] = []

    def check(request: TrialRequest) -> None:
        # every trial is an ordinary experiment file that loads to what runs
        assert request.file is not None and request.file.is_file()
        again = load(request.file)
        assert again.method == request.experiment.method
        assert [v.name for v in again.variants] == ["vulnerable"]
        checked.append(request.purpose)

    trials = PlantedTrials(check)
    exploration, result = explore(
        plan, tmp_path / "x", trials, budget=60, seed=3, confirm=1, shrink_budget=80
    )
    assert result.exit_code == EXIT_EXPECTATION_NOT_MET and result.status == "found"
    first = exploration.finds[0]
    assert len(first.candidate.steps) >= 3  # the cause sits inside a larger schedule
    assert all(planted_cause(first.candidate))
    assert first.solid(None) and first.runs() == 2  # found, then confirmed once
    assert exploration.target == STALE

    assert exploration.shrunk is not None and exploration.shrunk.complete
    minimal = exploration.minimal_find
    assert minimal is not None
    steps = minimal.candidate.steps
    assert sorted((s.action, s.target) for s in steps) == [
        ("latency", "oracle-db"),
        ("pause", "oracle"),
    ]
    pause = next(s for s in steps if s.action == "pause")
    latency = next(s for s in steps if s.action == "latency")
    assert 3.0 <= (pause.for_s or 0) < 3.2  # shortened to the threshold (0.1 s grain)
    assert 0.5 <= param(latency, "latency") < 0.55
    assert latency.for_s == 1.0  # the weak end: the cause does not need longer
    assert all(s.at_s == 0.0 for s in steps)  # moved to the start of the window
    assert minimal.candidate.users == 1
    assert minimal.candidate.duration_s < plan.experiment.duration_s

    # minimal.yaml: an ordinary experiment that reproduces exactly the found violation
    assert result.minimal is not None
    written = load(result.minimal)
    assert written.name == "explore-unit-minimal"
    (variant,) = written.variants
    assert variant.name == "vulnerable" and variant.mitigations == ()
    assert variant.expect_violated == (STALE,)
    assert written.invariants == (STALE, LIQ)  # both had the same verdict in every run
    backbone = [s.id for s in written.method if s.id in ("cancel", "move", "normal")]
    assert backbone == ["cancel", "move", "normal"]  # the fixed steps, in order
    assert len(written.method) == 3 + 2
    assert "incident-fault" not in {s.id for s in written.method}
    assert written.load.users == 1
    text = result.minimal.read_text()
    assert text.startswith("# Minimal regression experiment written by `tradechaos explore`")

    # explore.json: every trial, the finds, the shrink path, coverage, figures
    doc = json.loads((tmp_path / "x" / "explore.json").read_text())
    assert doc["status"] == "found" and doc["target"] == STALE
    assert len(doc["trials"]) == len(trials.requests) == len(checked)
    assert {t["purpose"] for t in doc["trials"]} == {"search", "confirm", "shrink", "minimal"}
    path = doc["shrink"]["path"]
    assert path[0]["reason"] == "found" and path[0]["steps"] == len(first.candidate.steps)
    assert path[-1]["steps"] == 2 and any(p["reason"] == "removed a step" for p in path)
    assert doc["minimal"]["method_steps"] == 5
    assert doc["minimal"]["first_find_method_steps"] > doc["minimal"]["method_steps"]
    cover = doc["coverage"]
    assert 0 < cover["covered"] <= cover["total"] == len(cover["rows"]) * len(cover["phases"])
    cells = {(f, t, p) for f, t in cover["rows"] for p in cover["phases"]}
    assert {tuple(c) for c in cover["combinations"]} <= cells
    assert ["feed_fault", "kind=drop venue=2"] in cover["rows"]
    assert doc["figures"]["trials"] == len(doc["trials"])
    assert doc["figures"]["median_overhead_s"] == 2.0
    html = (tmp_path / "x" / "explore.html").read_text()
    assert "VIOLATION FOUND" in html and "<script" not in html and "Shrink path" in html


def _schedules(tmp_path: Path, name: str, seed: int, budget: int = 12) -> list[str]:
    plan = plan_for(write_experiment(tmp_path))
    never = PlantedTrials()
    trials = lambda requests: [  # noqa: E731 - nothing is ever violated
        TrialOutcome("passed", {STALE: True, LIQ: True}, o.signals, wall_s=1.0)
        for o in never(requests)
    ]
    explore(plan, tmp_path / name, trials, budget=budget, seed=seed)
    return [r.candidate.key for r in never.requests]


def test_the_same_seed_and_budget_give_the_same_schedules(tmp_path: Path) -> None:
    first = _schedules(tmp_path, "a", seed=7)
    again = _schedules(tmp_path, "b", seed=7)
    other = _schedules(tmp_path, "c", seed=8)
    assert len(first) == 12 and first == again
    assert other != first
    assert len(set(first)) == len(first)  # no schedule is tried twice
    assert _schedules(tmp_path, "d", seed=7, budget=5) == first[:5]


def test_random_proposals_do_not_depend_on_what_trials_measured(tmp_path: Path) -> None:
    plan = plan_for(write_experiment(tmp_path))

    def proposals(pressure: float, name: str) -> list[tuple[str, str]]:
        def trials(requests: Sequence[TrialRequest]) -> list[TrialOutcome]:
            return [
                TrialOutcome(
                    "passed",
                    {STALE: True, LIQ: True},
                    {"oracle_age": Signal("oracle_age", pressure * r.number, pressure * r.number)},
                )
                for r in requests
            ]

        exploration, _ = explore(plan, tmp_path / name, trials, budget=15, seed=5)
        return [(str(r.kind), r.candidate.key) for r in exploration.records]

    low, high = proposals(0.01, "a"), proposals(0.05, "b")
    assert [kind for kind, _ in low] == [kind for kind, _ in high]
    assert "guided" in {kind for kind, _ in low}
    randoms = [(a, b) for (kind, a), (_, b) in zip(low, high, strict=True) if kind == "random"]
    assert len(randoms) >= 3 and all(a == b for a, b in randoms)


def test_nothing_found_within_the_budget_exits_0(tmp_path: Path) -> None:
    plan = plan_for(write_experiment(tmp_path), variant="mitigated")
    clean = lambda requests: [  # noqa: E731
        TrialOutcome("passed", {STALE: True, LIQ: True}, wall_s=3.0) for _ in requests
    ]
    exploration, result = explore(plan, tmp_path / "x", clean, budget=4, jobs=2, seed=1)
    assert result.exit_code == EXIT_OK and result.status == "none"
    assert result.minimal is None and not (tmp_path / "x" / "minimal.yaml").exists()
    assert exploration.search_trials == 4
    doc = json.loads((tmp_path / "x" / "explore.json").read_text())
    assert doc["minimal"] is None and len(doc["trials"]) == 4
    assert "NOTHING FOUND" in (tmp_path / "x" / "explore.html").read_text()


def test_a_stop_during_shrinking_keeps_the_smallest_schedule_so_far(tmp_path: Path) -> None:
    plan = plan_for(write_experiment(tmp_path))
    planted = PlantedTrials()
    state = {"shrink": 0}

    def trials(requests: Sequence[TrialRequest]) -> list[TrialOutcome]:
        if requests[0].purpose == "shrink":
            state["shrink"] += 1
        return planted(requests)

    exploration, _ = explore(plan, tmp_path / "x", trials, budget=60, seed=3, confirm=1)
    full = len(exploration.records)

    def stop_after_some_shrinking() -> bool:
        return state["shrink"] >= 3

    state["shrink"] = 0
    stopped = Exploration(
        plan,
        Settings(budget=60, seed=3, confirm=1),
        trials,
        tmp_path / "y",
        interrupted=stop_after_some_shrinking,
    )
    outcome = stopped.explore()
    assert outcome.exit_code == EXIT_INTERRUPTED and outcome.status == "interrupted"
    assert len(stopped.records) < full
    assert outcome.minimal is not None  # what was found is kept
    written = load(outcome.minimal)
    assert written.variants[0].expect_violated == (STALE,)
    assert stopped.shrunk is not None and not stopped.shrunk.complete
    assert "stopped before the end" in outcome.minimal.read_text()


def test_a_stack_that_never_starts_ends_the_exploration_with_exit_3(tmp_path: Path) -> None:
    plan = plan_for(write_experiment(tmp_path))
    broken = lambda requests: [  # noqa: E731
        TrialOutcome("error", {}, error="db did not start", method_ran=False) for _ in requests
    ]
    exploration, result = explore(plan, tmp_path / "x", broken, budget=10, seed=1)
    assert result.exit_code == EXIT_INFRASTRUCTURE and result.status == "error"
    assert len(exploration.records) == 1
    assert "db did not start" in result.message


def test_a_trial_function_that_returns_fewer_outcomes_means_a_signal(tmp_path: Path) -> None:
    plan = plan_for(write_experiment(tmp_path))
    calls = {"n": 0}

    def trials(requests: Sequence[TrialRequest]) -> list[TrialOutcome]:
        calls["n"] += 1
        if calls["n"] == 3:
            return []  # SIGINT arrived: nothing ran
        return [TrialOutcome("passed", {STALE: True, LIQ: True}) for _ in requests]

    exploration, result = explore(plan, tmp_path / "x", trials, budget=10, seed=1)
    assert result.exit_code == EXIT_INTERRUPTED
    assert len(exploration.records) == 2  # the batch that never ran is not recorded
    doc = json.loads((tmp_path / "x" / "explore.json").read_text())
    assert doc["stopped_by"] == "interrupted" and len(doc["trials"]) == 2


def test_a_flaky_find_is_kept_marked_and_the_search_goes_on(tmp_path: Path) -> None:
    plan = plan_for(write_experiment(tmp_path))
    planted = PlantedTrials()
    runs = {"n": 0}

    def flaky(requests: Sequence[TrialRequest]) -> list[TrialOutcome]:
        outcomes = planted(requests)
        for request, outcome in zip(requests, outcomes, strict=True):
            if request.purpose in ("confirm", "minimal"):  # re-runs do not reproduce it
                runs["n"] += 1
                outcome.status, outcome.verdicts = "passed", {STALE: True, LIQ: True}
        return outcomes

    exploration, result = explore(
        plan, tmp_path / "x", flaky, budget=40, seed=3, confirm=1, shrink_budget=3
    )
    assert len(exploration.finds) >= 2  # not solid: the search went on after the first
    assert all(not f.solid(None) for f in exploration.finds)
    assert exploration.search_trials == 40
    assert result.status == "found" and result.minimal is not None
    doc = json.loads((tmp_path / "x" / "explore.json").read_text())
    assert doc["minimal"]["flaky"] is True
    assert "FLAKY" in result.minimal.read_text()


@pytest.mark.parametrize("jobs", [1, 3])
def test_batches_follow_jobs_and_the_budget(tmp_path: Path, jobs: int) -> None:
    plan = plan_for(write_experiment(tmp_path))
    sizes: list[int] = []

    def trials(requests: Sequence[TrialRequest]) -> list[TrialOutcome]:
        sizes.append(len(requests))
        return [TrialOutcome("passed", {STALE: True, LIQ: True}) for _ in requests]

    explore(plan, tmp_path / "x", trials, budget=7, jobs=jobs, seed=2)
    assert sum(sizes) == 7 and max(sizes) == jobs


def test_the_time_limit_bounds_the_whole_exploration(tmp_path: Path) -> None:
    plan = plan_for(write_experiment(tmp_path))
    now = {"t": 0.0}

    def trials(requests: Sequence[TrialRequest]) -> list[TrialOutcome]:
        now["t"] += 4.0 * len(requests)  # each trial takes 4 s of the fake clock
        return [TrialOutcome("passed", {STALE: True, LIQ: True}, wall_s=4.0) for _ in requests]

    exploration = Exploration(
        plan, Settings(budget=None, time_s=10.0, seed=1), trials, tmp_path / "x",
        clock=lambda: now["t"],
    )  # fmt: skip
    result = exploration.explore()
    assert result.exit_code == EXIT_OK and result.status == "none"
    assert exploration.search_trials == 3  # started at 0, 4 and 8 s; none at 12 s
    doc = json.loads((tmp_path / "x" / "explore.json").read_text())
    assert doc["stopped_by"] == "time" and doc["time_limit_s"] == 10.0
