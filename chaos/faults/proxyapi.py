"""The Toxiproxy HTTP API client that faults use: ``chaos.proxy.client.ToxiproxyClient``.

It speaks Toxiproxy's HTTP API, so the embedded proxy and a real Toxiproxy
(``--toxiproxy-url``) are interchangeable. Every request has a timeout; failures raise
``ProxyError`` naming the URL.
"""

from __future__ import annotations

from typing import cast

from chaos.faults.base import ProxyControl


def proxy_control(url: str) -> ProxyControl:
    """The project's Toxiproxy client for ``url``."""
    from chaos.proxy.client import ToxiproxyClient  # lazy: requests is a heavy import

    return cast(ProxyControl, ToxiproxyClient(url))
