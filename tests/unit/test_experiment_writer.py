"""``chaos.experiment.writer``: an Experiment written as YAML loads back to the same model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from chaos.experiment.loader import load
from chaos.experiment.model import Experiment
from chaos.experiment.writer import duration_text, to_yaml

REPO = Path(__file__).resolve().parents[2]
FILES = (
    sorted((REPO / "experiments").glob("*/*.yaml"))
    + sorted((REPO / "tests" / "data").glob("*.yaml"))
    + sorted((REPO / "examples").glob("*/experiments/*.yaml"))  # on their own stack files
)


def without_places(experiment: Experiment) -> Experiment:
    """The model without where it was written (path and lines)."""
    clear = dataclasses.replace
    return clear(
        experiment,
        path="",
        variants=tuple(clear(v, line=0) for v in experiment.variants),
        method=tuple(clear(s, line=0) for s in experiment.method),
        steady_state=tuple(clear(p, line=0) for p in experiment.steady_state),
        abort_when=tuple(clear(c, line=0) for c in experiment.abort_when),
    )


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_shipped_experiment_round_trips(path: Path, tmp_path: Path) -> None:
    experiment = load(path)
    written = tmp_path / "again.yaml"
    written.write_text(to_yaml(experiment, ["a header", ""], tmp_path), encoding="utf-8")
    again = load(written)
    assert without_places(again) == without_places(experiment)
    text = written.read_text()
    assert text.startswith("# a header\n#\nname: ")
    method = text.split("\nmethod:\n", 1)[1].split("\ninvariants:")[0].splitlines()
    assert len(method) == len(experiment.method)  # one line per step


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.25, "250ms"), (0.001, "1ms"), (0.0504, "50ms"), (1, "1s"), (1.5, "1.5s"),
     (20, "20s"), (120, "120s"), (3.3333333, "3.333s")],
)  # fmt: skip
def test_durations_are_written_as_the_loader_reads_them(seconds: float, text: str) -> None:
    from chaos.files.durations import parse_duration

    assert duration_text(seconds) == text
    assert parse_duration(text) == pytest.approx(round(seconds, 3))
