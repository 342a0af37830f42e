"""A loaded stack file, as written (before options are applied): docs/stack-file.md.

Built only by ``chaos.stackfile.loader``, which guarantees every rule stated there (names
exist, no dependency cycle, placeholders known); ``chaos.stackfile.resolve`` turns it into
the ``StackDefinition`` the engine runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from chaos.stackfile.bindings import Bindings, SqlCheck
from chaos.stackfile.definition import BuildSpec, BuiltinKind, HealthCheck, KubernetesAllow
from chaos.world import MarketSpec

OptionType = Literal["bool", "int", "number", "string", "choice"]
OptionValue = bool | int | float | str
CLIENTS = "clients"  # the client end of links used by tradechaos's traders and probes


@dataclass(frozen=True)
class OptionDecl:
    name: str
    type: OptionType
    default: OptionValue
    choices: tuple[OptionValue, ...] = ()
    min: float | None = None
    max: float | None = None
    help: str = ""
    line: int = 0

    def check(self, value: object) -> OptionValue:
        """``value`` if it is valid for this option; ValueError (one sentence) if not."""
        if self.type == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"option {self.name} takes true or false, not {value!r}")
            return value
        if self.type in ("int", "number"):
            whole = self.type == "int"
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or (whole and not float(value).is_integer())
            ):
                kind = "a whole number" if whole else "a number"
                raise ValueError(f"option {self.name} takes {kind}, not {value!r}")
            if (self.min is not None and value < self.min) or (
                self.max is not None and value > self.max
            ):
                raise ValueError(
                    f"option {self.name} must be from {self.min:g} to {self.max:g}, not {value}"
                    if self.min is not None and self.max is not None
                    else f"option {self.name}: {value} is out of range"
                )
            return int(value) if whole else float(value)
        if self.type == "choice":
            if value not in self.choices:
                listing = ", ".join(str(c) for c in self.choices)
                raise ValueError(f"option {self.name} is one of {listing}, not {value!r}")
            return value
        if not isinstance(value, str):
            raise ValueError(f"option {self.name} takes text, not {value!r}")
        return value


@dataclass(frozen=True)
class ArgGroup:
    """Command items included only when option ``when`` holds (``!name``: when it does not)."""

    when: str
    args: tuple[str, ...]


Arg = str | ArgGroup
Command = tuple[Arg, ...]


@dataclass(frozen=True)
class VenueDecl:
    """One venue of a built-in venues service: the public API shape it speaks and the
    symbol it gives each market (markets it does not name get the shape's default)."""

    shape: str
    symbols: Mapping[str, str] = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True)
class ServiceDecl:
    name: str
    builtin: BuiltinKind | None = None
    command: Command = ()
    image: str | None = None
    build: BuildSpec | None = None
    docker_command: Command | None = None
    docker_env: Mapping[str, str] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    health: HealthCheck | None = None
    depends_on: tuple[str, ...] = ()
    site: str = "core"
    optional: bool = False
    when: str | None = None
    stop_signal: str = "TERM"
    stop_grace_s: float | None = None
    setup: tuple[Command, ...] = ()
    after_healthy: tuple[Command, ...] = ()
    database: str | None = None  # builtin postgres
    schema: Path | None = None  # builtin postgres
    count: int | str = 3  # builtin venues (a number or "{option:NAME}")
    venues: tuple[VenueDecl, ...] = ()  # builtin venues: one shape each (instead of count)
    line: int = 0


@dataclass(frozen=True)
class LinkDecl:
    name: str
    client: str
    server: str
    when: str | None = None
    line: int = 0


@dataclass(frozen=True)
class ServiceEffect:
    """What a mitigation changes in one service: env values and extra arguments."""

    env_on: Mapping[str, str] = field(default_factory=dict)
    env_off: Mapping[str, str] = field(default_factory=dict)
    args_on: tuple[str, ...] = ()
    args_off: tuple[str, ...] = ()


@dataclass(frozen=True)
class MitigationDecl:
    name: str
    help: str = ""
    effects: Mapping[str, ServiceEffect] = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True)
class StackFile:
    name: str
    path: Path
    services: tuple[ServiceDecl, ...]
    links: tuple[LinkDecl, ...] = ()
    options: Mapping[str, OptionDecl] = field(default_factory=dict)
    markets: tuple[MarketSpec, ...] = ()
    mitigations: tuple[MitigationDecl, ...] = ()
    bindings: Bindings = field(default_factory=Bindings)
    kubernetes: KubernetesAllow = field(default_factory=KubernetesAllow)
    description: str = ""
    checks: tuple[SqlCheck, ...] = ()  # the stack's own invariants (SQL)

    @property
    def mitigation_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.mitigations)

    def defaults(self) -> dict[str, OptionValue]:
        return {name: decl.default for name, decl in self.options.items()}

    def option_values(self, given: Mapping[str, object] | None = None) -> dict[str, OptionValue]:
        """The defaults overridden by ``given``; ValueError naming an unknown or bad option."""
        values = self.defaults()
        for name, value in (given or {}).items():
            decl = self.options.get(name)
            if decl is None:
                known = ", ".join(self.options) or "none"
                raise ValueError(f"stack {self.name} has no option {name!r} (options: {known})")
            values[name] = decl.check(value)
        return values
