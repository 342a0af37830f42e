"""One proxied TCP connection: client socket <-> upstream socket, two one-way pipes.

Contract:
- With no toxic on a stream, bytes are written straight to the other socket from the read
  callback (no task, no copy: sockets read into one shared buffer, replaced whenever a
  transport keeps a view of it); socket backpressure pauses the reading side.
- With toxics, chunks are queued in arrival order and one worker task per pipe passes each
  through the toxics present *at that moment* (looked up per chunk), so adding or removing a
  toxic affects open connections at once. The queue is bounded: above ``QUEUE_HIGH`` bytes
  the reading side is paused.
- The end of a stream is forwarded as a half-close (after the queued data and any
  ``slow_close`` delay); when both streams have ended, or either socket fails, or a toxic or
  the proxy ends the link, both sockets are closed and the link leaves its proxy.
- Toxicity is decided once per (connection, toxic) when the toxic first meets the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import time
from collections import deque
from typing import TYPE_CHECKING, Protocol, cast

from chaos.proxy.toxics import Toxic

if TYPE_CHECKING:
    from collections.abc import Sequence

CONNECT_TIMEOUT_S = 5.0
CLOSE_GRACE_S = 10.0
QUEUE_HIGH = 1 << 20
QUEUE_LOW = 1 << 18
WRITE_HIGH = 1 << 20
READ_SIZE = 1024 * 1024

_CONNECTING = 1
_DST_FULL = 2
_QUEUE_FULL = 4

UPSTREAM = 0
DOWNSTREAM = 1


class LinkOwner(Protocol):
    """What a link needs from its proxy (``chaos.proxy.server.Proxy``)."""

    name: str
    upstream_addr: tuple[str, int]
    chains: list[Sequence[Toxic]]  # [UPSTREAM], [DOWNSTREAM]: the live toxic lists
    byte_counts: list[int]  # [UPSTREAM], [DOWNSTREAM]

    def link_opened(self, link: Link) -> None: ...
    def link_closed(self, link: Link, *, refused: bool, reset: bool) -> None: ...


class _ReadBuffer:
    """One receive buffer shared by every socket of the process.

    Safe because each read is handed on before the next read starts (the event loop calls
    ``get_buffer``, reads, then ``buffer_updated`` for one socket at a time). A transport that
    keeps a view of the buffer (its write could not complete) makes us start a new one.
    """

    view = memoryview(bytearray(READ_SIZE))

    @classmethod
    def given_away(cls) -> None:
        cls.view = memoryview(bytearray(READ_SIZE))


class _Side(asyncio.BufferedProtocol):
    """One socket of a link; reads feed ``reader`` (the pipe that starts at this socket)."""

    __slots__ = ("link", "paused", "reader", "transport", "writer_pipe")

    def __init__(self, link: Link) -> None:
        self.link = link
        self.transport: asyncio.Transport | None = None
        self.paused = 0
        self.reader: _Pipe
        self.writer_pipe: _Pipe  # the pipe that ends at this socket

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        if self.link.closed:
            transport.abort()
            return
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH)
        if self is self.link.client:
            self.link.accepted()

    def get_buffer(self, sizehint: int) -> memoryview:
        return _ReadBuffer.view

    def buffer_updated(self, nbytes: int) -> None:
        self.reader.feed_view(_ReadBuffer.view[:nbytes])

    def eof_received(self) -> bool:
        self.reader.feed_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.link.side_lost(exc)

    def pause_writing(self) -> None:
        self.writer_pipe.src.pause(_DST_FULL)

    def resume_writing(self) -> None:
        self.writer_pipe.src.resume(_DST_FULL)

    def pause(self, reason: int) -> None:
        # Always asked again: uvloop ignores a pause made inside connection_made.
        if self.transport is not None:
            with contextlib.suppress(RuntimeError):
                self.transport.pause_reading()
        self.paused |= reason

    def resume(self, reason: int) -> None:
        if self.paused & reason:
            self.paused &= ~reason
            if not self.paused and self.transport is not None:
                with contextlib.suppress(RuntimeError):
                    self.transport.resume_reading()


class _Pipe:
    """One direction of a link: from ``src`` socket to ``dst`` socket, on stream ``index``."""

    __slots__ = ("dst", "eof_sent", "index", "link", "queue", "queued", "src", "worker")

    def __init__(self, link: Link, index: int, src: _Side, dst: _Side) -> None:
        self.link = link
        self.index = index
        self.src = src
        self.dst = dst
        self.queue: deque[tuple[bytes, float] | None] = deque()
        self.queued = 0
        self.worker: asyncio.Task[None] | None = None
        self.eof_sent = False
        src.reader = self
        dst.writer_pipe = self

    # -- Pipe protocol for toxics -----------------------------------------------------------

    @property
    def opened_at(self) -> float:
        return self.link.opened_at

    def state(self, toxic: Toxic) -> dict[str, float]:
        return self.link.states.setdefault(toxic, {})

    def close_link(self, toxic: Toxic) -> None:
        self.link.close(graceful=True)

    def reset_link(self, toxic: Toxic) -> None:
        self.link.reset()

    # -- data path -------------------------------------------------------------------------

    def _direct(self) -> bool:
        """True when data may bypass the queue: nothing queued and no toxic applies."""
        if self.worker is not None or self.queue:
            return False
        chain = self.link.owner.chains[self.index]
        return not chain or not any(not t.passive and self.link.applies(t) for t in chain)

    def feed_view(self, view: memoryview) -> None:
        """Forward a view of the shared read buffer (copied only when it must be kept)."""
        if self._direct():
            transport = self.dst.transport
            if transport is not None:
                transport.write(view)
                if transport.get_write_buffer_size():
                    _ReadBuffer.given_away()
                self.link.owner.byte_counts[self.index] += len(view)
                return
        self.feed(bytes(view))

    def feed(self, data: bytes) -> None:
        if self._direct():
            transport = self.dst.transport
            if transport is not None:
                transport.write(data)
                self.link.owner.byte_counts[self.index] += len(data)
                return
        self.queue.append((data, time.monotonic()))
        self.queued += len(data)
        if self.queued > QUEUE_HIGH:
            self.src.pause(_QUEUE_FULL)
        self.kick()

    def feed_eof(self) -> None:
        if self._direct() and self.dst.transport is not None:
            self._write_eof()
            return
        self.queue.append(None)
        self.kick()

    def kick(self) -> None:
        """Start the worker when data is queued and the other socket is connected."""
        if self.worker is None and self.queue and self.link.connected:
            self.worker = asyncio.get_running_loop().create_task(self._run())

    def _write(self, data: bytes, ts: float = 0.0) -> None:
        transport = self.dst.transport
        if transport is not None and not self.link.closed:
            transport.write(data)
            self.link.owner.byte_counts[self.index] += len(data)

    async def _emit_from(self, toxics: list[Toxic], i: int, data: bytes, ts: float) -> None:
        while i < len(toxics) and toxics[i].is_removed():
            i += 1
        if i == len(toxics):
            self._write(data)
            return
        if self.link.closed:
            return

        async def rest(piece: bytes, piece_ts: float) -> None:
            await self._emit_from(toxics, i + 1, piece, piece_ts)

        await toxics[i].on_data(self, data, ts, rest)

    async def _run(self) -> None:
        try:
            while self.queue and not self.link.closed:
                item = self.queue.popleft()
                if item is None:
                    for toxic in self.link.applying(self.index):
                        await toxic.on_eof(self)
                    self._write_eof()
                    return
                data, ts = item
                self.queued -= len(data)
                if self.queued <= QUEUE_LOW:
                    self.src.resume(_QUEUE_FULL)
                toxics = self.link.applying(self.index)
                if toxics:
                    await self._emit_from(toxics, 0, data, ts)
                else:
                    self._write(data)
        except (OSError, RuntimeError):  # a socket failed under us: end the link, not the loop
            self.link.close(graceful=False)
        finally:
            self.worker = None

    def _write_eof(self) -> None:
        self.eof_sent = True
        transport = self.dst.transport
        if transport is not None and transport.can_write_eof() and not transport.is_closing():
            with contextlib.suppress(OSError, RuntimeError):
                transport.write_eof()
        self.link.stream_ended()

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
        self.queue.clear()
        self.queued = 0


class Link:
    """A proxied connection. Created per accepted client socket; owns both sockets."""

    def __init__(self, owner: LinkOwner) -> None:
        self.owner = owner
        self.opened_at = time.monotonic()
        self.closed = False
        self.connected = False
        self.client = _Side(self)
        self.upstream = _Side(self)
        self.pipes = (
            _Pipe(self, UPSTREAM, self.client, self.upstream),
            _Pipe(self, DOWNSTREAM, self.upstream, self.client),
        )
        self.decisions: dict[Toxic, bool] = {}
        self.states: dict[Toxic, dict[str, float]] = {}
        self.timers: dict[Toxic, asyncio.TimerHandle] = {}
        self._connect: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def accepted(self) -> None:
        """The client socket is up: count the link, hold client data, connect upstream."""
        self.client.pause(_CONNECTING)
        self.owner.link_opened(self)
        if self.closed:
            return
        for chain in self.owner.chains:
            for toxic in chain:
                self.toxic_added(toxic)
        self._connect = asyncio.get_running_loop().create_task(self._connect_upstream())

    async def _connect_upstream(self) -> None:
        host, port = self.owner.upstream_addr
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: self.upstream, host, port),
                CONNECT_TIMEOUT_S,
            )
        except (OSError, TimeoutError):
            self.close(graceful=False, refused=True)
            return
        finally:
            self._connect = None
        if self.closed:
            if self.upstream.transport is not None:
                self.upstream.transport.abort()
            return
        self.connected = True
        self.client.resume(_CONNECTING)
        for pipe in self.pipes:
            pipe.kick()

    def stream_ended(self) -> None:
        if all(pipe.eof_sent for pipe in self.pipes):
            self.close(graceful=True)

    def side_lost(self, exc: Exception | None) -> None:
        self.close(graceful=exc is None)

    def close(self, *, graceful: bool, refused: bool = False, reset: bool = False) -> None:
        """End the link: graceful flushes what was written; otherwise sockets are aborted."""
        if self.closed:
            return
        self.closed = True
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()
        if self._connect is not None:
            self._connect.cancel()
        for pipe in self.pipes:
            pipe.cancel()
        for side in (self.client, self.upstream):
            transport = side.transport
            if transport is not None:
                if graceful:
                    transport.close()
                else:
                    transport.abort()
        if graceful:
            # A peer that never reads would keep a flushing socket open forever.
            asyncio.get_running_loop().call_later(CLOSE_GRACE_S, self._abort_leftovers)
        self.owner.link_closed(self, refused=refused, reset=reset)

    def _abort_leftovers(self) -> None:
        for side in (self.client, self.upstream):
            if side.transport is not None:
                side.transport.abort()

    def reset(self) -> None:
        """End the link with TCP RST on both sockets (SO_LINGER 0, then abort)."""
        linger = struct.pack("ii", 1, 0)
        for side in (self.client, self.upstream):
            transport = side.transport
            sock = transport.get_extra_info("socket") if transport is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        self.close(graceful=False, reset=True)

    # -- toxics ----------------------------------------------------------------------------

    def applies(self, toxic: Toxic) -> bool:
        decided = self.decisions.get(toxic)
        if decided is None:
            decided = self.decisions[toxic] = random.random() < toxic.toxicity
        return decided

    def applying(self, index: int) -> list[Toxic]:
        return [t for t in self.owner.chains[index] if not t.passive and self.applies(t)]

    def toxic_added(self, toxic: Toxic) -> None:
        """A toxic now exists on the proxy: roll for it and start its timer if it has one."""
        if self.closed or not self.applies(toxic):
            return
        delay_s = toxic.timer_s()
        if delay_s is not None:
            self.timers[toxic] = asyncio.get_running_loop().call_later(
                delay_s, self._timer_fired, toxic
            )

    def toxic_removed(self, toxic: Toxic) -> None:
        handle = self.timers.pop(toxic, None)
        if handle is not None:
            handle.cancel()
        self.decisions.pop(toxic, None)
        self.states.pop(toxic, None)

    def _timer_fired(self, toxic: Toxic) -> None:
        self.timers.pop(toxic, None)
        toxic.times_applied += 1
        self.close(graceful=True)

    def client_transport(self) -> asyncio.Transport | None:
        return self.client.transport
