"""docs/your-stack.md: its commands are extracted as the tutorial's test runs them
(tests/integration/test_your_stack_doc.py), and every `tradechaos` command in them parses
against today's command line (a renamed option fails here, without starting a stack). Its
first blocks, which start nothing (import, the patch, the bindings), are run here too: the
file they make is the example's stack file on services, links, health and venues."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from stack_compare import differences

from chaos.cli import build_parser
from chaos.stackfile import load, resolve

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from your_stack_doc import sh_blocks  # noqa: E402

DOC = (ROOT / "docs" / "your-stack.md").read_text()


def commands() -> list[str]:
    """Each command line of the sh blocks (heredoc bodies left out)."""
    found: list[str] = []
    for block in sh_blocks(DOC):
        heredoc: str | None = None
        for line in block.splitlines():
            if heredoc is not None:
                heredoc = None if line.strip() == heredoc else heredoc
                continue
            if "<<'" in line:
                heredoc = line.split("<<'")[1].split("'")[0]
            if line.strip():
                found.append(line.strip())
    return found


def test_the_tutorial_walks_every_step() -> None:
    steps = set()
    for line in commands():
        words = shlex.split(line)
        if words[0] == "tradechaos":
            steps.add(" ".join(words[1:3]) if words[1] == "stack" else words[1])
    assert {"stack import", "validate", "stack check", "stack up", "fault", "stack down",
            "run"} <= steps, steps  # fmt: skip
    assert any(c.startswith("python -m pytest my-stack/experiments") for c in commands())
    assert len(sh_blocks(DOC)) >= 8


@pytest.mark.parametrize("line", [c for c in commands() if c.startswith("tradechaos ")])
def test_every_tradechaos_command_parses(line: str) -> None:
    args = build_parser().parse_args(shlex.split(line)[1:])
    assert getattr(args, "handler", None) is not None, line


@pytest.mark.skipif(shutil.which("patch") is None, reason="the tutorial's step 2 uses patch")
def test_the_first_steps_make_the_examples_stack_file(tmp_path: Path) -> None:
    example = ROOT / "examples" / "minidex"
    ignore = shutil.ignore_patterns("wheelhouse", "__pycache__")
    shutil.copytree(example, tmp_path / "examples" / "minidex", ignore=ignore)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    blocks = sh_blocks(DOC)
    starts = next(i for i, b in enumerate(blocks) if "stack check" in b)
    for block in blocks[:starts]:  # up to `stack check`, the first that starts a stack
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path,
                              env={**os.environ, "PATH": path}, capture_output=True,
                              text=True, timeout=120, check=False)  # fmt: skip
        assert done.returncode == 0, f"{block}\n{done.stdout}\n{done.stderr}"
    ours = resolve(load(tmp_path / "my-stack" / "stack.yaml"))
    theirs = resolve(load(example / "stack.yaml"))
    assert differences(ours, theirs) == []
    assert ours.service("venues").command == theirs.service("venues").command  # the shapes
    venue_urls = "{venue_urls:pricer-venues}"
    assert ours.service("pricer").env["MINIDEX_VENUES"] == venue_urls
    assert ours.bindings == theirs.bindings
    assert ours.mitigations == theirs.mitigations
