"""The few HTTP calls faults make to services' admin endpoints (each with a timeout)."""

from __future__ import annotations

from typing import Any

from chaos.errors import FaultError

TIMEOUT_S = 5.0


def call(method: str, url: str, body: object = None, timeout_s: float = TIMEOUT_S) -> Any:
    """The JSON answer of ``method url``; ``FaultError`` (one sentence) on any failure."""
    import requests  # lazy: heavy import

    try:
        response = requests.request(method, url, json=body, timeout=timeout_s)
    except requests.RequestException as err:
        raise FaultError(f"{method} {url} failed: {err}") from None
    if response.status_code >= 400:
        raise FaultError(
            f"{method} {url} answered HTTP {response.status_code}: {response.text.strip()[:200]}"
        )
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text
