"""Experiment files -> ``Experiment`` (docs/experiment-format.md).

``load(path)`` returns a validated model or raises ``InvalidExperiment`` (the first problem);
``problems(path)`` returns every problem, each ``FILE:LINE: FIELD: problem (allowed: ...)``.
Nothing here starts processes or touches the network.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from chaos.errors import InvalidExperiment
from chaos.experiment import catalog
from chaos.experiment.fields import Reader, known, printable
from chaos.experiment.model import (
    PROBE_KINDS,
    TRADING_MODES,
    AbortCondition,
    Experiment,
    Incident,
    KnownNames,
    LoadSpec,
    Probe,
    StackOptions,
    Variant,
)
from chaos.experiment.steps import read_method
from chaos.experiment.yamlsource import LineDict, LineList, YamlSyntaxError, parse

TOP_LEVEL = (
    "name", "description", "incident", "seed", "duration", "stack", "load", "params",
    "steady_state", "safety", "variants", "method", "invariants", "require_evidence",
)  # fmt: skip
REQUIRED = ("name", "duration", "method", "invariants")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
VARIANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_FILE_BYTES = 1_000_000
MAX_SEED = 2**63 - 1


def load(path: str | Path) -> Experiment:
    experiment, found = _load(str(path))
    if found:
        raise found[0]
    assert experiment is not None
    return experiment


def problems(path: str | Path) -> list[InvalidExperiment]:
    """Every problem in the file; empty when it loads."""
    return _load(str(path))[1]


def _load(path: str) -> tuple[Experiment | None, list[InvalidExperiment]]:
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
    experiment = _read(reader, document)
    found = sorted(reader.problems, key=lambda p: p.line or 0)
    return (experiment if not found else None), found


def _read(r: Reader, document: Any) -> Experiment | None:
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
    stack = _stack(r, top)
    names = catalog.known_names(standby=stack.standby, venues=stack.venues)
    invariants = (
        r.names(top, "invariants", "invariants", names.invariants, "invariant")
        if "invariants" in top
        else None
    )
    variants = _variants(r, top, names, invariants or ())
    method = (
        read_method(r, top, names, variants or (), duration)
        if "method" in top and duration is not None
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
        require_evidence=_evidence(r, top, "require_evidence", invariants or ()),
    )
    return experiment if not r.problems else None


def _stack(r: Reader, top: LineDict) -> StackOptions:
    if "stack" not in top:
        return StackOptions()
    section = r.mapping(top["stack"], top.line_of("stack"), "stack", ("standby", "venues"))
    if section is None:
        return StackOptions()
    standby = r.boolean(section, "standby", "stack.standby") if "standby" in section else False
    venues = r.integer(section, "venues", "stack.venues", 1, 20) if "venues" in section else 3
    return StackOptions(standby=bool(standby), venues=venues or 3)


def _load_spec(r: Reader, top: LineDict) -> LoadSpec:
    allowed = ("users", "spawn_rate", "retry_unknown", "accounts")
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
    return LoadSpec(
        users=users or default.users,
        spawn_rate=rate or default.spawn_rate,
        retry_unknown=default.retry_unknown if retry is None else retry,
        accounts=accounts,
    )


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
    defaults = catalog.checker_defaults()
    result: dict[str, Any] = {}
    for key, value in section.items():
        line = section.line_of(key)
        if defaults is not None and key not in defaults:
            r.fail(line, f"params.{key}", f"unknown checker parameter (known: {known(defaults)})")
            continue
        result[str(key)] = r.plain(value, line, f"params.{key}", depth=3)
    if len(result) == len(section):
        try:
            catalog.check_params(result)
        except (ValueError, TypeError) as err:
            r.fail(section.line, "params", str(err) or "rejected by the checkers")
    return result


def _variants(
    r: Reader, top: LineDict, names: KnownNames, invariants: tuple[str, ...]
) -> tuple[Variant, ...] | None:
    if "variants" not in top:
        return (Variant("default", tuple(sorted(names.mitigations)), (), top.line),)
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
        body = r.mapping(settings, line, field, ("mitigations", "expect", "description"))
        if body is None:
            continue
        mitigations = _mitigations(r, body, field, names) if "mitigations" in body else None
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
        on = tuple(sorted(names.mitigations)) if mitigations is None else mitigations
        result.append(Variant(name, on, violated, line, evidence))
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
    r: Reader, body: LineDict, field: str, names: KnownNames
) -> tuple[str, ...] | None:
    value = body["mitigations"]
    allowed = ("all", "none", *names.mitigations)
    if value == "all":
        return tuple(sorted(names.mitigations))
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
