"""Toxic definitions: validation of API input, JSON shape, and what each toxic does to data.

A ``Toxic`` is one named fault attached to one stream of one proxy. Its effect on a
connection is decided per connection with ``random() < toxicity`` and then applied live, chunk
by chunk, by the link (``chaos.proxy.link``) through the ``Stage`` protocol below: a toxic
receives a chunk and an ``emit`` continuation (the rest of the chain) and decides when and
how much of the chunk to pass on. Every wait is cut short when the toxic is removed, so a
removed toxic releases held data at once.

JSON shape (Toxiproxy 2.x): ``{"name", "type", "stream", "toxicity", "attributes": {...}}``;
attributes are non-negative integers, each defaulting to 0.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

STREAMS = ("upstream", "downstream")

#: Attribute names of each toxic type, in the order Toxiproxy reports them.
TOXIC_TYPES: dict[str, tuple[str, ...]] = {
    "latency": ("latency", "jitter"),
    "bandwidth": ("rate",),
    "slow_close": ("delay",),
    "timeout": ("timeout",),
    "reset_peer": ("timeout",),
    "slicer": ("average_size", "size_variation", "delay"),
    "limit_data": ("bytes",),
}


class ToxicInputError(ValueError):
    """API input for a toxic is invalid; ``str(err)`` is the sentence for the error body."""


Emit = Callable[[bytes, float], Awaitable[None]]


class Pipe(Protocol):
    """What a toxic may do to the one-direction pipe of a connection it applies to."""

    def state(self, toxic: Toxic) -> dict[str, float]:
        """Per-connection mutable state of ``toxic`` (empty at first)."""
        ...

    def close_link(self, toxic: Toxic) -> None:
        """Close the whole connection (both sides) gracefully, after flushing what was sent."""
        ...

    def reset_link(self, toxic: Toxic) -> None:
        """Close the whole connection with TCP RST on both sides."""
        ...

    @property
    def opened_at(self) -> float:
        """Monotonic time the connection was accepted."""
        ...


@dataclass(eq=False)
class Toxic:
    """One toxic on one proxy. ``removed`` completes when it is removed or replaced."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, int]
    added_at: float = field(default_factory=time.monotonic)
    times_applied: int = 0
    removed: asyncio.Future[None] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
        }

    def mark_removed(self) -> None:
        if self.removed is not None and not self.removed.done():
            self.removed.set_result(None)

    def is_removed(self) -> bool:
        return self.removed is not None and self.removed.done()

    async def wait_removed(self, timeout_s: float | None) -> bool:
        """Wait up to ``timeout_s`` (None: forever); True when the toxic was removed."""
        if self.removed is None:
            self.removed = asyncio.get_running_loop().create_future()
        if self.removed.done():
            return True
        if timeout_s is not None and timeout_s <= 0:
            return False
        done, _ = await asyncio.wait((self.removed,), timeout=timeout_s)
        return bool(done)

    # -- behaviour -------------------------------------------------------------------------

    async def on_data(self, pipe: Pipe, chunk: bytes, ts: float, emit: Emit) -> None:
        """Apply this toxic to ``chunk`` (arrived at monotonic ``ts``) and pass on the result."""
        handler = _DATA_HANDLERS.get(self.type)
        if handler is None:
            await emit(chunk, ts)
        else:
            await handler(self, pipe, chunk, ts, emit)

    async def on_eof(self, pipe: Pipe) -> None:
        """Called before the end of this stream is passed on; may delay it."""
        if self.type == "slow_close" and self.attributes["delay"] > 0:
            self.times_applied += 1
            await self.wait_removed(self.attributes["delay"] / 1000.0)

    def timer_s(self) -> float | None:
        """Seconds after which this toxic closes a connection it applies to, if it does."""
        if self.type == "timeout" and self.attributes["timeout"] > 0:
            return self.attributes["timeout"] / 1000.0
        return None


async def _latency(toxic: Toxic, pipe: Pipe, chunk: bytes, ts: float, emit: Emit) -> None:
    delay_ms = float(toxic.attributes["latency"])
    jitter = toxic.attributes["jitter"]
    if jitter > 0:
        delay_ms += random.uniform(-jitter, jitter)
    due = ts + max(delay_ms, 0.0) / 1000.0
    toxic.times_applied += 1
    if not await toxic.wait_removed(due - time.monotonic()):
        ts = due
    await emit(chunk, ts)


