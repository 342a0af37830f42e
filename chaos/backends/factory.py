"""``make_backend``: the one place that maps a backend name to its implementation.

The docker backend is imported only when asked for, so the process backend never needs the
docker SDK.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from chaos.backends.base import Backend
from chaos.errors import UsageError
from chaos.host.runs import RunFolder
from chaos.stackfile.definition import StackDefinition

BACKENDS = ("process", "docker")


def make_backend(
    name: str,
    definition: StackDefinition,
    run: RunFolder,
    params: Mapping[str, str] | None = None,
    toxiproxy_url: str | None = None,
    **options: Any,
) -> Backend:
    """A backend of kind ``name`` for ``definition`` whose processes belong to ``run``.

    ``params`` fill the command placeholders ({seed}, {epoch}, {mitigations}, ...);
    ``toxiproxy_url`` selects an external Toxiproxy instead of the embedded proxy.
    Raises ``UsageError`` for an unknown name.
    """
    if name == "process":
        from chaos.backends.process import ProcessBackend

        return ProcessBackend(definition, run, params, toxiproxy_url, **options)
    if name == "docker":
        module = importlib.import_module("chaos.backends.docker")
        backend: Backend = module.DockerBackend(definition, run, params, toxiproxy_url, **options)
        return backend
    raise UsageError(f"unknown backend {name!r} (choose from: {', '.join(BACKENDS)})")
