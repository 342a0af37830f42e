"""The trading_mode binding at work: set the mode on every running service the binding
names (directly, not through a link: a faulted client link must not block maintenance),
and read it back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chaos.bindings.client import BindingError, send
from chaos.bindings.http import get, parse_json, render
from chaos.bindings.places import Places
from chaos.stackfile.bindings import TradingModeBinding


def set_mode(
    binding: TradingModeBinding, places: Places, mode: str, running: Callable[[str], bool]
) -> dict[str, Any]:
    """Ask each running service of the binding to take ``mode`` (tradechaos's name); the
    answer per service: the mode it then reports, ``"not running"``, or ``{"error": ...}``."""
    answers: dict[str, Any] = {}
    theirs = binding.stack_mode(mode)
    for service in binding.services:
        if not places.definition.has_service(service) or not running(service):
            answers[service] = "not running"
            continue
        base = places.url(service)
        try:
            rendered = render(binding.set, {"mode": theirs})
            status, text = send(base, rendered, binding.set.timeout_s)
            if not 200 <= status < 300:
                answers[service] = {"error": f"HTTP {status}: {text.strip()[:200]}"}
                continue
            answers[service] = {"mode": read_mode(binding, places, service) or theirs}
        except BindingError as err:
            answers[service] = {"error": str(err)}
    return answers


def read_mode(binding: TradingModeBinding, places: Places, service: str) -> str | None:
    """The mode ``service`` reports, in tradechaos's words (None without a get request;
    the stack's own word when the map has no name for it)."""
    if binding.get is None or binding.get_mode is None:
        return None
    status, text = send(places.url(service), render(binding.get, {}), binding.get.timeout_s)
    if status != 200:
        raise BindingError(f"GET mode of {service}: HTTP {status}")
    value = get(parse_json(text), binding.get_mode)
    if not isinstance(value, str):
        raise BindingError(f"GET mode of {service}: no mode at {binding.get_mode}")
    return binding.our_mode(value) or value