async def _bandwidth(toxic: Toxic, pipe: Pipe, chunk: bytes, ts: float, emit: Emit) -> None:
    rate = toxic.attributes["rate"] * 1000  # bytes per second (Toxiproxy's KB is 1000 bytes)
    if rate <= 0:
        await emit(chunk, ts)
        return
    toxic.times_applied += 1
    clock = pipe.state(toxic)
    step = max(rate // 10, 1)  # at most 100 ms worth of data per write
    view = memoryview(chunk)
    for start in range(0, len(chunk), step):
        piece = bytes(view[start : start + step])
        now = time.monotonic()
        due = max(clock.get("next", now), now - 0.05) + len(piece) / rate
        clock["next"] = due
        if await toxic.wait_removed(due - now):
            await emit(bytes(view[start:]), ts)
            return
        await emit(piece, ts)


async def _timeout(toxic: Toxic, pipe: Pipe, chunk: bytes, ts: float, emit: Emit) -> None:
    # Hold the data until the toxic is removed; with timeout > 0 the link's timer closes the
    # connection first (and the held data is discarded with it).
    toxic.times_applied += 1
    await toxic.wait_removed(None)
    await emit(chunk, ts)


async def _reset_peer(toxic: Toxic, pipe: Pipe, chunk: bytes, ts: float, emit: Emit) -> None:
    due = max(pipe.opened_at, toxic.added_at) + toxic.attributes["timeout"] / 1000.0
    if ts >= due or time.monotonic() >= due:
        toxic.times_applied += 1
        pipe.reset_link(toxic)
        return
    await emit(chunk, ts)


async def _slicer(toxic: Toxic, pipe: Pipe, chunk: bytes, ts: float, emit: Emit) -> None:
    average = toxic.attributes["average_size"]
    if average <= 0:
        await emit(chunk, ts)
        return
    toxic.times_applied += 1
    variation = min(toxic.attributes["size_variation"], average - 1)
    delay_s = toxic.attributes["delay"] / 1_000_000.0
    view = memoryview(chunk)
    start = 0
    while start < len(chunk):
        size = average + (random.randint(-variation, variation) if variation > 0 else 0)
        piece = bytes(view[start : start + size])
        start += len(piece)
        await emit(piece, ts)
        if start < len(chunk) and delay_s > 0 and await toxic.wait_removed(delay_s):
            await emit(bytes(view[start:]), ts)
            return


async def _limit_data(toxic: Toxic, pipe: Pipe, chunk: bytes, ts: float, emit: Emit) -> None:
    state = pipe.state(toxic)
    sent = int(state.get("sent", 0))
    remaining = toxic.attributes["bytes"] - sent
    if remaining > 0:
        piece = chunk[:remaining]
        state["sent"] = sent + len(piece)
        await emit(piece, ts)
        remaining -= len(piece)
    if remaining <= 0:
        toxic.times_applied += 1
        pipe.close_link(toxic)


_DATA_HANDLERS: dict[str, Callable[[Toxic, Pipe, bytes, float, Emit], Awaitable[None]]] = {
    "latency": _latency,
    "bandwidth": _bandwidth,
    "timeout": _timeout,
    "reset_peer": _reset_peer,
    "slicer": _slicer,
    "limit_data": _limit_data,
}


# -- API input ---------------------------------------------------------------------------------


def _attribute(type_name: str, key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ToxicInputError(f"{type_name} attribute {key!r} must be a number, not {value!r}")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise ToxicInputError(f"{type_name} attribute {key!r} must be a whole number")
    if value < 0:
        raise ToxicInputError(f"{type_name} attribute {key!r} must not be negative")
    return int(value)


def parse_attributes(
    type_name: str, given: object, base: Mapping[str, int] | None = None
) -> dict[str, int]:
    """Validated attributes of ``type_name``: ``base`` (or zeros) updated with ``given``."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ToxicInputError("attributes must be a JSON object")
    names = TOXIC_TYPES[type_name]
    result = {name: 0 for name in names} if base is None else dict(base)
    for key, value in given.items():
        if key in names:
            result[key] = _attribute(type_name, key, value)
    return result


def parse_toxicity(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ToxicInputError(f"toxicity must be a number between 0 and 1, not {value!r}")
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ToxicInputError(f"toxicity must be between 0 and 1, not {value}")
    return float(value)


class UnknownToxicType(ToxicInputError):
    pass


class InvalidStream(ToxicInputError):
    pass


def parse_toxic(body: object) -> Toxic:
    """A new ``Toxic`` from a ``POST /proxies/{name}/toxics`` body, with Toxiproxy's defaults."""
    if not isinstance(body, dict):
        raise ToxicInputError("bad request body: a toxic must be a JSON object")
    type_name = body.get("type")
    stream = body.get("stream", "downstream")
    if stream not in STREAMS:
        raise InvalidStream("stream was invalid, can be either upstream or downstream")
    assert isinstance(stream, str)
    if not isinstance(type_name, str) or type_name not in TOXIC_TYPES:
        known = ", ".join(TOXIC_TYPES)
        raise UnknownToxicType(f"invalid toxic type {type_name!r} (known: {known})")
    name = body.get("name") or f"{type_name}_{stream}"
    if not isinstance(name, str):
        raise ToxicInputError("toxic name must be a string")
    toxicity = parse_toxicity(body.get("toxicity", 1.0))
    attributes = parse_attributes(type_name, body.get("attributes"))
    return Toxic(name, type_name, stream, toxicity, attributes)
