"""Where the parts of a running stack are: services (directly) and links (their proxy
listeners), and the database behind a link or a built-in postgres service."""

from __future__ import annotations

from typing import Protocol

from chaos.stackfile.definition import StackDefinition


class Locator(Protocol):
    """What a backend says about where things listen (``str()`` of each is host:port)."""

    def endpoint(self, service: str) -> object: ...

    def link_endpoint(self, link: str) -> object: ...


class Places:
    def __init__(self, definition: StackDefinition, locator: Locator) -> None:
        self.definition = definition
        self.locator = locator

    def hostport(self, name: str) -> str:
        """``host:port`` of link ``name``'s listener, or of service ``name``."""
        if name in self.definition.link_names:
            return str(self.locator.link_endpoint(name))
        return str(self.locator.endpoint(name))

    def url(self, name: str) -> str:
        return f"http://{self.hostport(name)}"

    def database(self, name: str) -> tuple[str, str]:
        """(host:port, database name) for a link to a built-in postgres, or the service."""
        server = self.definition.link(name).server if name in self.definition.link_names else name
        spec = self.definition.service(server)
        return self.hostport(name), spec.database or "postgres"
