"""The stack file's structure as a JSON Schema (docs/stack-file.md).

One source of truth: the loader validates every document against ``STACK_SCHEMA`` (and
turns each violation into ``file:line: field: problem``), and ``tradechaos stack schema``
prints it for editors. What a schema cannot say (names that must exist, dependency
cycles, placeholders) is checked by ``chaos.stackfile.semantics``.
"""

from __future__ import annotations

import json
from typing import Any

Schema = dict[str, Any]

NAME = r"^[A-Za-z][A-Za-z0-9_.]{0,62}$"
SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"
LINK_ARROW = r"^[A-Za-z][A-Za-z0-9_.]*->[A-Za-z][A-Za-z0-9_.]*$"
REF = r"^[A-Za-z][A-Za-z0-9_.-]*(->[A-Za-z][A-Za-z0-9_.]*)?$"  # a link (name or arrow) or a service
MARKET_NAME = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,31}$"
DURATION = r"^\s*(\d+(\.\d+)?|\.\d+)\s*(ms|s|m|h)?\s*$"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
VENUE_SHAPES = ("tradechaos", "binance", "coinbase", "kraken")  # chaos.builtins.shapes
SYMBOL = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"


def obj(properties: dict[str, Schema], required: tuple[str, ...] = (), **extra: Any) -> Schema:
    """A closed object: only ``properties`` are allowed."""
    schema: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    schema.update(extra)
    return schema


def text(**extra: Any) -> Schema:
    return {"type": "string", **extra}


def strings() -> Schema:
    return {"type": "array", "items": {"type": "string"}}


def names() -> Schema:
    return {"type": "array", "items": {"type": "string", "pattern": NAME}, "uniqueItems": True}


def duration() -> Schema:
    return {"anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": DURATION}]}


def number(**extra: Any) -> Schema:
    return {"type": "number", **extra}


def mapping(values: Schema) -> Schema:
    return {"type": "object", "additionalProperties": values}


SCALAR: Schema = {"type": ["string", "number", "boolean"]}
WHEN: Schema = text(pattern=r"^!?[A-Za-z][A-Za-z0-9_]*$")
ARG: Schema = {
    "anyOf": [
        {"type": ["string", "number"]},
        obj({"when": WHEN, "args": {"type": "array", "items": {"type": ["string", "number"]}}},
            ("when", "args")),
    ]
}  # fmt: skip
COMMAND: Schema = {"type": "array", "items": ARG, "minItems": 1}
ENV: Schema = mapping({"type": ["string", "number", "boolean"]})

HEALTH: Schema = obj(
    {
        "http": text(pattern=r"^/"),
        "status": {"type": "integer", "minimum": 100, "maximum": 599},
        "tcp": {"const": True},
        "pg": {"const": True},
        "log": text(minLength=1),
        "command": COMMAND,
        "timeout": duration(),
        "interval": duration(),
    }
)

BUILD: Schema = {
    "anyOf": [
        {"const": "tradechaos"},
        obj(
            {
                "context": text(minLength=1),
                "dockerfile": text(minLength=1),
                "args": ENV,
                "wheelhouse": strings(),
            },
            ("context",),
        ),
    ]
}

SERVICE: Schema = obj(
    {
        "builtin": {"enum": ["postgres", "venues"]},
        "description": text(),
        "command": COMMAND,
        "image": text(minLength=1),
        "build": BUILD,
        "docker": obj({"command": COMMAND, "env": ENV}),
        "env": ENV,
        "cwd": text(),
        "health": HEALTH,
        "depends_on": names(),
        "site": text(pattern=NAME),
        "optional": {"type": "boolean"},
        "when": WHEN,
        "stop": obj({"signal": {"enum": ["TERM", "INT", "QUIT", "HUP", "KILL"]},
                     "grace": duration()}),
        "setup": {"type": "array", "items": COMMAND},
        "after_healthy": {"type": "array", "items": COMMAND},
        # builtin parameters
        "database": text(pattern=r"^[a-z_][a-z0-9_]{0,62}$"),
        "schema": text(minLength=1),
        "count": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 50},
                            {"type": "string", "pattern": r"^\{option:[A-Za-z0-9_]+\}$"}]},
        "venues": {"type": "array", "minItems": 1, "maxItems": 50, "items": obj(
            {"shape": {"enum": list(VENUE_SHAPES)},
             "symbols": {**mapping(text(pattern=SYMBOL)),
                         "propertyNames": {"pattern": MARKET_NAME}}},
            ("shape",))},
    }
)  # fmt: skip

