"""``tradechaos stack import``: Compose files of different shapes become stack-file drafts
that validate, with services, health, links and placeholders inferred; a file written by
``tradechaos stack compose`` comes back as the stack file it was made from; bad Compose
input is one sentence naming the file and the key (exit 2)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml
from stack_compare import differences

from chaos.backends.base import Endpoint
from chaos.backends.compose_gen import generate
from chaos.backends.placeholders import Placeholders
from chaos.cli import main
from chaos.files.yamlsource import parse
from chaos.stackfile import load, reference_stack_path, resolve
from chaos.stackfile.compose_import import import_compose
from chaos.stackfile.definition import HealthCheck, StackDefinition
from chaos.stackfile.draft import flow, scalar

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "compose"
REFERENCE_COMPOSE = ROOT / "compose" / "docker-compose.yml"
MINIDEX = ROOT / "examples" / "minidex"


def imported(
    tmp_path: Path, compose: Path, *venues: str, capsys: Any = None
) -> tuple[StackDefinition, str]:
    """Import through the command line into tmp_path/stack.yaml; (definition, draft text)."""
    out = tmp_path / "stack.yaml"
    args = ["stack", "import", str(compose), "-o", str(out)]
    for name in venues:
        args += ["--venues", name]
    assert main(args) == 0
    assert main(["validate", str(out)]) == 0  # the draft validates as written
    return resolve(load(out)), out.read_text()


def test_a_bridge_network_project(tmp_path: Path) -> None:
    stack, text = imported(tmp_path, DATA / "webapp" / "docker-compose.yml", "price-feed")
    assert stack.name == "acme-perps"
    assert stack.service_names == ("db", "cache", "price_feed", "oracle", "engine")
    db = stack.service("db")  # postgres:16-alpine, its POSTGRES_DB and its init script
    assert (db.builtin, db.database, db.health.kind) == ("postgres", "acme", "pg")
    assert str(DATA / "webapp" / "db" / "init.sql") in " ".join(db.setup[0])
    assert stack.service("price_feed").builtin == "venues"  # --venues price-feed
    assert {(lk.client, lk.server) for lk in stack.links} == {
        ("oracle", "db"), ("oracle", "price_feed"), ("oracle", "cache"), ("engine", "oracle"),
        ("engine", "db")}  # fmt: skip
    oracle = stack.service("oracle")
    assert oracle.env["ORACLE_PORT"] == "{port}"
    assert oracle.env["DATABASE_URL"] == "{dsn:oracle-db}?sslmode=disable"
    assert oracle.env["FEED_URLS"] == "{url:oracle-price_feed}/v1/ticker"
    assert oracle.env["CACHE"] == "{link:oracle-cache}"
    assert (oracle.env["TZ"], oracle.env["APP_ENV"], oracle.env["QUOTED"]) == ("UTC", "dev", "a b")
    assert oracle.command == ("{python}", "-m", "acme.oracle")
    assert oracle.health == HealthCheck("http", "/health", timeout_s=70.0)  # 10s + 2s x 30
    assert oracle.depends_on == ("db",)  # price-feed only had to be started
    # the one-shot migration runs before the oracle, the first service that waited for it
    assert oracle.setup == (("{python}", "-m", "acme.migrate", "--dsn", "{dsn:oracle-db}"),)
    assert oracle.build is not None and oracle.build.args == {"PYTHON_IMAGE": "{base_image}"}
    assert oracle.build.context == DATA / "webapp" / "app"
    engine = stack.service("engine")  # entrypoint + command
    assert engine.command == ("{python}", "-m", "acme.engine", "--port", "{port}", "--oracle",
                              "{url:engine-oracle}", "--db", "{link:engine-db}")  # fmt: skip
    assert engine.health == HealthCheck("http", "/ready")
    assert (engine.stop_signal, engine.stop_grace_s, engine.depends_on) == ("INT", 3.0, ())
    assert stack.service("cache").health.kind == "tcp"  # no healthcheck: its port
    for todo in ("LOG_LEVEL", "wheelhouse", "TODO orders", "TODO history", "TODO markets",
                 "clients->engine", "user acme"):  # fmt: skip
        assert todo in text, todo


def test_a_profile_becomes_an_option(tmp_path: Path) -> None:
    imported(tmp_path, DATA / "webapp" / "docker-compose.yml", "price-feed")
    stack = load(tmp_path / "stack.yaml")
    assert stack.options["debug"].type == "bool" and stack.options["debug"].default is False
    admin = resolve(stack, {"debug": True}).service("admin")
    assert admin.command == ("serve", "--engine", "{url:admin-engine}", "--json",
                             '{{"theme": "dark"}}')  # fmt: skip
    links = {"admin-engine": Endpoint("127.0.0.1", 9)}
    fill = Placeholders("python3", 1, tmp_path, tmp_path, links=links)
    assert fill.argv(admin.command)[-1] == '{"theme": "dark"}'  # literal braces survive


def test_a_host_network_project(tmp_path: Path) -> None:
    stack, text = imported(tmp_path, DATA / "hostnet" / "docker-compose.yml")
    assert stack.service("pg").database == "book"
    assert {(lk.client, lk.server) for lk in stack.links} == {("matcher", "pg"),
                                                             ("gateway", "matcher")}  # fmt: skip
    matcher = stack.service("matcher")  # ${MATCHER_PORT:-7000}: its default
    assert matcher.command == ("/usr/local/bin/matcher", "--listen={port}", "--db",
                               "{dsn:matcher-pg}")  # fmt: skip
    assert matcher.health.kind == "tcp" and matcher.depends_on == ()
    gateway = stack.service("gateway")
    assert gateway.env["GATEWAY_ADDR"] == "{host}:{port}"  # ${GATEWAY_PORT} from .env
    assert gateway.env["MATCHER"] == "{link:gateway-matcher}"
    assert gateway.env["PRICE"] == "$5" and gateway.env["TOKEN"] == ""
    assert gateway.health == HealthCheck("http", "/status") and gateway.depends_on == ("matcher",)
    fill = Placeholders("python3", 1, tmp_path, tmp_path)
    assert fill.fill(gateway.env["CONFIG"]) == '{"retries": 3}'
    assert "TODO: API_TOKEN had no value" in text


def test_the_reference_stacks_compose_file_comes_back_as_its_stack_file(tmp_path: Path) -> None:
    """compose/docker-compose.yml (`tradechaos stack compose`) -> the reference stack file,
    for its default options: services, commands, health, depends_on, links, markets."""
    draft, _ = imported(tmp_path, REFERENCE_COMPOSE)
    reference = resolve(load(reference_stack_path()))
    assert differences(draft, reference, commands=True) == []
    assert draft.markets == reference.markets
    assert [lk.name for lk in draft.links] == [lk.name for lk in reference.links]
    assert load(tmp_path / "stack.yaml").services[0].schema == reference_stack_path().parent / (
        "schema.sql")  # fmt: skip


def test_a_generated_file_with_venue_shapes_and_options_round_trips(tmp_path: Path) -> None:
    source = tmp_path / "src" / "stack.yaml"
    source.parent.mkdir()
    source.write_text("""\
