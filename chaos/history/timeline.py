"""The event log as it was written, rollbacks included (pure, streaming).

``events.jsonl`` is the log as it ended: after a rollback to seq S the events after S are
gone from it (they are in ``rolled_back.jsonl``, tagged with their rollback) and new events
took the seqs after S again. ``replay_as_written`` feeds a ``Replayer`` every event in the
order it was written, with each rollback at its place, so the replayer can undo what the
rollback undid (it restores the checkpoint it gave when the log passed S).

Where an event was written follows from the seqs alone: new events always take the seqs
after the last rollback's S, so an event (in the final log, or removed by rollback j) with
seq s was written after the last earlier rollback i whose S_i < s, and before the next
rollback (in seq order within that stretch). No clock is trusted.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chaos.history.events import Event
from chaos.history.response import RollbackRecord


class Replayer(Protocol):
    def apply(self, event: Event, reverted_by: RollbackRecord | None) -> None:
        """One event as written; ``reverted_by``: the rollback that later removed it."""

    def checkpoint(self) -> Any:
        """A copy of the state now (the log is at the seq of a coming rollback)."""

    def restore(self, saved: Any, rollback: RollbackRecord) -> None:
        """``rollback`` happened: go back to ``saved`` (from ``checkpoint``); None when the
        log had not passed the rollback's seq (nothing to undo). Called for every rollback,
        in order."""


@dataclass
class Timeline:
    """What ``replay_as_written`` found: the rollbacks, in order, and any problem."""

    rollbacks: list[RollbackRecord] = field(default_factory=list)
    reverted: dict[int, int] = field(default_factory=dict)  # rollback index -> events
    problems: list[str] = field(default_factory=list)


def replay_as_written(
    final_log: Callable[[], Iterable[Event]],
    rolled_back: Callable[[], Iterable[Event]] | None,
    rollbacks: Sequence[RollbackRecord],
    replayer: Replayer,
) -> Timeline:
    """Feed ``replayer`` the log as written (see the module). ``final_log`` and
    ``rolled_back`` open their source again on every call (one pass per rollback + 1)."""
    timeline = Timeline(list(rollbacks))
    if not rollbacks:
        for event in final_log():
            replayer.apply(event, None)
        return timeline
    if rolled_back is None:
        timeline.problems.append(
            f"{len(rollbacks)} rollback(s) recorded but no rolled_back.jsonl: the events "
            "they removed are unknown"
        )
    ids = _rollback_ids(rollbacks, rolled_back, timeline)
    saved: dict[int, Any] = {}
    bounds = [r.to_seq for r in rollbacks]
    for segment in range(len(rollbacks) + 1):
        for event, reverted_by in _segment(segment, bounds, ids, final_log, rolled_back):
            seq = event["seq"]
            for j in range(segment, len(rollbacks)):
                if j not in saved and seq > bounds[j]:
                    saved[j] = replayer.checkpoint()
            if reverted_by is not None:
                timeline.reverted[reverted_by] = timeline.reverted.get(reverted_by, 0) + 1
            replayer.apply(event, None if reverted_by is None else rollbacks[reverted_by])
        if segment < len(rollbacks):
            replayer.restore(saved.pop(segment, None), rollbacks[segment])
            for j in list(saved):
                if bounds[j] > bounds[segment]:
                    del saved[j]  # it holds events this rollback removed: taken again later
    return timeline


def _segment(
    segment: int,
    bounds: Sequence[int],
    ids: dict[Any, int],
    final_log: Callable[[], Iterable[Event]],
    rolled_back: Callable[[], Iterable[Event]] | None,
) -> Iterator[tuple[Event, int | None]]:
    """The events written between rollback ``segment - 1`` and rollback ``segment``."""

    def written_in(seq: int, before: int) -> int:
        return max((i + 1 for i in range(before) if bounds[i] < seq), default=0)

    kept = ((e, None) for e in final_log() if written_in(e["seq"], len(bounds)) == segment)
    streams: list[Iterable[tuple[Event, int | None]]] = [kept]
    if rolled_back is not None:
        removed = (
            (e, ids[e.get("rollback")])
            for e in rolled_back()
            if e.get("rollback") in ids
            and ids[e.get("rollback")] >= segment
            and written_in(e["seq"], ids[e.get("rollback")]) == segment
        )
        streams.append(removed)
    yield from heapq.merge(*streams, key=lambda pair: pair[0]["seq"])


def _rollback_ids(
    rollbacks: Sequence[RollbackRecord],
    rolled_back: Callable[[], Iterable[Event]] | None,
    timeline: Timeline,
) -> dict[Any, int]:
    """Map the ``rollback`` tags of rolled_back.jsonl to the recorded rollbacks' indexes:
    by id when the records carry ids, else by order of first appearance."""
    seen: list[Any] = []
    if rolled_back is not None:
        for event in rolled_back():
            tag = event.get("rollback")
            if tag not in seen:
                seen.append(tag)
    recorded = [r.rollback for r in rollbacks]
    if all(tag is not None for tag in recorded):
        ids = {tag: i for i, tag in enumerate(recorded)}
        ids.update({str(tag): i for i, tag in enumerate(recorded)})
        unknown = [tag for tag in seen if tag not in ids]
    else:
        ids = {tag: i for i, tag in enumerate(seen[: len(rollbacks)])}
        unknown = seen[len(rollbacks) :]
    if unknown:
        timeline.problems.append(
            f"rolled_back.jsonl names rollback(s) {unknown} that faults.jsonl does not record"
        )
    return ids
