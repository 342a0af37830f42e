"""tests/k8s: exports checked offline, and runs on a real Kubernetes API server.

Tests that use the ``apiserver`` fixture (k8s_apiserver.py) are marked ``k8s`` and
``integration``; run them under the heavy lock:
    flock /tmp/tradechaos-heavy.lock .venv/bin/python -m pytest tests/k8s -q
"""

from __future__ import annotations

from pathlib import Path

import pytest
from k8s_apiserver import apiserver

__all__ = ["apiserver"]
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents and "apiserver" in getattr(
            item, "fixturenames", ()
        ):
            item.add_marker(pytest.mark.k8s)
            item.add_marker(pytest.mark.integration)
