"""``tradechaos fault ACTION [TARGET ...] [PARAM=VALUE ...] [--for DURATION]``: apply one
fault by hand to a stack started with ``tradechaos stack up`` (a game-day), and heal it
after ``--for`` or on Ctrl-C. ``tradechaos fault --list`` shows every action."""

from __future__ import annotations

import argparse
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.errors import EXIT_OK, BadInput, UsageError
from chaos.host.runs import default_out_dir

EXAMPLE = """examples:
  tradechaos fault latency oracle latency=300ms jitter=50ms --for 30s
  tradechaos fault reset_peer clients-sequencer direction=downstream
  tradechaos fault partition between=[oracle] and=[feeds] --for 20s
  tradechaos fault flap clients-sequencer period=2s 'fault={action: down}'
  tradechaos fault pause risk --for 10s
  tradechaos fault node_loss a ramp=5s max_latency=1s
  tradechaos fault feed_fault kind=zero venue=0 --for 15s
  tradechaos fault trading_mode mode=cancel_only

Without --for the fault holds until Ctrl-C, then heals. Faults are recorded in
<run_dir>/history/faults.jsonl of the running stack (or --history DIR).
exit codes: 0 injected and healed, 2 bad action/target/parameter or no running stack,
3 the fault could not be injected or healed."""


@dataclass
class HandStep:
    """A step typed by hand: the same shape as an experiment step."""

    action: str
    target: str | tuple[str, ...] | None
    params: dict[str, Any]
    id: str = field(default_factory=lambda: f"gameday-{int(time.time())}")
    for_s: float | None = None


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fault",
        help="apply one fault by hand to a running stack (game-day)",
        description=(
            "Apply one fault to the stack started by `tradechaos stack up`, hold it for "
            "--for (or until Ctrl-C), then heal it. Parameters are PARAM=VALUE, with YAML "
            "values (250ms, [a, b], {action: down})."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", nargs="?", metavar="ACTION", help="see --list")
    parser.add_argument(
        "words",
        nargs="*",
        metavar="TARGET|PARAM=VALUE",
        help="targets (a service, link or site) and PARAM=VALUE parameters",
    )
    parser.add_argument("--for", dest="for_", metavar="DURATION", help="heal after this")
    parser.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="where `stack up` wrote current-stack.json (default: $TRADECHAOS_OUT or runs/)",
    )
    parser.add_argument(
        "--current",
        metavar="FILE",
        help="the running stack's record (default: <out>/current-stack.json)",
    )
    parser.add_argument(
        "--stack",
        metavar="FILE",
        help="the stack file describing it (default: the one `stack up` ran)",
    )
    parser.add_argument("--history", metavar="DIR", help="record faults.jsonl here")
    parser.add_argument("--toxiproxy-url", metavar="URL", help="override the stack's proxy")
    parser.add_argument("--list", action="store_true", help="list actions and parameters")
    parser.set_defaults(handler=handle)


def describe_actions() -> str:
    from chaos.experiment.actions import ACTIONS

    lines = []
    for name, info in sorted(ACTIONS.items()):
        kind = "fault" if info.is_fault else "kept by --no-faults"
        params = ", ".join(
            f"{p}{'*' if spec.required else ''}:{spec.type}"
            + (f"({'|'.join(spec.choices)})" if spec.choices else "")
            for p, spec in info.params.items()
        )
        lines.append(f"{name:18} target={info.target_kind:8} [{kind}] {info.summary}")
        if params:
            lines.append(f"{'':20}{params}")
    return "\n".join(lines)


def parse_assignments(items: list[str]) -> dict[str, Any]:
    import yaml

    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"parameter {item!r}: expected PARAM=VALUE")
        try:
            params[key] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError as err:
            raise UsageError(f"parameter {key}: unreadable value {raw!r} ({err})") from None
    return params


