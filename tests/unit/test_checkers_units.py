"""Every checker counts in one unit: 0 <= violated <= checked, whatever is planted (many
problems in one block, one event or one order count once); a checker with nothing to
check says "unknown" for lack of evidence, never "held"."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import histgen
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos.checkers import REGISTRY, Verdict, run_all
from chaos.history.reader import History

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
Plant = Callable[[histgen.Builder, Any], Any]


def _many_problems_in_one_block(b: histgen.Builder, where: float) -> None:
    """Every event of one block tampered and its market data zeroed: one bad block."""
    block = b.blocks[int(where * (len(b.blocks) - 1))]
    for event in block["events"]:
        event["time"] += 1.0
    for entry in block["market_data"]:
        entry["funding_index"] = 0.0
        entry["mark_price"] = -1.0
    b.reseal_from(block["height"])


def _many_problems_in_one_event(b: histgen.Builder, where: float) -> None:
    """One event with a seq gap, another writer, and a deposed epoch at once."""
    index = max(1, int(where * (len(b.events) - 1)))
    for event in b.events[index:]:
        event["epoch"] = 2
    event = b.events[index - 1] if index > 1 else b.events[index]
    event.update(seq=event["seq"] + 5, sequencer="z", epoch=1)


def _one_order_executed_many_times(b: histgen.Builder, where: float) -> None:
    fill = next(e for e in b.events if e["kind"] == "fill" and e["taker_order_id"] is not None)
    for _ in range(2 + int(where * 20)):
        b.fill(fill["market"], fill["price"], fill["qty"], taker=fill["taker_account"],
               maker=fill["maker_account"], taker_order=fill["taker_order_id"])  # fmt: skip
    b.build_chain()


PLANTS: list[Plant] = [
    lambda b, w: histgen.plant_unintended_liquidation(b, above=1 + w),
    lambda b, w: histgen.plant_halted_liquidation(b),
    lambda b, w: histgen.plant_zero_funding_on_chain(b, 1 + int(w * (len(b.blocks) - 1))),
    lambda b, w: histgen.plant_fork(b, 1 + int(w * (len(b.blocks) - 1))),
    lambda b, w: histgen.plant_acked_order_missing(b),
    lambda b, w: histgen.plant_acked_order_not_on_chain(b),
    lambda b, w: histgen.plant_duplicate_acceptance(b),
    lambda b, w: histgen.plant_overfill(b),
    lambda b, w: histgen.plant_seq_gap(b, max(1, int(w * (len(b.events) - 1)))),
    lambda b, w: histgen.plant_seq_duplicate(b, int(w * (len(b.events) - 1))),
    lambda b, w: histgen.plant_deposed_writer(b, max(1, int(w * (len(b.events) - 2)))),
    lambda b, w: histgen.plant_fill_outside_band(b, 600 + 1000 * w),
    lambda b, w: histgen.plant_stale_fill(b, 6 + 10 * w),
    lambda b, w: histgen.plant_slow_recovery(b, 11 + 10 * w),
    lambda b, w: histgen.plant_off_market_fill(b, 2 + 50 * w),
    lambda b, w: histgen.plant_harm_chain(b, 2 + 50 * w),
    lambda b, w: histgen.plant_duplicate_harm_chain(b),
    _many_problems_in_one_block,
    _many_problems_in_one_event,
    _one_order_executed_many_times,
]


def verdicts(b: histgen.Builder) -> list[Verdict]:
    with tempfile.TemporaryDirectory() as tmp:
        return run_all(History.open(b.write(Path(tmp))))


def assert_one_unit(v: Verdict) -> None:
    assert v.unit, v.invariant
    assert 0 <= v.count <= v.checked, f"{v.invariant}: {v.count} of {v.checked} {v.unit}"
    if v.valid is False:
        assert v.count >= 1 and v.counterexamples, v.invariant
    elif v.valid is True:
        assert v.count == 0 and v.checked >= 1, f"{v.invariant} held with nothing checked"
    if v.no_evidence:
        assert v.valid == "unknown" and v.checked == 0, v.invariant


@FAST
@given(
    seed=st.integers(0, 2**31 - 1),
    plants=st.lists(st.tuples(st.sampled_from(range(len(PLANTS))), st.floats(0, 1)), max_size=4),
)
def test_every_checker_counts_violations_in_the_unit_it_checks(
    seed: int, plants: list[tuple[int, float]]
) -> None:
    b = histgen.clean_history(seed, 15)
    for index, where in plants:
        PLANTS[index](b, where)
    found = verdicts(b)
    assert [v.invariant for v in found] == list(REGISTRY)
    for v in found:
        assert_one_unit(v)


def test_one_bad_block_is_one_violated_block() -> None:
    b = histgen.clean_history(2, 30)
    _many_problems_in_one_block(b, 0.5)
    (v,) = [v for v in verdicts(b) if v.invariant == "no_corrupt_chain_writes"]
    assert v.count == 1 and len(v.counterexamples) > 1 and "problems" in v.message


def test_nothing_to_check_is_unknown_for_lack_of_evidence(tmp_path: Path) -> None:
    """A run that only deposited: no liquidation, fill, order, block, node loss."""
    b = histgen.Builder(1)
    b.start()
    b.deposit(1, 1000.0)
    b.write(tmp_path)
    for name in ("chain", "client"):
        (tmp_path / "history" / f"{name}.jsonl").write_text("")
    by_name = {v.invariant: v for v in run_all(History.open(tmp_path))}
    assert by_name.pop("sequence_integrity").valid is True  # one event, checked
    for name, v in by_name.items():
        assert (v.valid, v.no_evidence, v.checked) == ("unknown", True, 0), name
        assert v.message.startswith("no evidence: "), v.message


def test_a_missing_source_is_unknown_but_not_for_lack_of_evidence(tmp_path: Path) -> None:
    b = histgen.clean_history(1, 10)
    b.write(tmp_path)
    (tmp_path / "history" / "events.jsonl").unlink()
    by_name = {v.invariant: v for v in run_all(History.open(tmp_path))}
    v = by_name["no_off_market_execution"]
    assert v.valid == "unknown" and not v.no_evidence and "no events.jsonl" in v.message
