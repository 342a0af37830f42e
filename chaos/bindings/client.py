"""One HTTP exchange of the engine with a stack (trading modes, funding, history pages):
``requests`` with a timeout, the answer as (status, text). Transport errors become
``BindingError`` naming what was sent."""

from __future__ import annotations

from chaos.bindings.http import Rendered
from chaos.errors import InfrastructureError


class BindingError(InfrastructureError):
    """A binding's request could not be made or the stack's answer is unusable."""


def send(base_url: str, rendered: Rendered, timeout_s: float = 5.0) -> tuple[int, str]:
    import requests

    url = base_url.rstrip("/") + rendered.path
    try:
        response = requests.request(
            rendered.method, url, json=rendered.body, headers=rendered.headers, timeout=timeout_s
        )
    except requests.RequestException as err:
        raise BindingError(f"{rendered.method} {url} failed: {err}") from None
    return int(response.status_code), response.text
