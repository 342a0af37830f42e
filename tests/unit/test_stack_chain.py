"""The chain node's store: contiguous hash-linked appends, 409s, rollback, torn tails."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from chaos.stack.blocks import GENESIS_HASH, make_block
from chaos.stack.chain import Chain


def block(height: int, prev_hash: str) -> dict[str, Any]:
    event = {
        "seq": height,
        "epoch": 1,
        "sequencer": "a",
        "time": 1.0,
        "kind": "mode",
        "mode": "normal",
        "source": "t",
    }
    return make_block(height, prev_hash, [event], [], height, height, float(height))


def test_append_conflicts_rollback_and_reload(tmp_path: Path) -> None:
    async def scenario() -> None:
        chain = Chain(tmp_path)
        b1 = block(1, GENESIS_HASH)
        assert (await chain.append(b1)).status == 200
        assert (await chain.append(block(1, GENESIS_HASH))).status == 409  # height taken
        assert (await chain.append(block(2, "f" * 64))).status == 409  # wrong prev_hash
        assert (await chain.append({**block(2, b1["hash"]), "events": []})).status == 400
        b2 = block(2, b1["hash"])
        assert (await chain.append(b2)).status == 200
        assert chain.head()["height"] == 2 and chain.head()["last_seq"] == 2
        assert await chain.rollback(1) == {"height": 1, "dropped": 1}
        assert chain.head()["hash"] == b1["hash"]
        assert (await chain.append(block(2, b1["hash"]))).status == 200

    asyncio.run(scenario())
    reloaded = Chain(tmp_path)
    assert [b["height"] for b in reloaded.blocks] == [1, 2]


def test_a_torn_last_line_is_dropped_at_start(tmp_path: Path) -> None:
    b1 = block(1, GENESIS_HASH)
    path = tmp_path / "blocks.jsonl"
    path.write_text(json.dumps(b1) + "\n" + json.dumps(block(2, b1["hash"]))[:40])
    chain = Chain(tmp_path)
    assert chain.head()["height"] == 1
    assert path.read_text() == json.dumps(b1) + "\n"
