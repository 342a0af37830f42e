"""Primary site loss with a standby sequencer: automatic failover within the RTO budget;
with fencing the old primary steps down when it wakes up, without fencing it keeps
writing with its stale epoch (split brain: duplicate sequence numbers)."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from stack_harness import DirectStack, make_stack, wait_until
from test_stack_traffic import assert_checkers_pass, export

pytestmark = pytest.mark.integration
_ids = itertools.count(1)


def post_order(url: str, account: int) -> requests.Response:
    return requests.post(
        f"{url}/orders",
        json={
            "client_order_id": f"f{next(_ids)}",
            "account": account,
            "market": "ETH-PERP",
            "side": "buy",
            "type": "limit",
            "price": 2000.0,
            "qty": 1.0,
        },
        timeout=5,
    )


def fail_over(stack: DirectStack) -> float:
    """Freeze the primary (site a); return how long until the standby led."""
    for _ in range(5):
        assert post_order(stack.client_url("sequencer"), 1).status_code == 200
    stack.pause("sequencer")
    frozen = time.monotonic()
    wait_until(
        lambda: stack.health("sequencer_b")["role"] == "leader" and stack.healthy("sequencer_b"),
        15.0,
        "the standby to take over",
        interval_s=0.1,
    )
    took = time.monotonic() - frozen
    for _ in range(5):
        assert post_order(stack.client_url("sequencer_b"), 2).status_code == 200
    return took


def test_failover_with_fencing_keeps_one_writer_per_epoch(tmp_path: Path) -> None:
    with make_stack(tmp_path, mitigations="all", seed=3, standby=True, rto_s=2.0) as stack:
        took = fail_over(stack)
        assert took < 2.0 + 2.0  # the RTO budget (2 s) plus detection
        stack.resume("sequencer")
        # the old primary's next write is fenced: it steps down and serves no more orders
        statuses = [post_order(stack.client_url("sequencer"), 1).status_code for _ in range(3)]
        assert statuses[-1] == 503
        assert stack.health("sequencer")["role"] == "standby"
        stack.quiesce()
        records = export(stack, tmp_path, 3)
    seqs = [e["seq"] for e in records["events"]]
    assert seqs == list(range(1, len(seqs) + 1))
    assert {e["epoch"] for e in records["events"]} == {1, 2}
    assert_checkers_pass(tmp_path, ["sequence_integrity", "no_corrupt_chain_writes"])


def test_failover_without_fencing_lets_the_old_primary_write_duplicates(tmp_path: Path) -> None:
    with make_stack(
        tmp_path, mitigations="auto_failover,idempotency_keys", seed=3, standby=True, rto_s=2.0
    ) as stack:
        fail_over(stack)
        stack.resume("sequencer")
        accepted = [post_order(stack.client_url("sequencer"), 1).json()["status"] for _ in range(3)]
        assert accepted == ["accepted"] * 3  # split brain: the stale leader still accepts
        stack.quiesce()
        records = export(stack, tmp_path, 3)
    counts = Counter(e["seq"] for e in records["events"])
    duplicated = [seq for seq, n in counts.items() if n > 1]
    assert duplicated, "expected duplicate sequence numbers from two leaders"
    by_epoch = {(e["epoch"], e["sequencer"]) for e in records["events"] if e["seq"] in duplicated}
    assert by_epoch == {(1, "a"), (2, "b")}
