"""Default implementations of the runner's seams (``runner.Deps``): each imports the module
that owns the job lazily, so the runner can be imported (and unit-tested with fakes)
cheaply. Everything that touches the stack goes through its stack file: the definition is
resolved from it and the load, the accounts and the history use its bindings. Contracts:
docs/contracts.md section 6."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import random

    from chaos.backends.base import Backend
    from chaos.experiment.model import Experiment, LoadSpec, Step, Variant
    from chaos.faults.base import Fault, FaultContext
    from chaos.history.recorder import Recorder
    from chaos.host.runs import RunFolder
    from chaos.load.driver import LoadDriver
    from chaos.stackfile.definition import StackDefinition


def definition(experiment: Experiment, variant: Variant) -> StackDefinition:
    """The stack ``variant`` runs on: its stack file with its options and mitigations."""
    from chaos.stackfile import load, resolve

    return resolve(load(experiment.stack.path), variant.options, variant.mitigations)


def run_folder(out_dir: Path, name: str, variant: str) -> RunFolder:
    from chaos.host.runs import RunFolder

    return RunFolder.create(out_dir, name, variant)


def backend(
    name: str,
    stack: StackDefinition,
    folder: RunFolder,
    params: Mapping[str, str],
    toxiproxy_url: str | None,
) -> Backend:
    from chaos.backends.factory import make_backend

    return make_backend(name, stack, folder, params, toxiproxy_url=toxiproxy_url)


def load(
    backend: Backend, stack: StackDefinition, folder: RunFolder, seed: int, spec: LoadSpec
) -> LoadDriver | None:
    """The traders, talking to the stack through its orders binding (None when the stack
    declares none: the run then has no client history)."""
    from chaos.load.driver import LoadDriver, LoadTarget

    orders = stack.bindings.orders
    if orders is None:
        return None
    accounts = stack.bindings.accounts
    traders = list(range(1, spec.accounts + 1)) if spec.accounts else None
    if traders is None and accounts is not None:
        traders = list(accounts.traders)
    failover = orders.failover if orders.failover in stack.link_names else None
    venues = stack.builtins("venues")
    assert stack.source is not None
    target = LoadTarget(
        stack_file=stack.source,
        url=backend.link_endpoint(orders.via).url,
        failover_url=backend.link_endpoint(failover).url if failover else None,
        venues_url=backend.endpoint(venues[0]).url if venues else None,
    )
    return LoadDriver(
        target,
        folder.history,
        seed,
        spec.users,
        spec.spawn_rate,
        folder.log_path("load"),
        traders,
        retry_unknown=spec.retry_unknown,
        workers=spec.workers,  # issue 18: a Locust master and N workers
        processes=folder,  # the load's processes in state.json, for tradechaos cleanup
    )


def fund_accounts(backend: Backend, stack: StackDefinition) -> int:
    """Fund the traders' accounts through ``bindings.accounts.fund`` (0: nothing to do)."""
    from chaos.bindings.accounts import fund_accounts as fund
    from chaos.bindings.places import Places

    if stack.bindings.accounts is None:
        return 0
    return fund(stack.bindings.accounts, Places(stack, backend))


def fault_context(
    backend: Backend,
    recorder: Recorder,
    stack: StackDefinition,
    rng: random.Random,
    load: object | None,
) -> FaultContext:
    from chaos.faults.base import FaultContext
    from chaos.proxy.client import ToxiproxyClient

    proxy = ToxiproxyClient(backend.toxiproxy_url)
    return FaultContext(backend, proxy, recorder, stack, rng=rng, load=load)


def fault(step: Step, ctx: FaultContext) -> Fault:
    from chaos.faults.build import build

    return build(step, ctx)


def export_history(stack: StackDefinition, run_dir: Path, backend: Backend) -> None:
    """The stack's records into the run's History, through ``bindings.history``."""
    from chaos.bindings.history import export
    from chaos.bindings.places import Places

    export(stack, Path(run_dir), Places(stack, backend))


def export_checks(
    experiment: Experiment, stack: StackDefinition, run_dir: Path, backend: Backend
) -> int:
    """Run the experiment's SQL checks (its own and the stack file's that its invariants
    name) into the History (``history/checks.jsonl``); the number run."""
    from chaos.bindings.checks import export_checks as export
    from chaos.bindings.places import Places

    return export(experiment.sql_checks(stack.checks), Path(run_dir), Places(stack, backend))


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


def reports(run_dir: Path, journal: Mapping[str, Any]) -> dict[str, Path]:
    from chaos.report import write_reports

    return write_reports(Path(run_dir), journal)


def stack_record(stack: StackDefinition) -> dict[str, Any]:
    """What run.json records of the stack: the facts the checkers judge with (markets,
    the services that take orders, the History sources the stack exports, accounts)."""
    from chaos.bindings.history import provided

    orders = stack.bindings.orders
    order_services = []
    if orders is not None:
        for link in (orders.via, orders.failover):
            if link is not None and link in stack.link_names:
                order_services.append(stack.link(link).server)
    accounts = stack.bindings.accounts
    return {
        "stack": {
            "name": stack.name,
            "file": str(stack.source),
            "options": dict(stack.options),
            "order_services": order_services,
            "history_sources": list(provided(stack.bindings.history)),
            "insurance_fund": accounts.insurance_fund if accounts is not None else None,
            "traders": list(accounts.traders) if accounts is not None else [],
            "adversaries": list(accounts.adversaries) if accounts is not None else [],
        },
        "insurance_fund": accounts.insurance_fund if accounts is not None else None,
        "markets": [m.name for m in stack.markets],
        "market_specs": [dataclasses.asdict(m) for m in stack.markets],
    }
