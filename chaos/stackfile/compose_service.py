"""One Compose service's keys -> ``ComposeService`` (``tradechaos stack import``): the
forms the Compose specification allows for each key (see ``chaos.stackfile.compose_read``),
each problem one ``InvalidCompose`` naming the file, the line and the key."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from chaos.files.fields import kind_of
from chaos.files.yamlsource import LineDict, LineList
from chaos.stackfile.compose_model import (
    CONDITIONS,
    Build,
    ComposeReader,
    ComposeService,
    Dependency,
    Healthcheck,
    Port,
    Volume,
    dotenv,
)

UNSUPPORTED = ("extends", "secrets", "configs", "user", "tmpfs", "devices", "cap_add")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _argv(r: ComposeReader, body: LineDict, key: str, field: str) -> tuple[str, ...] | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as err:
            raise r.fail(body.line_of(key), field, f"cannot split {value!r}: {err}") from None
    if isinstance(value, LineList) and all(isinstance(v, str | int | float) for v in value):
        return tuple(_text(v) for v in value)
    raise r.fail(body.line_of(key), field, f"expected text or a list of text, got {kind_of(value)}")


def _pairs(r: ComposeReader, value: Any, line: int, field: str) -> tuple[dict[str, str], list[str]]:
    """A map, or a list of ``K=V`` (``K`` alone: no value); (values, names without one)."""
    values: dict[str, str] = {}
    bare: list[str] = []
    if value is None:
        return values, bare
    if isinstance(value, LineDict):
        for key, item in value.items():
            if item is None:
                bare.append(str(key))
            elif isinstance(item, str | int | float | bool):
                values[str(key)] = _text(item)
            else:
                raise r.fail(value.line_of(key), f"{field}.{key}",
                             f"expected text or a number, got {kind_of(item)}")  # fmt: skip
        return values, bare
    if isinstance(value, LineList):
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise r.fail(value.line_of(index), f"{field}[{index}]",
                             f"expected KEY=VALUE text, got {kind_of(item)}")  # fmt: skip
            key, sep, text = item.partition("=")
            if sep:
                values[key] = text
            else:
                bare.append(key)
        return values, bare
    raise r.fail(line, field, f"expected a mapping or a list of KEY=VALUE, got {kind_of(value)}")


def _env_files(r: ComposeReader, body: LineDict, field: str) -> dict[str, str]:
    value = body.get("env_file")
    if value is None:
        return {}
    items = value if isinstance(value, LineList) else [value]
    values: dict[str, str] = {}
    for index, item in enumerate(items):
        where = f"{field}.env_file" + (f"[{index}]" if isinstance(value, LineList) else "")
        if isinstance(item, LineDict):
            relative, required = item.get("path"), item.get("required", True) is not False
        else:
            relative, required = item, True
        if not isinstance(relative, str):
            raise r.fail(body.line_of("env_file"), where, "expected the path of an env file")
        path = (r.path.parent / relative).resolve()
        if not path.is_file():
            if required:
                raise r.fail(body.line_of("env_file"), where, f"no env file at {path}")
            continue
        values.update(dotenv(path))
    return values


def _port_numbers(text: str) -> list[int]:
    low, _, high = text.partition("-")
    first = int(low)
    return list(range(first, int(high) + 1)) if high else [first]


def _ports(r: ComposeReader, body: LineDict, field: str) -> tuple[Port, ...]:
    value = body.get("ports")
    if value is None:
        return ()
    if not isinstance(value, LineList):
        raise r.fail(body.line_of("ports"), field, f"expected a list, got {kind_of(value)}")
    ports: list[Port] = []
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        try:
            if isinstance(item, LineDict):
                if str(item.get("protocol", "tcp")) != "tcp":
                    continue
                target = int(str(item["target"]))
                published = item.get("published")
                ports.append(Port(target, int(str(published)) if published else None))
                continue
            text = _text(item)
            text, _, protocol = text.partition("/")
            if protocol not in ("", "tcp"):
                continue
            if text.startswith("["):  # [::1]:published:target
                text = text[text.index("]") + 2 :]
            parts = text.split(":")
            targets = _port_numbers(parts[-1])
            published = _port_numbers(parts[-2]) if len(parts) > 1 and parts[-2] else []
            for i, target in enumerate(targets):
                ports.append(Port(target, published[i] if i < len(published) else None))
        except (ValueError, KeyError, IndexError, TypeError):
            raise r.fail(value.line_of(index), where,
                         f"{item!r} is not a port (TARGET, PUBLISHED:TARGET, IP:PUBLISHED:TARGET "
                         "or {target: N})") from None  # fmt: skip
    return tuple(ports)


def _expose(r: ComposeReader, body: LineDict, field: str) -> tuple[int, ...]:
    value = body.get("expose") or []
    found: list[int] = []
    for index, item in enumerate(value if isinstance(value, list) else [value]):
        try:
            found.extend(_port_numbers(_text(item).partition("/")[0]))
        except ValueError:
            raise r.fail(body.line_of("expose"), f"{field}[{index}]",
                         f"{item!r} is not a port") from None  # fmt: skip
    return tuple(found)


def _depends_on(r: ComposeReader, body: LineDict, field: str) -> tuple[Dependency, ...]:
    value = body.get("depends_on")
    if value is None:
        return ()
    if isinstance(value, LineList):
        if not all(isinstance(v, str) for v in value):
            raise r.fail(body.line_of("depends_on"), field, "expected a list of service names")
        return tuple(Dependency(str(v)) for v in value)
    if isinstance(value, LineDict):
        deps = []
        for name, spec in value.items():
            if isinstance(spec, LineDict):
                condition = spec.get("condition", "service_started")
            else:
                condition = "service_started" if spec is None else None
            if condition not in CONDITIONS:
                known = ", ".join(CONDITIONS)
                raise r.fail(value.line_of(name), f"{field}.{name}.condition",
                             f"unknown condition {condition!r} (known: {known})")  # fmt: skip
            deps.append(Dependency(str(name), str(condition)))
        return tuple(deps)
    raise r.fail(body.line_of("depends_on"), field,
                 f"expected a list or a mapping of services, got {kind_of(value)}")  # fmt: skip


def duration_s(text: Any) -> float:
    """A Compose duration (``1m30s``, ``500ms``, ``2s``; a number is seconds)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a duration")
    parts = _DURATION.findall(text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ValueError(f"{text!r} is not a duration like 500ms, 2s or 1m30s")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * scale[u] for n, u in parts)


