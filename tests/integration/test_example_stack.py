"""Stacks are plug-ins, proved by a second one: examples/minidex, a different exchange
described only by its stack file, caught by its incident-style experiments on the process
backend (see tests/integration/example_runs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from example_runs import EXAMPLE, check_stories, run_example

from chaos.cli import main

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_example_stack_and_its_experiments_validate(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(EXAMPLE / "stack.yaml"), *map(str, sorted((EXAMPLE / "experiments").glob("*")))]
    assert main(["validate", *files]) == 0, capsys.readouterr().out


def test_the_example_stack_catches_its_bugs_and_passes_mitigated_and_controls(
    tmp_path: Path,
) -> None:
    check_stories(run_example(tmp_path, "process"))
