"""Blocks of the reference chain: canonical encoding and hash linking (pure).

A block is ``{height, prev_hash, hash, first_seq, last_seq, events, market_data, time}``;
``hash`` is the SHA-256 (hex) of the canonical JSON (sorted keys, no spaces) of every other
field. Height 1 has ``prev_hash`` ``GENESIS_HASH``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

GENESIS_HASH = "0" * 64


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def block_hash(block: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in block.items() if k != "hash"})).hexdigest()


def make_block(
    height: int,
    prev_hash: str,
    events: list[dict[str, Any]],
    market_data: list[dict[str, Any]],
    first_seq: int,
    last_seq: int,
    time_s: float,
) -> dict[str, Any]:
    block = {
        "height": height,
        "prev_hash": prev_hash,
        "first_seq": first_seq,
        "last_seq": last_seq,
        "events": events,
        "market_data": market_data,
        "time": time_s,
    }
    block["hash"] = block_hash(block)
    return block


def chain_problems(blocks: Iterable[dict[str, Any]]) -> list[str]:
    """Every broken link, wrong height or wrong hash in ``blocks`` (empty: a valid chain)."""
    problems = []
    prev_hash, expected = GENESIS_HASH, 1
    for block in blocks:
        if block.get("height") != expected:
            problems.append(f"height {block.get('height')} where {expected} was expected")
        if block.get("prev_hash") != prev_hash:
            problems.append(f"block {block.get('height')}: prev_hash does not link")
        if block.get("hash") != block_hash(block):
            problems.append(f"block {block.get('height')}: hash does not match its content")
        prev_hash, expected = block.get("hash", ""), expected + 1
    return problems


EVENT_COLUMNS = "seq, epoch, sequencer, time, kind, body"


def event_record(row: tuple[Any, ...]) -> dict[str, Any]:
    """One row of ``SELECT {EVENT_COLUMNS} FROM events`` as a history/chain event object."""
    seq, epoch, sequencer, time_s, kind, body = row
    if isinstance(body, str):
        body = json.loads(body)
    return {
        "seq": int(seq),
        "epoch": int(epoch),
        "sequencer": sequencer,
        "time": float(time_s),
        "kind": kind,
        **body,
    }
