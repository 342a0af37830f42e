"""no_corrupt_chain_writes: the chain is intact, equals the db, and carries true market data.

Holds when, over ``chain.jsonl`` (the chain as exported, in height order):
- heights are 1, 2, 3, ... with one block per height (a repeated height is a fork);
- each block's ``prev_hash`` is the previous block's ``hash`` and its ``hash`` is the
  recomputed block hash (``block_hash``: canonical form in docs/checkers.md);
- blocks cover the event log contiguously (``first_seq`` = previous ``last_seq`` + 1), each
  block's ``events`` are exactly seqs ``first_seq..last_seq`` and each equals, field by
  field, the db event of the same seq in ``events.jsonl``;
- every ``market_data`` entry is valid under truth: the mark price is finite, > 0 and
  within ``price_tolerance`` (relative) of the true price at its ``ts``; the funding index
  is finite and within ``funding_tolerance`` of the true funding index at its ``ts``, and
  it moved from the market's previous on-chain value by at most
  ``max_funding_rate * true price * (funding intervals elapsed + 1)``.
Unit: blocks (by position in the file, so both blocks of a fork count). A block with any
problem is one violated block, whatever the number of its problems; a db event that no
block carries counts against the block whose range holds its seq (else the block being
read when it was passed).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from io import BytesIO
from itertools import islice
from typing import Any, BinaryIO

from chaos.checkers.base import Findings, Verdict
from chaos.checkers.marketdata import MarketDataCheck
from chaos.checkers.params import CheckParams
from chaos.history.events import Block, Event
from chaos.history.reader import History, orjson

NAME = "no_corrupt_chain_writes"
HASH_EXCLUDED = frozenset({"hash"})
_BATCH = 100


def _stdlib_compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _sorted_json(block: Mapping[str, Any]) -> bytes | None:
    """orjson's sorted-keys JSON of ``block``, or None without orjson."""
    return None if orjson is None else bytes(orjson.dumps(block, option=orjson.OPT_SORT_KEYS))


# Compact JSON as the exporter writes event lines (orjson: same bytes for plain values).
_compact: Callable[[Any], bytes] = _stdlib_compact if orjson is None else orjson.dumps


def canonical_bytes(block: Mapping[str, Any]) -> bytes:
    """The bytes a block's hash covers: every field but ``hash``, as JSON with sorted keys,
    no whitespace, ASCII escapes (``json.dumps(sort_keys=True, separators=(",", ":"))``)."""
    body = {k: v for k, v in block.items() if k not in HASH_EXCLUDED}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def block_hash(block: Mapping[str, Any]) -> str:
    """sha256 hex of ``canonical_bytes(block)``."""
    return hashlib.sha256(canonical_bytes(block)).hexdigest()


def _hash_matches(block: Mapping[str, Any], stored: object) -> bool:
    # orjson writes the same bytes for the numbers, strings and keys a block holds except
    # some exponent floats (1e-05 vs 0.00001); a mismatch is confirmed with the stdlib.
    fast = _sorted_json({k: v for k, v in block.items() if k not in HASH_EXCLUDED})
    if fast is not None and hashlib.sha256(fast).hexdigest() == stored:
        return True
    return block_hash(block) == stored