LINK_NAME = r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$"
LINK: Schema = {
    "anyOf": [
        text(pattern=LINK_ARROW),
        obj({"link": text(pattern=LINK_ARROW), "name": text(pattern=LINK_NAME), "when": WHEN},
            ("link",)),
        obj({"name": text(pattern=LINK_NAME), "from": text(pattern=NAME), "to": text(pattern=NAME),
             "when": WHEN}, ("from", "to")),
    ]
}  # fmt: skip

OPTION: Schema = obj(
    {
        "type": {"enum": ["bool", "int", "number", "string", "choice"]},
        "default": SCALAR,
        "choices": {"type": "array", "items": {"type": ["string", "number"]}, "minItems": 1},
        "min": number(),
        "max": number(),
        "help": text(),
    },
    ("type", "default"),
)

MARKET: Schema = obj(
    {
        "initial_price": number(exclusiveMinimum=0),
        "volatility": number(minimum=0),
        "funding_index": number(),
        "max_funding_rate": number(minimum=0),
        "tick": number(exclusiveMinimum=0),
        "maintenance_margin": number(exclusiveMinimum=0, maximum=1),
    },
    ("initial_price",),
)

ON_OFF: Schema = obj({"on": {"type": ["string", "number", "boolean"]},
                      "off": {"type": ["string", "number", "boolean"]}}, ("on", "off"))  # fmt: skip
MITIGATION: Schema = obj(
    {
        "help": text(),
        "services": mapping(
            obj(
                {
                    "env": mapping(ON_OFF),
                    "args": obj({"on": strings(), "off": strings()}),
                }
            )
        ),
    }
)

# -- bindings -----------------------------------------------------------------------------

JSON_PATH: Schema = text(pattern=r"^\$(\.[A-Za-z0-9_-]+|\[-?\d+\])*$")
TEMPLATE_VALUE: Schema = {}  # any JSON value (templated strings inside)


def request(extra: dict[str, Schema] | None = None) -> Schema:
    """An HTTP request template: exactly one METHOD: PATH key (checked semantically)."""
    properties: dict[str, Schema] = {m: text(pattern=r"^/") for m in METHODS}
    properties.update(
        {
            "body": TEMPLATE_VALUE,
            "query": mapping({"type": ["string", "number", "boolean"]}),
            "headers": mapping({"type": "string"}),
            "values": mapping(mapping({"type": ["string", "number", "boolean"]})),
            "service": text(pattern=NAME),
            "via": text(pattern=REF),
            "timeout": duration(),
        }
    )
    properties.update(extra or {})
    return obj(properties)


STATUS: Schema = {
    "anyOf": [
        {"type": "integer", "minimum": 100, "maximum": 599},
        {"enum": ["1xx", "2xx", "3xx", "4xx", "5xx"]},
        {"type": "array", "items": {"anyOf": [
            {"type": "integer", "minimum": 100, "maximum": 599},
            {"enum": ["1xx", "2xx", "3xx", "4xx", "5xx"]}]}, "minItems": 1},
    ]
}  # fmt: skip
RULE: Schema = obj(
    {
        "status": STATUS,
        "json": mapping({"anyOf": [SCALAR, {"type": "null"},
                                   {"type": "array", "items": SCALAR}]}),
        "text": strings(),
    }
)  # fmt: skip
RULES: Schema = {"anyOf": [RULE, {"type": "array", "items": RULE}]}
PATHS: Schema = {"anyOf": [JSON_PATH, {"type": "array", "items": JSON_PATH, "minItems": 1}]}
ANSWER: Schema = obj(
    {
        "ok": RULES,
        "info": RULES,
        "fail": RULES,
        "seq": JSON_PATH,
        "fills": JSON_PATH,
        "fill_qty": text(),
        "reason": PATHS,
    }
)
PRICES: Schema = obj(
    {"at": JSON_PATH, "price": text(minLength=1), "market": text(minLength=1)}, ("at", "price")
)
ACCOUNT_SET: Schema = {
    "anyOf": [
        text(pattern=r"^\d+(-\d+)?(,\d+(-\d+)?)*$"),
        {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1},
    ]
}
SQL_RUN: Schema = obj({"database": text(pattern=REF), "run": text(minLength=1)},
                      ("database", "run"))  # fmt: skip
