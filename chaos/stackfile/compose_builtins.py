"""The built-in parts a Compose project's services become (``tradechaos stack import``):
PostgreSQL as ``builtin: postgres`` (its ``POSTGRES_DB``, the one ``.sql`` file mounted into
``/docker-entrypoint-initdb.d`` as its ``schema``), stand-ins for exchanges as ``builtin:
venues``, and the ``build`` of an image (a Python base image as ``{base_image}``)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from chaos.stackfile.compose_model import ComposeService, placeholder
from chaos.stackfile.compose_rewrite import Unit
from chaos.stackfile.compose_units import Job
from chaos.stackfile.draft import Block

_DATABASE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_INITDB = "/docker-entrypoint-initdb.d"
_BASE_IMAGE = re.compile(r"^(docker\.io/(library/)?)?python:3[\w.-]*$")


def _relative(path: Path, start: Path) -> str:
    return os.path.relpath(path, start)


def build(unit: Unit, body: Block, out_dir: Path) -> None:
    """The ``build`` of a service that has one (a Python base image as ``{base_image}``)."""
    build = unit.compose.build
    assert build is not None
    spec: dict[str, Any] = {"context": _relative(build.context, out_dir)}
    if build.dockerfile != "Dockerfile":
        spec["dockerfile"] = build.dockerfile
    else:
        spec["dockerfile"] = "Dockerfile"
    notes = []
    if build.args:
        args = {}
        for key, value in build.args.items():
            if _BASE_IMAGE.match(value):
                args[key] = placeholder("base_image")
                notes.append(f"{key} was {value}; {{base_image}} also builds where no "
                             "registry answers")  # fmt: skip
            else:
                args[key] = value
        spec["args"] = args
    body.add("build", spec, notes[0] if notes else "")
    dockerfile = build.context / build.dockerfile
    try:
        uses_wheelhouse = "wheelhouse" in dockerfile.read_text(errors="replace")
    except OSError:
        uses_wheelhouse = False
    if uses_wheelhouse:
        body.add(None, None, "", "TODO: the Dockerfile installs from wheelhouse/: list the "
                 "requirements under build.wheelhouse and tradechaos builds them")  # fmt: skip


def postgres(unit: Unit, body: Block, jobs: list[Job], generated: bool, out_dir: Path) -> None:
    """A PostgreSQL service as ``builtin: postgres``: its database and its schema."""
    svc = unit.compose
    body.add("builtin", "postgres", "" if generated else f"compose: {svc.image}")
    database = svc.environment.get("POSTGRES_DB") or svc.environment.get("POSTGRES_USER")
    schema: Path | None = None
    for owner_svc, argv in jobs:  # a generated file's setup
        items = list(argv)
        if "--database" in items[:-1]:
            database = items[items.index("--database") + 1]
        if "--schema" in items[:-1]:
            schema = _host_path(owner_svc, items[items.index("--schema") + 1])
    sql = [v for v in svc.volumes if v.bind and v.target.startswith(_INITDB)]
    files = [Path(v.source) for v in sql if v.source and v.source.endswith(".sql")]
    folders = [Path(v.source) for v in sql if v.source and Path(v.source).is_dir()]
    files += [f for d in folders for f in sorted(d.glob("*.sql"))]
    if schema is None and len(files) == 1:
        schema = files[0]
    database = database or "postgres"
    if _DATABASE.match(database):
        unit.database = database
        body.add("database", database)
    else:
        unit.database = "postgres"
        body.add(None, None, "", f"TODO: database {database!r} is not a name the builtin "
                 "postgres can create (lowercase letters, digits, _)")  # fmt: skip
    if schema is not None:
        body.add("schema", _relative(schema, out_dir),
                 f"compose: in {_INITDB}" if not generated else "")  # fmt: skip
    elif len(files) > 1 or any(v.source and not v.source.endswith(".sql") for v in sql):
        body.add(None, None, "", f"TODO: compose initialises the database from several "
                 f"files in {_INITDB}; the builtin takes one schema: (SQL)")  # fmt: skip
    if svc.environment.get("POSTGRES_PASSWORD"):
        body.add(None, None, "", "the builtin postgres takes user postgres without a "
                 "password (on 127.0.0.1 only)")  # fmt: skip


def venues(unit: Unit, body: Block, options: Block, generated: bool) -> list[dict[str, Any]] | None:
    """A stand-in for exchanges (or a generated file's venues) as ``builtin: venues``;
    the markets a generated file's venues serve (None: not known)."""
    svc = unit.compose
    argv = list(svc.argv)
    note = "" if generated else f"compose: {' '.join(argv[:4])} (--venues)"
    body.add("builtin", "venues", note)
    shapes = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--venue-shape"]
    markets: list[dict[str, Any]] | None = None
    if "--markets" in argv[:-1]:
        try:
            markets = json.loads(argv[argv.index("--markets") + 1])
        except ValueError:
            markets = None
    if shapes:
        body.add("venues", [_shape_entry(s) for s in shapes])
        return markets
    count = argv[argv.index("--venues") + 1] if "--venues" in argv[:-1] else "3"
    default = int(count) if count.isdigit() else 3
    options.add("venues", {"type": "int", "default": default, "min": 1, "max": 20,
                           "help": "how many simulated venues"})  # fmt: skip
    body.add("count", placeholder("option", "venues"))
    if not generated:
        body.add(None, None, "", "tradechaos's venues serve the world's price path, where "
                 "data faults happen; instead of count, venues: [{shape: binance}, {shape: "
                 "kraken}] speaks real exchanges' APIs (docs/stack-file.md)")  # fmt: skip
    return markets


def _host_path(svc: ComposeService, container_path: str) -> Path | None:
    """The host path a container path of ``svc`` is mounted from (None: not mounted)."""
    for volume in svc.volumes:
        if (
            volume.bind
            and volume.source
            and (container_path == volume.target or container_path.startswith(volume.target + "/"))
        ):
            return Path(volume.source) / container_path[len(volume.target) :].lstrip("/")
    return None


def _shape_entry(text: str) -> dict[str, Any]:
    shape, _, pairs = text.partition(":")
    symbols = dict(p.split("=", 1) for p in pairs.split(",") if "=" in p)
    return {"shape": shape, **({"symbols": symbols} if symbols else {})}
