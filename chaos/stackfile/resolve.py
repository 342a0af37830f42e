"""``resolve``: a ``StackFile`` + option values + the mitigations that are on -> the
``StackDefinition`` the engine runs (see ``chaos.stackfile.definition``).

- A service, link or command group whose ``when`` does not hold is left out; so is a link
  whose end is left out, and a dependency on a service that is left out.
- ``{option:NAME}`` is filled in everywhere; per-run placeholders stay for the backend.
- Built-in parts become ordinary services running tradechaos's own modules
  (``chaos.builtins.postgres``, ``chaos.builtins.venues``) in the tradechaos image.
- Each mitigation's env values and arguments (on or off) are applied to its services.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, replace
from pathlib import Path

from chaos.stackfile.definition import (
    BuildSpec,
    HealthCheck,
    LinkSpec,
    ServiceSpec,
    StackDefinition,
)
from chaos.stackfile.model import ArgGroup, Command, OptionValue, ServiceDecl, StackFile
from chaos.stackfile.placeholders import fill_options

TRADECHAOS_BUILD = BuildSpec(tradechaos=True)


def holds(condition: str | None, values: Mapping[str, OptionValue]) -> bool:
    """Whether ``when: condition`` (``name`` or ``!name``) holds for these option values."""
    if condition is None:
        return True
    negate = condition.startswith("!")
    value = bool(values.get(condition.lstrip("!")))
    return not value if negate else value


def resolve(
    stack: StackFile,
    options: Mapping[str, object] | None = None,
    mitigations: Iterable[str] | None = None,
) -> StackDefinition:
    """The definition for these option values (defaults for the rest) and mitigations
    (all of them when None). ValueError naming an unknown or bad option value."""
    values = stack.option_values(options)
    on = set(stack.mitigation_names if mitigations is None else mitigations)
    services = [
        _service(decl, values, stack) for decl in stack.services if holds(decl.when, values)
    ]
    present = {s.name for s in services}
    services = [
        replace(s, depends_on=tuple(d for d in s.depends_on if d in present)) for s in services
    ]
    services = [_mitigate(s, stack, on) for s in services]
    links = tuple(
        LinkSpec(lk.name, lk.client, lk.server)
        for lk in stack.links
        if holds(lk.when, values)
        and lk.server in present
        and (lk.client == "clients" or lk.client in present)
    )
    return StackDefinition(
        name=stack.name,
        services=tuple(services),
        links=links,
        markets=stack.markets,
        bindings=stack.bindings,
        mitigations=stack.mitigation_names,
        source=stack.path,
        options=dict(values),
        kubernetes=stack.kubernetes,
        checks=stack.checks,
    )


def _args(command: Command, values: Mapping[str, OptionValue]) -> tuple[str, ...]:
    argv: list[str] = []
    for item in command:
        if isinstance(item, ArgGroup):
            if holds(item.when, values):
                argv.extend(fill_options(a, values) for a in item.args)
        else:
            argv.append(fill_options(item, values))
    return tuple(argv)


def _env(env: Mapping[str, str] | None, values: Mapping[str, OptionValue]) -> dict[str, str]:
    return {k: fill_options(v, values) for k, v in (env or {}).items()}


def _service(decl: ServiceDecl, values: Mapping[str, OptionValue], stack: StackFile) -> ServiceSpec:
    if decl.builtin == "postgres":
        return _postgres(decl, values, stack)
    if decl.builtin == "venues":
        return _venues(decl, values, stack)
    build = decl.build
    if build is not None and build.args:
        build = replace(build, args=_env(build.args, values))
    return ServiceSpec(
        name=decl.name,
        command=_args(decl.command, values),
        health=decl.health or HealthCheck(),
        depends_on=decl.depends_on,
        site=decl.site,
        env=_env(decl.env, values),
        setup=tuple(_args(c, values) for c in decl.setup),
        after_healthy=tuple(_args(c, values) for c in decl.after_healthy),
        stop_grace_s=5.0 if decl.stop_grace_s is None else decl.stop_grace_s,
        stop_signal=decl.stop_signal,
        optional=decl.optional,
        image=decl.image,
        build=build,
        docker_command=_args(decl.docker_command, values) if decl.docker_command else None,
        docker_env=_env(decl.docker_env, values) if decl.docker_env is not None else None,
        cwd=decl.cwd,
    )


def _in_stack_dir(path: Path, stack: StackFile) -> str:
    """``path`` as ``{stack_dir}/...`` when it lies in the stack file's folder (so that it
    means the same in a container, where that folder is mounted elsewhere)."""
    try:
        return "{stack_dir}/" + path.relative_to(stack.path.parent).as_posix()
    except ValueError:
        return str(path)


def _postgres(
    decl: ServiceDecl, values: Mapping[str, OptionValue], stack: StackFile
) -> ServiceSpec:
    database = decl.database or "postgres"
    module = ("{python}", "-m", "chaos.builtins.postgres")
    setup: tuple[str, ...] = (*module, "setup", "--data-dir", "{data_dir}", "--pg-bin",
                              "{pg_bin}", "--database", database)  # fmt: skip
    if decl.schema is not None:
        setup += ("--schema", _in_stack_dir(decl.schema, stack))
    return ServiceSpec(
        name=decl.name,
        command=(
            *module,
            "serve",
            "--data-dir",
            "{data_dir}",
            "--port",
            "{port}",
            "--pg-bin",
            "{pg_bin}",
        ),
        health=decl.health or HealthCheck(kind="pg", timeout_s=20.0),
        depends_on=decl.depends_on,
        site=decl.site,
        env=_env(decl.env, values),
        setup=(setup, *(_args(c, values) for c in decl.setup)),
        after_healthy=tuple(_args(c, values) for c in decl.after_healthy),
        stop_grace_s=10.0 if decl.stop_grace_s is None else decl.stop_grace_s,
        optional=decl.optional,
        build=TRADECHAOS_BUILD,
        builtin="postgres",
        database=database,
    )


def _venues(decl: ServiceDecl, values: Mapping[str, OptionValue], stack: StackFile) -> ServiceSpec:
    count = int(fill_options(str(decl.count), values))
    markets = json.dumps([asdict(m) for m in stack.markets], separators=(",", ":"))
    shapes: list[str] = []
    for venue in decl.venues:  # --venue-shape binance:BTC-PERP=BTCUSDT,ETH-PERP=ETHUSDT
        pairs = ",".join(f"{market}={symbol}" for market, symbol in venue.symbols.items())
        shapes += ["--venue-shape", venue.shape + (f":{pairs}" if pairs else "")]
    return ServiceSpec(
        name=decl.name,
        command=(
            "{python}",
            "-m",
            "chaos.builtins.venues",
            "--port",
            "{port}",
            "--seed",
            "{seed}",
            "--epoch",
            "{epoch}",
            "--venues",
            str(count),
            "--markets",
            markets,
            *shapes,
        ),
        health=decl.health or HealthCheck(kind="http", path="/health"),
        depends_on=decl.depends_on,
        site=decl.site,
        env=_env(decl.env, values),
        after_healthy=tuple(_args(c, values) for c in decl.after_healthy),
        stop_grace_s=5.0 if decl.stop_grace_s is None else decl.stop_grace_s,
        optional=decl.optional,
        build=TRADECHAOS_BUILD,
        builtin="venues",
        venues=count,
    )


def _mitigate(spec: ServiceSpec, stack: StackFile, on: set[str]) -> ServiceSpec:
    env = dict(spec.env)
    docker_env = dict(spec.docker_env) if spec.docker_env is not None else None
    args: list[str] = []
    for mitigation in stack.mitigations:
        effect = mitigation.effects.get(spec.name)
        if effect is None:
            continue
        active = mitigation.name in on
        changes = effect.env_on if active else effect.env_off
        env.update(changes)
        if docker_env is not None:
            docker_env.update(changes)
        args.extend(effect.args_on if active else effect.args_off)
    if not args and env == spec.env and docker_env == spec.docker_env:
        return spec
    docker_command = (*spec.docker_command, *args) if spec.docker_command else None
    return replace(
        spec,
        env=env,
        docker_env=docker_env,
        command=(*spec.command, *args),
        docker_command=docker_command,
    )
