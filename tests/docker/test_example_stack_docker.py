"""The second stack (examples/minidex) on the docker backend: its own image, built from
its Dockerfile with a wheelhouse, and the built-in parts in tradechaos's (see
tests/integration/example_runs.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from example_runs import check_stories, run_example

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_the_example_stack_on_docker(tmp_path: Path, stack_image: str) -> None:
    check_stories(run_example(tmp_path, "docker"))
