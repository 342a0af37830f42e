"""Recovered-state invariants of the chain (docs/checkers.md, "After the response").

rollback_restores_snapshot holds when, for every recorded ``chain_rollback``:
- the stack says it rolled the chain back (``chain.rolled_back`` is not false);
- the final chain's block at the snapshot's height has the snapshot's hash (so blocks
  1..H are the chain the snapshot saw: each block's hash covers its predecessor's);
- every later block is valid: linked to its predecessor, its hash its content's, its
  events exactly the seqs after the previous block's and each equal to the final event
  log's event of that seq (so no event the rollback removed came back), and its market data
  true (as ``no_corrupt_market_data_remains`` judges it).
Without a snapshot the rollback's own ``chain_height`` is the height, and no hash is
compared. Memory: the final log's events after the lowest rollback height.

no_corrupt_market_data_remains holds when every ``market_data`` entry on the final chain is
a finite, positive mark within ``price_tolerance`` (relative) of the true price at its
``ts`` and a finite funding index within ``funding_tolerance`` of the true index: what is
left on chain after the response (a rollback removes the blocks that carried the corrupt
data; blocks written since must not carry any).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeGuard

from chaos.checkers.base import Findings, Verdict, rounded
from chaos.checkers.chain import block_hash
from chaos.checkers.params import CheckParams
from chaos.history.events import Block, Event
from chaos.history.reader import History
from chaos.history.response import RollbackRecord, response_log
from chaos.history.truth import RunTruth

SNAPSHOT = "rollback_restores_snapshot"
MARKET_DATA = "no_corrupt_market_data_remains"
GENESIS_HASH = "0" * 64


def market_data_problem(
    truth: RunTruth, entry: Mapping[str, Any], params: CheckParams
) -> str | None:
    """Why one on-chain ``market_data`` entry is corrupt under truth, or None."""
    market, mark, index, ts = (
        entry.get(k) for k in ("market", "mark_price", "funding_index", "ts")
    )
    if not isinstance(market, str) or market not in truth.markets:
        return f"unknown market {market!r}"
    if not _finite(ts):
        return f"{market} data has no valid ts"
    if not _finite(mark) or mark <= 0:
        return f"{market} mark price {mark!r}"
    true_price = truth.price(market, ts)
    if abs(mark / true_price - 1) > params.price_tolerance:
        return f"{market} mark price {rounded(mark)}; true {rounded(true_price)}"
    true_index = truth.funding_index(market, ts)
    if not _finite(index):
        return f"{market} funding index {index!r}; true {rounded(true_index)}"
    if abs(index - true_index) > params.funding_tolerance * abs(true_index):
        return f"{market} funding index {rounded(index)}; true {rounded(true_index)}"
    return None


def check_market_data(history: History, params: CheckParams) -> Verdict:
    found = Findings(MARKET_DATA, params.max_counterexamples)
    if not history.has("chain"):
        return found.verdict("market data entries", unknown="no chain.jsonl in the history")
    truth = history.truth()
    for block in history.blocks():
        for entry in block.get("market_data") or ():
            found.checked += 1
            why = market_data_problem(truth, entry, params)
            if why is not None:
                found.add(_corrupt(block, entry, why))
    if found.checked == 0:
        return found.verdict("market data entries", nothing="no market data on the chain")
    return found.verdict("market data entries")


def check_snapshot(history: History, params: CheckParams) -> Verdict:
    found = Findings(SNAPSHOT, params.max_counterexamples)
    response = response_log(history)
    if not response.rollbacks:
        return found.verdict("rollbacks", nothing="no chain_rollback in the history")
    if not history.has("chain"):
        return found.verdict("rollbacks", unknown="no chain.jsonl in the history")
    targets = [_target(response, r) for r in response.rollbacks]
    lowest = min(height for height, _, _ in targets)
    blocks = [b for b in history.blocks() if b.get("height", 0) >= max(lowest, 1)]
    floor = blocks[0].get("first_seq", 1) if blocks else 1
    db = {e["seq"]: e for e in history.events() if e["seq"] >= floor}
    truth = history.truth()
    for height, expected_hash, rollback in targets:
        found.checked += 1
        if rollback.chain_rolled_back is False:
            found.add(
                {
                    "problem": f"{rollback.step}: the stack did not roll the chain back to "
                    f"height {height}",
                    "step": rollback.step,
                    "height": height,
                }
            )
        _check_after(found, blocks, db, truth, params, height, expected_hash, rollback)
    return found.verdict("rollbacks and the blocks after them")


def _target(response: Any, rollback: RollbackRecord) -> tuple[int, str | None, RollbackRecord]:
    snapshot = response.snapshot(rollback.snapshot) if rollback.snapshot else None
    if snapshot is not None and snapshot.chain_height is not None:
        return snapshot.chain_height, snapshot.chain_hash or None, rollback
    return rollback.chain_height or 0, None, rollback


def _check_after(
    found: Findings,
    blocks: list[Block],
    db: dict[int, Event],
    truth: RunTruth,
    params: CheckParams,
    height: int,
    expected_hash: str | None,
    rollback: RollbackRecord,
) -> None:
    base: Mapping[str, Any] = next((b for b in blocks if b.get("height") == height), {})
    if height > 0 and expected_hash is not None and base.get("hash") != expected_hash:
        found.add(
            {
                "problem": f"{rollback.step}: block {height} is not the snapshot's (hash "
                f"{base.get('hash')}, the snapshot saw {expected_hash})",
                "step": rollback.step,
                "height": height,
                "snapshot": rollback.snapshot,
            }
        )
        return
    prev_hash = GENESIS_HASH if height == 0 else base.get("hash")
    last_seq = 0 if height == 0 else int(base.get("last_seq") or 0)
    for block in (b for b in blocks if b.get("height", 0) > height):
        found.checked += 1
        why = _block_problem(block, prev_hash, last_seq, db, truth, params)
        if why is not None:
            found.add(
                {
                    "problem": f"block {block.get('height')} after {rollback.step}'s rollback to "
                    f"height {height}: {why}",
                    "step": rollback.step,
                    "height": block.get("height"),
                    "rolled_back_to": height,
                }
            )
        prev_hash, last_seq = block.get("hash"), block.get("last_seq", last_seq)


def _block_problem(
    block: Block,
    prev_hash: object,
    last_seq: int,
    db: dict[int, Event],
    truth: RunTruth,
    params: CheckParams,
) -> str | None:
    if block.get("prev_hash") != prev_hash:
        return "its prev_hash does not link to the block before it"
    if block.get("hash") != block_hash(block):
        return "its hash does not match its content"
    events = block.get("events") or []
    first = block.get("first_seq")
    if first != last_seq + 1:
        return f"it starts at seq {first}, the block before it ended at {last_seq}"
    seqs = [e.get("seq") for e in events]
    if seqs != list(range(last_seq + 1, last_seq + 1 + len(events))):
        return f"its events are seqs {seqs[:5]}..., not contiguous from {last_seq + 1}"
    for event in events:
        if db.get(event["seq"]) != event:
            return f"its event seq {event['seq']} is not the event log's (a removed event?)"
    for entry in block.get("market_data") or ():
        why = market_data_problem(truth, entry, params)
        if why is not None:
            return f"it carries corrupt market data: {why}"
    return None


def _corrupt(block: Block, entry: Mapping[str, Any], why: str) -> dict[str, object]:
    return {
        "problem": f"block {block.get('height')} carries {why}",
        "height": block.get("height"),
        "market": entry.get("market"),
        "mark_price": entry.get("mark_price"),
        "funding_index": entry.get("funding_index"),
        "ts": entry.get("ts"),
    }


def _finite(x: object) -> TypeGuard[float]:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
