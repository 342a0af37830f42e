"""The API probe: the same requests to our proxy and to the real Toxiproxy 2.12.0, side by
side; status codes, bodies and the relevant headers must agree.

The scenarios follow Toxiproxy's own API tests (``api_test.go`` in its source: populate,
create/get/update/delete, conflicts, reset, toxics and their defaults, version, request
ids, browsers), plus the edges its decoder defines (nulls, case, trailing data, integer
attributes, float32 toxicity, unknown routes and methods). Where values legitimately
differ they are normalised: listen ports chosen by each server, request ids (checked for
their shape). Everything else must be equal, except the deliberate differences listed in
``DELIBERATE`` (each documented in docs/proxy.md, "Deliberate differences"): a request
marked with one must get *different* answers, so that the list cannot go stale.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from proxy_servers import ToxiproxyServer, clean, started

pytestmark = pytest.mark.integration

DOCS = Path(__file__).resolve().parents[2] / "docs" / "proxy.md"
AGENT = "tradechaos-probe"
RELEVANT_HEADERS = ("content-type", "x-content-type-options", "x-toxiproxy-request-id", "allow")
REQUEST_ID = re.compile(r"^[0-9a-v]{20}$")

#: Deliberate differences the probe meets, by their id in docs/proxy.md.
DELIBERATE = {
    "decoder-text": "the text after 'bad request body: ' (Go's decoder names Go types)",
    "logger-field": "the real server's proxies carry an empty 'Logger' object",
    "loopback-only": "non-loopback upstream or listen refused without --allow-remote",
    "upstream-form": "a malformed or empty upstream is refused (400)",
    "empty-listen": "an empty listen is 127.0.0.1:0, not every interface",
    "no-negative-rate": "negative bandwidth rate / slicer average_size refused (400)",
    "toxic-stream-update": "an update naming another stream is refused (400)",
    "atomic-toxic-update": "a refused toxic update changes nothing",
    "extensions": "GET /proxies/{name}/stats and GET /runtime",
}


@dataclass(frozen=True)
class Req:
    """One request; ``@A``.. in path or body are ports, chosen per server and scenario."""

    method: str
    path: str
    body: str | None = None
    differs: str | None = None  # a DELIBERATE id: the two answers must differ
    decoder: bool = False  # a decoder error: its text after the prefix may differ
    agent: str = AGENT


@dataclass(frozen=True)
class Connect:
    """Whether the server accepts TCP connections on port ``@name``."""

    port: str
    differs: str | None = None


Step = Req | Connect


def proxy(name: str, listen: str, upstream: str = "localhost:20001", **extra: Any) -> str:
    return json.dumps({"name": name, "listen": listen, "upstream": upstream, **extra})


def entry(name: str, listen: str, upstream: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "listen": listen, "upstream": upstream, **extra}


def populate(*entries: dict[str, Any] | None) -> Req:
    return Req("POST", "/populate", json.dumps(list(entries)))


def toxic(**fields: Any) -> str:
    return json.dumps(fields)


M = "/proxies/mysql_master"  # the proxy of Toxiproxy's tests
MT = M + "/toxics"
LD = MT + "/latency_downstream"
MYSQL = proxy("mysql_master", "localhost:@A")
CREATE_MYSQL = Req("POST", "/proxies", MYSQL)
LATENCY = toxic(name="", type="latency", stream="downstream", toxicity=1, attributes=None)
LAT_100 = {"latency": 100, "jitter": 10}


def add(body: str | None = None, *, decoder: bool = False, **fields: Any) -> Req:
    """POST a toxic to mysql_master: ``body`` as is, or one made of ``fields``."""
    return Req("POST", MT, body if body is not None else toxic(**fields), decoder=decoder)


def patch(path: str, body: str, *, decoder: bool = False, differs: str | None = None) -> Req:
    return Req("PATCH", path, body, decoder=decoder, differs=differs)


SCENARIOS: dict[str, list[Step]] = {
    "version-and-request-id": [Req("GET", "/version")],
    "browsers-get-403": [
        Req("GET", "/proxies", agent="Mozilla/5.0 (Linux; Android 4.4.2) AppleWebKit/537.36"),
        Req("GET", "/proxies", agent="Wget/2.1"),
        Req("GET", "/no/such/route", agent="Mozilla/5.0"),
    ],
    "index-with-no-proxies": [Req("GET", "/proxies")],
    "create-blank-name-and-upstream": [
        Req("POST", "/proxies", proxy("", "", "")),
        Req("POST", "/proxies", proxy("test", "", "")),
        Req("POST", "/proxies", "null"),
        Req("POST", "/proxies", "{}"),
    ],
    "populate": [
        populate(
            entry("one", "localhost:@A", "localhost:7171", enabled=True),
            entry("two", "localhost:@B", "localhost:7474", enabled=True),
        ),
        Connect("A"),
        Connect("B"),
        Req("GET", "/proxies"),
    ],
    "populate-default-enabled-and-disabled": [
        populate(entry("test", "localhost:@A", "localhost:7171")),
        populate(
            entry("one", "localhost:@B", "localhost:7171", enabled=False),
            entry("two", "localhost:@C", "localhost:7474", enabled=None),
        ),
        Connect("A"),
        Connect("B"),
        Connect("C"),
        Req("GET", "/proxies"),
    ],
    "populate-keeps-an-existing-proxy": [
        Req("POST", "/proxies", proxy("one", "localhost:@A", "localhost:7171")),
        Req("POST", "/proxies", proxy("two", "localhost:@B", "localhost:7474")),
        Req("POST", "/proxies/one/toxics", LATENCY),
        populate(
            entry("one", "localhost:@A", "localhost:7171", enabled=True),
            entry("two", "127.0.0.1:@C", "localhost:7676", enabled=True),
        ),
        Req("GET", "/proxies/one/toxics"),
        Connect("A"),
        Connect("B"),
        Connect("C"),
        populate(entry("one", "127.0.0.1:0", "localhost:7171")),  # port 0 always differs
        Req("GET", "/proxies/one/toxics"),
    ],
    "populate-bad-name-creates-nothing": [
        populate(
            entry("one", "localhost:@A", "localhost:7171", enabled=True),
            entry("", "", "", enabled=True),
        ),
        populate(entry("one", "localhost:@A", "")),
        populate(entry("one", "localhost:@A", "localhost:1"), None),
        Req("GET", "/proxies"),
    ],
    "populate-bad-listen-keeps-the-ones-before": [
        populate(
            entry("one", "localhost:@A", "localhost:7171", enabled=True),
            entry("two", "local373", "localhost:7474", enabled=True),
            entry("three", "localhost:@C", "localhost:7676", enabled=True),
        ),
        Req("GET", "/proxies"),
        Connect("C"),
    ],
    "populate-bodies": [
        Req("POST", "/populate", "[]"),
        Req("POST", "/populate", "null"),
        Req("POST", "/populate", "{}", decoder=True),
        Req("POST", "/populate", "[1]", decoder=True),
        Req("POST", "/populate", ""),
        Req("POST", "/populate", json.dumps([entry("one", "localhost:@A", "localhost:1")]) + "x"),
        populate(entry("one", "localhost:@A", "localhost:1")),
        populate(entry("two", "localhost:@A", "localhost:1")),
        Req("GET", "/proxies"),
    ],
    "create-get-list": [
        CREATE_MYSQL,
        Req("GET", "/proxies"),
        Req("GET", M),
        Connect("A"),
    ],
    "create-disabled-then-enable-and-disable": [
        Req("POST", "/proxies", proxy("mysql_master", "localhost:@A", enabled=False)),
        Req("GET", M),
        Connect("A"),
        Req("POST", M, proxy("mysql_master", "localhost:@A", enabled=True)),
        Connect("A"),
        Req("POST", M, proxy("mysql_master", "127.0.0.1:@A", enabled=False)),
        Connect("A"),
        patch(M, '{"enabled": true}'),
        Connect("A"),
    ],
    "delete": [
        CREATE_MYSQL,
        Req("DELETE", M),
        Connect("A"),
        Req("GET", "/proxies"),
        Req("DELETE", M),
    ],
    "port-and-name-conflicts": [
        CREATE_MYSQL,
        Req("POST", "/proxies", proxy("test", "localhost:@A")),
        Req("POST", "/proxies", proxy("mysql_master", "localhost:@B")),
        Req("DELETE", M),
        Req("POST", "/proxies", proxy("test", "localhost:@A")),
        Req("GET", "/proxies"),
    ],
    "create-bodies": [
        Req("POST", "/proxies", ""),
        Req("POST", "/proxies", "{not json", decoder=True),
        Req("POST", "/proxies", "[1]", decoder=True),
        Req("POST", "/proxies", proxy("e", "localhost:@A", enabled="yes"), decoder=True),
        Req("POST", "/proxies", '{"name": 5, "upstream": "localhost:1"}', decoder=True),
        Req(
            "POST",
            "/proxies",
            '{"NAME": "x", "Listen": "localhost:@A", "UPSTREAM": "localhost:1", "name": "y"} ..',
        ),
        Req("POST", "/proxies", proxy("nul", "localhost:@B", enabled=None)),
        Req("POST", "/proxies", proxy("bad-listen", "local373")),
        Req("POST", "/proxies", proxy("bad-port", "127.0.0.1:99999")),
        Req("POST", "/proxies", proxy("bad-colons", "1:2:3")),
        Req("GET", "/proxies"),
    ],
    "update-a-proxy": [
        CREATE_MYSQL,
        patch(M, '{"listen": "localhost:@B"}'),
        Connect("A"),
        Connect("B"),
        patch(M, '{"upstream": "localhost:20002", "name": "renamed"}'),
        patch(M, '{"listen": "127.0.0.1:99999"}'),
        patch(M, '{"listen": "local373"}'),
        patch(M, '{"enabled": "no"}', decoder=True),
        patch(M, '{"enabled": null, "listen": null}'),
        patch(M, ""),
        patch(M, "[]", decoder=True),
        patch("/proxies/ghost", '{"enabled": false}'),
        Req("GET", M),
    ],
    "reset": [
        CREATE_MYSQL,
        add(name="", type="latency", stream="downstream", toxicity=1, attributes=LAT_100),
        patch(M, '{"enabled": false}'),
        Req("POST", "/reset"),
        Req("GET", "/proxies"),
        Connect("A"),
    ],
    "toxics-add-list-remove": [
        CREATE_MYSQL,
        Req("GET", MT),
        add(name="foobar", type="latency", stream="downstream", toxicity=1, attributes=LAT_100),
        add(name="latency1", type="latency", stream="downstream", toxicity=1, attributes=None),
        add(name="foobar", type="slow_close", stream="downstream", toxicity=1, attributes=None),
        add(name="foobar", type="latency", stream="upstream", toxicity=1, attributes=None),
        add(name="", type="latency", stream="upstream", toxicity=1, attributes=None),
        add(name="", type="latency", stream="downstream", toxicity=0.2, attributes=LAT_100),
        add(name="foobar2", type="noop", toxicity=1, attributes=None),
        Req("GET", MT),
        Req("GET", MT + "/foobar"),
        Req("GET", M),
        Req("DELETE", LD),
        Req("DELETE", LD),
        Req("GET", LD),
        Req("GET", MT),
    ],
    "toxic-every-type": [
        CREATE_MYSQL,
        add(type="latency", attributes={"latency": 10, "jitter": 2}),
        add(type="bandwidth", attributes={"rate": 1000}),
        add(type="slow_close", attributes={"delay": 10}),
        add(type="timeout", attributes={"timeout": 0}),
        add(type="reset_peer", attributes={"timeout": 1000}),
        add(type="slicer", attributes={"average_size": 64, "size_variation": 8, "delay": 10}),
        add(type="limit_data", attributes={"bytes": 100000}),
        add(type="noop", attributes={"anything": 1}),
        Req("GET", MT),
    ],
    "toxic-update": [
        CREATE_MYSQL,
        add(name="", type="latency", stream="downstream", toxicity=1, attributes=LAT_100),
        patch(LD, '{"attributes": {"latency": 1000}, "toxicity": 0.5}'),
        patch(LD, '{"attributes": {"latency": 500}}'),
        Req("POST", LD, '{"toxicity": null, "attributes": null}'),
        patch(
            LD, '{"Toxicity": -2, "ATTRIBUTES": {"JITTER": 3}, "type": "bandwidth", "name": "x"}'
        ),
        patch(LD, '{"stream": "DOWNSTREAM"}'),
        patch(LD, '{"toxicity": "high"}', decoder=True),
        patch(LD, '{"attributes": [1]}', decoder=True),
        patch(LD, ""),
        patch(LD, "[1]", decoder=True),
        patch(MT + "/nope", '{"toxicity": "x"}'),
        patch("/proxies/ghost/toxics/nope", "{}"),
        Req("GET", LD),
    ],
    "toxic-nulls-case-and-numbers": [
        CREATE_MYSQL,
        add(
            '{"type": "latency", "stream": null, "toxicity": null, "name": null, "attributes":null}'
        ),
        add(
            type="latency",
            stream="UPSTREAM",
            toxicity=1.5,
            attributes={"latency": -5, "LATENCY": 7},
        ),
        add(
            '{"Type": "latency", "Name": "x", "Toxicity": 0.1234567891, "attributes": {}} trailing'
        ),
        add(type="latency", name="neg", toxicity=-1, attributes={"latency": -100, "jitter": -5}),
        add(type="timeout", attributes={"timeout": -1}),
        add(type="limit_data", attributes={"bytes": -3}),
        add(type="slow_close", attributes={"delay": -1}),
        add(type="reset_peer", attributes={"timeout": -1}),
        add(type="slicer", attributes={"average_size": 10, "size_variation": -1, "delay": -1}),
        add(type="bandwidth", stream="upstream", attributes={"rate": 0}),
        add(type="latency", name="j", attributes={"jitter": None}),
        Req("GET", MT),
    ],
    "toxic-bad-bodies": [
        CREATE_MYSQL,
        add(""),
        add("[1,", decoder=True),
        add("[1]", decoder=True),
        add("null"),
        add(type="latency", stream="walrustream"),
        add(type="latency", stream=""),
        add(type="explode", stream="sideways"),
        add(type="explode"),
        add(type="explode", toxicity="high", decoder=True),
        add(type="latency", attributes="x", decoder=True),
        add(type="latency", attributes={"latency": 1.0}, decoder=True),
        add(type="latency", attributes={"latency": "x"}, decoder=True),
        add(type="latency", attributes={"latency": True}, decoder=True),
        add('{"type": "latency", "attributes": {"latency": 99999999999999999999}}', decoder=True),
        add('{"type": "latency", "toxicity": NaN}', decoder=True),
        add('{"type": "latency", "toxicity": 1e39}', decoder=True),
        add(type="latency", name="ok"),
        add(type="latency", name="ok", attributes={"latency": "x"}),  # 409 comes first
        Req("POST", "/proxies/ghost/toxics", toxic(type="latency")),
        Req("GET", "/proxies/ghost/toxics"),
        Req("GET", MT),
    ],
    "routes-and-methods": [
        Req("GET", "/nope"),
        Req("GET", "/proxies/"),
        Req("PUT", "/proxies"),
        Req("HEAD", "/version"),
        Req("OPTIONS", "/version"),
        Req("GET", "/reset"),
        Req("DELETE", "/version"),
        Req("PUT", "/proxies/ghost/toxics/nope"),
        Req("GET", "/proxies/ghost"),
        Req("DELETE", "/proxies/ghost"),
        Req("DELETE", "/proxies/ghost/toxics/nope"),
        Req("GET", "/metrics"),
        Req("POST", "/reset"),
    ],
    # -- deliberate differences: each request below must get different answers -----------
    "loopback-only": [
        Req("POST", "/proxies", proxy("far", "127.0.0.1:0", "10.1.2.3:80"), "loopback-only"),
    ],
    "loopback-only-listen": [
        Req("POST", "/proxies", proxy("wide", "0.0.0.0:0", "localhost:1"), "loopback-only"),
    ],
    "loopback-only-populate": [
        Req("POST", "/populate", '[{"name": "far", "upstream": "10.1.2.3:80"}]', "loopback-only"),
    ],
    "upstream-form": [
        Req("POST", "/proxies", proxy("b", "localhost:@A", "nope"), differs="upstream-form"),
    ],
    "upstream-form-update": [
        CREATE_MYSQL,
        patch(M, '{"upstream": ""}', differs="upstream-form"),
    ],
    "empty-listen": [
        Req("POST", "/proxies", proxy("any", "", "localhost:1"), differs="empty-listen"),
    ],
    "no-negative-rate": [
        CREATE_MYSQL,
        Req("POST", MT, toxic(type="bandwidth", attributes={"rate": -1}), "no-negative-rate"),
    ],
    "no-negative-slice": [
        CREATE_MYSQL,
        Req("POST", MT, toxic(type="slicer", attributes={"average_size": -1}), "no-negative-rate"),
    ],
    "toxic-stream-update": [
        CREATE_MYSQL,
        add(LATENCY),
        patch(
            LD, '{"stream": "upstream", "attributes": {"jitter": 4}}', differs="toxic-stream-update"
        ),
    ],
    "atomic-toxic-update": [
        CREATE_MYSQL,
        add(LATENCY),
        patch(LD, '{"attributes": {"jitter": 9, "latency": "x"}}', decoder=True),
        Req("GET", LD, differs="atomic-toxic-update"),
    ],
    "extensions": [
        CREATE_MYSQL,
        Req("GET", M + "/stats", differs="extensions"),
        Req("GET", "/runtime", differs="extensions"),
    ],
}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any
    raw: str


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, ToxiproxyServer]]:
    with started("ours") as ours, started("real") as real:
        yield {"ours": ours, "real": real}


def free_ports(names: set[str]) -> dict[str, int]:
    sockets = []
    try:
        for _ in names:
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return {name: s.getsockname()[1] for name, s in zip(sorted(names), sockets, strict=True)}
    finally:
        for sock in sockets:
            sock.close()


def placeholders(steps: list[Step]) -> set[str]:
    found: set[str] = set()
    for step in steps:
        if isinstance(step, Connect):
            found.add(step.port)
        else:
            found.update(re.findall(r"@([A-Z])\b", f"{step.path} {step.body or ''}"))
    return found


def fill(text: str, ports: dict[str, int]) -> str:
    return re.sub(r"@([A-Z])\b", lambda m: str(ports[m.group(1)]), text)


def unfill(value: Any, ports: dict[str, int], key: str = "") -> Any:
    """Ports back to their names; ports a server chose itself (in ``listen``) to ``@*``."""
    by_port = {str(port): f"@{name}" for name, port in ports.items()}
    if isinstance(value, dict):
        return {k: unfill(v, ports, k) for k, v in value.items() if k != "Logger"}
    if isinstance(value, list):
        return [unfill(v, ports, key) for v in value]
    if isinstance(value, str):

        def port(match: re.Match[str]) -> str:
            number = match.group(1)
            chosen = key == "listen" and number != "0"
            return ":" + by_port.get(number, "@*" if chosen else number)

        return re.sub(r":(\d+)\b", port, value)
    return value


def send(server: ToxiproxyServer, step: Req, ports: dict[str, int]) -> Answer:
    body = None if step.body is None else fill(step.body, ports).encode()
    response = requests.request(
        step.method,
        server.url + fill(step.path, ports),
        data=body,
        headers={"User-Agent": step.agent},
        timeout=10,
    )
    headers = {k: response.headers[k] for k in RELEVANT_HEADERS if k in response.headers}
    request_id = headers.get("x-toxiproxy-request-id")
    if request_id is not None:
        headers["x-toxiproxy-request-id"] = "<id>" if REQUEST_ID.match(request_id) else request_id
    try:
        parsed: Any = unfill(response.json(), ports)
    except ValueError:
        parsed = unfill(response.text, ports)
    return Answer(response.status_code, headers, parsed, response.text)


def connect(port: int) -> str:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return "accepts"
    except ConnectionRefusedError:
        return "refuses"


def comparable(answer: Answer, step: Req) -> Answer:
    body = answer.body
    if step.decoder and isinstance(body, dict) and isinstance(body.get("error"), str):
        prefix, sep, _ = body["error"].partition(": ")
        body = {**body, "error": prefix + sep + "..."}
    return Answer(answer.status, answer.headers, body, "")


def run_scenario(steps: list[Step], servers: dict[str, ToxiproxyServer]) -> list[str]:
    """The problems found: unexpected disagreements, and marked ones that agree."""
    ports = {kind: free_ports(placeholders(steps)) for kind in servers}
    problems = []
    for number, step in enumerate(steps, start=1):
        what = f"step {number} {step}"
        if isinstance(step, Connect):
            seen: dict[str, Any] = {k: connect(ports[k][step.port]) for k in servers}
            agree = seen["ours"] == seen["real"]
        else:
            answers = {k: send(s, step, ports[k]) for k, s in servers.items()}
            for kind, answer in answers.items():
                if answer.headers.get("x-toxiproxy-request-id", "<id>") != "<id>":
                    problems.append(f"{what}: {kind} request id {answer.headers!r}")
            if step.decoder and answers["ours"].raw == answers["real"].raw:
                problems.append(f"{what}: marked decoder=True but the texts agree; unmark it")
            seen = {k: comparable(a, step) for k, a in answers.items()}
            agree = seen["ours"] == seen["real"]
        if step.differs is None and not agree:
            problems.append(f"{what}:\n  ours {seen['ours']}\n  real {seen['real']}")
        if step.differs is not None and agree:
            problems.append(f"{what}: marked differs={step.differs!r} but both answered {seen}")
    return problems


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_ours_answers_as_the_real_toxiproxy(name: str, servers: dict[str, ToxiproxyServer]) -> None:
    for server in servers.values():
        clean(server.url)
    problems = run_scenario(SCENARIOS[name], servers)
    assert not problems, "\n".join(problems)


def test_every_deliberate_difference_is_documented_and_probed() -> None:
    text = DOCS.read_text()
    section = text.split("## Deliberate differences", 1)[-1]
    undocumented = [key for key in DELIBERATE if f"`{key}`" not in section]
    assert not undocumented, f"not in docs/proxy.md, 'Deliberate differences': {undocumented}"
    probed = {s.differs for steps in SCENARIOS.values() for s in steps if s.differs}
    probed |= {"decoder-text", "logger-field"}  # normalised in every comparison
    assert probed == set(DELIBERATE)
