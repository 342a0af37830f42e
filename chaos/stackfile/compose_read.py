"""Reading a Compose file (``tradechaos stack import``): the YAML -> typed ``ComposeFile``.

What is read, per service (the Compose specification's forms): ``image``, ``build`` (a
context, or ``{context, dockerfile, args}`` with args as a map or ``K=V`` list),
``command`` and ``entrypoint`` (text, split like a shell, or a list), ``environment`` (a map
or a ``K=V`` list; a name without a value is the host's) after ``env_file`` (one or a list,
each a path or ``{path, required}``), ``ports`` (short ``[IP:][PUBLISHED:]TARGET[/tcp]``,
ranges, or long ``{target, published}``) and ``expose``, ``depends_on`` (a list, or a map
with ``condition``: ``service_started``, ``service_healthy``,
``service_completed_successfully``), ``healthcheck`` (``test`` as text, ``CMD``,
``CMD-SHELL`` or ``NONE``; ``interval``, ``timeout``, ``retries``, ``start_period``,
``disable``), ``profiles``, ``labels``, ``network_mode``, ``hostname``, ``container_name``,
network ``aliases``, ``volumes``, ``stop_signal``, ``stop_grace_period``. Merge keys
(``<<: *defaults``) and top-level ``x-`` extensions work as YAML says.

Variables (``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?msg}``, ``$VAR``,
``$$``) are taken from the ``.env`` file beside the Compose file, never from this process's
environment (the draft must not depend on who ran the import); an unset one becomes its
default or empty text and is listed in ``ComposeFile.unset``. In a file written by
``tradechaos stack compose`` (its header says so), ``${SEED}``, ``${EPOCH}`` and
``${MITIGATIONS}`` become the ``{seed}``, ``{epoch}`` and ``{mitigations}`` placeholders.

Strings keep placeholders as sentinels (``placeholder()``) until the draft is written, so
literal braces and placeholders never mix. A file that cannot be read raises
``InvalidCompose`` naming the file, the line and the key, at the first problem.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chaos.files.fields import kind_of
from chaos.files.yamlsource import LineDict, LineList, YamlSyntaxError, parse
from chaos.stackfile.compose_model import (
    ComposeFile,
    ComposeReader,
    dotenv,
    placeholder,
)
from chaos.stackfile.compose_service import read_service

MAX_FILE_BYTES = 2_000_000
GENERATED_MARK = "# GENERATED from the stack file"
GENERATED_VARIABLES = {"SEED": "seed", "EPOCH": "epoch", "MITIGATIONS": "mitigations"}
_VARIABLE = re.compile(
    r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))"
)


def read_compose(path: str | Path) -> ComposeFile:
    """The Compose file at ``path``; ``InvalidCompose`` naming file, line and key."""
    path = Path(path)
    r = ComposeReader(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise r.fail(None, "", f"cannot read the Compose file: {err.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise r.fail(None, "", "the Compose file is larger than 2 MB")
    try:
        text = raw.decode("utf-8")
        document = parse(text)
    except UnicodeDecodeError:
        raise r.fail(1, "", "the Compose file is not UTF-8 text") from None
    except YamlSyntaxError as err:
        raise r.fail(err.line, "", err.problem) from None
    if not isinstance(document, LineDict) or not isinstance(document.get("services"), LineDict):
        line = document.line_of("services") if isinstance(document, LineDict) else 1
        found = kind_of(document.get("services")) if isinstance(document, LineDict) else None
        raise r.fail(line, "services", "expected a mapping of services"
                     + (f", got {found}" if found else ""))  # fmt: skip
    generated = GENERATED_MARK in text[:2000]
    variables = dotenv(path.parent / ".env") if (path.parent / ".env").is_file() else {}
    unset: list[str] = []
    known = {k: placeholder(v) for k, v in GENERATED_VARIABLES.items()} if generated else {}
    _interpolate(document, variables, known, unset, r, [])
    services = tuple(
        read_service(r, str(name), body, document["services"].line_of(name))
        for name, body in document["services"].items()
    )
    names = [s.name for s in services]
    for svc in services:
        for dep in svc.depends_on:
            if dep.service not in names:
                listing = ", ".join(names)
                raise r.fail(svc.line, f"services.{svc.name}.depends_on",
                             f"unknown service {dep.service!r} (services: {listing})")  # fmt: skip
    name = document.get("name")
    return ComposeFile(
        path=path.resolve(),
        name=str(name) if isinstance(name, str) else None,
        services=services,
        generated=generated,
        unset=tuple(dict.fromkeys(unset)),
    )


# -- variables ---------------------------------------------------------------------------


def _substitute(
    text: str, values: Mapping[str, str], known: Mapping[str, str], unset: list[str]
) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        op, arg = match.group(2), match.group(3) or ""
        if name in known:
            return known[name]
        value = values.get(name)
        present = value is not None and (value != "" or not (op or "").startswith(":"))
        if op in ("-", ":-"):
            return value if present and value is not None else arg
        if op in ("+", ":+"):
            return arg if present else ""
        if value is None:
            unset.append(name)
        return value or ""

    if "${" in text and text.count("${") > text.count("}"):
        raise ValueError(f"unterminated ${{...}} in {text!r}")
    return _VARIABLE.sub(one, text)


def _interpolate(
    node: Any,
    values: Mapping[str, str],
    known: Mapping[str, str],
    unset: list[str],
    r: ComposeReader,
    where: list[Any],
) -> None:
    """Replace variables in every string of the document, in place."""
    items: list[tuple[Any, Any]] = (
        list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        if isinstance(node, list) else []
    )  # fmt: skip
    for key, value in items:
        if isinstance(value, str):
            try:
                node[key] = _substitute(value, values, known, unset)
            except ValueError as err:
                line = node.line_of(key) if isinstance(node, LineDict | LineList) else None
                raise r.fail(line, _dotted([*where, key]), str(err)) from None
        elif isinstance(value, dict | list):
            _interpolate(value, values, known, unset, r, [*where, key])


def _dotted(path: list[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