name: shaped
options:
  fast: {type: bool, default: true}
markets:
  BTC-USD: {initial_price: 50000, tick: 0.5}
services:
  db: {builtin: postgres, database: shaped}
  feeds:
    builtin: venues
    venues: [{shape: binance, symbols: {BTC-USD: BTCUSDT}}, {shape: kraken}]
  quoter:
    command: ["{python}", -m, http.server, "{port}"]
    build: tradechaos
    env: {DB: "{dsn:quoter-db}", FEEDS: "{venue_urls:quoter-feeds}", FAST: "{option:fast}"}
    health: {http: /}
    depends_on: [db, feeds]
links: [quoter->db, quoter->feeds, clients->quoter]
""")
    compose = tmp_path / "compose" / "docker-compose.yml"
    compose.parent.mkdir()
    compose.write_text(generate(resolve(load(source)), compose))
    draft, _ = imported(tmp_path, compose)
    original = resolve(load(source))
    assert differences(draft, original, commands=True) == []
    assert draft.service("quoter").env["FEEDS"] == "{venue_urls:quoter-feeds}"
    assert draft.service("feeds").venues == 2
    assert draft.service("quoter").env["DB"] == "{dsn:quoter-db}"
    assert draft.service("quoter").env["FAST"] == "true"
    feeds = load(tmp_path / "stack.yaml").services[1]
    assert [(v.shape, dict(v.symbols)) for v in feeds.venues] == [
        ("binance", {"BTC-USD": "BTCUSDT"}), ("kraken", {})]  # fmt: skip


def test_what_cannot_be_carried_over_is_a_todo(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yml"
    service = "    extends: {file: base.yml, service: app}\n    user: '1000'\n"
    compose.write_text("services:\n  api:\n    image: x\n    command: [run]\n" + service)
    _, text = imported(tmp_path, compose)
    assert "TODO: compose's extends, user of this service are not imported" in text
    nested = tmp_path / "new" / "folder" / "stack.yaml"  # -o makes its folder
    assert main(["stack", "import", str(compose), "-o", str(nested)]) == 0 and nested.is_file()


def test_draft_is_written_to_stdout_without_o(tmp_path: Path, capsys: Any) -> None:
    assert main(["stack", "import", str(DATA / "hostnet" / "docker-compose.yml")]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("# A stack-file draft") and "name: hostnet" in out.out
    assert "3 services, 2 links" in out.err


def test_the_examples_compose_file_drafts_its_stack_file(tmp_path: Path) -> None:
    """examples/minidex: the draft, with the example's bindings filled in (and the link the
    orders binding calls, which the draft's TODO names), equals the example's stack file on
    services, links and health."""
    assert_matches_example(tmp_path, MINIDEX, venues=("venues",))


def assert_matches_example(tmp_path: Path, example: Path, venues: tuple[str, ...]) -> None:
    out = tmp_path / "stack.yaml"
    args = ["stack", "import", str(example / "docker-compose.yml"), "-o", str(out)]
    assert main([*args, *(a for v in venues for a in ("--venues", v))]) == 0
    draft = yaml.safe_load(out.read_text())
    wanted = yaml.safe_load((example / "stack.yaml").read_text())
    draft["bindings"] = wanted["bindings"]
    via = wanted["bindings"].get("orders", {}).get("via")
    if via and via not in draft["links"]:
        assert f"- {via}" in out.read_text()  # the TODO named it
        draft["links"].append(via)
    out.write_text(yaml.safe_dump(draft, sort_keys=False))
    expected = resolve(load(example / "stack.yaml"))
    assert differences(resolve(load(out)), expected) == []


def test_minidex_shape(tmp_path: Path) -> None:
    """A project of minidex's shape (env-var configuration, healthchecks by python -c, a
    dev feed standing in for the venues), checked with the example's own comparison."""
    example = tmp_path / "example"
    (example / "src").mkdir(parents=True)
    (example / "schema.sql").write_text("CREATE TABLE journal (n bigint);\n")
    (example / "Dockerfile").write_text("FROM python:3.11-slim\n")
    app = {"image": "dex:dev", "build": {"context": ".", "args": {"BASE": "python:3.11-slim"}}}
    probe = ["CMD", "python3", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:{}"
             "/healthz', timeout=2)"]  # fmt: skip

    def svc(module: str, port: int, env: dict[str, str], deps: dict[str, Any]) -> dict[str, Any]:
        return {**app, "command": ["python3", "-m", module], "depends_on": deps,
                "environment": {"DEX_HOST": "0.0.0.0", "DEX_PORT": str(port), **env},
                "ports": [f"{port}:{port}"],
                "healthcheck": {"test": [*probe[:-1], probe[-1].format(port)]}}  # fmt: skip

    healthy = {"condition": "service_healthy"}
    compose = {"name": "dex", "services": {
        "pg": {"image": "postgres:16", "environment": {"POSTGRES_DB": "dex"},
               "volumes": ["./schema.sql:/docker-entrypoint-initdb.d/10-schema.sql:ro"],
               "healthcheck": {"test": ["CMD-SHELL", "pg_isready -U postgres -d dex"]}},
        "venues": svc("dex.devfeed", 9100, {}, {}),
        "pricer": svc("dex.pricer", 8081, {"DEX_DB": "postgresql://postgres@pg:5432/dex",
                                           "DEX_VENUES": "http://venues:9100"},
                      {"pg": healthy, "venues": healthy}),
        "engine": svc("dex.engine", 8080, {"DEX_DB": "postgresql://postgres@pg:5432/dex"},
                      {"pg": healthy, "pricer": {"condition": "service_started"}}),
    }}  # fmt: skip
    (example / "docker-compose.yml").write_text(yaml.safe_dump(compose))
    (example / "stack.yaml").write_text("""\
name: dex
services:
  pg: {builtin: postgres, database: dex, schema: schema.sql}
  venues: {builtin: venues, count: 3}
  pricer:
    command: ["{python}", -m, dex.pricer]
    env: {DEX_PORT: "{port}", DEX_DB: "{dsn:pricer-pg}", DEX_VENUES: "{url:pricer-venues}"}
    health: {http: /healthz}
    depends_on: [pg, venues]
  engine:
    command: ["{python}", -m, dex.engine]
    env: {DEX_PORT: "{port}", DEX_DB: "{dsn:engine-pg}"}
    health: {http: /healthz}
    depends_on: [pg]
links: [pricer->pg, pricer->venues, engine->pg, clients->engine]
bindings:
  orders:
    via: clients->engine
    submit: {POST: /v1/orders, body: {cid: "{client_order_id}"}}
""")
    assert_matches_example(tmp_path, example, venues=("venues",))


