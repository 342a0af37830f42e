"""docs/your-stack.md runs as written: every ``sh`` block, in order, from a working folder
laid out like the checkout's root (the tutorial is written for it) with a copy of
``examples/minidex`` (the Compose project it walks), with tradechaos's venv first on PATH.
Each block must exit 0; whatever a block started (`stack up --detach`) is stopped
afterwards in every case."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from run_cli_helpers import REPO, processes_mentioning, tradechaos
from your_stack_doc import sh_blocks

pytestmark = pytest.mark.integration

DOC = REPO / "docs" / "your-stack.md"


def test_every_command_of_the_tutorial_runs(tmp_path: Path) -> None:
    work = tmp_path / "checkout"
    example = REPO / "examples" / "minidex"
    ignore = shutil.ignore_patterns("wheelhouse", "__pycache__")
    shutil.copytree(example, work / "examples" / "minidex", ignore=ignore)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "PATH": path, "TRADECHAOS_OUT": str(work / "runs")}
    try:
        for number, block in enumerate(sh_blocks(DOC.read_text()), 1):
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", block],
                cwd=work, env=env, capture_output=True, text=True, timeout=300, check=False,
            )  # fmt: skip
            assert done.returncode == 0, (
                f"block {number} of {DOC.name} exited {done.returncode}:\n{block}\n"
                f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
            )
    finally:
        tradechaos("stack", "down", "--out", str(work / "runs"), timeout=120)
    runs = [p.name for p in (work / "runs").iterdir()]
    assert any(name.endswith("-venues-zero-vulnerable") for name in runs), runs
    assert any(name.endswith("-venues-zero-mitigated") for name in runs), runs
    assert processes_mentioning(str(tmp_path)) == []