def _healthcheck(r: ComposeReader, body: LineDict, field: str) -> Healthcheck | None:
    value = body.get("healthcheck")
    if value is None:
        return None
    if not isinstance(value, LineDict):
        raise r.fail(
            body.line_of("healthcheck"), field, f"expected a mapping, got {kind_of(value)}"
        )
    if value.get("disable") is True:
        return None
    test = value.get("test")
    shell: str | None = None
    argv: tuple[str, ...] | None = None
    if isinstance(test, str):
        shell = test
    elif (
        isinstance(test, LineList) and test and all(isinstance(t, str | int | float) for t in test)
    ):
        kind, rest = str(test[0]), [_text(t) for t in test[1:]]
        if kind == "NONE":
            return None
        if kind == "CMD-SHELL":
            shell = " ".join(rest)
        elif kind == "CMD":
            argv = tuple(rest)
        else:
            raise r.fail(value.line_of("test"), f"{field}.test",
                         f"the first item is CMD, CMD-SHELL or NONE, not {kind!r}")  # fmt: skip
    else:
        line = value.line_of("test") if "test" in value else value.line
        example = "[CMD, curl, -f, http://localhost/health]"
        raise r.fail(line, f"{field}.test", f"expected text or a list like {example}")
    try:
        interval = duration_s(value.get("interval", "30s"))
        start = duration_s(value.get("start_period", 0))
    except ValueError as err:
        raise r.fail(value.line, field, str(err)) from None
    retries = value.get("retries", 3)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise r.fail(value.line_of("retries"), f"{field}.retries", "expected a whole number")
    timed = "interval" in value or "retries" in value
    return Healthcheck(argv, shell, interval, retries, start, timed)


