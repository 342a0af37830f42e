"""The response binding of a stack file (issue 21): it loads into the typed model, its
requests may use only their own fields, go to the binding's services, and render with
their JSON types kept (a list stays a list; a missing value drops the key)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from chaos.bindings.http import render, template_fields
from chaos.stackfile import load, problems, reference_stack_path
from chaos.stackfile.bindings import RESPONSE_FIELDS, Request
from chaos.stackfile.schema import STACK_SCHEMA

STACK = """\
name: tiny
services:
  db: {builtin: postgres, database: tiny}
  api:
    command: ["{python}", -m, tiny.api, --port, "{port}", --db, "{dsn:api-db}"]
    depends_on: [db]
  api_b:
    command: ["{python}", -m, tiny.api, --port, "{port}", --db, "{dsn:api_b-db}"]
    depends_on: [db]
links: [api->db, api_b->db, clients->api]
bindings:
  response:
    services: [api, api_b]
"""


def write(tmp_path: Path, response: str) -> Path:
    path = tmp_path / "stack.yaml"
    path.write_text(STACK + textwrap.indent(textwrap.dedent(response), "    "))
    return path


def test_the_reference_stack_implements_every_response_request() -> None:
    response = load(reference_stack_path()).bindings.response
    assert response is not None
    assert response.services == ("sequencer", "sequencer_b")
    for name, fields in RESPONSE_FIELDS.items():
        found = response.get(name)
        assert found is not None, name
        assert template_fields(found.request) <= set(fields), name
    rollback = response.get("rollback")
    assert rollback is not None
    assert template_fields(rollback.request) == {"snapshot", "seq", "chain_height", "wait_s"}
    assert STACK_SCHEMA["properties"]["bindings"]["properties"]["response"]["required"] == [
        "services"
    ]


def test_a_foreign_response_binding_loads_with_its_answer_paths(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        snapshot: {POST: /ops/mark, body: {name: "{label}"}, answer: {seq: $.log.last}}
        rollback: {POST: /ops/rewind, body: {seq: "{seq}", height: "{chain_height}"}, timeout: 30s}
        cancel_all: {POST: /ops/cancel, body: {keep: "{except}"},
                     values: {except: {take_profit: TP, stop_loss: SL}}}
        """,
    )
    response = load(path).bindings.response
    assert response is not None
    snapshot, rollback = response.get("snapshot"), response.get("rollback")
    assert snapshot is not None and snapshot.answer == {"seq": "$.log.last"}
    assert rollback is not None and rollback.request.timeout_s == 30.0
    assert response.get("replay") is None and response.get("enable_access") is None


@pytest.mark.parametrize(
    ("response", "line", "expected"),
    [
        (
            "snapshot: {POST: /snap, body: {label: '{label}', seq: '{seq}'}}\n",
            14,
            r"bindings\.response\.snapshot\.body\.seq: unknown field \{seq\} here \(known: label\)",
        ),
        (
            "cancel_all: {POST: /cancel, service: api, body: {except: '{except}'}}\n",
            14,
            r"bindings\.response\.cancel_all\.service: a response request goes to "
            r"bindings\.response\.services",
        ),
        (
            "replay: {POST: /replay, body: {kinds: '{kinds}'}, answer: {at_seq: seq}}\n",
            14,
            r"bindings\.response\.replay\.answer\.at_seq",
        ),
        ("enable_access: {body: {}}\n", 14, r"bindings\.response\.enable_access: a request "
         r"names exactly one of GET"),
        ("disable_access: {POST: /off, via: clients->api_c}\n", 14, r"unknown link"),
    ],
)  # fmt: skip
def test_each_mistake_in_a_response_binding_names_its_line_and_field(
    tmp_path: Path, response: str, line: int, expected: str
) -> None:
    found = [str(p) for p in problems(write(tmp_path, response))]
    assert found, "expected a problem"
    assert any(f"stack.yaml:{line}:" in p and __import__("re").search(expected, p)
               for p in found), found  # fmt: skip


def test_the_binding_names_services_the_stack_has(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(STACK.replace("services: [api, api_b]", "services: [api, apii]"))
    found = [str(p) for p in problems(path)]
    assert any(
        ":13:" in p and "bindings.response.services[1]: unknown service 'apii'" in p for p in found
    ), found


def test_a_whole_placeholder_keeps_its_json_type_and_none_drops_the_key() -> None:
    request = Request(
        "POST",
        "/admin/cancel_all",
        body={"except": "{except}", "accounts": "{accounts}", "markets": "{markets}",
              "note": "runbook {reason}"},
        values={"except": {"take_profit": "TP"}},
    )  # fmt: skip
    rendered = render(
        request,
        {"except": ["take_profit", "stop_loss"], "accounts": [3, 5], "markets": None,
         "reason": "x"},
    )  # fmt: skip
    assert rendered.body == {"except": ["TP", "stop_loss"], "accounts": [3, 5],
                             "note": "runbook x"}  # fmt: skip
    wait = render(Request("POST", "/r", body={"wait_s": "{wait_s}", "seq": "{seq}"}),
                  {"wait_s": 15.0, "seq": 0})  # fmt: skip
    assert wait.body == {"wait_s": 15.0, "seq": 0}