class _DbCursor:
    """Forward lookup of db events by seq (the log and the chain are both in seq order).

    ``match_raw`` is the fast path: the log's next lines are byte for byte the block's
    events as the exporter writes them (compact JSON in the same key order), so nothing
    needs decoding. Otherwise lines are decoded in batches and looked up by seq."""

    def __init__(
        self, history: History, lines: BinaryIO, on_skipped: Callable[[Event], None]
    ) -> None:
        self._history = history
        self._lines = lines
        self._lineno = 0  # lines read so far
        self._buffer: list[Event] = []  # decoded, not yet passed
        self._at = 0
        self._on_skipped = on_skipped  # told of each db event passed over (on no block)

    def _read(self, count: int) -> list[bytes]:
        lines = list(islice(self._lines, count))
        self._lineno += len(lines)
        return lines

    def _decode(self, lines: list[bytes]) -> list[Event]:
        first = self._lineno - len(lines) + 1
        return self._history.decode_lines("events", lines, first)

    def match_raw(self, events: list[Event]) -> bool:
        """True when the next ``len(events)`` lines are exactly ``events`` (consumed);
        False leaves them decoded for ``take``/``find``."""
        if self._at < len(self._buffer):
            return False
        lines = self._read(len(events))
        if b"".join(lines) == b"\n".join(map(_compact, events)) + b"\n":
            return True
        self._buffer, self._at = self._decode(lines), 0
        return False

    def _ready(self) -> bool:
        while self._at >= len(self._buffer):
            lines = self._read(_BATCH)
            if not lines:
                return False
            self._buffer, self._at = self._decode(lines), 0
        return True

    def _seek(self, seq: int) -> Event | None:
        """Pass every db event before ``seq`` (each one noted as on no block); the next
        event, not consumed, or None at the log's end."""
        while self._ready():
            event = self._buffer[self._at]
            if event["seq"] >= seq:
                return event
            self._on_skipped(event)
            self._at += 1
        return None

    def find(self, seq: int) -> Event | None:
        """The db event with ``seq``, consumed (None if the log has none left); earlier
        ones are passed. Two db events with one seq are matched by two chain events."""
        event = self._seek(seq)
        if event is None or event["seq"] != seq:
            return None
        self._at += 1
        return event

    def take(self, first_seq: int, count: int) -> list[Event]:
        """The next ``count`` db events from ``first_seq`` on (fewer at the log's end)."""
        self._seek(first_seq)
        taken: list[Event] = []
        while len(taken) < count and self._ready():
            end = min(len(self._buffer), self._at + count - len(taken))
            taken += self._buffer[self._at : end]
            self._at = end
        return taken

    def give_back(self, taken: list[Event]) -> None:
        """Undo ``take``: the events come again, in order, before the rest."""
        self._buffer = taken + self._buffer[self._at :]
        self._at = 0


def check(history: History, params: CheckParams) -> Verdict:
    found = Findings(NAME, params.max_counterexamples)
    if not history.has("chain"):
        return found.verdict("blocks", unknown="no chain.jsonl in the history")
    truth = history.truth()
    place = _Place()
    with history.open_lines("events") or BytesIO() as lines:
        db = _DbCursor(history, lines, lambda event: _on_no_block(found, place, event))
        _check_blocks(history, db, MarketDataCheck(truth, params, found), found, place)
    return found.verdict("blocks", nothing="the chain has no block")


class _Place:
    """Where the check is: the block being read and the one before (unit, seq range)."""

    def __init__(self) -> None:
        self.unit = 0
        self.previous: tuple[int, object, object] = (0, None, None)  # unit, first, last seq
        self._first: object = None
        self._last: object = None

    def move(self, unit: int, block: Block) -> None:
        if self.unit:
            self.previous = (self.unit, self._first, self._last)
        self.unit = unit
        self._first, self._last = block.get("first_seq"), block.get("last_seq")

    def owner(self, seq: object) -> int:
        """The block (unit) whose range holds ``seq``: the previous one, else this one."""
        unit, first, last = self.previous
        if (
            unit
            and isinstance(seq, int)
            and isinstance(first, int)
            and isinstance(last, int)
            and first <= seq <= last
        ):
            return unit
        return self.unit


def _on_no_block(found: Findings, place: _Place, event: Event) -> None:
    found.add(
        {
            "problem": f"db event seq {event.get('seq')} ({event.get('kind')} by sequencer "
            f"{event.get('sequencer')!r}, epoch {event.get('epoch')}) is on no block, "
            "though the chain goes past it",
            "seq": event.get("seq"),
            "db_event": dict(event),
        },
        unit=place.owner(event.get("seq")),
    )


def _check_blocks(
    history: History,
    db: _DbCursor,
    market_check: MarketDataCheck,
    found: Findings,
    place: _Place,
) -> None:
    prev_height = 0
    prev_hash: object = None
    prev_last_seq = 0
    for n_blocks, block in enumerate(history.blocks(), 1):
        place.move(n_blocks, block)
        height = block.get("height")
        _check_links(found, n_blocks, block, prev_height, prev_hash, prev_last_seq)
        _check_events(found, n_blocks, block, db)
        for entry in block.get("market_data") or ():
            market_check.check(n_blocks, height, entry)
        prev_height = height if isinstance(height, int) else prev_height + 1
        prev_hash = block.get("hash")
        last_seq = block.get("last_seq")
        prev_last_seq = last_seq if isinstance(last_seq, int) else prev_last_seq
        found.checked = n_blocks


