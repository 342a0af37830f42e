"""The runner records the load (issue 18): journal.json and run.json say how many load
workers ran and how many operations each made; ``--load-workers`` (RunOptions) reaches the
load the runner starts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from test_runner_lifecycle import Events, FakeLoad, experiment, make_deps

from chaos.backends.base import Backend
from chaos.experiment.model import LoadSpec
from chaos.host.runs import RunFolder
from chaos.runner.runner import RunOptions, execute_variant
from chaos.runner.signals import SignalGuard
from chaos.stackfile.definition import StackDefinition


def run(tmp_path: Path, load_workers: int | None) -> tuple[Any, list[Any]]:
    events = Events()
    specs: list[Any] = []
    deps = make_deps(events)

    def load(
        backend: Backend, definition: StackDefinition, folder: RunFolder, seed: int, spec: LoadSpec
    ) -> FakeLoad:
        specs.append(spec)
        return FakeLoad(events)

    deps.load = load
    options = RunOptions(tmp_path / "runs", "process", quiet=True, load_workers=load_workers)
    options.recover_within_s = 0.5
    with SignalGuard() as guard:
        result = execute_variant(experiment(tmp_path), "calm", options, deps, guard)
    return result, specs


def test_journal_and_run_json_record_the_workers_and_their_ops(tmp_path: Path) -> None:
    result, specs = run(tmp_path, None)
    assert result.exit_code == 0, result.journal.get("error")
    assert specs[0].workers == 0  # the experiment's own: one process
    summary = FakeLoad(Events()).summary()
    assert result.journal["load"] == summary
    on_disk = json.loads((result.run_dir / "journal.json").read_text())
    assert on_disk["load"]["ops_per_worker"] == {"0": 3, "1": 4}
    run_json = json.loads((result.run_dir / "history" / "run.json").read_text())
    assert run_json["load"]["workers"] == 2 and run_json["load"]["ops"] == 7
    assert run_json["load"]["spawn_rate"] == specs[0].spawn_rate  # the spec, then the counts


def test_load_workers_option_overrides_the_experiment(tmp_path: Path) -> None:
    result, specs = run(tmp_path, 3)
    assert result.exit_code == 0, result.journal.get("error")
    assert specs[0].workers == 3
