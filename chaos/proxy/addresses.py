"""``host:port`` addresses as Toxiproxy's server reads them, and the loopback policy.

``parse`` splits and checks an address the way Go's ``net`` package does (so the error
texts a client sees match a real Toxiproxy's: ``address local373: missing port in
address``, ``address 99999: invalid port``); ``resolve`` also turns the host into an IP
address (``localhost`` is ``127.0.0.1``; an empty host means every interface). A port may
be a service name from the system's services database (``http``), as in Go.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass


class AddressError(ValueError):
    """An address cannot be used; ``str(err)`` is Go's text (``address X: why``)."""

    def __init__(self, address: str, why: str) -> None:
        super().__init__(f"address {address}: {why}" if address else why)


@dataclass(frozen=True)
class Address:
    """``host`` as written or resolved (``""``: every interface) and a port number."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def split(text: str) -> tuple[str, str]:
    """``(host, port)`` of ``host:port`` or ``[v6]:port``; AddressError when malformed."""
    colon = text.rfind(":")
    if colon < 0:
        raise AddressError(text, "missing port in address")
    inner_start, inner_end = 0, 0
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise AddressError(text, "missing ']' in address")
        if close + 1 == len(text):
            raise AddressError(text, "missing port in address")
        if close + 1 != colon:
            why = "too many colons" if text[close + 1] == ":" else "missing port"
            raise AddressError(text, f"{why} in address")
        host = text[1:close]
        inner_start, inner_end = 1, close + 1
    else:
        host = text[:colon]
        if ":" in host:
            raise AddressError(text, "too many colons in address")
    if "[" in text[inner_start:]:
        raise AddressError(text, "unexpected '[' in address")
    if "]" in text[inner_end:]:
        raise AddressError(text, "unexpected ']' in address")
    return host, text[colon + 1 :]


def port_number(service: str) -> int:
    """A port: ``""`` is 0, digits are a number (0-65535), a name is looked up."""
    if not service:
        return 0
    digits = service[1:] if service[0] in "+-" else service
    if digits.isdigit() and digits.isascii():
        number = -int(digits) if service[0] == "-" else int(digits)
        if not 0 <= number <= 65535:
            raise AddressError(service, "invalid port")
        return number
    try:
        return socket.getservbyname(service.lower(), "tcp")
    except OSError:
        raise AddressError(f"tcp/{service}", "unknown port") from None


def parse(text: str) -> Address:
    """``text`` split and its port checked; the host is kept as written."""
    host, service = split(text)
    return Address(host, port_number(service))


def resolve(text: str) -> Address:
    """``parse`` and the host as an IP address (IPv4 first); AddressError when unknown."""
    address = parse(text)
    host = address.host.partition("%")[0] if "%" in address.host else address.host
    if not host:
        return address
    try:
        return Address(str(ipaddress.ip_address(host)), address.port)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise AddressError("", f"lookup {host}: no such host") from None
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return Address(str(infos[0][4][0]), address.port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an IP address or ``localhost``) names this machine's loopback."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.partition("%")[0]).is_loopback
    except ValueError:
        return False
