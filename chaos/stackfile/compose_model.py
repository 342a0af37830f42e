"""The typed model of a Compose file as ``tradechaos stack import`` reads it
(``chaos.stackfile.compose_read``), and what its readers share: the error helper, env
files, and the sentinel that marks a stack-file placeholder inside a raw string."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from chaos.errors import InvalidCompose

SENTINEL = "\x00"
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")


def placeholder(name: str, arg: str | None = None) -> str:
    """A stack-file placeholder inside a raw string (written as ``{name:arg}`` at the end)."""
    return f"{SENTINEL}{name}{':' + arg if arg else ''}{SENTINEL}"


@dataclass(frozen=True)
class Port:
    target: int  # the port the service listens on
    published: int | None = None


@dataclass(frozen=True)
class Dependency:
    service: str
    condition: str = "service_started"


@dataclass(frozen=True)
class Healthcheck:
    """``test`` is an argv (``CMD``) or None with ``shell`` set (``CMD-SHELL``)."""

    test: tuple[str, ...] | None
    shell: str | None
    interval_s: float = 30.0
    retries: int = 3
    start_period_s: float = 0.0
    timed: bool = False  # interval or retries given (not Compose's defaults)

    @property
    def text(self) -> str:
        return self.shell if self.shell is not None else " ".join(self.test or ())


@dataclass(frozen=True)
class Build:
    context: Path
    dockerfile: str = "Dockerfile"
    args: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Volume:
    source: str | None  # an absolute host path (bind mount), a volume name, or None
    target: str
    bind: bool = False


@dataclass(frozen=True)
class ComposeService:
    name: str
    line: int
    image: str | None = None
    build: Build | None = None
    entrypoint: tuple[str, ...] | None = None
    command: tuple[str, ...] | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    host_env: tuple[str, ...] = ()  # names whose value is the host's (no value given)
    ports: tuple[Port, ...] = ()
    expose: tuple[int, ...] = ()
    depends_on: tuple[Dependency, ...] = ()
    healthcheck: Healthcheck | None = None
    profiles: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    network_mode: str | None = None
    aliases: tuple[str, ...] = ()  # hostname, container_name, network aliases
    volumes: tuple[Volume, ...] = ()
    stop_signal: str | None = None
    stop_grace_s: float | None = None
    working_dir: str | None = None
    unsupported: tuple[str, ...] = ()  # keys the draft cannot carry (extends, secrets...)

    @property
    def argv(self) -> tuple[str, ...]:
        """What the service runs: entrypoint + command (the image's own when neither)."""
        return (*(self.entrypoint or ()), *(self.command or ()))


@dataclass(frozen=True)
class ComposeFile:
    path: Path
    name: str | None
    services: tuple[ComposeService, ...]
    generated: bool = False  # written by `tradechaos stack compose`
    unset: tuple[str, ...] = ()  # variables that had no value

    def service(self, name: str) -> ComposeService:
        for svc in self.services:
            if svc.name == name:
                return svc
        raise KeyError(name)


class ComposeReader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, line: int | None, key: str, problem: str) -> InvalidCompose:
        return InvalidCompose(str(self.path), line, key, problem)


def dotenv(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (``#`` comments, ``export``, quotes) of an env file."""
    values: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidCompose(str(path), None, "", f"cannot read the env file: {err}") from None
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export "):
            stripped = stripped[len("export ") :].lstrip()
        key, sep, value = stripped.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key):
            raise InvalidCompose(str(path), number, "", f"expected KEY=VALUE, got {line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values
