"""Stack files: the reference stack loads, and every kind of mistake is one problem naming
file, line and field (exit 2 from `tradechaos validate`)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from chaos.cli import main
from chaos.stackfile import load, problems, reference_stack_path, resolve
from chaos.stackfile.schema import STACK_SCHEMA, schema_json

GOOD = """\
name: tiny
options:
  fast: {type: bool, default: false}
  width: {type: int, default: 2, min: 1, max: 4}
services:
  db:
    builtin: postgres
    database: tiny
  venues:
    builtin: venues
    count: "{option:width}"
  api:
    command: ["{python}", -m, tiny.api, --port, "{port}", --db, "{dsn:api-db}"]
    env: {PRICES: "{venue_urls:api-venues}", FAST: "{option:fast}"}
    health: {http: /healthz}
    depends_on: [db, venues]
links: [api->db, api->venues, clients->api]
mitigations:
  guard: {services: {api: {env: {GUARD: {on: "1", off: "0"}}}}}
bindings:
  orders:
    via: clients->api
    submit: {POST: /orders, body: {id: "{client_order_id}", qty: "{qty|str}"}}
"""


def write(tmp_path: Path, text: str, name: str = "stack.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def first(tmp_path: Path, text: str) -> str:
    found = problems(write(tmp_path, text))
    assert found, "expected a problem"
    return str(found[0])


def test_the_reference_stack_file_loads_and_resolves() -> None:
    stack = load(reference_stack_path())
    assert stack.name == "reference"
    plain = resolve(stack)
    standby = resolve(stack, {"standby": True})
    assert "sequencer_b" not in plain.service_names and "sequencer_b" in standby.service_names
    assert "risk-sequencer_b" in standby.link_names and "risk-sequencer_b" not in plain.link_names
    assert plain.service("feeds").venues == 3
    assert resolve(stack, {"venues": 5}).service("feeds").venues == 5


def test_a_small_foreign_stack_loads(tmp_path: Path) -> None:
    stack = load(write(tmp_path, GOOD))
    definition = resolve(stack, {"width": 3, "fast": True}, ["guard"])
    api = definition.service("api")
    assert api.env["GUARD"] == "1" and api.env["FAST"] == "true"
    assert resolve(stack, {}, []).service("api").env["GUARD"] == "0"
    assert definition.service("venues").venues == 3
    assert definition.bindings.orders is not None
    assert definition.bindings.orders.via == "clients-api"


@pytest.mark.parametrize(
    ("change", "line", "field", "words"),
    [
        (("  api:\n", "  api:\n    colour: blue\n"), 13, "services.api.colour", "unknown field"),
        (("{dsn:api-db}", "{dsn:api-dbx}"), 13, "services.api.command[6]", "unknown database"),
        (("{port}", "{portt}"), 13, "services.api.command[4]", "unknown placeholder {portt}"),
        (("depends_on: [db, venues]", "depends_on: [db, vnues]"), 16, "depends_on[1]",
         "unknown service 'vnues'"),
        (("api->venues", "api->venus"), 17, "links[1]", "unknown service 'venus'"),
        (("via: clients->api", "via: clients->apix"), 22, "bindings.orders.via",
         "unknown link 'clients-apix'"),
        (('"{option:width}"', '"{option:height}"'), 11, "services.venues.count",
         "must name an int option"),
        (("{qty|str}", "{quantity}"), 23, "bindings.orders.submit.body.qty",
         "unknown field {quantity}"),
        (("min: 1, max: 4}", "min: 1, max: 4, colour: x}"), 4, "options.width.colour",
         "unknown field"),
    ],
)  # fmt: skip
def test_each_mistake_names_its_line_and_field(
    tmp_path: Path, change: tuple[str, str], line: int, field: str, words: str
) -> None:
    old, new = change
    assert old in GOOD
    found = [str(p) for p in problems(write(tmp_path, GOOD.replace(old, new, 1)))]
    assert any(
        f"stack.yaml:{line}:" in text and field in text and words in text for text in found
    ), found


def test_a_dependency_cycle_is_named(tmp_path: Path) -> None:
    text = GOOD.replace("    health: {http: /healthz}\n", "    health: {http: /healthz}\n").replace(
        "    database: tiny\n", "    database: tiny\n    depends_on: [api]\n"
    )
    message = first(tmp_path, text)
    assert "dependency cycle" in message and "api" in message and "db" in message


def test_a_binding_naming_a_missing_service(tmp_path: Path) -> None:
    mode = "  trading_mode:\n    services: [engine]\n    set: {PUT: /mode, body: {m: '{mode}'}}\n"
    text = GOOD + mode
    message = first(tmp_path, text)
    assert "bindings.trading_mode.services[0]" in message and "unknown service 'engine'" in message


def test_a_request_names_one_method(tmp_path: Path) -> None:
    text = GOOD.replace("submit: {POST: /orders,", "submit: {POST: /orders, PUT: /x,")
    assert "exactly one of GET, POST, PUT, PATCH, DELETE" in first(tmp_path, text)


def test_an_option_default_must_fit_its_type(tmp_path: Path) -> None:
    text = GOOD.replace("{type: int, default: 2,", "{type: int, default: wide,")
    message = first(tmp_path, text)
    assert "options.width.default" in message and "whole number" in message


def test_yaml_and_shape_errors_are_one_sentence(tmp_path: Path) -> None:
    assert "YAML syntax" in first(tmp_path, "name: x\nservices: [\n")
    assert "missing required field 'services'" in first(tmp_path, "name: x\n")
    assert "expected a mapping" in first(tmp_path, "- a\n- b\n")


def test_resolving_with_a_bad_option_value_names_it() -> None:
    stack = load(reference_stack_path())
    with pytest.raises(ValueError, match="option venues must be from 1 to 20"):
        resolve(stack, {"venues": 99})
    with pytest.raises(ValueError, match="has no option 'colour'"):
        resolve(stack, {"colour": "red"})


def test_validate_accepts_stack_files_and_exits_2_on_broken_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(tmp_path, GOOD, "good.yaml")
    broken = write(tmp_path, GOOD.replace("{port}", "{portt}"), "broken.yaml")
    assert main(["validate", str(good), str(reference_stack_path())]) == 0
    assert "ok (stack)" in capsys.readouterr().out
    assert main(["validate", str(broken)]) == 2
    out = capsys.readouterr().out
    assert "broken.yaml:13: services.api.command[4]: unknown placeholder {portt}" in out


def test_stack_schema_prints_the_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stack", "schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(schema_json()) == json.loads(json.dumps(STACK_SCHEMA))
    assert printed["required"] == ["name", "services"]


def test_history_sources_are_read_in_the_order_the_file_lists_them(tmp_path: Path) -> None:
    """The reference stack lists its chain before its event log: an export reads them in
    that order, so every event a block carries is in the log read after it."""
    reference = load(reference_stack_path()).bindings.history
    assert reference is not None and list(reference.sources)[:2] == ["chain", "events"]
    path = tmp_path / "stack.yaml"
    history = """\
  history:
    modes: {sql: {database: api-db, query: SELECT 1}}
    events: {sql: {database: api-db, query: SELECT 2}}
"""
    path.write_text(GOOD + history)
    binding = load(path).bindings.history
    assert binding is not None and list(binding.sources) == ["modes", "events"]