def _build(r: ComposeReader, body: LineDict, field: str) -> Build | None:
    value = body.get("build")
    if value is None:
        return None
    if isinstance(value, str):
        return Build((r.path.parent / value).resolve())
    if not isinstance(value, LineDict) or not isinstance(value.get("context", "."), str):
        raise r.fail(
            body.line_of("build"), field, "expected a context path or {context, dockerfile}"
        )
    args, _bare = _pairs(r, value.get("args"), value.line_of("args"), f"{field}.args")
    return Build(
        (r.path.parent / str(value.get("context", "."))).resolve(),
        str(value.get("dockerfile") or "Dockerfile"),
        args,
    )


def _volumes(r: ComposeReader, body: LineDict, field: str) -> tuple[Volume, ...]:
    value = body.get("volumes") or []
    found = []
    for index, item in enumerate(value if isinstance(value, list) else []):
        if isinstance(item, LineDict):
            source, target = item.get("source"), item.get("target")
            bind = item.get("type") == "bind"
        elif isinstance(item, str):
            parts = item.split(":")
            source, target = (parts[0], parts[1]) if len(parts) > 1 else (None, parts[0])
            bind = source is not None and source.startswith((".", "/", "~"))
        else:
            raise r.fail(body.line_of("volumes"), f"{field}[{index}]", "expected SOURCE:TARGET")
        if not isinstance(target, str):
            raise r.fail(body.line_of("volumes"), f"{field}[{index}]", "a volume needs a target")
        if bind and isinstance(source, str):
            source = str((r.path.parent / Path(source).expanduser()).resolve())
        found.append(Volume(str(source) if source else None, target, bind))
    return tuple(found)


def _aliases(body: LineDict) -> tuple[str, ...]:
    names = [body.get("hostname"), body.get("container_name")]
    networks = body.get("networks")
    if isinstance(networks, LineDict):
        for spec in networks.values():
            if isinstance(spec, LineDict):
                names.extend(a for a in spec.get("aliases") or () if isinstance(a, str))
    return tuple(dict.fromkeys(n for n in names if isinstance(n, str) and n))


def read_service(r: ComposeReader, name: str, body: Any, line: int) -> ComposeService:
    field = f"services.{name}"
    if not isinstance(body, LineDict):
        raise r.fail(line, field, f"expected a mapping, got {kind_of(body)}")
    image = body.get("image")
    if image is not None and not isinstance(image, str):
        raise r.fail(body.line_of("image"), f"{field}.image", "expected an image name")
    build = _build(r, body, f"{field}.build")
    if image is None and build is None:
        raise r.fail(line, field, "a service needs an image or a build")
    env, bare = _pairs(r, body.get("environment"), body.line_of("environment"),
                       f"{field}.environment")  # fmt: skip
    environment = {**_env_files(r, body, field), **env}
    labels, _ = _pairs(r, body.get("labels"), body.line_of("labels"), f"{field}.labels")
    profiles = body.get("profiles") or []
    if not isinstance(profiles, list) or not all(isinstance(p, str) for p in profiles):
        raise r.fail(body.line_of("profiles"), f"{field}.profiles", "expected a list of names")
    grace = body.get("stop_grace_period")
    try:
        grace_s = duration_s(grace) if grace is not None else None
    except ValueError as err:
        raise r.fail(body.line_of("stop_grace_period"), f"{field}.stop_grace_period",
                     str(err)) from None  # fmt: skip
    return ComposeService(
        name=name,
        line=line,
        image=image,
        build=build,
        entrypoint=_argv(r, body, "entrypoint", f"{field}.entrypoint"),
        command=_argv(r, body, "command", f"{field}.command"),
        environment=environment,
        host_env=tuple(k for k in bare if k not in environment),
        ports=_ports(r, body, f"{field}.ports"),
        expose=_expose(r, body, f"{field}.expose"),
        depends_on=_depends_on(r, body, f"{field}.depends_on"),
        healthcheck=_healthcheck(r, body, f"{field}.healthcheck"),
        profiles=tuple(profiles),
        labels=labels,
        network_mode=body.get("network_mode")
        if isinstance(body.get("network_mode"), str)
        else None,
        aliases=_aliases(body),
        volumes=_volumes(r, body, f"{field}.volumes"),
        stop_signal=str(body["stop_signal"]) if body.get("stop_signal") else None,
        stop_grace_s=grace_s,
        working_dir=str(body["working_dir"]) if body.get("working_dir") else None,
        unsupported=tuple(k for k in UNSUPPORTED if k in body),
    )
