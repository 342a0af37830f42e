"""Stacks as plug-ins: the stack file (docs/stack-file.md), its model and its resolution.

``load(path) -> StackFile`` (raises ``InvalidStack`` naming file:line:field),
``resolve(stack, options, mitigations) -> StackDefinition`` (what the engine runs), and
``reference_stack_path()`` (the default stack, shipped as package data).
"""

from chaos.stackfile.definition import (
    HealthCheck,
    LinkSpec,
    ServiceSpec,
    StackDefinition,
)
from chaos.stackfile.loader import load, problems, reference_stack_path
from chaos.stackfile.model import StackFile
from chaos.stackfile.resolve import resolve

__all__ = [
    "HealthCheck",
    "LinkSpec",
    "ServiceSpec",
    "StackDefinition",
    "StackFile",
    "load",
    "problems",
    "reference_stack_path",
    "resolve",
]
