"""``tradechaos explore`` from the command line without a stack: help, bad input (exit 2,
one line naming file:line:field), --dry-run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from explore_fakes import EXPERIMENT, write_experiment

from chaos.cli import main

REPO = Path(__file__).resolve().parents[2]
DYDX = str(REPO / "experiments" / "incidents" / "dydx-2025-oracle-restart.yaml")


def test_help_has_examples_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["explore", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for words in ("--budget RUNS", "--time D", "--jobs N", "--seed S", "--space SPACE.yaml",
                  "examples:", "minimal.yaml", "exit codes: 1 a violation was found"):  # fmt: skip
        assert words in text


def test_a_bad_space_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_experiment(tmp_path, EXPERIMENT.replace("latency: [50ms, 2s]", "latency: fast"))
    assert main(["explore", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert f"{path}:24: explore.faults[1].latency: " in err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--variant", "nope"], "no variant 'nope'"),
        (["--budget", "3", "--time", "1m"], "not allowed with argument"),
        (["--time", "soon"], "--time: expected a duration"),
        (["--jobs", "0"], "--jobs must not be 0"),
        (["--invariant", "no_lost_acked_orders"], "is not checked by"),
        (["--space", "/nonexistent/space.yaml"], "cannot read the space"),
    ],
)
def test_bad_arguments_exit_2(
    args: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(["explore", DYDX, "--dry-run", *args])
    except SystemExit as done:  # argparse's own errors
        code = int(done.code or 0)
    assert code == 2
    assert words in capsys.readouterr().err


def test_dry_run_shows_the_space_and_the_first_schedules(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["explore", DYDX, "--variant", "vulnerable", "--dry-run", "--seed", "4"]) == 0
    text = capsys.readouterr().out
    assert "the default space" in text and "fixed steps: price_move-1, price_move-3" in text
    assert "the first 10 schedules (seed 4" in text
    assert main(["explore", DYDX, "--dry-run", "--seed", "4", "--json", "--budget", "3"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [p["number"] for p in doc["proposals"]] == [1, 2, 3]
    assert doc["backbone"] == ["price_move-1", "price_move-3"]
    again = main(["explore", DYDX, "--dry-run", "--seed", "4", "--json", "--budget", "3"])
    assert again == 0 and json.loads(capsys.readouterr().out) == doc
