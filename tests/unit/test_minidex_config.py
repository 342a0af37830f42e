"""minidex is configured by environment variables only, and shares no code with tradechaos:
bad settings end in one sentence naming the variable (exit 2); no module imports chaos."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from minidex.config import ConfigError, from_env

SRC = Path(__file__).resolve().parents[2] / "examples" / "minidex" / "src"
BASE = {"MINIDEX_PORT": "8080", "MINIDEX_DB": "postgresql://postgres@127.0.0.1:5432/minidex"}


def test_defaults_and_switches() -> None:
    s = from_env(BASE)
    assert (s.host, s.port, s.symbols, s.maint_margin) == ("127.0.0.1", 8080, ("BTC-USD",), 0.02)
    assert (s.max_mark_age_s, s.dedupe, s.insurance_acct) == (0.0, False, 0)
    on = from_env({**BASE, "MINIDEX_MAX_MARK_AGE_MS": "3000", "MINIDEX_DEDUPE": "1"})
    assert (on.max_mark_age_s, on.dedupe) == (3.0, True)
    venues = "http://127.0.0.1:1/, http://127.0.0.1:2"
    got = from_env({**BASE, "MINIDEX_VENUES": venues}, ("MINIDEX_DB", "MINIDEX_VENUES"))
    assert got.venues == ("http://127.0.0.1:1/", "http://127.0.0.1:2")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"MINIDEX_PORT": ""}, "MINIDEX_PORT is not set"),
        ({"MINIDEX_PORT": "80.5"}, "MINIDEX_PORT"),
        ({"MINIDEX_DB": "127.0.0.1:5432"}, "MINIDEX_DB must be a postgresql:// DSN"),
        ({"MINIDEX_DEDUPE": "maybe"}, "MINIDEX_DEDUPE must be 1 or 0"),
        ({"MINIDEX_MAX_MARK_AGE_MS": "-1"}, "MINIDEX_MAX_MARK_AGE_MS must be a finite number"),
        ({"MINIDEX_SYMBOLS": " , "}, "MINIDEX_SYMBOLS names no symbol"),
        ({"MINIDEX_VENUES": "127.0.0.1:9000"}, "MINIDEX_VENUES must hold http:// URLs"),
    ],
)
def test_a_bad_variable_is_named(change: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        from_env({**BASE, **change})


def test_a_service_without_its_settings_exits_2_with_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINIDEX_")}
    env["PYTHONPATH"] = str(SRC)
    done = subprocess.run(
        [sys.executable, "-m", "minidex.pricer"],
        env={**env, "MINIDEX_PORT": "1", "MINIDEX_DB": BASE["MINIDEX_DB"]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "minidex.pricer: MINIDEX_VENUES is not set"


def test_minidex_never_imports_tradechaos() -> None:
    """A user's stack would not: the example proves the stack file is enough."""
    modules = sorted(SRC.rglob("*.py"))
    assert len(modules) >= 8
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not [n for n in names if n.split(".")[0] == "chaos"], f"{path} imports chaos"