# -- bad input --------------------------------------------------------------------------

BAD = [
    ("services: [", "1: YAML syntax"),
    ('version: "3"\n', ": services: expected a mapping of services"),
    ("services:\n  web: {command: run}\n", "2: services.web: a service needs an image or a build"),
    ("services:\n  web: {image: x, ports: [http]}\n",
     "services.web.ports[0]: 'http' is not a port"),
    ("services:\n  web: {image: x, depends_on: [dbb]}\n",
     "services.web.depends_on: unknown service 'dbb' (services: web)"),
    ("services:\n  db: {image: x}\n  web: {image: x, depends_on: {db: {condition: up}}}\n",
     "services.web.depends_on.db.condition: unknown condition 'up'"),
    ("services:\n  web: {image: x, healthcheck: {test: [RUN, x]}}\n",
     "services.web.healthcheck.test: the first item is CMD, CMD-SHELL or NONE, not 'RUN'"),
    ("services:\n  web: {image: x, env_file: missing.env}\n",
     "services.web.env_file: no env file at"),
    ("services:\n  web: {image: x, environment: [{A: 1}]}\n",
     "services.web.environment[0]: expected KEY=VALUE text, got a mapping"),
    ("services:\n  web: {image: x, command: {run: x}}\n",
     "services.web.command: expected text or a list of text, got a mapping"),
    ("services:\n  web: {image: x, healthcheck: {test: [CMD, x], interval: soon}}\n",
     "services.web.healthcheck: 'soon' is not a duration"),
    ("services:\n  web:\n    image: x\n    environment:\n      A: ${B\n",
     "5: services.web.environment.A: unterminated ${...}"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_compose_input_is_one_sentence_naming_file_and_key(
    tmp_path: Path, capsys: Any, text: str, message: str
) -> None:
    compose = tmp_path / "compose.yml"
    compose.write_text(text)
    assert main(["stack", "import", str(compose)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tradechaos: {compose}"), err
    assert message in err and len(err.splitlines()) == 1, err


def test_bad_arguments(tmp_path: Path, capsys: Any) -> None:
    compose = DATA / "hostnet" / "docker-compose.yml"
    assert main(["stack", "import", str(compose), "--venues", "feeds"]) == 2
    assert "--venues feeds: no such service" in capsys.readouterr().err
    out = tmp_path / "stack.yaml"
    out.write_text("kept")
    assert main(["stack", "import", str(compose), "-o", str(out)]) == 2
    assert "the file exists" in capsys.readouterr().err and out.read_text() == "kept"
    assert main(["stack", "import", str(compose), "-o", str(out), "--force"]) == 0


# -- the writer -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["true", "10", "10s", "a: b", "{x}", "#c", "-", "--port", "-m", "2024-01-01", "$5", "a b",
     "~", "", "x,y", "[1]", "@me", "clients->engine", "0x1F", "1e5", "'q'", '"q"', "é"],
)  # fmt: skip
def test_every_string_reads_back_as_the_same_text(text: str) -> None:
    assert parse(f"k: {scalar(text)}\nl: {flow([text, 1])}\n") == {
        "k": text.replace("{", "{{").replace("}", "}}"),
        "l": [text.replace("{", "{{").replace("}", "}}"), 1],
    }


def test_the_merge_key_overrides_as_yaml_says() -> None:
    document = parse("a: &a {image: i, build: b}\nb:\n  <<: *a\n  image: j\n")
    assert document["b"] == {"image": "j", "build": "b"}
    with pytest.raises(Exception, match="duplicate key 'image'"):
        parse("b: {image: i, image: j}\n")


def test_unit_of_import_without_the_cli(tmp_path: Path) -> None:
    draft = import_compose(DATA / "hostnet" / "docker-compose.yml", output=tmp_path / "s.yaml")
    assert draft.services == ("pg", "matcher", "gateway")
    assert draft.links == ("matcher-pg", "gateway-matcher") and draft.todos >= 5
    assert dataclasses.is_dataclass(draft)