def handle(args: argparse.Namespace) -> int:
    if args.list:
        print(describe_actions())
        return EXIT_OK
    if not args.action:
        raise UsageError("an ACTION is needed (see tradechaos fault --list)")
    from chaos.experiment.actions import ACTIONS, StepError
    from chaos.files.durations import parse_duration

    if args.action not in ACTIONS:
        raise UsageError(
            f"unknown action {args.action!r} (known: {', '.join(sorted(ACTIONS))}; "
            "see tradechaos fault --list)"
        )

    params = parse_assignments([w for w in args.words if "=" in w])
    targets = [w for w in args.words if "=" not in w]
    target: str | tuple[str, ...] | None = None
    if targets:
        target = targets[0] if len(targets) == 1 else tuple(targets)
    try:
        for_s = parse_duration(args.for_) if args.for_ else None
    except ValueError as err:
        raise UsageError(f"--for: {err}") from None
    step = HandStep(args.action, target, params, for_s=for_s)
    try:
        return run_by_hand(step, args)
    except StepError as err:
        raise BadInput(f"{args.action}: {err}") from None


def run_by_hand(step: HandStep, args: argparse.Namespace) -> int:
    import random

    from chaos.backends.attached import AttachedBackend
    from chaos.experiment.actions import validate_step
    from chaos.experiment.steps import missing_requirement
    from chaos.faults.base import FaultContext, known_names
    from chaos.faults.build import build
    from chaos.faults.proxyapi import proxy_control
    from chaos.history.recorder import Recorder

    out = Path(args.out) if args.out is not None else default_out_dir()
    record = Path(args.current) if args.current else out / "current-stack.json"
    data = AttachedBackend.read_record(record)
    definition = _definition(data, args.stack)
    backend = AttachedBackend(record, definition)
    missing = missing_requirement(step.action, definition)
    if missing is not None:
        raise BadInput(missing)
    validate_step(step.action, step.params, known_names(definition), step.target, check_target=True)
    run_dir = data.get("run_dir")
    history = (
        Path(args.history)
        if args.history
        else (Path(str(run_dir)) / "history" if run_dir else Path("gameday-history"))
    )
    proxy = proxy_control(args.toxiproxy_url or backend.toxiproxy_url)
    with Recorder(history) as recorder:
        ctx = FaultContext(
            backend,
            proxy,
            recorder,
            definition,
            rng=random.Random(int(time.time())),
        )
        fault = build(step, ctx)
        interrupted = threading.Event()
        failure: list[BaseException] = []

        def inject() -> None:
            try:
                fault.inject()
            except BaseException as err:  # re-raised in the main thread after the heal
                failure.append(err)

        previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
        worker = threading.Thread(target=inject, name="gameday-inject", daemon=True)
        try:
            print(f"injecting {fault.describe()}", flush=True)
            worker.start()
            while worker.is_alive() and not interrupted.wait(0.1):
                pass
            if not interrupted.is_set() and not failure:
                hold = "until Ctrl-C" if step.for_s is None else f"for {step.for_s:g}s"
                print(f"in effect; holding {hold} (Ctrl-C heals)", flush=True)
                interrupted.wait(step.for_s)
        finally:
            fault.heal()  # cancels an inject still running, then undoes what it did
            worker.join(timeout=60.0)
            backend.stop_stack()
            signal.signal(signal.SIGINT, previous)
            print(f"healed; recorded in {history / 'faults.jsonl'}", flush=True)
        if failure:
            raise failure[0]
    return EXIT_OK


def _definition(data: dict[str, Any], override: str | None) -> Any:
    """The running stack's definition: its stack file (or ``--stack``) with the option
    values and mitigations ``stack up`` ran it with."""
    from chaos.stackfile import load, reference_stack_path, resolve

    path = Path(override) if override else Path(data.get("stack_file") or reference_stack_path())
    stack = load(path)
    text = str(data.get("mitigations") or "all")
    on = (
        list(stack.mitigation_names)
        if text == "all"
        else []
        if text == "none"
        else [m for m in text.split(",") if m]
    )
    try:
        return resolve(stack, dict(data.get("options") or {}), on)
    except ValueError as err:
        raise BadInput(f"{path}: {err}") from None
