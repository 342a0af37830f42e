"""The placeholder grammar of stack files (docs/stack-file.md, "Placeholders").

Two kinds of templates:
- service templates (commands, env, setup, builtin parameters): ``{name}`` or
  ``{name:ARG}`` from ``SIMPLE`` and ``WITH_ARG``; ``{{`` and ``}}`` are literal braces;
- request templates (bindings): ``{field}`` or ``{field|str}`` naming a field of the
  request (an order's ``qty``, a mode's ``mode``).
Here: the grammar, the check that a template uses only known names (for the loader), and
the substitution of ``{option:NAME}`` (for ``resolve``). Per-run values are filled by
``chaos.backends.placeholders``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping

SIMPLE = (
    "python", "port", "host", "run_dir", "data_dir", "stack_dir", "seed", "epoch",
    "mitigations", "toxiproxy_url", "pg_bin", "run_id", "base_image",
)  # fmt: skip
WITH_ARG = ("link", "url", "dsn", "service", "venue_urls", "option")
TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_ITEM = re.compile(r"^([a-z_]+)(?::([A-Za-z0-9_.-]+))?$")
_FIELD = re.compile(r"^([a-z_]+)(?:\|(str|int|float))?$")


class PlaceholderError(ValueError):
    """A template is malformed or names an unknown placeholder (one sentence)."""


def service_placeholders(template: str) -> Iterator[tuple[str, str | None]]:
    """Each ``(name, arg)`` a service template uses; ``PlaceholderError`` when malformed."""
    for match in TOKEN.finditer(template):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        inner = match.group(1)
        if inner is None:
            raise PlaceholderError(
                f"unbalanced {token!r} in {template!r} (write {{{{ or }}}} for a literal brace)"
            )
        item = _ITEM.match(inner)
        if item is None:
            raise PlaceholderError(f"{{{inner}}} is not a placeholder")
        name, arg = item.group(1), item.group(2)
        if name in SIMPLE and arg is None:
            yield name, None
        elif name in WITH_ARG and arg is not None:
            yield name, arg
        elif name in WITH_ARG:
            raise PlaceholderError(f"{{{name}}} needs a name: {{{name}:NAME}}")
        else:
            known = ", ".join([*SIMPLE, *(f"{n}:NAME" for n in WITH_ARG)])
            raise PlaceholderError(f"unknown placeholder {{{inner}}} (known: {known})")


def substitute(template: str, replace: Callable[[str, str | None], str | None]) -> str:
    """``template`` with each placeholder replaced by ``replace(name, arg)``; where that
    returns None the placeholder stays as written (filled later). Escapes stay escaped."""

    def one(match: re.Match[str]) -> str:
        inner = match.group(1)
        if inner is None:
            return match.group(0)
        item = _ITEM.match(inner)
        if item is None:
            return match.group(0)
        value = replace(item.group(1), item.group(2))
        return match.group(0) if value is None else value

    return TOKEN.sub(one, template)


def unescape(template: str) -> str:
    """The literal text of a fully filled template (``{{`` -> ``{``)."""
    return template.replace("{{", "{").replace("}}", "}")


def fill_options(template: str, values: Mapping[str, object]) -> str:
    """``{option:NAME}`` replaced by the option's value (``true``/``false`` for a bool)."""

    def replace(name: str, arg: str | None) -> str | None:
        if name != "option" or arg is None:
            return None
        if arg not in values:
            raise PlaceholderError(f"unknown option {arg!r}")
        return option_text(values[arg])

    return substitute(template, replace)


def option_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def request_fields(template: str) -> Iterator[tuple[str, str | None]]:
    """Each ``(field, conversion)`` a request template uses."""
    for match in TOKEN.finditer(template):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        inner = match.group(1)
        item = _FIELD.match(inner or "")
        if inner is None or item is None:
            raise PlaceholderError(f"{token if inner is None else '{' + inner + '}'} is not a "
                                   "request field (write {field} or {field|str})")  # fmt: skip
        yield item.group(1), item.group(2)


def whole_field(template: str) -> tuple[str, str | None] | None:
    """``(field, conversion)`` when ``template`` is exactly one field placeholder."""
    match = re.fullmatch(r"\{([a-z_]+)(?:\|(str|int|float))?\}", template)
    return (match.group(1), match.group(2)) if match else None