SQL_SOURCE: Schema = obj(
    {
        "database": text(pattern=REF),
        "query": text(minLength=1),
        "merge": strings(),
        "json": strings(),
    },
    ("database", "query"),
)
HTTP_SOURCE: Schema = obj(
    {
        "service": text(pattern=NAME),
        "path": text(pattern=r"^/"),
        "items": JSON_PATH,
        "page": obj(
            {
                "param": text(minLength=1),
                "start": {"type": "integer"},
                "size_param": text(minLength=1),
                "size": {"type": "integer", "minimum": 1},
                "next": text(minLength=1),
            },
            ("param", "next"),
        ),
    },
    ("service", "path"),
)
FILE_SOURCE: Schema = obj(
    {"service": text(pattern=NAME), "path": text(minLength=1)}, ("service", "path")
)
SOURCE: Schema = obj(
    {"sql": SQL_SOURCE, "http": HTTP_SOURCE, "file": FILE_SOURCE, "sort": text(minLength=1)}
)
SOURCES: Schema = {"anyOf": [SOURCE, {"type": "array", "items": SOURCE, "minItems": 1}]}
READING: Schema = obj(
    {
        "sql": obj({"database": text(pattern=REF), "query": text(minLength=1)},
                   ("database", "query")),
        "http": obj({"service": text(pattern=NAME), "path": text(pattern=r"^/"),
                     "value": JSON_PATH}, ("service", "path", "value")),
    }
)  # fmt: skip

# -- the response binding (issue 21: the operator's runbook) ------------------------------
# Each request goes straight to the first running service of ``services`` that answers
# (a 503 moves on to the next); ``answer`` maps History fields to JSON paths of the answer
# (docs/stack-file.md, "response").
RESPONSE_REQUESTS = ("snapshot", "rollback", "cancel_all", "disable_access", "enable_access",
                     "replay")  # fmt: skip
RESPONSE: Schema = obj(
    {
        "services": {**names(), "minItems": 1},
        **{name: request({"answer": mapping(JSON_PATH)}) for name in RESPONSE_REQUESTS},
    },
    ("services",),
)
# -- end of the response binding ----------------------------------------------------------

BINDINGS: Schema = obj(
    {
        "orders": obj(
            {
                "via": text(pattern=REF),
                "failover": text(pattern=REF),
                "submit": request(),
                "cancel": request(),
                "answer": ANSWER,
                "market_data": request({"mode": JSON_PATH, "prices": PRICES}),
                "python": text(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"),
            }
        ),
        "accounts": obj(
            {
                "traders": ACCOUNT_SET,
                "adversaries": ACCOUNT_SET,
                "collateral": number(minimum=0),
                "insurance_fund": {"type": "integer", "minimum": 0},
                "fund": request({"sql": SQL_RUN}),
            },
            ("traders",),
        ),
        "trading_mode": obj(
            {
                "services": names(),
                "set": request(),
                "get": request({"mode": JSON_PATH}),
                "modes": obj({m: {"type": "string", "minLength": 1}
                              for m in ("normal", "post_only", "cancel_only", "halt")}),
            },
            ("services", "set"),
        ),
        "db_upgrade": obj(
            {
                "database": text(pattern=NAME),
                "clients": {"type": "array", "items": text(pattern=REF), "uniqueItems": True},
                "tables": strings(),
                "command": COMMAND,
            },
            ("database",),
        ),
        "history": obj(
            {
                "settle": obj(
                    {
                        "timeout": duration(),
                        "until": {"type": "array", "items": obj(
                            {"value": READING, "at_least": READING}, ("value", "at_least"))},
                    },
                    ("until",),
                ),
                "events": SOURCES,
                "oracle": SOURCES,
                "modes": SOURCES,
                "chain": SOURCES,
                "rolled_back": SOURCES,
                "python": text(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"),
            }
        ),
        "response": RESPONSE,  # issue 21
    }
)  # fmt: skip

CHECK_NAME = r"^[a-z][a-z0-9_]{0,62}$"
CHECK: Schema = obj(
    {
        "help": text(),
        "sql": obj({"database": text(pattern=REF), "query": text(minLength=1)},
                   ("database", "query")),
    },
    ("sql",),
)  # fmt: skip

STACK_SCHEMA: Schema = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://tradechaos.dev/schemas/stack-file.json",
    "title": "tradechaos stack file",
    "description": "A trading stack described to tradechaos (docs/stack-file.md).",
    **obj(
        {
            "name": text(pattern=SLUG),
            "description": text(),
            "options": {
                **mapping(OPTION),
                "propertyNames": {"pattern": r"^[A-Za-z][A-Za-z0-9_]{0,62}$"},
            },
            "markets": {**mapping(MARKET), "propertyNames": {"pattern": MARKET_NAME}},
            "services": {
                **mapping(SERVICE),
                "minProperties": 1,
                "propertyNames": {"pattern": NAME},
            },
            "links": {"type": "array", "items": LINK},
            "mitigations": mapping({"anyOf": [MITIGATION, {"type": "null"}]}),
            "bindings": BINDINGS,
            "checks": {**mapping(CHECK), "propertyNames": {"pattern": CHECK_NAME}},
            "kubernetes": obj({"contexts": strings(), "namespaces": strings()}),
        },
        ("name", "services"),
    ),
}


def schema_json() -> str:
    """The schema as pretty JSON (``tradechaos stack schema``)."""
    return json.dumps(STACK_SCHEMA, indent=2) + "\n"
