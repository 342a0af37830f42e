"""The Paradex mechanism: the oracle restarts while ``market_state`` is missing (a database
migration copies it last). Without guards it restores 0.0 and the writer puts that funding
index on chain; with readiness gates it waits for the rows and then publishes the truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from stack_harness import DirectStack, make_stack, wait_until

from chaos.world import MARKETS, PricePath

pytestmark = pytest.mark.integration
ONLY = ("db", "feeds", "oracle", "chain", "writer")


def chain_funding(stack: DirectStack) -> list[float]:
    blocks = requests.get(f"{stack.url('chain')}/blocks", params={"from": 1}, timeout=5).json()
    return [
        md["funding_index"]
        for b in blocks["blocks"]
        for md in b["market_data"]
        if md["market"] == "BTC-PERP"
    ]


def restart_oracle_without_market_state(stack: DirectStack) -> list[tuple[Any, ...]]:
    wait_until(lambda: len(chain_funding(stack)) >= 2, 10.0, "market data on chain")
    stack.stop("oracle")
    saved = stack.query("SELECT market, funding_index, interval, mark_price, ts FROM market_state")
    stack.query("DELETE FROM market_state RETURNING market")
    stack.start("oracle", wait=False)
    return saved


def test_missing_market_state_puts_a_zero_funding_index_on_chain_without_guards(
    tmp_path: Path,
) -> None:
    with make_stack(tmp_path, mitigations="none", seed=9, only=ONLY) as stack:
        restart_oracle_without_market_state(stack)
        stack.wait_healthy("oracle")
        wait_until(
            lambda: min(chain_funding(stack)) < 100.0,
            10.0,
            "the zeroed funding index on chain",
            interval_s=0.2,
        )
        restored = stack.query(
            "SELECT funding_index FROM oracle_prices WHERE restored "
            "AND market = 'BTC-PERP' ORDER BY id DESC LIMIT 1"
        )
    assert restored[0][0] < 100.0  # published from the 0.0 default, not ~30000


def test_readiness_gates_wait_for_market_state_then_publish_the_true_index(tmp_path: Path) -> None:
    with make_stack(tmp_path, mitigations="all", seed=9, only=ONLY) as stack:
        saved = restart_oracle_without_market_state(stack)

        def gated_reason() -> str:
            resp = requests.get(f"{stack.url('oracle')}/health", timeout=1)
            return str(resp.json().get("reason")) if resp.status_code == 503 else ""

        reason = wait_until(
            lambda: "market_state" in gated_reason() and gated_reason(),
            10.0,
            "the oracle to hold at its readiness gate",
        )
        assert "market_state rows missing" in reason
        for row in saved:  # the migration finishes copying market_state
            stack.query(
                "INSERT INTO market_state VALUES (%s, %s, %s, %s, %s) RETURNING market", row
            )
        stack.wait_healthy("oracle")
        count = len(chain_funding(stack))
        wait_until(lambda: len(chain_funding(stack)) >= count + 3, 10.0, "more blocks")
        truth = PricePath(9, float(stack.params["epoch"]))
        latest = stack.query(
            "SELECT funding_index, ts FROM oracle_prices "
            "WHERE market = 'BTC-PERP' ORDER BY id DESC LIMIT 1"
        )[0]
        on_chain = chain_funding(stack)
    assert min(on_chain) >= MARKETS[0].initial_funding_index
    assert latest[0] == pytest.approx(truth.funding_index("BTC-PERP", latest[1]), rel=1e-3)
