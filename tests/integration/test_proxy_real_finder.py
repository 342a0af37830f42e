"""Finding the real Toxiproxy server for the side-by-side tests (``real_toxiproxy``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import real_toxiproxy as real


def test_the_environment_variable_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = tmp_path / "toxiproxy-server"
    server.write_text("#!/bin/sh\n")
    monkeypatch.setenv(real.ENV, str(server))
    assert real.find_server() is None  # not executable
    server.chmod(0o755)
    assert real.find_server() == server


def test_a_missing_server_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(real.ENV, str(tmp_path / "nope"))
    assert real.find_server() is None
    reason = real.missing_reason()
    assert f"${real.ENV}={tmp_path / 'nope'}" in reason and "build-real-toxiproxy.sh" in reason


def test_the_standard_path_without_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(real.ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    expected = tmp_path / ".cache" / "tradechaos" / "toxiproxy-2.12.0" / "toxiproxy-server"
    assert real.standard_path() == expected
    assert real.find_server() is None and str(expected) in real.missing_reason()
    expected.parent.mkdir(parents=True)
    expected.write_text("#!/bin/sh\n")
    expected.chmod(0o755)
    assert real.find_server() == expected


def test_a_server_that_does_not_start_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "toxiproxy-server"
    broken.write_text("#!/bin/sh\necho 'no such flag' >&2\nexit 3\n")
    broken.chmod(0o755)
    server = real.RealToxiproxy(broken, attempts=2)
    with pytest.raises(RuntimeError, match=r"(?s)did not start in 2 attempts.*no such flag"):
        server.__enter__()
    assert server.process is None  # reaped
