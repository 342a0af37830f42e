"""The History reader: streaming, re-readable sources; run.json; torn and bad lines."""

from __future__ import annotations

import json
from pathlib import Path

import histgen
import pytest

from chaos.history import History, HistoryError


def _run(tmp_path: Path) -> Path:
    return histgen.clean_history(1, 10).write(tmp_path)


def test_open_reads_run_json_and_accepts_either_folder(tmp_path: Path) -> None:
    run_dir = _run(tmp_path)
    for folder in (run_dir, run_dir / "history"):
        history = History.open(folder)
        assert history.run.seed == 1
        assert history.run.epoch == histgen.EPOCH
        assert history.run.markets == histgen.MARKETS


def test_every_source_is_re_readable_in_written_order(tmp_path: Path) -> None:
    b = histgen.clean_history(1, 10)
    history = History.open(b.write(tmp_path))
    first = [e["seq"] for e in history.events()]
    assert first == [e["seq"] for e in history.events()] == [e["seq"] for e in b.events]
    assert [blk["height"] for blk in history.blocks()] == list(range(1, len(b.blocks) + 1))
    assert len(list(history.client_ops())) == len(b.client)
    assert [m.mode for m in history.modes()] == ["post_only", "normal"]
    assert {f.action for f in history.faults()} == {"price_move", "node_loss"}
    assert len(list(history.oracle())) == len(b.oracle)


def test_missing_source_reads_empty(tmp_path: Path) -> None:
    run_dir = _run(tmp_path)
    (run_dir / "history" / "chain.jsonl").unlink()
    history = History.open(run_dir)
    assert not history.has("chain")
    assert list(history.blocks()) == []
    assert list(history.load_samples()) == []


def test_no_run_json_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match=r"no history/run\.json"):
        History.open(tmp_path)


def test_run_json_without_seed_names_it(tmp_path: Path) -> None:
    (tmp_path / "history").mkdir()
    (tmp_path / "history" / "run.json").write_text(json.dumps({"epoch": 1.0}))
    with pytest.raises(HistoryError, match="seed"):
        History.open(tmp_path)


def test_torn_last_line_is_skipped_and_noted(tmp_path: Path) -> None:
    run_dir = _run(tmp_path)
    path = run_dir / "history" / "events.jsonl"
    n = len(path.read_text().splitlines())
    with path.open("a") as fh:
        fh.write('{"seq": 9999, "kind": "fi')
    history = History.open(run_dir)
    assert len(list(history.events())) == n
    assert history.problems and "partial last line" in history.problems[0]


def test_bad_line_in_the_middle_names_file_and_line(tmp_path: Path) -> None:
    run_dir = _run(tmp_path)
    path = run_dir / "history" / "events.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(2, "not json\n")
    path.write_text("".join(lines))
    with pytest.raises(HistoryError, match=r"events\.jsonl:3:"):
        list(History.open(run_dir).events())


def test_blank_lines_and_nan_values_are_read(tmp_path: Path) -> None:
    run_dir = _run(tmp_path)
    path = run_dir / "history" / "oracle.jsonl"
    with path.open("a") as fh:
        fh.write("\n")
        fh.write('{"time": 1.0, "market": "BTC-PERP", "mark_price": NaN, "funding_index": 0}\n')
    last = list(History.open(run_dir).oracle())[-1]
    assert last["mark_price"] != last["mark_price"]  # NaN survives to the checkers


def test_unknown_source_name_lists_the_known(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="known: events"):
        History.open(_run(tmp_path)).path("trades")


def test_decode_lines_reads_like_records(tmp_path: Path) -> None:
    """The batch decoder used by hot loops gives the same records, blank and NaN lines
    included, and names a bad line by its number."""
    run_dir = _run(tmp_path)
    path = run_dir / "history" / "oracle.jsonl"
    with path.open("a") as fh:
        fh.write("\n")
        fh.write('{"time": 1.0, "market": "BTC-PERP", "mark_price": NaN, "funding_index": 0}\n')
    history = History.open(run_dir)
    lines = history.open_lines("oracle")
    assert lines is not None
    with lines:
        raw = lines.readlines()
    decoded = history.decode_lines("oracle", raw, 1)
    assert len(decoded) == len(list(history.oracle())) == len(raw) - 1
    with pytest.raises(HistoryError, match=r"oracle\.jsonl:8:"):
        history.decode_lines("oracle", [*raw[:2], b"oops\n"], 6)
    assert history.open_lines("load") is None
