"""Block hashing, mitigation parsing, the reference stack file, data-validation bounds, the
built-in venues."""

from __future__ import annotations

from typing import Any

import pytest

from chaos.builtins.quotes import Venues
from chaos.stack.blocks import GENESIS_HASH, block_hash, chain_problems, event_record, make_block
from chaos.stack.common import funding_jump_ok
from chaos.stack.mitigations import MITIGATIONS, parse_mitigations
from chaos.stackfile import load, reference_stack_path, resolve
from chaos.world import MARKETS, PricePath


def _chain(n: int) -> list[dict[str, Any]]:
    blocks, prev = [], GENESIS_HASH
    for height in range(1, n + 1):
        events = [
            {
                "seq": height,
                "epoch": 1,
                "sequencer": "a",
                "time": 1.5,
                "kind": "mode",
                "mode": "normal",
                "source": "t",
            }
        ]
        block = make_block(
            height,
            prev,
            events,
            [{"market": "BTC-PERP", "mark_price": 1.0, "funding_index": 2.0, "ts": 3.0}],
            height,
            height,
            10.0 + height,
        )
        blocks.append(block)
        prev = block["hash"]
    return blocks


def test_block_hash_covers_every_field_but_itself_and_ignores_key_order() -> None:
    block = _chain(1)[0]
    assert block["hash"] == block_hash(block)
    reordered = dict(reversed(list(block.items())))
    assert block_hash(reordered) == block["hash"]
    for field in ("height", "prev_hash", "first_seq", "last_seq", "events", "market_data", "time"):
        tampered = {
            **block,
            field: block[field] * 2
            if isinstance(block[field], (int, float))
            else block[field] + block[field],
        }
        assert block_hash(tampered) != block["hash"], field


def test_chain_problems_finds_broken_links_heights_and_hashes() -> None:
    blocks = _chain(3)
    assert chain_problems(blocks) == []
    assert chain_problems([blocks[0], blocks[2]])  # a missing height
    forged = {**blocks[1], "events": []}
    assert any("hash" in p for p in chain_problems([blocks[0], forged, blocks[2]]))


def test_event_record_flattens_the_body() -> None:
    row = (7, 2, "b", 12.5, "deposit", {"account": 3, "amount": 10.0})
    assert event_record(row) == {
        "seq": 7,
        "epoch": 2,
        "sequencer": "b",
        "time": 12.5,
        "kind": "deposit",
        "account": 3,
        "amount": 10.0,
    }
    assert event_record((7, 2, "b", 12.5, "deposit", '{"account": 3}'))["account"] == 3


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("all", set(MITIGATIONS)),
        ("none", set()),
        ("", set()),
        ("ALL", set(MITIGATIONS)),
        ("fencing, auto_failover", {"fencing", "auto_failover"}),
    ],
)
def test_parse_mitigations(spec: str, expected: set[str]) -> None:
    assert parse_mitigations(spec) == expected


def test_parse_mitigations_names_the_unknown_switch() -> None:
    with pytest.raises(ValueError, match=r"unknown mitigation 'fenceing'.*fencing"):
        parse_mitigations("readiness_gates,fenceing")


@pytest.mark.parametrize("standby", [False, True])
def test_reference_stack_definition(standby: bool) -> None:
    stack = resolve(load(reference_stack_path()), {"standby": standby})
    names = set(stack.service_names)
    assert {"db", "feeds", "oracle", "sequencer", "risk", "writer", "chain"} <= names
    assert ("sequencer_b" in names) is standby
    order = stack.start_order()
    for spec in stack.services:
        for dep in spec.depends_on:
            assert order.index(dep) < order.index(spec.name)
        assert spec.command[:2] == ("{python}", "-m")
    links = {lk.name: lk for lk in stack.links}
    for lk in links.values():
        assert lk.name == f"{lk.client}-{lk.server}"
        assert lk.server in names and (lk.client in names or lk.client == "clients")
    # every {link:X} used in a command is a defined link whose client is that service
    for spec in stack.services:
        for item in spec.command:
            if item.startswith("{link:"):
                assert links[item[6:-1]].client == spec.name
    assert stack.service("db").health.kind == "pg"
    assert {s.site for s in stack.services} == ({"a", "b", "core"} if standby else {"a", "core"})
    assert stack.bindings.history is not None and stack.bindings.orders is not None
    assert stack.builtins("venues") == ("feeds",) and stack.builtins("postgres") == ("db",)


def test_the_stack_file_declares_the_switches_and_markets_the_services_know() -> None:
    stack = load(reference_stack_path())
    assert stack.mitigation_names == MITIGATIONS  # what every service's --mitigations parses
    assert stack.markets == MARKETS  # what the services trade (chaos.world)


def test_funding_jump_bound() -> None:
    # max_rate 0.0002 at price 60000: 12 per interval; 2 elapsed intervals allow 36
    assert funding_jump_ok(6000.0, 6030.0, 60_000.0, 0.0002, 2)
    assert not funding_jump_ok(6000.0, 6040.0, 60_000.0, 0.0002, 2)
    assert not funding_jump_ok(6000.0, 0.0, 60_000.0, 0.0002, 2)  # the Paradex zero
    assert not funding_jump_ok(6000.0, float("nan"), 60_000.0, 0.0002, 2)


def test_true_funding_moves_within_the_bound_every_interval() -> None:
    path = PricePath(3, 1000.0)
    for k in range(1, 50):
        t = 1000.0 + k
        before = path.funding_index("BTC-PERP", t - 1)
        after = path.funding_index("BTC-PERP", t)
        assert funding_jump_ok(before, after, path.price("BTC-PERP", t), 0.0002, 1)


def test_venue_faults() -> None:
    feeds = Venues(seed=3, epoch=1000.0, venues=3)
    t = 1010.0
    clean = feeds.quote(1, "BTC-PERP", t)
    assert clean is not None
    assert clean == pytest.approx(PricePath(3, 1000.0).price("BTC-PERP", t), rel=3e-4)
    feeds.add_fault({"venue": 1, "market": "BTC-PERP", "kind": "scale", "value": 2.0})
    assert feeds.quote(1, "BTC-PERP", t) == pytest.approx(2 * clean)
    assert feeds.quote(0, "BTC-PERP", t) != pytest.approx(2 * clean)
    feeds.faults.clear()
    feeds.add_fault({"venue": "*", "market": "*", "kind": "zero"})
    assert feeds.quote(2, "ETH-PERP", t) == 0.0
    feeds.faults.clear()
    feeds.add_fault({"venue": 0, "kind": "drop"})
    assert feeds.quote(0, "ETH-PERP", t) is None
