"""Toxic validation and behaviour, on a fake pipe (no sockets)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from chaos.proxy import addresses
from chaos.proxy.addresses import AddressError
from chaos.proxy.body import BodyError, JsonObject, decode, float32
from chaos.proxy.server import ApiError, upstream_address
from chaos.proxy.toxic_input import (
    InvalidStream,
    ToxicExists,
    ToxicInputError,
    UnknownToxicType,
    parse_attributes,
    parse_toxic,
    parse_update,
)
from chaos.proxy.toxics import Toxic

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


def body(payload: object) -> object:
    return decode(json.dumps(payload).encode())


def make(type_name: str, **attributes: int) -> Toxic:
    toxic = parse_toxic(body({"type": type_name, "attributes": attributes}), ())
    toxic.removed = asyncio.get_running_loop().create_future()
    return toxic


def test_defaults_follow_toxiproxy() -> None:
    toxic = parse_toxic(body({"type": "latency", "attributes": {"latency": 100}}), ())
    assert toxic.to_json() == {
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1,
        "attributes": {"latency": 100, "jitter": 0},
    }
    nulls = body({"type": "latency", "stream": None, "name": None, "toxicity": None})
    assert parse_toxic(nulls, ()).to_json() == {
        **toxic.to_json(),
        "attributes": {"latency": 0, "jitter": 0},
    }


def test_stream_case_and_key_case_as_toxiproxy_reads_them() -> None:
    raw = b'{"Type": "latency", "STREAM": "UpStream", "toxicity": 0.3, "Toxicity": 0.1234567891}'
    toxic = parse_toxic(decode(raw), ())
    assert (toxic.stream, toxic.direction, toxic.name) == ("UpStream", 0, "latency_UpStream")
    assert toxic.toxicity == 0.12345679  # the last matching key, rounded to float32


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"type": "nope"}, UnknownToxicType),
        ({}, UnknownToxicType),
        ({"type": "latency", "stream": "both"}, InvalidStream),
        ({"type": "latency", "stream": ""}, InvalidStream),
        ({"type": "nope", "stream": "both"}, InvalidStream),  # the stream is checked first
        ({"type": "latency", "name": "taken"}, ToxicExists),
        ({"type": "bandwidth", "attributes": {"rate": -1}}, ToxicInputError),
        ({"type": "slicer", "attributes": {"average_size": -1}}, ToxicInputError),
        ({"type": "latency", "attributes": {"latency": 1.0}}, BodyError),
        ({"type": "latency", "attributes": {"latency": True}}, BodyError),
        ({"type": "latency", "attributes": {"latency": 1 << 63}}, BodyError),
        ({"type": "latency", "attributes": []}, BodyError),
        ({"type": "latency", "toxicity": "all"}, BodyError),
        ({"type": "nope", "toxicity": "all"}, BodyError),  # field types come before the type
        ({"type": "latency", "toxicity": 1e39}, BodyError),
        ([], BodyError),
    ],
)
def test_invalid_toxics_are_rejected(payload: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_toxic(body(payload), {"taken"})


def test_negative_attributes_and_any_toxicity_are_accepted_as_toxiproxy_accepts_them() -> None:
    toxic = parse_toxic(
        body({"type": "latency", "toxicity": -2, "attributes": {"latency": -5}}), ()
    )
    assert toxic.toxicity == -2.0 and toxic.attributes == {"latency": -5, "jitter": 0}


def test_update_keeps_unspecified_attributes_and_refuses_another_stream() -> None:
    base = parse_attributes("slicer", JsonObject([("average_size", 10), ("delay", 3)]))
    assert parse_attributes("slicer", JsonObject([("DELAY", 7)]), base) == {
        "average_size": 10,
        "size_variation": 0,
        "delay": 7,
    }
    toxic = make_sync("latency", latency=5)
    assert parse_update(toxic, body({"toxicity": None, "attributes": None})) == (
        1.0,
        toxic.attributes,
    )
    assert parse_update(toxic, body({"stream": "DOWNSTREAM", "toxicity": 0.5}))[0] == 0.5
    with pytest.raises(ToxicInputError, match="cannot change"):
        parse_update(toxic, body({"stream": "upstream"}))


def make_sync(type_name: str, **attributes: int) -> Toxic:
    return parse_toxic(body({"type": type_name, "attributes": attributes}), ())


def test_bodies_are_read_as_go_reads_them() -> None:
    assert decode(b'  {"a": 1} trailing') is not None
    for raw, fragment in (
        (b"", "EOF"),
        (b"  \n", "EOF"),
        (b'{"a": NaN}', "NaN"),
        (b"{x", "Expecting"),
    ):
        with pytest.raises(BodyError, match=fragment):
            decode(raw)
    obj = decode(b'{"name": "a", "NAME": "b", "other": 1}')
    assert isinstance(obj, JsonObject) and obj.field("Name") == "b"
    assert float32(0.1) == 0.1 and float32(1 / 3) == 0.33333334


def test_addresses() -> None:
    assert addresses.parse("127.0.0.1:80") == addresses.Address("127.0.0.1", 80)
    assert addresses.resolve("localhost:0") == addresses.Address("127.0.0.1", 0)
    assert addresses.parse("[::1]:9") == addresses.Address("::1", 9)
    assert str(addresses.Address("::", 9)) == "[::]:9"
    assert addresses.parse(":7") == addresses.Address("", 7)
    for bad, text in (
        ("local373", "address local373: missing port in address"),
        ("h:99999", "address 99999: invalid port"),
        ("1:2:3", "address 1:2:3: too many colons in address"),
        ("[::1", "address [::1: missing ']' in address"),
        ("h:nosuchservice", "address tcp/nosuchservice: unknown port"),
    ):
        with pytest.raises(AddressError) as caught:
            addresses.parse(bad)
        assert str(caught.value) == text
    assert upstream_address("localhost:80") == ("127.0.0.1", 80)
    for bad in ("nohost", "h:99999", "127.0.0.1:0"):
        with pytest.raises(ApiError):
            upstream_address(bad)
    assert addresses.is_loopback("127.0.0.2") and addresses.is_loopback("::1")
    assert not addresses.is_loopback("10.0.0.1") and not addresses.is_loopback("db.example.com")


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


def test_bandwidth_rate_zero_holds_until_removed() -> None:
    async def scenario() -> tuple[list[bytes], bytes]:
        pipe = FakePipe()
        toxic = make("bandwidth", rate=0)
        task = asyncio.create_task(toxic.on_data(pipe, b"held", time.monotonic(), pipe.emit))
        await asyncio.sleep(0.05)
        before = [d for d, _ in pipe.emitted]
        toxic.mark_removed()
        await asyncio.wait_for(task, 1)
        return before, pipe.data()

    assert run(scenario()) == ([], b"held")


def test_noop_is_passive() -> None:
    toxic = make_sync("noop")
    assert toxic.passive and toxic.attributes == {} and not make_sync("latency").passive
