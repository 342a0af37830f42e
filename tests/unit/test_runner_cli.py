"""The run/validate/list/check commands without a stack: dry runs, listings, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.cli import main

DATA = Path(__file__).parents[1] / "data"
TINY = str(DATA / "tiny-latency.yaml")


def test_dry_run_prints_each_variants_timeline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", TINY, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "tiny-latency / calm" in out and "tiny-latency / expects-duplicates" in out
    assert "+1s  slow-db: latency sequencer-db latency=300ms for 2s [fault]" in out
    assert "expect violated: no_duplicate_orders" in out


def test_dry_run_no_faults_marks_skipped_steps(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["run", TINY, "--dry-run", "--no-faults", "--json", "--variant", "expects-duplicates"])
        == 0
    )
    (plan,) = json.loads(capsys.readouterr().out)
    assert plan["expected_violations"] == []
    assert [(e["id"], e["fault"], e["skipped"]) for e in plan["timeline"]] == [
        ("slow-db", True, True)
    ]


def test_run_rejects_unknown_variant_and_bad_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", TINY, "--variant", "nope", "--dry-run"]) == 2
    assert "no variant 'nope' (variants: calm, expects-duplicates)" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "absent.yaml"), "--dry-run"]) == 2
    assert "absent.yaml: cannot read the file" in capsys.readouterr().err


def test_list_and_validate_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", str(DATA), "--json"]) == 0
    names = {row["name"] for row in json.loads(capsys.readouterr().out)}
    assert {"tiny-latency", "signal-target"} <= names
    assert main(["validate", "--json", TINY]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result == {"file": TINY, "kind": "experiment", "ok": True, "problems": []}


def test_list_reports_an_invalid_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "broken.yaml").write_text("name: x\nduration: 1s\n")
    assert main(["list", str(tmp_path)]) == 2
    assert "INVALID" in capsys.readouterr().out


def test_check_needs_a_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["run", "validate", "list", "check"])
def test_every_command_has_help_with_an_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    assert "example" in capsys.readouterr().out
