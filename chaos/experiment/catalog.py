"""What the loader validates against, taken from the modules that own it (imported lazily):
actions from ``chaos.faults.registry``, names from ``chaos.stack.definition``, invariants
and checker parameters from ``chaos.checkers``. While one of those is not importable, a
fallback copied from docs/contracts.md and DESIGN.md is used instead."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from chaos.experiment.model import KnownNames

FALLBACK_FAULT_ACTIONS = (
    "latency", "bandwidth", "timeout", "reset_peer", "slicer", "limit_data", "slow_close",
    "down", "partition", "flap", "kill", "terminate", "restart", "pause", "resume",
    "throttle", "stop", "start", "full_restart", "rolling_restart", "node_loss",
    "db_upgrade", "feed_fault", "aggressive_orders",
)  # fmt: skip
FALLBACK_OTHER_ACTIONS = ("trading_mode", "price_move")
FALLBACK_INVARIANTS = (
    "no_unintended_liquidations", "no_corrupt_chain_writes", "no_lost_acked_orders",
    "no_duplicate_orders", "sequence_integrity", "fills_within_band",
    "no_stale_price_execution", "recovery_within_rto",
)  # fmt: skip
FALLBACK_MITIGATIONS = (
    "readiness_gates", "data_validation", "post_only_band", "staleness_guard",
    "idempotency_keys", "fencing", "auto_failover",
)  # fmt: skip
FALLBACK_SERVICES = ("db", "feeds", "oracle", "sequencer", "risk", "writer", "chain")
FALLBACK_LINKS = (
    "clients-sequencer", "clients-sequencer_b", "sequencer-db", "sequencer_b-db", "oracle-db",
    "oracle-feeds", "risk-db", "risk-oracle", "risk-sequencer", "risk-sequencer_b",
    "writer-db", "writer-chain", "clients-feeds",
)  # fmt: skip


def optional_module(name: str) -> ModuleType | None:
    """The module, or None when it (not one of its own imports) does not exist yet."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name is not None and name.startswith(err.name):
            return None
        raise


def registry() -> ModuleType | None:
    return optional_module("chaos.faults.registry")


def action_names() -> tuple[str, ...]:
    reg = registry()
    if reg is not None:
        return tuple(sorted(reg.ACTIONS))
    return tuple(sorted(FALLBACK_FAULT_ACTIONS + FALLBACK_OTHER_ACTIONS))


def is_fault(action: str) -> bool:
    """True when ``--no-faults`` skips this action (``ActionInfo.is_fault``)."""
    reg = registry()
    if reg is not None and action in reg.ACTIONS:
        return bool(reg.ACTIONS[action].is_fault)
    return action in FALLBACK_FAULT_ACTIONS


def target_kind(action: str) -> str | None:
    """``ActionInfo.target_kind`` (service|link|site|services|links|none), None if unknown."""
    reg = registry()
    if reg is not None and action in reg.ACTIONS:
        return str(reg.ACTIONS[action].target_kind)
    return None


def invariant_names() -> tuple[str, ...]:
    checkers = optional_module("chaos.checkers")
    if checkers is not None and getattr(checkers, "REGISTRY", None):
        return tuple(sorted(checkers.REGISTRY))
    return tuple(sorted(FALLBACK_INVARIANTS))


def mitigation_names() -> tuple[str, ...]:
    definition = optional_module("chaos.stack.definition")
    if definition is not None and hasattr(definition, "MITIGATIONS"):
        return tuple(definition.MITIGATIONS)
    return FALLBACK_MITIGATIONS


def checker_defaults() -> Mapping[str, Any] | None:
    """``CheckParams.DEFAULTS`` or None while chaos.checkers.params is missing."""
    params = optional_module("chaos.checkers.params")
    if params is None:
        return None
    defaults: Mapping[str, Any] = params.CheckParams.DEFAULTS
    return defaults


def check_params(mapping: Mapping[str, Any]) -> None:
    """Raises ValueError when ``CheckParams.from_mapping`` rejects ``mapping``."""
    params = optional_module("chaos.checkers.params")
    if params is not None:
        params.CheckParams.from_mapping(dict(mapping))


def known_names(standby: bool = False, venues: int = 3) -> KnownNames:
    definition_module = optional_module("chaos.stack.definition")
    invariants = invariant_names()
    mitigations = mitigation_names()
    if definition_module is None:
        services = FALLBACK_SERVICES + (("sequencer_b",) if standby else ())
        sites = ("a", "b", "core") if standby else ("a", "core")
        return KnownNames(services, FALLBACK_LINKS, sites, invariants, mitigations)
    definition = definition_module.reference_stack(standby=standby, venues=venues)
    services = tuple(definition.service_names)
    links = tuple(link.name for link in definition.links)
    sites = tuple(dict.fromkeys(spec.site for spec in definition.services))
    return KnownNames(services, links, sites, invariants, mitigations)
