"""Reading search spaces: the explore: section, a SPACE.yaml, the default space; errors
name FILE:LINE: FIELD."""

from __future__ import annotations

from pathlib import Path

import pytest
from explore_fakes import EXPERIMENT, write_experiment

from chaos.errors import InvalidExperiment
from chaos.experiment.loader import load
from chaos.explore.names import stack_names
from chaos.explore.space import Fixed, OneOf, Span
from chaos.explore.spaceload import load_space

REPO = Path(__file__).resolve().parents[2]
DYDX = REPO / "experiments" / "incidents" / "dydx-2025-oracle-restart.yaml"
HEAD = EXPERIMENT.split("explore:\n")[0]


def section(tmp_path: Path, body: str) -> tuple[str, Path]:
    """An experiment whose explore: section is ``body``; the section starts at line 17."""
    path = write_experiment(tmp_path, HEAD + "explore:\n" + body)
    return str(path), path


def problem(path: Path, space: Path | None = None, variant: str = "vulnerable") -> str:
    experiment = load(path)
    with pytest.raises(InvalidExperiment) as caught:
        load_space(experiment, variant, str(space) if space else None)
    return str(caught.value)


def test_the_section_is_read_with_ranges_choices_and_fixed_values(tmp_path: Path) -> None:
    path = write_experiment(tmp_path)
    experiment = load(path)
    space = load_space(experiment, "vulnerable")
    assert space.fixed == ("cancel", "move", "normal")  # what --no-faults keeps
    assert (space.min_steps, space.max_steps, space.window) == (3, 5, (0.0, 14.0))
    assert (space.confirm, space.shrink_budget) == (1, 80)
    pause, latency, kill, feed = space.faults
    assert pause.targets == ("oracle", "risk", "writer")
    assert pause.duration == Span(1.0, 6.0, "duration")
    assert dict(latency.params)["latency"] == Span(0.05, 2.0, "duration")
    assert kill.action == "kill" and kill.duration == Span(1.0, 4.0, "duration")
    assert feed.targets == (None,)
    assert dict(feed.params) == {"kind": OneOf(("freeze", "drop")), "venue": OneOf((0, 1, 2))}
    assert space.origin.startswith("the explore: section of")


@pytest.mark.parametrize(
    ("body", "where", "words"),
    [
        ("  faults:\n    - {action: teleport, target: oracle}\n", "19: explore.faults[0].action",
         "unknown fault action 'teleport'"),
        ("  faults:\n    - {action: trading_mode, mode: halt}\n", "19: explore.faults[0].action",
         "searchable"),
        ("  faults:\n    - {action: pause, target: [oracle]}\n"
         "    - {action: pause, target: moon}\n",
         "20: explore.faults[1].target", "unknown service 'moon'"),
        ("  faults:\n    - {action: throttle, target: oracle, cpu: [0.5, 2]}\n",
         "19: explore.faults[0].cpu", "must be <= 1"),
        ("  faults:\n    - {action: latency, target: oracle-db, latency: [1s, 2s, 3s]}\n",
         "19: explore.faults[0].latency", "a range is [weak, strong]"),
        ("  faults:\n    - {action: latency, target: oracle-db, latency: 1s, colour: red}\n",
         "19: explore.faults[0].colour", "unknown field"),
        ("  faults:\n    - {action: pause, target: oracle, for: [0s, 2s]}\n",
         "19: explore.faults[0].for", "longer than 0s"),
        ("  faults:\n    - {action: latency, target: oracle-db}\n",
         "19: explore.faults[0].latency", "required"),
        ("  window: [2s, 40s]\n", "18: explore.window", "after the method"),
        ("  window: [5s, 2s]\n", "18: explore.window", "after it ends"),
        ("  steps: {min: 4, max: 2}\n", "18: explore.steps", "min 4 is more than max 2"),
        ("  steps: 99\n", "18: explore.steps", "from 1 to 12"),
        ("  fixed: [cancel, nope]\n", "18: explore.fixed[1]", "unknown step 'nope'"),
        ("  invariant: no_lost_acked_orders\n", "18: explore.invariant", "checked by this"),
        ("  speed: fast\n", "18: explore.speed", "unknown field"),
        ("  faults: []\n", "18: explore.faults", "empty"),
    ],
)  # fmt: skip
def test_a_bad_section_names_file_line_and_field(
    tmp_path: Path, body: str, where: str, words: str
) -> None:
    name, path = section(tmp_path, body)
    message = problem(path)
    assert message.startswith(f"{name}:{where}: "), message
    assert words in message


