"""A commented YAML document, written by hand (PyYAML drops comments): the stack-file draft
of ``tradechaos stack import``.

A ``Block`` is an ordered mapping of ``Entry`` items, each with comment lines ``before`` it
and a trailing ``note``; an entry without a key is a comment paragraph. Leaves are written
in flow style (``[a, b]``, ``{k: v}``) while they fit in ``WIDTH`` columns, in block style
otherwise. Strings are plain when YAML reads them back as the same text, else double-quoted
(JSON escapes, which YAML reads). Placeholders (``chaos.stackfile.compose_read.placeholder``)
become ``{name:arg}`` and literal braces ``{{``/``}}``, so the draft is a valid stack file.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass, field
from typing import Any

from chaos.stackfile.compose_model import SENTINEL

WIDTH = 96
INDENT = "  "
_PLAIN = re.compile(r"^[A-Za-z0-9_./][A-Za-z0-9_./@+>-]*$|^--?[A-Za-z][A-Za-z0-9_./=+-]*$")
_SPECIAL = {"true", "false", "null", "yes", "no", "on", "off", "~", "y", "n"}
_PLACEHOLDER = re.compile(f"{SENTINEL}([^{SENTINEL}]*){SENTINEL}")


@dataclass
class Entry:
    key: str | None
    value: Any = None  # a scalar, a list, a dict, or a Block
    note: str = ""
    before: list[str] = field(default_factory=list)


class Block(list[Entry]):
    """An ordered mapping with comments."""

    def add(self, key: str | None, value: Any = None, note: str = "", *before: str) -> Entry:
        entry = Entry(key, value, note, list(before))
        self.append(entry)
        return entry


def template(raw: str) -> str:
    """A raw string as stack-file template text: literal braces doubled, placeholders
    written as ``{name:arg}``."""
    escaped = raw.replace("{", "{{").replace("}", "}}")
    return _PLACEHOLDER.sub(lambda m: "{" + m.group(1) + "}", escaped)


def scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = template(str(value))
    if _PLAIN.match(text) and text.lower() not in _SPECIAL and not _numeric(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return bool(re.match(r"^0[xob]|^\d{4}-\d\d?-\d\d?", text))
    return True


def flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{scalar(k)}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return scalar(value)


def _comment(lines: list[str], pad: str) -> list[str]:
    """Comment lines, each wrapped to ``WIDTH`` (continuations indented like the line);
    an empty one is a blank line."""
    out: list[str] = []
    for line in lines:
        if not line:
            out.append("")
            continue
        lead = " " * (len(line) - len(line.lstrip()))
        out.extend(
            textwrap.wrap(
                line.strip(),
                WIDTH,
                initial_indent=f"{pad}# {lead}",
                subsequent_indent=f"{pad}# {lead}",
                break_long_words=False,
                break_on_hyphens=False,
            )
            or [f"{pad}#"]
        )
    return out


def render(block: Block, depth: int = 0) -> str:
    """The block as YAML text (ends with a newline)."""
    return "\n".join(_lines(block, depth)) + "\n"


def _lines(block: Block, depth: int) -> list[str]:
    pad = INDENT * depth
    out: list[str] = []
    for entry in block:
        out.extend(_comment(entry.before, pad))
        if entry.key is None:
            continue
        head = f"{pad}{scalar(entry.key)}:"
        note = f"  # {entry.note}" if entry.note else ""
        value = entry.value
        if isinstance(value, Block):
            out.append(head + note)
            out.extend(_lines(value, depth + 1))
            continue
        text = f"{head} {flow(value)}"
        if len(text) <= WIDTH or not isinstance(value, list | dict) or not value:
            if len(text) + len(note) > WIDTH and note:
                out.extend(_comment([entry.note], pad))
                note = ""
            out.append(text + note)
        elif isinstance(value, dict):
            out.append(head + note)
            nested = Block(Entry(str(k), v) for k, v in value.items())
            out.extend(_lines(nested, depth + 1))
        elif all(not isinstance(item, list | tuple | dict) for item in value):
            out.extend(_comment([entry.note], pad) if entry.note else [])
            out.extend(_wrapped(f"{head} ", value))
        else:
            out.append(head + note)
            for item in value:
                if isinstance(item, list | tuple):
                    out.extend(_wrapped(f"{pad}{INDENT}- ", item))
                else:
                    out.append(f"{pad}{INDENT}- {flow(item)}")
    return out


def _wrapped(head: str, items: list[Any] | tuple[Any, ...]) -> list[str]:
    """A flow sequence of scalars over as many lines as it needs (items aligned after [)."""
    lines: list[str] = []
    current = head + "["
    indent = " " * len(current)
    for index, item in enumerate(items):
        text = scalar(item) + ("]" if index == len(items) - 1 else ",")
        if len(current) + 1 + len(text) > WIDTH and not current.endswith("["):
            lines.append(current.rstrip())
            current = indent
        elif not current.endswith("["):
            current += " "
        current += text
    lines.append(current)
    return lines
