"""Default implementations of the runner's seams (``runner.Deps``): each imports the module
that owns the job lazily, so the runner can be imported (and unit-tested with fakes) while
another module is still missing. Contracts: docs/contracts.md section 6."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chaos.errors import InfrastructureError


def definition(standby: bool, venues: int) -> Any:
    from chaos.stack.definition import reference_stack

    return reference_stack(standby=standby, venues=venues)


def run_folder(out_dir: Path, name: str, variant: str) -> Any:
    from chaos.runner.state import RunFolder

    return RunFolder.create(out_dir, name, variant)


def backend(
    name: str, stack: Any, folder: Any, params: Mapping[str, str], toxiproxy_url: str | None
) -> Any:
    from chaos.backends.factory import make_backend

    return make_backend(name, stack, folder, params, toxiproxy_url=toxiproxy_url)


def load(backend: Any, folder: Any, seed: int, spec: Any, standby: bool) -> Any:
    from chaos.load.driver import LoadDriver

    clients = backend.link_endpoint("clients-sequencer").url
    standby_url = backend.link_endpoint("clients-sequencer_b").url if standby else None
    accounts = list(range(1, spec.accounts + 1)) if spec.accounts else None
    return LoadDriver(
        clients,
        standby_url,
        folder.history,
        seed,
        spec.users,
        spec.spawn_rate,
        folder.log_path("load"),
        accounts,
        retry_unknown=spec.retry_unknown,
    )


def fault_context(backend: Any, recorder: Any, stack: Any, rng: Any, load: Any) -> Any:
    from chaos.faults.base import FaultContext
    from chaos.proxy.client import ToxiproxyClient

    proxy = ToxiproxyClient(backend.toxiproxy_url)
    return FaultContext(backend, proxy, recorder, stack, rng=rng, load=load)


def fault(step: Any, ctx: Any) -> Any:
    from chaos.faults.registry import build

    return build(step, ctx)


def endpoints(backend: Any, stack: Any) -> dict[str, str]:
    """``host:port`` where each running service listens (by service name) and of each
    link's listener (by link name), for the history exporter."""
    found: dict[str, str] = {}
    for spec in stack.services:
        try:
            found[spec.name] = str(backend.endpoint(spec.name))
        except Exception:
            continue
    for link in stack.links:
        try:
            found[link.name] = str(backend.link_endpoint(link.name))
        except Exception:
            continue
    return found


def export_history(stack: Any, run_dir: Path, backend: Any) -> None:
    """Call the definition's ``history_exporter`` ("module:function") as f(run_dir, endpoints)."""
    module_name, _, function_name = str(stack.history_exporter).partition(":")
    try:
        exporter = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as err:
        raise InfrastructureError(
            f"history exporter {stack.history_exporter!r} not found: {err}"
        ) from None
    exporter(Path(run_dir), endpoints(backend, stack))


def check(
    run_dir: Path, invariants: tuple[str, ...], params: Mapping[str, Any]
) -> list[dict[str, Any]]:
    from chaos.checkers import run_all
    from chaos.checkers.params import CheckParams
    from chaos.history.reader import History

    history = History.open(run_dir)
    verdicts = run_all(history, list(invariants), CheckParams.from_mapping(params))
    return [dict(v.to_dict()) for v in verdicts]


def tolerances(params: Mapping[str, Any]) -> dict[str, Any]:
    """The checker tolerances in force: the defaults with the experiment's overrides."""
    from chaos.checkers.params import CheckParams

    return dict(CheckParams.from_mapping(params).to_dict())


def reports(run_dir: Path, journal: Mapping[str, Any]) -> Any:
    try:
        report = importlib.import_module("chaos.report")
    except ModuleNotFoundError:
        return {}
    return report.write_reports(Path(run_dir), journal)


def insurance_fund() -> int | None:
    """The stack's insurance-fund account, for run.json (the harm ledger shows its side).
    The reference stack's until stack files declare it (issue 14)."""
    from chaos.stack.engine import INSURANCE_FUND

    return INSURANCE_FUND


def markets() -> list[str]:
    from chaos.truth import MARKET_NAMES

    return list(MARKET_NAMES)


def market_specs() -> list[dict[str, Any]]:
    """Every market's parameters as run.json records them, so a recorded run is judged
    with the truth it ran under even after the defaults change."""
    import dataclasses

    from chaos.truth import MARKETS

    return [dataclasses.asdict(spec) for spec in MARKETS]