def test_a_fixed_step_that_follows_a_searched_one_is_refused(tmp_path: Path) -> None:
    text = EXPERIMENT.replace(
        "  - {id: normal, at: 8s, action: trading_mode, mode: normal}",
        "  - {id: normal, after: incident-fault, action: trading_mode, mode: normal}",
    ).split("explore:\n")[0]
    path = write_experiment(tmp_path, text + "explore:\n  fixed: [cancel, normal]\n")
    message = problem(path)
    assert f"{path}:18: explore.fixed: step 'normal' follows step 'incident-fault'" in message


def test_a_space_file_has_the_same_fields_without_the_prefix(tmp_path: Path) -> None:
    path = write_experiment(tmp_path)
    space_file = tmp_path / "space.yaml"
    space_file.write_text(
        "# my space\nsteps: 2\nfaults:\n  - {action: pause, target: [oracle, risk]}\n"
        "  - {action: restart, target: '*', downtime: [0s, 3s], for: none}\n"
    )
    space = load_space(load(path), "vulnerable", str(space_file))
    assert (space.min_steps, space.max_steps) == (1, 2)
    pause, restart = space.faults
    assert pause.duration == Span(1.0, 10.0, "duration")  # default: 1 s to half the method
    assert restart.duration is None
    assert set(restart.targets) == set(stack_names(load(path)).services)
    assert space.origin == str(space_file)
    space_file.write_text("faults:\n  - {action: pause, target: oracle}\n  - {action: pause}\n")
    message = problem(path, space_file)
    assert message.startswith(f"{space_file}:3: faults[1].target: "), message
    space_file.write_text("explore:\n  faults:\n    - {action: kill, target: oracle, x: 1}\n")
    assert problem(path, space_file).startswith(f"{space_file}:3: faults[0].x: unknown field")
    space_file.write_text("faults: [\n")
    assert problem(path, space_file).startswith(f"{space_file}:")
    assert "YAML syntax" in problem(path, space_file)


def test_the_default_space_comes_from_the_stacks_names_alone(tmp_path: Path) -> None:
    experiment = load(DYDX)
    names = stack_names(experiment)
    space = load_space(experiment, "vulnerable")
    assert space.fixed == ("price_move-1", "price_move-3")
    by_action: dict[str, set[object]] = {}
    for option in space.faults:
        by_action.setdefault(option.action, set()).update(option.targets)
    for toxic in ("latency", "bandwidth", "timeout", "reset_peer", "down"):
        assert by_action[toxic] == set(names.links)
    for fault in ("kill", "pause", "stop", "restart", "throttle"):
        assert by_action[fault] == set(names.services)
    venues = [dict(o.params)["venue"] for o in space.faults if o.action == "feed_fault"]
    assert venues and all(v == OneOf(tuple(range(names.venues))) for v in venues)
    kinds = {dict(o.params)["kind"] for o in space.faults if o.action == "feed_fault"}
    assert Fixed("zero") in kinds and Fixed("freeze") in kinds


def test_the_explore_section_does_not_change_what_run_loads(tmp_path: Path) -> None:
    with_section = load(write_experiment(tmp_path))
    without = load(write_experiment(tmp_path, HEAD, "plain.yaml"))
    assert with_section.method == without.method
    assert with_section.variants == without.variants
