"""The history binding at work: the stack's records become tradechaos's History files.

``export(definition, run_dir, places)`` waits for the binding's ``settle`` conditions (each
``value`` reading at least its ``at_least``, up to ``timeout``; then exports anyway and
says so), and writes ``history/<source>.jsonl`` for every source the binding declares
(``events``, ``oracle``, ``modes``, ``chain``), each file whole and replaced atomically.
A source given as a list is merged and sorted by its ``sort`` field (default: ``seq`` for
events, ``height`` for chain, ``time`` otherwise). A ``python`` exporter is called as
``f(run_dir, endpoints)`` instead, ``endpoints`` mapping every service and link name to
``host:port``. Sources the binding lacks are not written: invariants that need them are
``unknown``, naming the binding.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from chaos.bindings import sql
from chaos.bindings.client import BindingError, send
from chaos.bindings.http import Rendered, get, parse_json
from chaos.bindings.places import Places
from chaos.files.atomic import replace_jsonl
from chaos.history.reader import SOURCES
from chaos.stackfile.bindings import HistoryBinding, HttpSource, Reading, Settle, Source
from chaos.stackfile.definition import StackDefinition

DEFAULT_SORT = {"events": "seq", "chain": "height"}
SETTLE_POLL_S = 0.1
HTTP_TIMEOUT_S = 30.0
MAX_PAGES = 100_000


def export(
    definition: StackDefinition,
    run_dir: Path,
    places: Places,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> list[str]:
    """Write the History files the binding provides; the sources written."""
    binding = definition.bindings.history
    history_dir = Path(run_dir) / "history"
    history_dir.mkdir(parents=True, exist_ok=True)
    if binding is None:
        return []
    if binding.python is not None:
        _call_python(binding.python, Path(run_dir), definition, places)
        return list(binding.provides)
    if binding.settle is not None and not settle(binding.settle, places):
        say(f"history: the stack did not settle within {binding.settle.timeout_s:g} s; "
            "exporting what it holds")  # fmt: skip
    written = []
    for name, sources in binding.sources.items():
        records = _records(name, sources, places, Path(run_dir))
        if name in ("events", "rolled_back"):
            records = _single_writer(records, definition.name)
        try:
            replace_jsonl(history_dir / SOURCES[name], records)
        except (BindingError, OSError) as err:
            say(f"history: {name} not exported (bindings.history.{name}): {err}")
            continue
        written.append(name)
    return written


def _single_writer(records: Iterable[Any], stack: str) -> Iterator[Any]:
    """Events of a stack with one writer may omit ``epoch`` and ``sequencer``: epoch 1 and
    the stack's name."""
    for record in records:
        if isinstance(record, dict):
            if record.get("epoch") is None:
                record["epoch"] = 1
            if record.get("sequencer") is None:
                record["sequencer"] = stack
        yield record


def settle(condition: Settle, places: Places) -> bool:
    """Poll until every ``value >= at_least`` (True) or the timeout passes (False)."""
    deadline = time.monotonic() + condition.timeout_s
    while True:
        try:
            if all(
                _number(read(v, places)) >= _number(read(a, places)) for v, a in condition.until
            ):
                return True
        except (BindingError, OSError, ValueError, TypeError):
            pass
        except Exception as err:  # a database error: export what there is
            print(f"history settle: {type(err).__name__}: {err}", file=sys.stderr)
            return False
        if time.monotonic() >= deadline:
            return False
        time.sleep(SETTLE_POLL_S)


def read(reading: Reading, places: Places) -> Any:
    if reading.sql is not None:
        return sql.scalar(places, reading.sql)
    assert reading.http_service and reading.http_path and reading.http_value
    rendered = Rendered("GET", reading.http_path, {}, None)
    status, text = send(places.url(reading.http_service), rendered, 2.0)
    if status != 200:
        raise BindingError(f"GET {reading.http_path}: HTTP {status}")
    return get(parse_json(text), reading.http_value)


def _number(value: Any) -> float:
    if value is None:
        return 0.0
    return float(value)


