"""Toxic definitions: their JSON shape and what each toxic does to data.

A ``Toxic`` is one named fault attached to one stream of one proxy. Its effect on a
connection is decided per connection with ``random() < toxicity`` and then applied live, chunk
by chunk, by the link (``chaos.proxy.link``) through the ``Stage`` protocol below: a toxic
receives a chunk and an ``emit`` continuation (the rest of the chain) and decides when and
how much of the chunk to pass on. Every wait is cut short when the toxic is removed, so a
removed toxic releases held data at once.

JSON shape (Toxiproxy 2.x): ``{"name", "type", "stream", "toxicity", "attributes": {...}}``;
attributes are integers, each defaulting to 0. API input is read by ``chaos.proxy.toxic_input``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
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
    "noop": (),
}


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
    """One toxic on one proxy. ``removed`` completes when it is removed or replaced.

    ``stream`` is reported as the client wrote it (Toxiproxy reads it ignoring case);
    ``direction`` is its index in ``STREAMS``.
    """

    name: str
    type: str
    stream: str
    direction: int
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
            "toxicity": self._toxicity_json(),
        }

    def _toxicity_json(self) -> float | int:
        # Go writes a float32 without a fraction as an integer: 1, not 1.0
        whole = self.toxicity.is_integer() and abs(self.toxicity) < 1e21
        return int(self.toxicity) if whole else self.toxicity

    @property
    def passive(self) -> bool:
        """True for ``noop``: it never touches data, so the fast path stays open."""
        return self.type == "noop"

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
    toxic.times_applied += 1
    if rate <= 0:  # as Toxiproxy: nothing passes at rate 0 (until the toxic is removed)
        await toxic.wait_removed(None)
        await emit(chunk, ts)
        return
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
