"""``build(step, ctx)``: the un-injected ``Fault`` for an experiment step.

The step is validated against the stack it will act on (``ctx.definition``) with the
catalogue's rules (``chaos.experiment.actions``), then handed to the family module that
implements the action (imported only here, when a fault is built).
"""

from __future__ import annotations

import importlib

from chaos.experiment.actions import ACTIONS, StepLike, parse_params, validate_step
from chaos.faults.base import Fault, FaultContext, known_names


def build(step: StepLike, ctx: FaultContext) -> Fault:
    names = known_names(ctx.definition)
    validate_step(step.action, step.params, names, step.target)
    info = ACTIONS[step.action]
    parsed = parse_params(step.action, step.params, names)
    module = importlib.import_module(f"chaos.faults.{info.family}")
    fault: Fault = module.build(step, info, parsed, ctx)
    return fault
