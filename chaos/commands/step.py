"""``tradechaos step``: run one experiment step against a stack's URLs (a Chaos Mesh Task).

The exported Workflow runs the steps Chaos Mesh cannot do (trading modes, database
upgrades, venue data faults, price moves, adversarial orders) as Task pods running this
command; ``wait_healthy`` is the steady-state check and the pods' wait for their
dependencies. The step is the same fault the local runner builds (chaos/faults), handed a
backend over URLs (``chaos.k8s.stepbackend``); its records go to stdout as JSON lines
(``chaos.k8s.records``). The fault heals in ``finally``, also on SIGTERM (a deleted or
aborted Workflow).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from chaos.commands.stackargs import (
    add_option_argument,
    add_stack_argument,
    option_values,
    stack_path,
)
from chaos.errors import EXIT_OK, BadInput, FaultError, InfrastructureError, StackError
from chaos.k8s.names import RUNBOOK_ACTIONS

if TYPE_CHECKING:
    from chaos.k8s.kubeops import KubeOps

EXAMPLE = """examples:
  tradechaos step trading_mode --param mode='"cancel_only"' \\
      --service-url sequencer=http://sequencer.ns.svc.cluster.local:8080/health
  tradechaos step feed_fault --param kind='"zero"' --hold 5 --service-url feeds=http://feeds:8080/health
  tradechaos step wait_healthy --timeout 300 --service-url db=pg://db:5432 --then CMD ARG...

exit codes: 0 done (and healed), 2 bad input, 3 the step failed or a service never became
healthy."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "step",
        help="run one experiment step against services' URLs (Kubernetes Task)",
        description="Run one experiment step (the same fault as a local run) against the\n"
        "services at the URLs given, hold it, heal it; or wait until services are healthy.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", metavar="ACTION", help="a step action, or wait_healthy")
    parser.add_argument("--id", default=None, help="the step's id (recorded)")
    parser.add_argument("--target", action="append", default=[], help="a target name (repeat)")
    parser.add_argument(
        "--param", action="append", default=[], metavar="KEY=JSON", help="a step parameter"
    )
    parser.add_argument("--hold", type=float, default=0.0, help="seconds to keep it before healing")
    parser.add_argument("--timeout", type=float, default=300.0, help="wait_healthy: seconds")
    parser.add_argument("--service-url", action="append", default=[], metavar="NAME=URL")
    parser.add_argument("--link-url", action="append", default=[], metavar="LINK=URL")
    parser.add_argument("--namespace", default=None, help="the run's namespace (Kubernetes API)")
    parser.add_argument("--run-id", default=None, help="the run's id (its label)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the step's random choices")
    add_stack_argument(parser)
    add_option_argument(parser)
    parser.add_argument(
        "--then",
        nargs=argparse.REMAINDER,
        default=[],
        metavar="COMMAND",
        help="wait_healthy: run COMMAND (the rest of the line) once healthy",
    )
    parser.set_defaults(handler=handle)


def _params(items: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise BadInput(f"--param {item!r}: expected KEY=VALUE")
        try:
            params[key] = json.loads(text)
        except ValueError:
            params[key] = text
    return params


def _wait_healthy(args: argparse.Namespace, backend: Any) -> int:
    from chaos.k8s.stepbackend import parse_url

    names = [parse_url(text)[0] for text in args.service_url]
    if not names:
        raise BadInput("wait_healthy needs at least one --service-url NAME=URL")
    for name in names:  # one deadline for them all
        backend.wait_healthy(name, args.timeout)
    print(f"healthy: {', '.join(names)}", file=sys.stderr)
    command = list(args.then)
    if command:
        sys.stdout.flush()
        os.execvp(command[0], command)
    return EXIT_OK


def handle(args: argparse.Namespace) -> int:
    from chaos.k8s.stepbackend import UrlBackend
    from chaos.stackfile import load, resolve

    try:
        definition = resolve(load(stack_path(args)), option_values(args.options))
    except ValueError as err:
        raise BadInput(f"--option: {err}") from None
    kube = None
    if args.namespace and args.action in ("db_upgrade", *RUNBOOK_ACTIONS):
        from chaos.k8s.kubeops import KubeOps

        kube = KubeOps.connect(args.namespace, args.run_id or "")
    backend = UrlBackend.from_args(definition, args.service_url, args.link_url, kube)
    if args.action == "wait_healthy":
        return _wait_healthy(args, backend)
    return _run_step(args, backend, definition, kube)


def _run_step(args: argparse.Namespace, backend: Any, definition: Any, kube: KubeOps | None) -> int:
    from chaos.experiment import actions as registry
    from chaos.experiment.model import Step
    from chaos.faults.base import FaultContext, known_names
    from chaos.k8s.records import StdoutRecorder
    from chaos.k8s.stepbackend import LinkTable

    if args.action not in registry.ACTIONS:
        raise BadInput(
            f"unknown action {args.action!r} "
            f"(allowed: wait_healthy, {', '.join(sorted(registry.ACTIONS))})"
        )
    params = _params(args.param)
    targets = tuple(args.target)
    target = None if not targets else (targets[0] if len(targets) == 1 else targets)
    try:
        registry.validate_step(args.action, params, known_names(definition), list(targets) or None)
    except registry.StepError as err:
        raise BadInput(f"step {args.action}: {err.field}: {err.problem}") from None
    step = Step(args.id or args.action, 0, args.action, target, params)
    ctx = FaultContext(
        backend, LinkTable(backend), StdoutRecorder(), definition, rng=random.Random(args.seed)
    )
    runbook = kube if args.action in RUNBOOK_ACTIONS else None
    told: dict[str, dict[str, Any]] = {}
    from chaos.faults.build import build

    fault = build(step, ctx)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if runbook is not None:  # what earlier Task pods of the run told (a snapshot's answer)
            told = runbook.read_runbook()
            ctx.runbook.update(told)
        fault.inject()
        if runbook is not None:  # what this step tells later ones, before any hold
            runbook.write_runbook({k: v for k, v in ctx.runbook.items() if told.get(k) != v})
        if args.hold > 0:
            stop.wait(args.hold)  # the fault holds; SIGTERM (Workflow deleted) ends it early
    except (FaultError, StackError) as err:
        raise InfrastructureError(f"step {step.id} ({step.action}) failed: {err}") from None
    finally:
        try:
            fault.heal()
        finally:
            signal.signal(signal.SIGTERM, previous)
    print(f"step {step.id} ({step.action}) done", file=sys.stderr)
    return EXIT_OK
