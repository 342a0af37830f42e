"""A docker-compose file for any stack file (``tradechaos stack compose``).

    tradechaos stack compose [--stack FILE] [--option NAME=VALUE] [-o FILE]
    python -m chaos.backends.compose_gen init --api URL [--mkdir D]... [NAME=LISTEN=UPSTREAM]...

The compose file runs a stack by hand (``docker compose up``) with the same images and
commands as the docker backend; the runner never uses it (it uses the SDK). Compose cannot
choose free ports per run, so ports are fixed: the proxy's API on 8474 (Toxiproxy's port, so
a real Toxiproxy can stand in), services from ``SERVICE_PORT_BASE``, links from
``LINK_PORT_BASE``, in definition order. Every container uses host networking and the run
folder ``runs/compose`` beside the compose file; the stack file's folder is mounted
read-only at its own path. ``{seed}``, ``{epoch}`` and ``{mitigations}`` become ``${SEED}``,
``${EPOCH}``, ``${MITIGATIONS}`` (with defaults). Setup commands become one-shot
``NAME-setup`` services, ``after_healthy`` commands ``NAME-init`` services; the ``init``
service creates every link on the proxy and every data dir before any service starts. A
service with a ``build:`` gets the compose ``build`` section (paths relative to the file).

The output is a pure function of the definition: tests/docker/test_compose_file.py fails
when the committed ``compose/docker-compose.yml`` (the reference stack's) differs from it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaos.backends import images
from chaos.backends.base import Endpoint
from chaos.backends.images import uses_tradechaos_image
from chaos.backends.placeholders import Placeholders, name_tables
from chaos.stackfile.definition import HealthCheck, ServiceSpec, StackDefinition

PROXY_PORT = 8474
SERVICE_PORT_BASE = 27000
LINK_PORT_BASE = 28000
RUN_DIR = Path("/var/lib/tradechaos/run")  # inside the containers
STACK_DIR = Path("/var/lib/tradechaos/stack")  # the stack file's folder, inside
HOST_RUN_DIR = "../runs/compose"  # relative to compose/
HEADER = (
    "# GENERATED from the stack file {source}: do not edit.\n"
    "# Regenerate: tradechaos stack compose{stack_arg} -o THIS_FILE\n"
    "# Needs the images: make images.  Then: docker compose -f THIS_FILE up\n"
    "# Ports are fixed here (proxy API 8474); tradechaos itself uses the SDK and free ports.\n"
)
COMPOSE_PARAMS = {
    "seed": "${SEED:-7}",
    "epoch": "${EPOCH:-1}",
    "mitigations": "${MITIGATIONS:-all}",
}


class _ComposePlaceholders(Placeholders):
    def _simple(self, name: str) -> str:
        if name == "pg_bin":
            return images.CONTAINER_PG_BIN
        return super()._simple(name)


def _healthcheck(
    check: HealthCheck, port: int, python: str, argv: Sequence[str] = ()
) -> dict[str, Any] | None:
    """A compose healthcheck (None for a log check, which compose cannot express)."""
    if check.kind == "pg":
        test = [f"{images.CONTAINER_PG_BIN}/pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)]
    elif check.kind == "tcp":
        probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2)"
        test = [python, "-c", probe]
    elif check.kind == "command":
        test = list(argv)
    elif check.kind == "log":
        return None
    else:
        url = f"http://127.0.0.1:{port}{check.path}"
        probe = f"import urllib.request; urllib.request.urlopen('{url}', timeout=2)"
        test = [python, "-c", probe]
    retries = max(3, int(check.timeout_s / 0.5))
    return {"test": ["CMD", *test], "interval": "500ms", "timeout": "3s", "retries": retries}


def _base(
    service: str,
    command: Sequence[str],
    env: dict[str, str],
    image: str = images.STACK_IMAGE,
    volumes: Sequence[str] = (),
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "image": image,
        "network_mode": "host",
        "init": True,
        "volumes": [f"{HOST_RUN_DIR}:{RUN_DIR}", *volumes],
        "working_dir": str(RUN_DIR),
        "labels": {"tradechaos.run": "compose", "tradechaos.service": service},
        "environment": {"PYTHONUNBUFFERED": "1", **env},
        "command": list(command),
    }
    return entry


def _ready(definition: StackDefinition, name: str) -> dict[str, dict[str, str]]:
    """The compose condition meaning "service ``name`` is usable"."""
    spec = definition.service(name)
    if spec.after_healthy:
        return {f"{name}-init": {"condition": "service_completed_successfully"}}
    if spec.health.kind == "log":
        return {name: {"condition": "service_started"}}
    return {name: {"condition": "service_healthy"}}


def generate(definition: StackDefinition, output: Path | None = None) -> str:
    """The compose file for ``definition`` to be written at ``output`` (relative build
    paths are relative to its folder; the current folder when None)."""
    import yaml

    services_ep = {
        spec.name: Endpoint("127.0.0.1", SERVICE_PORT_BASE + i)
        for i, spec in enumerate(definition.services)
    }
    links_ep = {
        link.name: Endpoint("127.0.0.1", LINK_PORT_BASE + i)
        for i, link in enumerate(definition.links)
    }
    out: dict[str, Any] = {}
    api = f"http://127.0.0.1:{PROXY_PORT}"
    out["proxy"] = _base(
        "proxy",
        [images.VENV_PYTHON, "-m", "chaos.proxy", "--host", "127.0.0.1", "--port", str(PROXY_PORT)],
        {},
    )
    out["proxy"]["healthcheck"] = _healthcheck(
        HealthCheck(path="/proxies"), PROXY_PORT, images.VENV_PYTHON
    )
    init = [images.VENV_PYTHON, "-m", "chaos.backends.compose_gen", "init", "--api", api]
    for spec in definition.services:
        init += ["--mkdir", str(RUN_DIR / "data" / spec.name)]
    for link in definition.links:
        init.append(f"{link.name}={links_ep[link.name]}={services_ep[link.server]}")
    out["init"] = _base("init", init, {})
    out["init"]["depends_on"] = {"proxy": {"condition": "service_healthy"}}
    where = (output or Path("docker-compose.yml")).resolve().parent
    for spec in definition.services:
        out.update(_service_entries(definition, spec, services_ep, links_ep, api, where))
    body = yaml.safe_dump({"name": definition.name, "services": out}, sort_keys=False, width=10_000)
    source = definition.source
    shown = _relative(source, where) if source is not None else "?"
    stack_arg = "" if source is None or _is_reference(source) else f" --stack {shown}"
    return HEADER.format(source=shown, stack_arg=stack_arg) + body


def _relative(path: Path, start: Path) -> str:
    return os.path.relpath(Path(path).resolve(), start)


def _is_reference(path: Path) -> bool:
    from chaos.stackfile import reference_stack_path

    return Path(path).resolve() == reference_stack_path()


def _service_entries(
    definition: StackDefinition,
    spec: ServiceSpec,
    services_ep: dict[str, Endpoint],
    links_ep: dict[str, Endpoint],
    api: str,
    where: Path,
) -> dict[str, Any]:
    ours = uses_tradechaos_image(spec)
    python = images.VENV_PYTHON if ours else "python3"
    image = images.STACK_IMAGE if ours else str(spec.image)
    databases, venues = name_tables(definition)
    stack_dir = definition.stack_dir
    volumes = [f"{_relative(stack_dir, where)}:{STACK_DIR}:ro"] if stack_dir is not None else []
    fill = _ComposePlaceholders(
        python=python,
        port=services_ep[spec.name].port,
        run_dir=RUN_DIR,
        data_dir=RUN_DIR / "data" / spec.name,
        params={"run_id": "compose", **COMPOSE_PARAMS},
        toxiproxy_url=api,
        links=links_ep,
        services=services_ep,
        stack_dir=STACK_DIR,
        databases=databases,
        venue_counts=venues,
    )
    env_template = {**spec.env, **(spec.docker_env or {})}
    env = {key: fill.fill(value) for key, value in env_template.items()}
    entries: dict[str, Any] = {}
    needs: dict[str, dict[str, str]] = {"init": {"condition": "service_completed_successfully"}}
    for dep in spec.depends_on:
        needs.update(_ready(definition, dep))
    for i, command in enumerate(spec.setup):
        name = f"{spec.name}-setup" + (f"{i + 1}" if i else "")
        entries[name] = _base(spec.name, fill.argv(command), env, image, volumes)
        entries[name]["depends_on"] = dict(needs)
        needs[name] = {"condition": "service_completed_successfully"}
    main = _base(spec.name, fill.argv(spec.docker_command or spec.command), env, image, volumes)
    if spec.build is not None and spec.build.context is not None:
        main["build"] = {
            "context": _relative(spec.build.context, where),
            "dockerfile": spec.build.dockerfile,
            **({"args": dict(spec.build.args)} if spec.build.args else {}),
        }
    main["depends_on"] = needs
    health = _healthcheck(
        spec.health, services_ep[spec.name].port, python, fill.argv(spec.health.command)
    )
    if health is not None:
        main["healthcheck"] = health
    main["stop_grace_period"] = f"{spec.stop_grace_s:g}s"
    if spec.optional:
        main["profiles"] = ["optional"]
    entries[spec.name] = main
    previous = {spec.name: {"condition": "service_healthy"}}
    for i, command in enumerate(spec.after_healthy):
        name = f"{spec.name}-init" + (f"{i + 1}" if i else "")
        entries[name] = _base(spec.name, fill.argv(command), env, image, volumes)
        entries[name]["depends_on"] = dict(previous)
        previous = {name: {"condition": "service_completed_successfully"}}
    return entries


def init_stack(api: str, mkdirs: Sequence[str], links: Sequence[str]) -> None:
    """Create the data dirs and the links (``NAME=LISTEN=UPSTREAM``) on the proxy at ``api``."""
    from chaos.backends.proxyadmin import ProxyAdmin

    for path in mkdirs:
        Path(path).mkdir(parents=True, exist_ok=True)
    admin = ProxyAdmin(api)
    admin.wait_ready(30.0)
    for text in links:
        name, listen, upstream = text.split("=")
        admin.create(name, listen=listen, upstream=upstream)
        print(f"link {name}: {listen} -> {upstream}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.backends.compose_gen")
    sub = parser.add_subparsers(dest="command")
    cmd_init = sub.add_parser("init", help="(inside the compose stack) create links and dirs")
    cmd_init.add_argument("--api", required=True)
    cmd_init.add_argument("--mkdir", action="append", default=[])
    cmd_init.add_argument("links", nargs="*")
    args = parser.parse_args(argv)
    if args.command == "init":
        init_stack(args.api, args.mkdir, args.links)
        return 0
    parser.error("use `tradechaos stack compose` to write a compose file")
    return 2


if __name__ == "__main__":
    sys.exit(main())