def _check_links(
    found: Findings,
    unit: int,
    block: Block,
    prev_height: int,
    prev_hash: object,
    prev_last_seq: int,
) -> None:
    height = block.get("height")
    if height != prev_height + 1:
        if isinstance(height, int) and height <= prev_height:
            what = f"fork: a second block at height {height} (after height {prev_height})"
        else:
            what = f"heights jump from {prev_height} to {height}"
        found.add({"problem": what, "height": height, "previous_height": prev_height}, unit=unit)
    if prev_hash is not None and block.get("prev_hash") != prev_hash:
        found.add(
            {
                "problem": f"block {height} prev_hash {block.get('prev_hash')!r} is not the "
                f"hash of block {prev_height} ({prev_hash!r})",
                "height": height,
                "prev_hash": block.get("prev_hash"),
                "previous_block_hash": prev_hash,
            },
            unit=unit,
        )
    stored = block.get("hash")
    if not _hash_matches(block, stored):
        found.add(
            {
                "problem": f"block {height} hash {stored!r} does not match its contents "
                f"(recomputed {block_hash(block)})",
                "height": height,
                "hash": stored,
                "recomputed_hash": block_hash(block),
            },
            unit=unit,
        )
    first_seq = block.get("first_seq")
    if first_seq != prev_last_seq + 1:
        found.add(
            {
                "problem": f"block {height} starts at seq {first_seq}, but the previous block "
                f"ended at seq {prev_last_seq}",
                "height": height,
                "first_seq": first_seq,
                "previous_last_seq": prev_last_seq,
            },
            unit=unit,
        )


def _check_events(found: Findings, unit: int, block: Block, db: _DbCursor) -> None:
    first_seq, last_seq = block.get("first_seq"), block.get("last_seq")
    events = block.get("events") or []
    if (
        events
        and isinstance(first_seq, int)
        and isinstance(last_seq, int)
        and len(events) == last_seq - first_seq + 1
        and events[0].get("seq") == first_seq
        and events[-1].get("seq") == last_seq
    ):
        # Fast paths: the db's lines of the block's range are its events byte for byte,
        # or, decoded, equal them as a whole.
        if db.match_raw(events):
            return
        taken = db.take(first_seq, len(events))
        if taken == events:
            return
        db.give_back(taken)
    _check_events_one_by_one(found, unit, block, db)


def _check_events_one_by_one(found: Findings, unit: int, block: Block, db: _DbCursor) -> None:
    height = block.get("height")
    first_seq, last_seq = block.get("first_seq"), block.get("last_seq")
    expected = first_seq if isinstance(first_seq, int) else None
    for event in block.get("events") or ():
        seq = event.get("seq")
        if expected is not None and seq != expected:
            found.add(
                {
                    "problem": f"block {height} ({first_seq}..{last_seq}) holds seq {seq} "
                    f"where seq {expected} belongs",
                    "height": height,
                    "seq": seq,
                    "expected_seq": expected,
                },
                unit=unit,
            )
            expected = seq if isinstance(seq, int) else None
        if expected is not None:
            expected += 1
        db_event = db.find(seq) if isinstance(seq, int) else None
        if db_event is None:
            found.add(
                {
                    "problem": f"block {height} carries event seq {seq} that the db log lacks",
                    "height": height,
                    "seq": seq,
                    "chain_event": dict(event),
                },
                unit=unit,
            )
        elif db_event != event:
            diffs = _diff(db_event, event)
            first = diffs[0]
            found.add(
                {
                    "problem": f"block {height} event seq {seq} differs from the db: "
                    f"{first['field']} is {first['chain']!r} on chain, {first['db']!r} in the db",
                    "height": height,
                    "seq": seq,
                    "differences": diffs,
                },
                unit=unit,
            )
    if expected is not None and isinstance(last_seq, int) and expected != last_seq + 1:
        found.add(
            {
                "problem": f"block {height} claims seqs {first_seq}..{last_seq} but its events "
                f"end at seq {expected - 1}",
                "height": height,
                "first_seq": first_seq,
                "last_seq": last_seq,
            },
            unit=unit,
        )


def _diff(db_event: Mapping[str, Any], chain_event: Mapping[str, Any]) -> list[dict[str, Any]]:
    fields = sorted(set(db_event) | set(chain_event))
    return [
        {"field": f, "db": db_event.get(f), "chain": chain_event.get(f)}
        for f in fields
        if db_event.get(f) != chain_event.get(f) or (f in db_event) != (f in chain_event)
    ]
