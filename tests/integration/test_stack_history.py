"""``tradechaos stack history`` on a real stack: the records of the stack `stack up` keeps,
exported through its history binding where it runs, and again from addresses given with
``--at`` (what a Kubernetes export's README does through port-forwards); an address the
binding needs and was not given is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from run_cli_helpers import processes_mentioning, tradechaos

pytestmark = pytest.mark.integration


def records(run_dir: Path, name: str) -> list[dict[str, object]]:
    path = run_dir / "history" / name
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_history_of_a_running_stack_where_it_runs_and_at_given_addresses(
    tmp_path: Path,
) -> None:
    out = tmp_path / "runs"
    up = tradechaos("stack", "up", "--detach", "--out", str(out), timeout=180)
    assert up.returncode == 0, up.stderr
    try:
        # the stack check trades (an order and its cancel) and switches the mode once
        check = tradechaos("stack", "check", "--out", str(out), "--json", timeout=180)
        assert check.returncode == 0, check.stdout + check.stderr

        attached = tmp_path / "attached"
        done = tradechaos("stack", "history", str(attached), "--out", str(out), timeout=120)
        assert done.returncode == 0, done.stderr
        for source in ("events", "oracle", "modes", "chain"):
            assert f"{source}: " in done.stderr
        events = records(attached, "events.jsonl")
        assert any(e.get("kind") == "order_accepted" for e in events), events[:5]
        assert records(attached, "modes.jsonl")
        assert records(attached, "oracle.jsonl")

        current = json.loads((out / "current-stack.json").read_text())
        db = current["links"]["sequencer-db"]
        chain = current["services"]["chain"]["endpoint"]
        missing = tradechaos("stack", "history", str(tmp_path / "x"), "--at",
                             f"sequencer-db={db}", timeout=60)  # fmt: skip
        assert missing.returncode == 2, missing.stderr
        assert "the history binding reads chain" in missing.stderr
        assert "--at chain=HOST:PORT" in missing.stderr

        given = tmp_path / "given"
        done = tradechaos("stack", "history", str(given), "--at", f"sequencer-db={db}",
                          "--at", f"chain={chain}", timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        seqs = [e["seq"] for e in records(given, "events.jsonl")]
        assert seqs and seqs[: len(events)] == [e["seq"] for e in events]
        assert records(given, "chain.jsonl")
    finally:
        down = tradechaos("stack", "down", "--out", str(out), timeout=120)
    assert down.returncode == 0, down.stderr
    assert processes_mentioning(str(tmp_path)) == []


def test_bad_addresses_are_one_sentence_each(tmp_path: Path) -> None:
    cases = {
        "nosuch=127.0.0.1:5": "--at nosuch: not a service or link of",
        "chain=8.8.8.8:80": "--at chain: 8.8.8.8 is not a loopback address",
        "chain=127.0.0.1": "--at chain: address 127.0.0.1: missing port in address",
        "chain": "--at 'chain': expected NAME=HOST:PORT",
    }
    for item, text in cases.items():
        done = tradechaos("stack", "history", str(tmp_path / "r"), "--at", item, timeout=60)
        assert done.returncode == 2, done.stderr
        assert text in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "r").exists()
