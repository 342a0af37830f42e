"""Request templates and answer mappings of bindings, as pure functions (no I/O).

``render(request, fields)`` fills a ``chaos.stackfile.bindings.Request`` with a request's
fields (an order's, a mode's) and returns what to send; ``classify(answer, status, text)``
turns an HTTP answer into ``ok`` / ``fail`` / ``info`` with the seq, filled quantity and
reason the answer mapping points at. Both run in the load worker (under gevent) and in the
engine, so nothing here imports more than the standard library.

Template rules (docs/stack-file.md): a string that is exactly ``{field}`` takes the field's
value with its type (a missing/None value drops the key from a body object); ``{field|str}``
sends it as text, ``|int``/``|float`` as numbers; other strings are formatted as text.
``values`` maps a field's value (or each item of a list value) to the stack's own word
before it is placed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from chaos.stackfile.bindings import Answer, Request, Rule

_FIELD = re.compile(r"\{\{|\}\}|\{([a-z_]+)(?:\|(str|int|float))?\}")
_WHOLE = re.compile(r"^\{([a-z_]+)(?:\|(str|int|float))?\}$")
_STEP = re.compile(r"\.([A-Za-z0-9_-]+)|\[(-?\d+)\]")
MISSING = object()


@dataclass(frozen=True)
class Rendered:
    method: str
    path: str  # with the query string
    headers: dict[str, str]
    body: Any  # JSON to send, or None

    def describe(self) -> str:
        body = "" if self.body is None else " " + json.dumps(self.body)[:300]
        return f"{self.method} {self.path}{body}"


@dataclass(frozen=True)
class Classified:
    kind: str  # ok | fail | info
    seq: int | None = None
    filled_qty: float = 0.0
    reason: str = ""
    json: Any = None


def _convert(value: Any, conversion: str | None) -> Any:
    if conversion == "str":
        return _as_text(value)
    if conversion == "int":
        return int(value)
    if conversion == "float":
        return float(value)
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return (
            repr(value)
            if not value.is_integer()
            else str(int(value))
            if abs(value) < 1e15
            else repr(value)
        )
    return str(value)


def _lookup(name: str, fields: Mapping[str, Any], values: Mapping[str, Mapping[str, Any]]) -> Any:
    value = fields.get(name)
    table = values.get(name)
    if table is None or value is None:
        return value
    if isinstance(value, list | tuple):  # a list of words: each one translated
        return [table.get(_as_text(item), item) for item in value]
    return table.get(_as_text(value), value)


def fill_text(
    template: str, fields: Mapping[str, Any], values: Mapping[str, Mapping[str, Any]]
) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return match.group(0)[0]
        value = _lookup(match.group(1), fields, values)
        return "" if value is None else _as_text(_convert(value, match.group(2)))

    return _FIELD.sub(one, template)


def fill_json(
    template: Any, fields: Mapping[str, Any], values: Mapping[str, Mapping[str, Any]]
) -> Any:
    """The JSON ``template`` with every field placeholder filled (see the module doc)."""
    if isinstance(template, str):
        whole = _WHOLE.match(template)
        if whole is not None:
            value = _lookup(whole.group(1), fields, values)
            return MISSING if value is None else _convert(value, whole.group(2))
        return fill_text(template, fields, values)
    if isinstance(template, Mapping):
        out = {}
        for key, item in template.items():
            filled = fill_json(item, fields, values)
            if filled is not MISSING:
                out[str(key)] = filled
        return out
    if isinstance(template, list):
        return [v for v in (fill_json(i, fields, values) for i in template) if v is not MISSING]
    return template


def template_fields(request: Request) -> set[str]:
    """The field names ``request``'s path, query, headers and body strings use."""
    texts = [request.path, *map(str, request.query.values()), *request.headers.values()]
    pending: list[Any] = [request.body]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, Mapping):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return {m.group(1) for text in texts for m in _FIELD.finditer(text) if m.group(1)}


def render(request: Request, fields: Mapping[str, Any]) -> Rendered:
    """What to send for ``request`` with these field values."""
    path = fill_text(request.path, {k: quote(_as_text(v), safe="") if v is not None else None
                                    for k, v in fields.items()}, request.values)  # fmt: skip
    query = {k: fill_text(str(v), fields, request.values) for k, v in request.query.items()}
    query = {k: v for k, v in query.items() if v != ""}
    if query:
        path += ("&" if "?" in path else "?") + urlencode(query)
    headers = {k: fill_text(v, fields, request.values) for k, v in request.headers.items()}
    body = None if request.body is None else fill_json(request.body, fields, request.values)
    if body is MISSING:
        body = None
    if body is not None:
        headers.setdefault("Content-Type", "application/json")
    return Rendered(request.method, path, headers, body)


# -- answers -------------------------------------------------------------------------------


def get(document: Any, path: str) -> Any:
    """The value at JSON path ``path`` (``$.a.b``, ``$.a[0]``, ``$.a[-1]``), or MISSING."""
    node = document
    for key, index in _STEP.findall(path[1:]):
        if key:
            if not isinstance(node, Mapping) or key not in node:
                return MISSING
            node = node[key]
        else:
            if not isinstance(node, list):
                return MISSING
            i = int(index)
            if not -len(node) <= i < len(node):
                return MISSING
            node = node[i]
    return node


def status_matches(statuses: tuple[int | str, ...], code: int) -> bool:
    if not statuses:
        return True
    for status in statuses:
        if isinstance(status, int) and status == code:
            return True
        if isinstance(status, str) and status.endswith("xx") and str(code)[0] == status[0]:
            return True
    return False


def rule_matches(rule: Rule, code: int, text: str, document: Any) -> bool:
    if not status_matches(rule.statuses, code):
        return False
    for path, wanted in rule.json.items():
        if get(document, path) not in wanted:
            return False
    if rule.text:
        lowered = text.lower()
        if not any(word.lower() in lowered for word in rule.text):
            return False
    return True


def parse_json(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def classify(answer: Answer, code: int, text: str) -> Classified:
    """``ok`` when an ok rule matches, else ``info`` when an info rule does, else ``fail``
    when a fail rule does, else ``info`` (the outcome is unknown)."""
    document = parse_json(text)
    if any(rule_matches(r, code, text, document) for r in answer.ok):
        kind = "ok"
    elif any(rule_matches(r, code, text, document) for r in answer.info):
        kind = "info"
    elif any(rule_matches(r, code, text, document) for r in answer.fail):
        kind = "fail"
    else:
        kind = "info"
    seq_value = get(document, answer.seq) if answer.seq else MISSING
    seq = (
        int(seq_value)
        if isinstance(seq_value, int | float) and not isinstance(seq_value, bool)
        else None
    )
    filled = 0.0
    if answer.fills:
        fills = get(document, answer.fills)
        if isinstance(fills, list):
            for fill in fills:
                qty = fill.get(answer.fill_qty) if isinstance(fill, Mapping) else None
                try:
                    filled += float(qty) if qty is not None else 0.0
                except (TypeError, ValueError):
                    continue
    reason = ""
    if kind != "ok":
        for path in answer.reason:
            found = get(document, path)
            if found not in (MISSING, None, ""):
                reason = str(found)
                break
        reason = reason or f"HTTP {code}" + (
            f" {text.strip()[:120]}" if document is None and text else ""
        )
    return Classified(kind, seq, filled, reason, document)
