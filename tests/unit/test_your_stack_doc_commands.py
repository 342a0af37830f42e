"""docs/your-stack.md: its commands are extracted as the tutorial's test runs them
(tests/integration/test_your_stack_doc.py), and every `tradechaos` command in them parses
against today's command line (a renamed option fails here, without starting a stack)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from chaos.cli import build_parser

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
