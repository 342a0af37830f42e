"""sequence_integrity: the event log's seq is 1, 2, 3, ... and each epoch has one writer.

Holds when, over ``events.jsonl`` in the order written: seq starts at 1 and increases by
exactly 1 (no gap, no duplicate, no reordering); every event of an epoch names the same
sequencer instance; and no event of epoch e follows the first event of a later epoch (a
deposed primary writing after the standby took over: split brain). Unit: events (the
n-th line of the log); an event with several problems is one violated event.
"""

from __future__ import annotations

from chaos.checkers.base import Findings, Verdict, when
from chaos.checkers.params import CheckParams
from chaos.history.reader import History

NAME = "sequence_integrity"


def check(history: History, params: CheckParams) -> Verdict:
    found = Findings(NAME, params.max_counterexamples)
    if not history.has("events"):
        return found.verdict("events", unknown="no events.jsonl in the history")
    expected = 1
    writer_of: dict[object, object] = {}
    newest_epoch: int | None = None
    newest_epoch_seq = 0
    n = 0
    for event in history.events():
        n += 1
        seq = event["seq"]
        if seq != expected:
            _seq_problem(found, n, seq, expected, when(history, event.get("time")))
            if seq < expected:
                seq = expected - 1  # keep expecting the successor of the highest seen
        expected = seq + 1
        epoch = event.get("epoch")
        sequencer = event.get("sequencer")
        writer = writer_of.setdefault(epoch, sequencer)
        if writer != sequencer:
            found.add(
                {
                    "problem": f"seq {event['seq']}: epoch {epoch} written by sequencer "
                    f"{sequencer!r}, but its first events came from {writer!r}",
                    "seq": event["seq"],
                    "epoch": epoch,
                    "sequencer": sequencer,
                    "epoch_writer": writer,
                    **when(history, event.get("time")),
                },
                unit=n,
            )
        if isinstance(epoch, int):
            if newest_epoch is None or epoch > newest_epoch:
                newest_epoch, newest_epoch_seq = epoch, event["seq"]
            elif epoch < newest_epoch:
                found.add(
                    {
                        "problem": f"seq {event['seq']} written with epoch {epoch} by "
                        f"{sequencer!r} after epoch {newest_epoch} began at seq "
                        f"{newest_epoch_seq} (a deposed writer)",
                        "seq": event["seq"],
                        "epoch": epoch,
                        "sequencer": sequencer,
                        "newer_epoch": newest_epoch,
                        "newer_epoch_first_seq": newest_epoch_seq,
                        **when(history, event.get("time")),
                    },
                    unit=n,
                )
    found.checked = n
    return found.verdict("events", nothing="the event log is empty")


def _seq_problem(
    found: Findings, n: int, seq: int, expected: int, times: dict[str, object]
) -> None:
    if seq > expected:
        missing = seq - expected
        what = f"seq jumps from {expected - 1} to {seq} ({missing} missing)"
    elif seq == expected - 1:
        what = f"seq {seq} written twice"
    else:
        what = f"seq {seq} written after seq {expected - 1} (duplicate or out of order)"
    found.add({"problem": what, "seq": seq, "expected_seq": expected, **times}, unit=n)
