"""The action registry: what the loader relies on to validate experiment steps."""

from __future__ import annotations

import pytest

from chaos.experiment.actions import (
    ACTIONS,
    KnownNames,
    StepError,
    parse_params,
    validate_step,
)

NAMES = KnownNames.of(
    ["db", "feeds", "oracle", "sequencer", "risk", "writer", "chain"],
    ["oracle-db", "sequencer-db", "clients-sequencer", "oracle-feeds", "risk-oracle"],
    ["a", "core"],
)


def test_maintenance_and_world_events_are_not_faults() -> None:
    assert ACTIONS["trading_mode"].is_fault is False
    assert ACTIONS["price_move"].is_fault is False
    for name in (
        "latency",
        "partition",
        "flap",
        "kill",
        "restart",
        "node_loss",
        "db_upgrade",
        "feed_fault",
        "aggressive_orders",
        "stop",
        "start",
        "full_restart",
    ):
        assert ACTIONS[name].is_fault is True, name


def test_every_documented_action_is_registered() -> None:
    documented = {
        "latency",
        "bandwidth",
        "timeout",
        "reset_peer",
        "slicer",
        "limit_data",
        "slow_close",
        "down",
        "partition",
        "flap",
        "kill",
        "terminate",
        "restart",
        "pause",
        "resume",
        "throttle",
        "stop",
        "start",
        "full_restart",
        "rolling_restart",
        "node_loss",
        "db_upgrade",
        "feed_fault",
        "aggressive_orders",
        "trading_mode",
        "price_move",
    }
    assert documented <= set(ACTIONS)


def test_durations_are_parsed_and_defaults_filled() -> None:
    parsed = parse_params("latency", {"latency": "250ms"}, NAMES)
    assert parsed["latency"] == pytest.approx(0.25)
    assert parsed["jitter"] == 0.0
    assert parsed["direction"] == "both"


@pytest.mark.parametrize(
    ("action", "params", "target", "field", "fragment"),
    [
        ("latency", {"latency": "fast"}, "oracle-db", "latency", "250ms"),
        ("latency", {}, "oracle-db", "latency", "required"),
        ("latency", {"latency": 1, "direction": "up"}, "oracle-db", "direction", "downstream"),
        ("latency", {"latency": 1, "speed": 3}, "oracle-db", "speed", "jitter"),
        ("latency", {"latency": 1}, "nowhere", "target", "oracle-db"),
        ("kill", {}, "nope", "target", "sequencer"),
        ("kill", {}, None, "target", "needs a target"),
        ("node_loss", {}, "z", "target", "a, core"),
        ("trading_mode", {"mode": "closed"}, None, "mode", "cancel_only"),
        ("throttle", {"cpu": 0}, "oracle", "cpu", "> 0"),
        ("partition", {"between": ["oracle"], "and": ["dbx"]}, None, "and[0]", "sequencer"),
        ("partition", {"between": ["oracle"], "and": ["oracle"]}, None, "and", "both sides"),
        ("flap", {"period": 1, "fault": {"action": "kill"}}, "oracle", "fault.action", "latency"),
        (
            "flap",
            {"period": 1, "fault": {"action": "latency"}},
            "oracle",
            "fault.latency",
            "required",
        ),
        ("feed_fault", {"kind": "scale"}, None, "value", "scale"),
        ("start", {"delays": {"orcl": "20s"}}, "oracle", "delays.orcl", "oracle"),
        ("aggressive_orders", {"offset_pct": [1, 2, 3]}, None, "offset_pct", "[low, high]"),
        ("teleport", {}, None, "action", "latency"),
    ],
)
def test_bad_steps_name_the_field_and_the_allowed_values(
    action: str, params: dict[str, object], target: object, field: str, fragment: str
) -> None:
    with pytest.raises(StepError) as caught:
        validate_step(action, params, NAMES, target, check_target=True)
    assert caught.value.field == field
    assert fragment in caught.value.problem


@pytest.mark.parametrize(
    ("action", "params", "target"),
    [
        (
            "flap",
            {
                "period": "2s",
                "bad_fraction": 0.5,
                "fault": {"action": "reset_peer", "direction": "downstream", "timeout": 0},
            },
            "clients-sequencer",
        ),
        ("latency", {"latency": "200ms", "jitter": "50ms"}, "oracle"),  # a service: its links
        ("stop", {}, ["sequencer", "risk"]),
        ("start", {"delays": {"oracle": "20s"}}, ["sequencer", "risk", "oracle"]),
        ("price_move", {"market": "*", "pct": -7, "over": "1s"}, None),
        (
            "db_upgrade",
            {
                "strategy": "migrate",
                "switch": "before_copy",
                "stack": "running",
                "copy_delay": "700ms",
            },
            None,
        ),
        (
            "aggressive_orders",
            {"market": "BTC-PERP", "offset_pct": [3, 8], "count": 16, "qty": 0.5},
            None,
        ),
        ("node_loss", {"ramp": "4s", "max_latency": "1500ms", "min_cpu": 0.1}, "a"),
        ("partition", {"between": ["oracle"], "and": ["feeds", "db"]}, None),
        ("trading_mode", {"mode": "cancel_only"}, None),
    ],
)
def test_incident_steps_are_valid(action: str, params: dict[str, object], target: object) -> None:
    validate_step(action, params, NAMES, target, check_target=True)
