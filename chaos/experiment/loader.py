"""Experiment files -> ``Experiment`` (docs/experiment-format.md).

``load(path, stack=None)`` returns a validated model or raises ``InvalidFile`` (the first
problem); ``problems(path, stack=None)`` returns every problem, each
``FILE:LINE: FIELD: problem (allowed: ...)``. The experiment is validated against the stack
it runs on: its ``stack.file`` (relative to the experiment file), or ``stack`` given here
(``--stack``), else the reference stack; every variant's options are applied to that stack
file and each step is checked against the services, links, sites and bindings of every
variant it runs in. Nothing here starts processes or touches the network.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from chaos.checkers.params import CheckParams
from chaos.errors import InvalidExperiment, InvalidFile
from chaos.experiment.checks import check_plugins, invariant_names, read_checks
from chaos.experiment.model import (
    PROBE_KINDS,
    AbortCondition,
    Experiment,
    Incident,
    LoadSpec,
    Probe,
    StackRef,
    Variant,
)
from chaos.experiment.partition import DEFAULT_TRADERS, MAX_WORKERS, accounts_problem
from chaos.experiment.steps import read_method
from chaos.files.fields import Reader, known, printable
from chaos.files.yamlsource import LineDict, LineList, YamlSyntaxError, parse
from chaos.stackfile import loader as stack_loader
from chaos.stackfile import resolve
from chaos.stackfile.bindings import TRADING_MODES
from chaos.stackfile.definition import StackDefinition
from chaos.stackfile.model import StackFile

TOP_LEVEL = (
    "name", "description", "incident", "seed", "duration", "stack", "load", "params",
    "steady_state", "safety", "variants", "method", "invariants", "checks", "require_evidence",
    "explore",  # the search space of `tradechaos explore`, read by chaos.explore.spaceload
)  # fmt: skip
REQUIRED = ("name", "duration", "method", "invariants")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
VARIANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_FILE_BYTES = 1_000_000
MAX_SEED = 2**63 - 1


def load(path: str | Path, stack: str | Path | None = None) -> Experiment:
    experiment, found = _load(str(path), stack)
    if found:
        raise found[0]
    assert experiment is not None
    return experiment


def problems(path: str | Path, stack: str | Path | None = None) -> list[InvalidFile]:
    """Every problem in the file (and in its stack file); empty when it loads."""
    return _load(str(path), stack)[1]


def _load(path: str, stack: str | Path | None) -> tuple[Experiment | None, list[InvalidFile]]:
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        return None, [InvalidExperiment(path, None, "", f"cannot read the file: {err.strerror}")]
    if len(raw) > MAX_FILE_BYTES:
        return None, [InvalidExperiment(path, None, "", "file is larger than 1 MB")]
    try:
        text = raw.decode("utf-8")
        document = parse(text)
    except UnicodeDecodeError:
        return None, [InvalidExperiment(path, 1, "", "the file is not UTF-8 text")]
    except YamlSyntaxError as err:
        return None, [InvalidExperiment(path, err.line, "", printable(err.problem))]
    reader = Reader(path)
    experiment = _read(reader, document, stack)
    found = sorted(reader.problems, key=lambda p: (p.path != path, p.line or 0))
    return (experiment if not found else None), found


def _read(r: Reader, document: Any, stack_override: str | Path | None) -> Experiment | None:
    top = r.mapping(document, 1, "", TOP_LEVEL)
    if top is None:
        return None
    for key in REQUIRED:
        r.required(top, key, key)
    name = r.string(top, "name", "name") if "name" in top else None
    if name is not None and not SLUG.match(name):
        r.fail(
            top.line_of("name"), "name", f"{name!r} is not a slug (lowercase letters, digits, '-')"
        )
    description = r.string(top, "description", "description") if "description" in top else ""
    seed = r.integer(top, "seed", "seed", 0, MAX_SEED) if "seed" in top else 0
    duration = r.duration(top, "duration", "duration", positive=True) if "duration" in top else None
    stack_file, stack = _stack(r, top, stack_override)
    if stack_file is None:
        return None
    own_checks = read_checks(r, top, stack_file)
    invariants = (
        r.names(top, "invariants", "invariants", invariant_names(stack_file, own_checks),
                "invariant")
        if "invariants" in top
        else None
    )  # fmt: skip
    check_plugins(r, top, invariants or ())
    variants = _variants(r, top, stack_file, stack, invariants or ())
    definitions = _definitions(r, top, stack_file, variants or ())
    method = (
        read_method(r, top, definitions, variants or (), duration)
        if "method" in top and duration is not None and definitions is not None
        else None
    )
    experiment = Experiment(
        name=name or "",
        path=r.path,
        description=description or "",
        seed=seed or 0,
        duration_s=duration or 0.0,
        variants=variants or (),
        method=method or (),
        invariants=invariants or (),
        incident=_incident(r, top),
        stack=stack,
        load=_load_spec(r, top),
        params=_params(r, top),
        steady_state=_probes(r, top),
        abort_when=_aborts(r, top),
        checks=own_checks,
        require_evidence=_evidence(r, top, "require_evidence", invariants or ()),
    )
    if definitions is not None:
        _check_probes(r, top, experiment, definitions)
        _check_workers(r, top, experiment.load, definitions)
    return experiment if not r.problems else None


def _stack(
    r: Reader, top: LineDict, override: str | Path | None
) -> tuple[StackFile | None, StackRef]:
    """The stack file the experiment runs on (its problems become the experiment's) and
    the experiment-level option values, checked against the stack's options."""
    section = LineDict()
    if "stack" in top:
        found = r.mapping(top["stack"], top.line_of("stack"), "stack", ("file", "options"))
        section = found if found is not None else LineDict()
    if override is not None:
        path = Path(override).resolve()
    elif "file" in section and isinstance(section["file"], str):
        path = (Path(r.path).resolve().parent / section["file"]).resolve()
    elif "file" in section:
        r.fail(section.line_of("file"), "stack.file", "expected the path of a stack file")
        return None, StackRef()
    else:
        path = stack_loader.reference_stack_path()
    stack_problems = stack_loader.problems(path)
    if stack_problems:
        if not path.exists() and "file" in section and override is None:
            r.fail(section.line_of("file"), "stack.file", f"no stack file at {path}")
        else:
            r.problems.extend(stack_problems)
        return None, StackRef(path)
    stack_file = stack_loader.load(path)
    options = _options(r, section, "stack.options", stack_file, {})
    return stack_file, StackRef(path, options)


def _options(
    r: Reader, body: LineDict, field: str, stack: StackFile, base: dict[str, Any]
) -> dict[str, Any]:
    """``base`` updated with the option values of ``body["options"]``, each checked."""
    values = dict(base)
    if "options" not in body:
        return values
    section = body["options"]
    if not isinstance(section, LineDict):
        r.fail(body.line_of("options"), field, "expected a mapping of option names to values")
        return values
    for key, value in section.items():
        line = section.line_of(key)
        decl = stack.options.get(key) if isinstance(key, str) else None
        if decl is None:
            listing = known(stack.options)
            r.fail(
                line,
                f"{field}.{key}",
                f"stack {stack.name} has no option {key!r} (options: {listing})",
            )
            continue
        try:
            values[key] = decl.check(value)
        except ValueError as err:
            r.fail(line, f"{field}.{key}", str(err))
    return values


def _definitions(
    r: Reader, top: LineDict, stack: StackFile, variants: tuple[Variant, ...]
) -> dict[str, StackDefinition] | None:
    """The stack each variant runs on (its options and mitigations applied)."""
    result: dict[str, StackDefinition] = {}
    for variant in variants:
        try:
            result[variant.name] = resolve(stack, variant.options, variant.mitigations)
        except ValueError as err:
            r.fail(variant.line, f"variants.{variant.name}", str(err))
    return result if len(result) == len(variants) else None


def _check_probes(
    r: Reader, top: LineDict, experiment: Experiment, definitions: dict[str, StackDefinition]
) -> None:
    """A trading_mode probe or abort condition needs the stack to say its mode."""
    uses = [p.line for p in experiment.steady_state if p.kind == "trading_mode"]
    uses += [c.line for c in experiment.abort_when if c.kind == "trading_mode"]
    if not uses:
        return
    binding = next(iter(definitions.values())).bindings.trading_mode
    if binding is None or binding.get is None or binding.get_mode is None:
        stack = next(iter(definitions.values())).name
        r.fail(uses[0], "steady_state", f"a trading_mode probe needs stack {stack}'s "
               "bindings.trading_mode.get (with mode:), which it does not declare")  # fmt: skip


def _load_spec(r: Reader, top: LineDict) -> LoadSpec:
    allowed = ("users", "spawn_rate", "retry_unknown", "accounts", "workers")
    if "load" not in top:
        return LoadSpec()
    section = r.mapping(top["load"], top.line_of("load"), "load", allowed)
    if section is None:
        return LoadSpec()
    default = LoadSpec()
    users = r.integer(section, "users", "load.users", 1, 10_000) if "users" in section else None
    rate = (
        r.number(section, "spawn_rate", "load.spawn_rate", 0.1, 10_000)
        if "spawn_rate" in section
        else None
    )
    retry = (
        r.boolean(section, "retry_unknown", "load.retry_unknown")
        if "retry_unknown" in section
        else None
    )
    accounts = (
        r.integer(section, "accounts", "load.accounts", 1, 100_000)
        if "accounts" in section
        else None
    )
    workers = (
        r.integer(section, "workers", "load.workers", 0, MAX_WORKERS)
        if "workers" in section
        else None
    )
    return LoadSpec(
        users=users or default.users,
        spawn_rate=rate or default.spawn_rate,
        retry_unknown=default.retry_unknown if retry is None else retry,
        accounts=accounts,
        workers=workers or default.workers,
    )


def _check_workers(
    r: Reader, top: LineDict, load: LoadSpec, definitions: dict[str, StackDefinition]
) -> None:
    """Every load worker trades for accounts of its own: no more workers than accounts."""
    if not load.workers or not definitions or not isinstance(top.get("load"), LineDict):
        return
    section = top["load"]
    binding = next(iter(definitions.values())).bindings.accounts
    if load.accounts is not None:
        accounts, where = load.accounts, "load.accounts"
    elif binding is not None:
        accounts, where = len(binding.traders), "the stack's bindings.accounts.traders"
    else:
        accounts, where = len(DEFAULT_TRADERS), "the load's default accounts"
    problem = accounts_problem(accounts, load.workers)
    if problem is not None:
        r.fail(section.line_of("workers"), "load.workers", f"{problem} ({where})")


def _incident(r: Reader, top: LineDict) -> Incident | None:
    if "incident" not in top:
        return None
    allowed = ("date", "operator", "sources", "mechanism", "summary", "assumptions")
    section = r.mapping(top["incident"], top.line_of("incident"), "incident", allowed)
    if section is None:
        return None
    text = {
        key: r.string(section, key, f"incident.{key}")
        for key in ("date", "operator", "mechanism", "assumptions")
        if key in section
    }
    if "summary" in section:
        r.string(section, "summary", "incident.summary")
    sources: list[str] = []
    if "sources" in section:
        items = r.sequence(section["sources"], section.line_of("sources"), "incident.sources")
        for index, source in enumerate(items or ()):
            if isinstance(source, str):
                sources.append(source)
            else:
                assert items is not None
                r.fail(items.line_of(index), f"incident.sources[{index}]", "expected a URL or text")
    return Incident(
        date=text.get("date"),
        operator=text.get("operator"),
        sources=tuple(sources),
        mechanism=text.get("mechanism"),
        assumptions=text.get("assumptions"),
    )


def _params(r: Reader, top: LineDict) -> dict[str, Any]:
    if "params" not in top:
        return {}
    section = top["params"]
    if not isinstance(section, LineDict):
        r.fail(top.line_of("params"), "params", "expected a mapping of checker parameters")
        return {}
    defaults = CheckParams.DEFAULTS
    result: dict[str, Any] = {}
    for key, value in section.items():
        line = section.line_of(key)
        if key not in defaults:
            r.fail(line, f"params.{key}", f"unknown checker parameter (known: {known(defaults)})")
            continue
        result[str(key)] = r.plain(value, line, f"params.{key}", depth=3)
    if len(result) == len(section):
        try:
            CheckParams.from_mapping(result)
        except (ValueError, TypeError) as err:
            r.fail(section.line, "params", str(err) or "rejected by the checkers")
    return result


def _variants(
    r: Reader, top: LineDict, stack: StackFile, ref: StackRef, invariants: tuple[str, ...]
) -> tuple[Variant, ...] | None:
    every = tuple(sorted(stack.mitigation_names))
    if "variants" not in top:
        return (Variant("default", every, (), top.line, dict(ref.options)),)
    section = top["variants"]
    if not isinstance(section, LineDict) or not section:
        r.fail(
            top.line_of("variants"), "variants", "expected a mapping of variant names to settings"
        )
        return None
    result: list[Variant] = []
    for name, settings in section.items():
        line = section.line_of(name)
        field = f"variants.{name}"
        if not isinstance(name, str) or not VARIANT_NAME.match(name):
            r.fail(line, field, "a variant name is lowercase letters, digits, '_' or '-'")
            continue
        if settings is None:
            settings = LineDict()
            settings.line = line
        body = r.mapping(settings, line, field, ("mitigations", "expect", "description", "options"))
        if body is None:
            continue
        mitigations = _mitigations(r, body, field, every) if "mitigations" in body else None
        options = _options(r, body, f"{field}.options", stack, dict(ref.options))
        violated: tuple[str, ...] = ()
        evidence: tuple[str, ...] = ()
        if "expect" in body:
            expect = r.mapping(
                body["expect"],
                body.line_of("expect"),
                f"{field}.expect",
                ("violated", "require_evidence"),
            )
            if expect is not None:
                evidence = _evidence(r, expect, f"{field}.expect.require_evidence", invariants)
            if expect is not None and "violated" in expect:
                violated = (
                    r.names(
                        expect,
                        "violated",
                        f"{field}.expect.violated",
                        invariants,
                        "invariant",
                        "checked by this experiment",
                    )
                    or ()
                )
        if "description" in body:
            r.string(body, "description", f"{field}.description")
        on = every if mitigations is None else mitigations
        result.append(Variant(name, on, violated, line, options, evidence))
    return tuple(result)


def _evidence(
    r: Reader, section: LineDict, field: str, invariants: tuple[str, ...]
) -> tuple[str, ...]:
    """``require_evidence``: invariants of this experiment whose "unknown for lack of
    evidence" fails the run (``field`` names the key in messages)."""
    if "require_evidence" not in section:
        return ()
    picked = r.names(
        section, "require_evidence", field, invariants, "invariant", "checked by this experiment"
    )
    return picked or ()


def _mitigations(
    r: Reader, body: LineDict, field: str, every: tuple[str, ...]
) -> tuple[str, ...] | None:
    value = body["mitigations"]
    allowed = ("all", "none", *every)
    if value == "all":
        return every
    if value == "none" or value is None:
        return ()
    if isinstance(value, str) and "," in value:
        items = LineList()
        items.line = body.line_of("mitigations")
        items.extend(part.strip() for part in value.split(","))
        holder = LineDict()
        holder.line = items.line
        holder["mitigations"] = items
        holder.key_lines["mitigations"] = items.line
        body = holder
    picked = r.names(body, "mitigations", f"{field}.mitigations", allowed[2:], "mitigation")
    if picked is None:
        return None
    return tuple(sorted(picked))


def _probe_kind(r: Reader, item: LineDict, field: str) -> str | None:
    if not r.required(item, "probe", f"{field}.probe"):
        return None
    return r.choice(item, "probe", f"{field}.probe", PROBE_KINDS)


def _items(r: Reader, top: LineDict, section: str, key: str) -> list[tuple[LineDict, str]]:
    if section not in top:
        return []
    body = r.mapping(top[section], top.line_of(section), section, (key,))
    if body is None or key not in body:
        return []
    items = r.sequence(body[key], body.line_of(key), f"{section}.{key}")
    result: list[tuple[LineDict, str]] = []
    for index, item in enumerate(items or ()):
        assert items is not None
        field = f"{section}.{key}[{index}]"
        if isinstance(item, LineDict):
            result.append((item, field))
        else:
            r.fail(items.line_of(index), field, "expected a mapping like {probe: health}")
    return result


def _probes(r: Reader, top: LineDict) -> tuple[Probe, ...]:
    allowed = {
        "health": (),
        "error_rate": ("max",),
        "p99_latency": ("max",),
        "trading_mode": ("mode",),
    }
    result: list[Probe] = []
    for item, field in _items(r, top, "steady_state", "probes"):
        kind = _probe_kind(r, item, field)
        if kind is None:
            continue
        r.mapping(item, item.line, field, ("probe", *allowed[kind]))
        for key in allowed[kind]:
            r.required(item, key, f"{field}.{key}")
        limit = mode = None
        if kind == "error_rate" and "max" in item:
            limit = r.number(item, "max", f"{field}.max", 0.0, 1.0)
        elif kind == "p99_latency" and "max" in item:
            limit = r.duration(item, "max", f"{field}.max", positive=True)
        elif kind == "trading_mode" and "mode" in item:
            mode = r.choice(item, "mode", f"{field}.mode", TRADING_MODES)
        result.append(Probe(kind, limit, mode, item.line))  # type: ignore[arg-type]
    return tuple(result)


def _aborts(r: Reader, top: LineDict) -> tuple[AbortCondition, ...]:
    allowed = {
        "health": (),
        "error_rate": ("above",),
        "p99_latency": ("above",),
        "trading_mode": ("mode",),
    }
    result: list[AbortCondition] = []
    for item, field in _items(r, top, "safety", "abort_when"):
        kind = _probe_kind(r, item, field)
        if kind is None:
            continue
        r.mapping(item, item.line, field, ("probe", "for", *allowed[kind]))
        for key in allowed[kind]:
            r.required(item, key, f"{field}.{key}")
        for_s = r.duration(item, "for", f"{field}.for") if "for" in item else 0.0
        above = mode = None
        if kind == "error_rate" and "above" in item:
            above = r.number(item, "above", f"{field}.above", 0.0, 1.0)
        elif kind == "p99_latency" and "above" in item:
            above = r.duration(item, "above", f"{field}.above")
        elif kind == "trading_mode" and "mode" in item:
            mode = r.choice(item, "mode", f"{field}.mode", TRADING_MODES)
        result.append(AbortCondition(kind, for_s or 0.0, above, mode, item.line))  # type: ignore[arg-type]
    return tuple(result)
