"""Toxic validation and behaviour, on a fake pipe (no sockets)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from chaos.proxy.server import ApiError, is_loopback, parse_address
from chaos.proxy.toxics import (
    InvalidStream,
    Toxic,
    ToxicInputError,
    UnknownToxicType,
    parse_attributes,
    parse_toxic,
)

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class FakePipe:
    def __init__(self, opened_at: float | None = None) -> None:
        self.opened_at = time.monotonic() if opened_at is None else opened_at
        self.states: dict[Toxic, dict[str, float]] = {}
        self.closed = False
        self.reset = False
        self.emitted: list[tuple[bytes, float]] = []  # (data, monotonic time of emission)

    def state(self, toxic: Toxic) -> dict[str, float]:
        return self.states.setdefault(toxic, {})

    def close_link(self, toxic: Toxic) -> None:
        self.closed = True

    def reset_link(self, toxic: Toxic) -> None:
        self.reset = True

    async def emit(self, data: bytes, ts: float) -> None:
        self.emitted.append((data, time.monotonic()))

    def data(self) -> bytes:
        return b"".join(d for d, _ in self.emitted)


def make(type_name: str, **attributes: int) -> Toxic:
    toxic = parse_toxic({"type": type_name, "attributes": attributes})
    toxic.removed = asyncio.get_running_loop().create_future()
    return toxic


def test_defaults_follow_toxiproxy() -> None:
    toxic = parse_toxic({"type": "latency", "attributes": {"latency": 100}})
    assert toxic.to_json() == {
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": {"latency": 100, "jitter": 0},
    }


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"type": "nope"}, UnknownToxicType),
        ({}, UnknownToxicType),
        ({"type": "latency", "stream": "both"}, InvalidStream),
        ({"type": "latency", "attributes": {"latency": -1}}, ToxicInputError),
        ({"type": "latency", "attributes": {"latency": 1.5}}, ToxicInputError),
        ({"type": "latency", "attributes": {"latency": True}}, ToxicInputError),
        ({"type": "latency", "attributes": []}, ToxicInputError),
        ({"type": "latency", "toxicity": -0.1}, ToxicInputError),
        ({"type": "latency", "toxicity": "all"}, ToxicInputError),
        ([], ToxicInputError),
    ],
)
def test_invalid_toxics_are_rejected(body: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_toxic(body)


def test_update_keeps_unspecified_attributes() -> None:
    base = parse_attributes("slicer", {"average_size": 10, "delay": 3})
    assert parse_attributes("slicer", {"delay": 7}, base) == {
        "average_size": 10,
        "size_variation": 0,
        "delay": 7,
    }


def test_addresses() -> None:
    assert parse_address("127.0.0.1:80", "upstream", port_zero=False) == ("127.0.0.1", 80)
    assert parse_address("localhost:0", "listen", port_zero=True) == ("127.0.0.1", 0)
    assert parse_address("[::1]:9", "listen", port_zero=True) == ("::1", 9)
    for bad in ("nohost", ":80", "h:99999", "h:x"):
        with pytest.raises(ApiError):
            parse_address(bad, "upstream", port_zero=False)
    with pytest.raises(ApiError):
        parse_address("127.0.0.1:0", "upstream", port_zero=False)
    assert is_loopback("127.0.0.2") and is_loopback("::1")
    assert not is_loopback("10.0.0.1") and not is_loopback("db.example.com")


def test_latency_delays_from_arrival_and_removal_releases() -> None:
    async def scenario() -> tuple[float, float]:
        pipe = FakePipe()
        toxic = make("latency", latency=80)
        arrived = time.monotonic()
        await toxic.on_data(pipe, b"a", arrived, pipe.emit)
        delayed = pipe.emitted[0][1] - arrived
        task = asyncio.create_task(toxic.on_data(pipe, b"b", time.monotonic(), pipe.emit))
        await asyncio.sleep(0.01)
        removed_at = time.monotonic()
        toxic.mark_removed()
        await task
        return delayed, pipe.emitted[1][1] - removed_at

    delayed, after_removal = run(scenario())
    assert 0.075 <= delayed <= 0.2
    assert after_removal < 0.03


def test_timeout_holds_until_removed() -> None:
    async def scenario() -> tuple[list[bytes], list[bytes]]:
        pipe = FakePipe()
        toxic = make("timeout", timeout=0)
        task = asyncio.create_task(toxic.on_data(pipe, b"held", time.monotonic(), pipe.emit))
        await asyncio.sleep(0.05)
        before = [d for d, _ in pipe.emitted]
        toxic.mark_removed()
        await asyncio.wait_for(task, 1)
        return before, [d for d, _ in pipe.emitted]

    before, after = run(scenario())
    assert before == [] and after == [b"held"]


def test_slicer_pieces_within_variation_and_complete() -> None:
    async def scenario() -> FakePipe:
        random.seed(3)
        pipe = FakePipe()
        toxic = make("slicer", average_size=50, size_variation=10, delay=0)
        await toxic.on_data(pipe, bytes(range(256)) * 8, 0.0, pipe.emit)
        return pipe

    pipe = run(scenario())
    sizes = [len(d) for d, _ in pipe.emitted]
    assert pipe.data() == bytes(range(256)) * 8
    assert all(40 <= s <= 60 for s in sizes[:-1]), sizes
    assert len(sizes) >= 2048 // 60


def test_limit_data_counts_across_chunks_then_closes() -> None:
    async def scenario() -> FakePipe:
        pipe = FakePipe()
        toxic = make("limit_data", bytes=25)
        for _ in range(3):
            if not pipe.closed:
                await toxic.on_data(pipe, b"0123456789", 0.0, pipe.emit)
        return pipe

    pipe = run(scenario())
    assert pipe.data() == b"0123456789012345678901234"
    assert pipe.closed


def test_reset_peer_passes_data_before_its_deadline_only() -> None:
    async def scenario() -> tuple[FakePipe, FakePipe]:
        early = FakePipe()
        toxic = make("reset_peer", timeout=10_000)
        await toxic.on_data(early, b"req", time.monotonic(), early.emit)
        late = FakePipe(opened_at=time.monotonic() - 20)
        toxic.added_at = time.monotonic() - 20
        await toxic.on_data(late, b"reply", time.monotonic(), late.emit)
        return early, late

    early, late = run(scenario())
    assert early.data() == b"req" and not early.reset
    assert late.data() == b"" and late.reset


def test_bandwidth_paces_to_its_rate() -> None:
    async def scenario() -> tuple[float, bytes]:
        pipe = FakePipe()
        toxic = make("bandwidth", rate=100)  # 100 KB/s
        started = time.monotonic()
        await toxic.on_data(pipe, b"z" * 30_000, started, pipe.emit)
        return time.monotonic() - started, pipe.data()

    elapsed, data = run(scenario())
    assert data == b"z" * 30_000
    assert 0.2 <= elapsed <= 0.4, elapsed  # 0.3 s at 100 KB/s (minus a 50 ms burst credit)


def test_slow_close_delays_the_end_of_stream() -> None:
    async def scenario() -> float:
        toxic = make("slow_close", delay=60)
        started = time.monotonic()
        await toxic.on_eof(FakePipe())
        return time.monotonic() - started

    assert 0.055 <= run(scenario()) <= 0.3
