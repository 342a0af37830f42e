"""The default search space, derived from the stack's names alone.

Every link with the network toxics, every service with the process faults, every venue with
the data faults; the backbone is every step of the method that ``--no-faults`` keeps
(maintenance such as trading-mode changes, and world events such as price moves). Ranges
are written weakest first (``chaos.explore.space``). No service, link or venue is named
here: they all come from ``StackNames``.
"""

from __future__ import annotations

from collections.abc import Sequence

from chaos.experiment.actions import ACTIONS
from chaos.experiment.model import Step
from chaos.explore.names import StackNames
from chaos.explore.space import FaultOption, Fixed, OneOf, Span, Target


def default_fixed(steps: Sequence[Step]) -> tuple[str, ...]:
    """The ids of the steps that are not faults, with every step they follow (``after``)."""
    by_id = {step.id: step for step in steps}
    keep: set[str] = set()
    for step in steps:
        if ACTIONS[step.action].is_fault:
            continue
        current: Step | None = step
        while current is not None and current.id not in keep:
            keep.add(current.id)
            current = by_id.get(current.after) if current.after else None
    return tuple(step.id for step in steps if step.id in keep)


def default_faults(names: StackNames, duration_s: float) -> tuple[FaultOption, ...]:
    """Network toxics x links, process faults x services, data faults x venues."""
    longest = max(1.0, round(duration_s / 2, 3))
    lasting = Span(1.0, longest, "duration")
    links: tuple[Target, ...] = tuple(names.links)
    services: tuple[Target, ...] = tuple(names.services)
    options: list[FaultOption] = []
    if links:
        options += [
            FaultOption("latency", links, lasting, (("latency", Span(0.05, 3.0, "duration")),)),
            FaultOption("bandwidth", links, lasting, (("rate", Span(100.0, 1.0, "int")),)),
            FaultOption("timeout", links, lasting, (("timeout", Fixed("0s")),)),
            FaultOption("reset_peer", links, lasting, ()),
            FaultOption("down", links, lasting, ()),
        ]
    if services:
        options += [
            FaultOption("kill", services, lasting, ()),
            FaultOption("pause", services, lasting, ()),
            FaultOption("stop", services, lasting, ()),
            FaultOption(
                "restart",
                services,
                None,
                (("downtime", Span(0.0, min(10.0, longest), "duration")),),
            ),
            FaultOption("throttle", services, lasting, (("cpu", Span(0.8, 0.1, "float")),)),
        ]
    if names.venues > 0:
        venue = OneOf(tuple(range(names.venues)))
        options += [
            FaultOption("feed_fault", (None,), lasting, (("kind", Fixed(kind)), ("venue", venue)))
            for kind in ("freeze", "drop", "zero")
        ]
        options.append(
            FaultOption(
                "feed_fault",
                (None,),
                lasting,
                (("kind", Fixed("scale")), ("venue", venue), ("value", Span(0.98, 0.5, "float"))),
            )
        )
    return tuple(options)
