"""Every `tradechaos` command shown in README.md and docs/ is one the CLI takes: a concrete
command line parses as written; a usage line (``[--flag V]``, ``FILE...``, ``A|B``) names
a command whose ``--help`` parses, and every ``--flag`` it shows is one that command has."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from chaos.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL = re.compile(r"\s(?:#|&|>|\|\s).*$")  # a comment, background, a redirect, a pipe
TEMPLATE = re.compile(r"\[|\.\.\.|\||\b[A-Z][A-Z_]{2,}\b")


def shown_commands() -> list[tuple[str, int, str]]:
    """(file, line, command) for each `tradechaos ...` line of a code block, indented or
    fenced (continuations joined)."""
    found = []
    for path in DOCS:
        lines = path.read_text(encoding="utf-8").splitlines()
        i, fenced = 0, False
        while i < len(lines):
            if lines[i].lstrip().startswith("```"):
                fenced = not fenced
            indent = r"\s*" if fenced else r"\s{4,}"
            m = re.match(rf"^{indent}(?:\$ )?(tradechaos\s.*)$", lines[i])
            start = i + 1
            if m:
                command = m.group(1)
                while command.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    command = command[:-1] + " " + lines[i].strip()
                found.append((str(path.relative_to(ROOT)), start, command))
            i += 1
    return found


def _parses(argv: list[str]) -> bool:
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            build_parser().parse_args(argv)
        except SystemExit as done:
            return done.code == 0
    return True


def _help_text(words: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        build_parser().parse_args([*words, "--help"])
    return out.getvalue()


COMMANDS = shown_commands()


def test_the_docs_show_commands() -> None:
    assert len(COMMANDS) >= 40, COMMANDS


@pytest.mark.parametrize(("where", "line", "command"), COMMANDS)
def test_a_shown_command_is_one_the_cli_takes(where: str, line: int, command: str) -> None:
    text = SHELL.sub("", command).strip()
    if not TEMPLATE.search(text):
        assert _parses(shlex.split(text)[1:]), f"{where}:{line}: {text}"
        return
    words: list[str] = []
    choices = [""]  # `stack up|status|down`: each of the commands
    for token in text.split()[1:]:
        if re.fullmatch(r"[a-z0-9-]+(\|[a-z0-9-]+)+", token):
            choices = token.split("|")
            break
        if token.startswith(("-", "[", "<")) or TEMPLATE.search(token) or "/" in token:
            break
        words.append(token)
    known: set[str] = set()
    for choice in choices:
        sub = [*words, choice] if choice else words
        assert _parses([*sub, "--help"]), f"{where}:{line}: no command {' '.join(sub)!r}"
        known |= set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", _help_text(sub)))
    flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text))
    assert flags <= known, f"{where}:{line}: {sorted(flags - known)} not options of {words}"
