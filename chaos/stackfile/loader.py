"""Stack files -> ``StackFile`` (docs/stack-file.md).

``load(path)`` returns a validated model or raises ``InvalidStack`` (the first problem);
``problems(path)`` returns every problem, each ``FILE:LINE: FIELD: problem``. Three passes:
the structure against ``chaos.stackfile.schema.STACK_SCHEMA``, the model
(``chaos.stackfile.build``), then the cross-references (``chaos.stackfile.semantics``).
Nothing here starts processes or touches the network.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from chaos.errors import InvalidStack
from chaos.files.fields import Reader, kind_of, printable
from chaos.files.yamlsource import LineDict, YamlSyntaxError, dotted, line_at, parse
from chaos.stackfile import schema as S
from chaos.stackfile.build import build
from chaos.stackfile.model import StackFile
from chaos.stackfile.semantics import check

MAX_FILE_BYTES = 1_000_000
REFERENCE_STACK = Path(__file__).resolve().parents[1] / "stack" / "stack.yaml"
_PATTERN_WORDS = {
    S.NAME: "a name (a letter, then letters, digits, '_' or '.')",
    S.SLUG: "a slug (lowercase letters, digits, '-')",
    S.LINK_ARROW: "a link like client->server",
    S.LINK_NAME: "a link name (a letter, then letters, digits, '_', '.' or '-')",
    S.REF: "a link (a name or client->server) or a service",
    S.MARKET_NAME: "a market name like BTC-PERP",
    S.SYMBOL: "an exchange symbol like BTCUSDT, BTC-USD or XXBTZUSD",
    S.CHECK_NAME: "a check name (lowercase letters, digits, '_')",
    S.DURATION: "a duration like 250ms, 5s, 2m",
}


def reference_stack_path() -> Path:
    """The stack file of the reference stack (the default)."""
    return REFERENCE_STACK


def load(path: str | Path) -> StackFile:
    stack, found = _load(Path(path))
    if found:
        raise found[0]
    assert stack is not None
    return stack


@lru_cache(maxsize=32)
def _cached(
    path: Path, mtime_ns: int, size: int
) -> tuple[StackFile | None, tuple[InvalidStack, ...]]:
    del mtime_ns, size  # part of the cache key only
    stack, found = _load_uncached(path)
    return stack, tuple(found)


def _load(path: Path) -> tuple[StackFile | None, list[InvalidStack]]:
    """Loaded once per file content (experiments of a library share their stack)."""
    try:
        stat = path.resolve().stat()
    except OSError:
        return _load_uncached(path)
    stack, found = _cached(path.resolve(), stat.st_mtime_ns, stat.st_size)
    return stack, list(found)


def problems(path: str | Path) -> list[InvalidStack]:
    """Every problem of the file; empty when it loads."""
    return _load(Path(path))[1]


def _load_uncached(path: Path) -> tuple[StackFile | None, list[InvalidStack]]:
    where = str(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        return None, [InvalidStack(where, None, "", f"cannot read the stack file: {err.strerror}")]
    if len(raw) > MAX_FILE_BYTES:
        return None, [InvalidStack(where, None, "", "the stack file is larger than 1 MB")]
    try:
        document = parse(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None, [InvalidStack(where, 1, "", "the stack file is not UTF-8 text")]
    except YamlSyntaxError as err:
        return None, [InvalidStack(where, err.line, "", printable(err.problem))]
    reader = Reader(where, InvalidStack)
    if not isinstance(document, LineDict):
        reader.fail(1, "", f"expected a mapping with name and services, got {kind_of(document)}")
        return None, _sorted(reader)
    structure_problems(reader, document)
    if reader.problems:
        return None, _sorted(reader)
    stack = build(reader, document, path)
    if stack is not None and not reader.problems:
        check(reader, document, stack)
    found = _sorted(reader)
    return (stack if not found else None), found


def _sorted(reader: Reader) -> list[InvalidStack]:
    problems_ = [p for p in reader.problems if isinstance(p, InvalidStack)]
    return sorted(problems_, key=lambda p: p.line or 0)


# -- structure (JSON Schema) -------------------------------------------------------------


def structure_problems(reader: Reader, document: LineDict) -> None:
    """Record one problem per JSON-Schema violation, at the line of the offending key."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(S.STACK_SCHEMA)
    seen: set[tuple[int, str]] = set()
    for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path))):
        path, problem = _explain(error)
        line = line_at(document, path)
        field = dotted(path)
        if (line, field) in seen:
            continue
        seen.add((line, field))
        reader.fail(line, field, problem)


def _explain(error: Any) -> tuple[list[Any], str]:
    """(path to the offending value, one sentence) for a jsonschema error."""
    from jsonschema.exceptions import best_match

    path = list(error.absolute_path)
    value = error.instance
    if error.validator == "anyOf" and error.context:
        # the branches that fit the value's shape say what is wrong with it
        fitting = [
            e for e in error.context if len(e.absolute_path) > len(path) or e.validator != "type"
        ]
        if fitting:
            return _explain(best_match(fitting))
        return path, f"expected {_forms(error.schema)}, got {kind_of(value)}"
    kind = error.validator
    schema = error.schema
    if kind == "additionalProperties":
        allowed = list((schema.get("properties") or {}).keys())
        extra = [k for k in value if k not in allowed] if isinstance(value, dict) else []
        key = extra[0] if extra else ""
        return [*path, key], f"unknown field (allowed: {', '.join(allowed) or 'none'})"
    if kind == "required":
        missing = error.validator_value
        name = next((k for k in missing if k not in value), missing[0])
        return path, f"missing required field {name!r}"
    if kind == "type":
        return path, f"expected {_type_words(error.validator_value)}, got {kind_of(value)}"
    if kind in ("enum", "const"):
        allowed = error.validator_value if kind == "enum" else [error.validator_value]
        listing = ", ".join(_plain(a) for a in allowed)
        return path, f"unknown value {_plain(value)} (allowed: {listing})"
    if kind == "pattern":
        words = _PATTERN_WORDS.get(error.validator_value)
        if words is None and error.validator_value.startswith("^/"):
            words = "a path starting with /"
        if words is None and error.validator_value.startswith("^\\$"):
            words = "a JSON path like $.a.b or $.a[0]"
        return path, f"{_plain(value)} is not {words or 'in the expected form'}"
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        op = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
        return path, f"must be {op[kind]} {error.validator_value}, got {_plain(value)}"
    if kind in ("minItems", "minProperties", "minLength"):
        return path, "must not be empty"
    if kind == "uniqueItems":
        return path, "lists a name twice"
    if kind == "propertyNames":
        return path, f"{_plain(error.instance)} is not a usable name"
    return path, printable(str(error.message))


def _forms(schema: Any) -> str:
    kinds = []
    for option in schema.get("anyOf", []):
        if "const" in option:
            kinds.append(repr(option["const"]))
        elif "type" in option:
            kinds.append(_type_words(option["type"]))
    return " or ".join(dict.fromkeys(kinds)) or "another form"


def _type_words(kind: Any) -> str:
    words = {
        "object": "a mapping",
        "array": "a list",
        "string": "text",
        "number": "a number",
        "integer": "a whole number",
        "boolean": "true or false",
        "null": "nothing",
    }
    kinds = kind if isinstance(kind, list) else [kind]
    return " or ".join(words.get(str(k), str(k)) for k in kinds)


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)