def _records(name: str, sources: Iterable[Source], places: Places, run_dir: Path) -> Iterator[Any]:
    sources = list(sources)
    if len(sources) == 1:
        yield from _one(sources[0], places, run_dir)
        return
    key = sources[0].sort or DEFAULT_SORT.get(name, "time")
    merged = [record for source in sources for record in _one(source, places, run_dir)]
    merged.sort(key=lambda r: (r.get(key) is None, r.get(key, 0)))
    yield from merged


def _one(source: Source, places: Places, run_dir: Path) -> Iterator[Any]:
    if source.sql is not None:
        yield from sql.records(places, source.sql)
    elif source.http is not None:
        yield from http_items(source.http, places)
    elif source.file is not None:
        path = source.file.path.replace("{data_dir}", str(run_dir / "data" / source.file.service))
        path = path.replace("{run_dir}", str(run_dir))
        yield from _file_lines(Path(path))


def http_items(source: HttpSource, places: Places) -> Iterator[Any]:
    """The items of an HTTP source, page by page (``page``) or in one answer."""
    base = places.url(source.service)
    cursor = source.page.start if source.page else None
    for _ in range(MAX_PAGES):
        path = source.path
        if source.page is not None:
            query = f"{source.page.param}={cursor}"
            if source.page.size_param:
                query += f"&{source.page.size_param}={source.page.size}"
            path += ("&" if "?" in path else "?") + query
        status, text = send(base, Rendered("GET", path, {}, None), HTTP_TIMEOUT_S)
        if status != 200:
            raise BindingError(f"history: GET {path} of {source.service} answered HTTP {status}")
        items = get(parse_json(text), source.items)
        if not isinstance(items, list):
            raise BindingError(f"history: GET {path} has no list at {source.items}")
        yield from items
        if source.page is None or not items:
            return
        last = items[-1].get(source.page.next) if isinstance(items[-1], dict) else None
        if not isinstance(last, int | float):
            raise BindingError(
                f"history: the last item of {path} has no number {source.page.next!r}"
            )
        cursor = int(last) + 1


def _file_lines(path: Path) -> Iterator[Any]:
    if not path.is_file():
        return
    with path.open() as handle:
        for line in handle:
            if line.endswith("\n") and line.strip():
                yield json.loads(line)


def endpoints(definition: StackDefinition, places: Places) -> dict[str, str]:
    """``host:port`` of every service and every link (for a Python exporter)."""
    found: dict[str, str] = {}
    for name in (*definition.service_names, *definition.link_names):
        try:
            found[name] = places.hostport(name)
        except Exception:
            continue
    return found


def _call_python(spec: str, run_dir: Path, definition: StackDefinition, places: Places) -> None:
    module_name, _, function_name = spec.partition(":")
    try:
        exporter = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as err:
        raise BindingError(f"history exporter {spec!r} not found: {err}") from None
    exporter(run_dir, endpoints(definition, places))


def reads(binding: HistoryBinding | None) -> dict[str, str]:
    """Every service or link the binding's sources and settle readings reach over the
    network, each with the key of the stack file that names it first (a ``file`` source is
    read from the run folder, not over the network; a ``python`` exporter is given every
    endpoint, so it names none)."""
    found: dict[str, str] = {}
    if binding is None:
        return found

    def add(name: str | None, key: str) -> None:
        if name:
            found.setdefault(name, key)

    for kind, sources in binding.sources.items():
        for i, source in enumerate(sources):
            key = f"bindings.history.{kind}" + (f"[{i}]" if len(sources) > 1 else "")
            add(source.sql.database if source.sql else None, f"{key}.sql.database")
            add(source.http.service if source.http else None, f"{key}.http.service")
    for i, pair in enumerate(binding.settle.until if binding.settle else ()):
        for reading in pair:
            key = f"bindings.history.settle.until[{i}]"
            add(reading.sql.database if reading.sql else None, f"{key}.sql.database")
            add(reading.http_service, f"{key}.http.service")
    return found


def provided(binding: HistoryBinding | None) -> tuple[str, ...]:
    return () if binding is None else binding.provides
