"""Data validation in the writer (market data on chain) and the oracle's funding accrual."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from chaos.stack.mitigations import parse_mitigations
from chaos.stack.oracle import Oracle
from chaos.stack.writer import Writer
from chaos.world import PricePath


def writer(mitigations: str = "all") -> Writer:
    args = SimpleNamespace(
        mitigations=parse_mitigations(mitigations), db="127.0.0.1:1", chain="127.0.0.1:2"
    )
    return Writer(args)


def md(index: float, ts: float, price: float = 60_000.0) -> dict[str, Any]:
    return {"market": "BTC-PERP", "mark_price": price, "funding_index": index, "ts": ts}


def test_writer_rejects_bad_prices_and_funding_jumps_beyond_the_bound() -> None:
    w = writer()
    assert w.valid_market_data(md(6000.0, 100.0))  # no previous block: only the price counts
    for bad in (
        md(6000.0, 100.0, 0.0),
        md(6000.0, 100.0, -1.0),
        md(6000.0, 100.0, float("nan")),
        md(float("nan"), 100.0),
    ):
        assert not w.valid_market_data(bad)
    w.last_market["BTC-PERP"] = md(6000.0, 100.0)
    # 2 s later: at most 0.0002 * 60000 * (2 + 1) = 36 away
    assert w.valid_market_data(md(6035.0, 102.0))
    assert not w.valid_market_data(md(6040.0, 102.0))
    assert not w.valid_market_data(md(0.0, 102.0))  # the Paradex zero


def test_oracle_accrues_the_published_schedule_at_its_mark() -> None:
    args = SimpleNamespace(
        mitigations=frozenset(), seed=4, epoch=1000.0, db="127.0.0.1:1", feeds="127.0.0.1:2"
    )
    oracle = Oracle(args)
    path = PricePath(4, 1000.0)
    accrued = oracle.accrue("ETH-PERP", 300.0, 2, 5, 3000.0)
    expected = 300.0 + sum(path.funding_rate("ETH-PERP", k) * 3000.0 for k in (3, 4, 5))
    assert accrued == pytest.approx(expected)
    assert oracle.accrue("ETH-PERP", 300.0, 5, 5, 3000.0) == 300.0
