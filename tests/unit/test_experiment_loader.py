"""The experiment loader: a valid file becomes the typed model; every problem names
file:line: field and the allowed values."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chaos.errors import InvalidExperiment
from chaos.experiment.actions import ACTIONS
from chaos.experiment.loader import load, problems
from chaos.experiment.steps import planned_times
from chaos.files.durations import parse_duration

DATA = Path(__file__).parents[1] / "data"

GOOD = """\
name: demo
description: a demo
incident: {date: 2026-01-19, operator: Paradex, sources: [https://example.org], mechanism: race}
seed: 7
duration: 40s
stack: {options: {standby: false, venues: 3}}
load: {users: 5, spawn_rate: 5}
steady_state:
  probes:
    - {probe: health}
    - {probe: error_rate, max: 0.05}
    - {probe: p99_latency, max: 500ms}
    - {probe: trading_mode, mode: normal}
safety:
  abort_when:
    - {probe: error_rate, above: 0.9, for: 10s}
variants:
  vulnerable: {mitigations: none, expect: {violated: [no_corrupt_chain_writes]}}
  mitigated: {mitigations: all}
  some: {mitigations: [fencing, readiness_gates]}
method:
  - {id: cancel, at: 5s, action: trading_mode, mode: cancel_only}
  - {at: 7s, action: restart, target: oracle, variants: [vulnerable]}
  - {after: cancel, at: 2s, action: latency, target: sequencer-db, latency: 200ms, for: 5s}
invariants: [no_corrupt_chain_writes, fills_within_band]
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    return str(path)


def test_good_file_becomes_the_typed_model(tmp_path: Path) -> None:
    experiment = load(write(tmp_path, GOOD))
    assert experiment.name == "demo"
    assert experiment.seed == 7
    assert experiment.duration_s == 40.0
    assert experiment.incident is not None and experiment.incident.date == "2026-01-19"
    assert [v.name for v in experiment.variants] == ["vulnerable", "mitigated", "some"]
    assert experiment.variant("vulnerable").mitigations == ()
    assert experiment.variant("vulnerable").expect_violated == ("no_corrupt_chain_writes",)
    assert "fencing" in experiment.variant("mitigated").mitigations
    assert experiment.variant("some").mitigations_flag == "fencing,readiness_gates"
    assert [p.kind for p in experiment.steady_state] == [
        "health", "error_rate", "p99_latency", "trading_mode",
    ]  # fmt: skip
    assert experiment.steady_state[2].limit == pytest.approx(0.5)
    assert experiment.abort_when[0].for_s == 10.0
    cancel, restart, latency = experiment.method
    assert cancel.id == "cancel" and cancel.params == {"mode": "cancel_only"}
    assert restart.target == "oracle" and restart.variants == ("vulnerable",)
    assert latency.after == "cancel" and latency.at_s == 2.0 and latency.for_s == 5.0
    assert latency.line == 24
    assert planned_times(experiment.method)["latency-2"] == (7.0, 12.0)


def test_steps_for_filters_variants_and_faults(tmp_path: Path) -> None:
    experiment = load(write(tmp_path, GOOD))
    assert [s.action for s in experiment.steps_for("vulnerable")] == [
        "trading_mode", "restart", "latency",
    ]  # fmt: skip
    assert [s.action for s in experiment.steps_for("mitigated")] == ["trading_mode", "latency"]
    assert [s.action for s in experiment.steps_for("vulnerable", no_faults=True)] == [
        "trading_mode"
    ]
    assert ACTIONS["latency"].is_fault and not ACTIONS["trading_mode"].is_fault


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("target: oracle,", "target: orcale,"), ":23: method[1].target: unknown "),
        (("duration: 40s", "duration: soon"), ":5: duration: expected a duration like 250ms"),
        (("seed: 7", "seed: true"), ":4: seed: expected a whole number"),
        (("mode: normal}", "mode: chaos}"), ":13: steady_state.probes[3].mode: unknown value"),
        (("[fencing, ", "[fencin, "), ":20: variants.some.mitigations[0]: unknown mitigation"),
        (("after: cancel", "after: nope"), ":24: method[2].after: unknown step 'nope'"),
        (("for: 5s}", "for: 50s}"), ":24: method[2].for: lasts until 57s"),
        (("description: a demo", "descriptio: a demo"), ":2: descriptio: unknown field"),
        (("    - {probe: health}", "    - {probe: helth}"), ":10: steady_state.probes[0].probe"),
        (("  - {id: cancel,", "  - {id: cancel, variants: [nope],"), ":22: method[0].variants[0]"),
        (("above: 0.9", "above: 9"), ":16: safety.abort_when[0].above: expected a number"),
        (("name: demo", "name: Demo Name"), ":1: name: 'Demo Name' is not a slug"),
    ],
)
def test_each_problem_names_file_line_and_field(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    assert change[0] in GOOD
    path = write(tmp_path, GOOD.replace(change[0], change[1], 1))
    with pytest.raises(InvalidExperiment) as caught:
        load(path)
    assert str(caught.value).startswith(path + expected.split(":", 2)[0] + ":")
    assert expected in str(caught.value)


def test_require_evidence_at_the_top_and_per_variant(tmp_path: Path) -> None:
    text = (
        GOOD.replace(
            "  mitigated: {mitigations: all}",
            "  mitigated: {mitigations: all, expect: {require_evidence: [fills_within_band]}}",
        )
        + "require_evidence: [no_corrupt_chain_writes]\n"
    )
    experiment = load(write(tmp_path, text))
    assert experiment.require_evidence == ("no_corrupt_chain_writes",)
    assert experiment.variant("mitigated").require_evidence == ("fills_within_band",)
    assert experiment.evidence_required("mitigated") == (
        "no_corrupt_chain_writes",
        "fills_within_band",
    )
    assert experiment.evidence_required("mitigated", no_faults=True) == ("no_corrupt_chain_writes",)
    assert experiment.evidence_required("vulnerable") == ("no_corrupt_chain_writes",)


@pytest.mark.parametrize(
    ("addition", "variant_expect", "expected"),
    [
        (
            "require_evidence: [no_lost_acked_orders]\n",
            None,
            ":26: require_evidence[0]: unknown invariant 'no_lost_acked_orders' (checked by "
            "this experiment: ",
        ),
        (
            "",
            "{require_evidence: nope}",
            ":19: variants.mitigated.expect.require_evidence: unknown invariant 'nope'",
        ),
        ("require_evidence: 3\n", None, ":26: require_evidence: expected a list of invariants"),
    ],
)
def test_require_evidence_names_only_this_experiments_invariants(
    tmp_path: Path, addition: str, variant_expect: str | None, expected: str
) -> None:
    text = GOOD + addition
    if variant_expect is not None:
        text = text.replace(
            "  mitigated: {mitigations: all}",
            f"  mitigated: {{mitigations: all, expect: {variant_expect}}}",
        )
    path = write(tmp_path, text)
    with pytest.raises(InvalidExperiment) as caught:
        load(path)
    assert expected in str(caught.value), str(caught.value)


def test_unknown_target_lists_the_known_names(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("target: oracle,", "target: orcale,"))
    message = str(problems(path)[0])
    pattern = (
        rf"^{re.escape(path)}:23: method\[1\]\.target: unknown \w+ 'orcale' \((known|allowed): "
    )
    assert re.match(pattern, message), message
    assert "oracle" in re.split("known: |allowed: ", message)[1]


def test_all_problems_are_reported_in_line_order(tmp_path: Path) -> None:
    text = GOOD.replace("seed: 7", "seed: x").replace("target: oracle,", "target: orcale,")
    found = problems(write(tmp_path, text))
    assert [(p.line, p.field) for p in found] == [(4, "seed"), (23, "method[1].target")]


def test_yaml_syntax_error_gives_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: demo\nmethod: [\n  {at: 1s\nduration: 3s\n")
    with pytest.raises(InvalidExperiment) as caught:
        load(path)
    assert caught.value.line is not None and caught.value.line >= 2
    assert str(caught.value).startswith(f"{path}:{caught.value.line}: YAML syntax")


def test_duplicate_keys_are_an_error(tmp_path: Path) -> None:
    found = problems(write(tmp_path, GOOD + "seed: 8\n"))
    assert len(found) == 1 and found[0].line == 26 and "duplicate key 'seed'" in found[0].problem


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    found = problems(str(tmp_path / "absent.yaml"))
    assert "cannot read the file" in str(found[0])
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00bad")
    assert "not UTF-8" in str(problems(str(tmp_path / "bin.yaml"))[0])
    assert "expected a mapping" in str(problems(write(tmp_path, "- a\n- b\n"))[0])


def test_the_checked_in_experiments_load() -> None:
    files = sorted(DATA.glob("*.yaml")) + sorted(Path("experiments/gamedays").glob("*.yaml"))
    assert files
    for path in files:
        assert problems(str(path)) == [], path


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("5s", 5.0), ("2m", 120.0), ("1h", 3600.0), (3, 3.0), (0.5, 0.5)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["-1s", "5 sec", "", True, None, float("nan"), "1e999", [1]])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="duration like"):
        parse_duration(text)


SEMANTIC = """\
name: semantic
duration: 10s
method:
  - {{at: 1s, action: feed_fault, {step}}}
invariants: [no_stale_price_execution]
"""


@pytest.mark.parametrize(
    ("step", "field", "words"),
    [
        ("kind: zero, market: DOGE-PERP", "method[0].market", "unknown market 'DOGE-PERP'"),
        ("kind: zero, venue: 3", "method[0].venue", "venue 3 is out of range"),
        ("kind: scale, value: -1", "method[0].value", "a scale factor must be > 0"),
    ],
)
def test_steps_are_checked_against_the_world_of_the_stack(
    tmp_path: Path, step: str, field: str, words: str
) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(SEMANTIC.format(step=step))
    (problem,) = problems(path)
    assert (problem.line, problem.field) == (4, field)
    assert words.replace("has 0", "has venues 0") in problem.problem, problem.problem


def test_a_step_on_a_service_of_an_option_needs_that_option_in_its_variants(
    tmp_path: Path,
) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(
        "name: x\nduration: 5s\n"
        "variants:\n  plain: {}\n  standby: {options: {standby: true}}\n"
        "method:\n  - {at: 1s, action: kill, target: sequencer_b}\n"
        "invariants: [sequence_integrity]\n"
    )
    (problem,) = problems(path)
    assert problem.line == 7 and "unknown service 'sequencer_b'" in problem.problem
    assert "(variant plain)" in problem.problem
    path.write_text(path.read_text().replace("  - {at: 1s,", "  - {variants: [standby], at: 1s,"))
    assert problems(path) == []


def test_a_step_needing_a_binding_the_stack_lacks_names_it(tmp_path: Path) -> None:
    stack = tmp_path / "bare.yaml"
    stack.write_text(
        "name: bare\nservices:\n  api: {command: [x], health: {tcp: true}}\nlinks: [clients->api]\n"
    )
    path = tmp_path / "x.yaml"
    path.write_text(
        "name: x\nduration: 5s\nstack: {file: bare.yaml}\n"
        "method:\n  - {at: 1s, action: trading_mode, mode: halt}\n"
        "invariants: [sequence_integrity]\n"
    )
    (problem,) = problems(path)
    assert problem.line == 5 and problem.field == "method[0].action"
    assert "needs bindings.trading_mode" in problem.problem and "bare" in problem.problem
    assert problems(path, stack=tmp_path / "absent.yaml")[0].problem.startswith("cannot read")
