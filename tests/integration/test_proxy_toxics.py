"""Each toxic's effect on real TCP traffic through a local echo server, on both servers
(``[ours]`` and ``[real]``, the real Toxiproxy 2.12.0), driven by the unmodified
toxiproxy-python package. Behaviour that differs on purpose is in
test_proxy_differences.py.
"""

from __future__ import annotations

import contextlib
import socket
import statistics
import time
from collections.abc import Callable, Iterator

import pytest
import toxiproxy
from proxy_servers import ToxiproxyServer, clean
from proxy_servers import is_real as is_real  # a fixture
from proxy_servers import toxiproxy_server as toxiproxy_server  # a fixture
from tcp_servers import BackgroundServer
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import NotFound, ProxyExists

from chaos.proxy.client import ToxiproxyClient

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def echo() -> Iterator[BackgroundServer]:
    with BackgroundServer("echo") as background:
        yield background


@pytest.fixture
def tp(toxiproxy_server: ToxiproxyServer) -> Iterator[toxiproxy.Toxiproxy]:
    api = toxiproxy.Toxiproxy()
    api.update_api_consumer("127.0.0.1", toxiproxy_server.port)
    yield api
    clean(toxiproxy_server.url)


@pytest.fixture
def client(toxiproxy_server: ToxiproxyServer) -> Iterator[ToxiproxyClient]:
    with ToxiproxyClient(toxiproxy_server.url) as api:
        yield api


def _addr(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host, int(port)


def _connect(proxy: toxiproxy.Proxy) -> socket.socket:
    sock = socket.create_connection(_addr(proxy.listen), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _round_trip_ms(sock: socket.socket, payload: bytes = b"ping") -> float:
    started = time.perf_counter()
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        assert chunk, "connection closed during a round trip"
        got += chunk
    assert got == payload
    return (time.perf_counter() - started) * 1000


def _recv_all(sock: socket.socket, limit: int = 1 << 24) -> bytes:
    data = b""
    while len(data) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _assert_dropped(sock: socket.socket) -> None:
    """The proxy closed this connection (FIN or RST) without sending anything more."""
    sock.settimeout(5)
    try:
        assert sock.recv(10) == b""
    except ConnectionResetError:
        return


def test_lifecycle_with_toxiproxy_python(
    tp: toxiproxy.Toxiproxy, echo: BackgroundServer, client: ToxiproxyClient
) -> None:
    assert tp.running()
    assert b"version" in tp.version()
    proxy = tp.create(upstream=f"127.0.0.1:{echo.port}", name="life")
    assert proxy.enabled is True
    assert _addr(proxy.listen)[1] != 0  # the chosen port is reported
    assert set(tp.proxies()) == {"life"}
    with pytest.raises(ProxyExists):
        tp.create(upstream=f"127.0.0.1:{echo.port}", name="life")

    every = {
        "latency": {"latency": 10, "jitter": 2},
        "bandwidth": {"rate": 1000},
        "slow_close": {"delay": 10},
        "timeout": {"timeout": 0},
        "reset_peer": {"timeout": 1000},
        "slicer": {"average_size": 64, "size_variation": 8, "delay": 10},
        "limit_data": {"bytes": 100000},
    }
    for toxic_type, attributes in every.items():
        proxy.add_toxic(type=toxic_type, attributes=attributes, stream="upstream")
        toxic = proxy.get_toxic(f"{toxic_type}_upstream")
        assert toxic is not None
        assert toxic.attributes == attributes
        assert toxic.toxicity == 1.0
    assert len(proxy.toxics()) == len(every)
    for toxic_type in every:
        assert proxy.destroy_toxic(f"{toxic_type}_upstream")
    assert proxy.toxics() == {}

    populated = tp.populate(
        [
            {"name": "pop_a", "upstream": f"127.0.0.1:{echo.port}", "listen": "127.0.0.1:0"},
            {"name": "pop_b", "upstream": f"127.0.0.1:{echo.port}", "listen": "127.0.0.1:0"},
        ]
    )
    assert {p.name for p in populated} == {"pop_a", "pop_b"}
    # The server's own POST /populate: unchanged entries are kept, changed ones replaced.
    listen_a = tp.get_proxy("pop_a").listen
    again = client.populate(
        [
            {"name": "pop_a", "upstream": f"127.0.0.1:{echo.port}", "listen": listen_a},
            {"name": "pop_c", "upstream": f"127.0.0.1:{echo.port}"},
        ]
    )
    assert [p["name"] for p in again] == ["pop_a", "pop_c"]
    assert again[0]["listen"] == listen_a

    proxy.add_toxic(type="latency", attributes={"latency": 1})
    proxy.disable()
    tp.reset()
    after = tp.get_proxy("life")
    assert after.enabled is True
    assert after.toxics() == {}

    assert proxy.destroy()
    with pytest.raises(NotFound):
        APIConsumer.get("/proxies/life")
    assert "life" not in tp.proxies()


def test_latency_adds_100ms_at_the_median(tp: toxiproxy.Toxiproxy, echo: BackgroundServer) -> None:
    proxy = tp.create(upstream=f"127.0.0.1:{echo.port}", name="lat")
    with _connect(proxy) as sock:
        base = statistics.median(_round_trip_ms(sock) for _ in range(30))
        # Added while the connection is open: it must apply to this connection.
        proxy.add_toxic(type="latency", attributes={"latency": 100, "jitter": 0})
        slow = statistics.median(_round_trip_ms(sock) for _ in range(15))
        proxy.destroy_toxic("latency_downstream")
        fast = statistics.median(_round_trip_ms(sock) for _ in range(10))
    assert 95 <= slow - base <= 105, (base, slow)
    assert fast < 50, fast


def test_toxicity_zero_never_applies(tp: toxiproxy.Toxiproxy, echo: BackgroundServer) -> None:
    proxy = tp.create(upstream=f"127.0.0.1:{echo.port}", name="tox0")
    proxy.add_toxic(type="latency", attributes={"latency": 300}, toxicity=0.0)
    with _connect(proxy) as sock:
        assert max(_round_trip_ms(sock) for _ in range(5)) < 200


def test_timeout_zero_stalls_until_removed(tp: toxiproxy.Toxiproxy, echo: BackgroundServer) -> None:
    """What removing it does differs (test_proxy_differences.py); the stall does not."""
    proxy = tp.create(upstream=f"127.0.0.1:{echo.port}", name="stall")
    with _connect(proxy) as sock:
        _round_trip_ms(sock)
        proxy.add_toxic(type="timeout", attributes={"timeout": 0})
        sock.sendall(b"held")
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(10)
        proxy.destroy_toxic("timeout_downstream")


def test_bandwidth_zero_stalls_until_removed(
    tp: toxiproxy.Toxiproxy, echo: BackgroundServer
) -> None:
    proxy = tp.create(upstream=f"127.0.0.1:{echo.port}", name="bw0")
    with _connect(proxy) as sock:
        _round_trip_ms(sock)
        proxy.add_toxic(type="bandwidth", attributes={"rate": 0})
        sock.sendall(b"held")
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(10)
        proxy.destroy_toxic("bandwidth_downstream")
        sock.settimeout(5)
        assert sock.recv(10) == b"held"


def test_timeout_closes_after_its_delay(tp: toxiproxy.Toxiproxy, echo: BackgroundServer) -> None:
    proxy = tp.create(upstream=f"127.0.0.1:{echo.port}", name="tmo")
    with _connect(proxy) as sock:
        _round_trip_ms(sock)
        proxy.add_toxic(type="timeout", attributes={"timeout": 300})
        started = time.perf_counter()
        sock.sendall(b"lost")
        assert _recv_all(sock) == b""
        elapsed = time.perf_counter() - started
    assert 0.25 <= elapsed <= 1.0, elapsed


def test_reset_peer_lets_the_request_through_and_resets_the_reply(
    tp: toxiproxy.Toxiproxy, client: ToxiproxyClient, is_real: bool
) -> None:
    with BackgroundServer("echo") as upstream:
        proxy = tp.create(upstream=f"127.0.0.1:{upstream.port}", name="rst")
        proxy.add_toxic(type="reset_peer", attributes={"timeout": 0})
        with _connect(proxy) as sock:
            sock.sendall(b"order-123")
            with pytest.raises(ConnectionResetError):
                _recv_all(sock)
        _eventually(lambda: upstream.received == len(b"order-123"), "the request reached it")
    if not is_real:  # the counters are a tradechaos extension
        stats = client.stats("rst")
        assert stats["bytes_upstream"] == len(b"order-123")
        assert stats["bytes_downstream"] == 0
        assert stats["resets"] == 1
        assert stats["toxics"]["reset_peer_downstream"] == 1


def test_limit_data_closes_after_n_bytes(tp: toxiproxy.Toxiproxy, echo: BackgroundServer) -> None:
    proxy = tp.create(upstream=f"127.0.0.1:{echo.port}", name="lim")
    proxy.add_toxic(type="limit_data", attributes={"bytes": 1000})
    with _connect(proxy) as sock:
        sock.sendall(bytes(range(256)) * 20)
        received = _recv_all(sock)
    assert received == (bytes(range(256)) * 4)[:1000]


def test_bandwidth_holds_its_rate(tp: toxiproxy.Toxiproxy, echo: BackgroundServer) -> None:
    proxy = tp.create(upstream=f"127.0.0.1:{echo.port}", name="bw")
    proxy.add_toxic(type="bandwidth", attributes={"rate": 400})  # 400 KB/s
    total = 400_000
    with _connect(proxy) as sock:
        sock.sendall(b"b" * total)
        first = sock.recv(65536)
        started = time.perf_counter()
        received = len(first)
        while received < total:
            chunk = sock.recv(65536)
            assert chunk
            received += len(chunk)
        elapsed = time.perf_counter() - started
    rate_kb_s = (total - len(first)) / elapsed / 1000
    assert 360 <= rate_kb_s <= 440, rate_kb_s


def test_slicer_delivers_every_byte_in_pieces(
    tp: toxiproxy.Toxiproxy, echo: BackgroundServer
) -> None:
    proxy = tp.create(upstream=f"127.0.0.1:{echo.port}", name="slice")
    proxy.add_toxic(
        type="slicer", attributes={"average_size": 100, "size_variation": 20, "delay": 3000}
    )
    payload = bytes(range(256)) * 16  # 4096 bytes
    pieces: list[int] = []
    with _connect(proxy) as sock:
        sock.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = sock.recv(65536)
            assert chunk
            pieces.append(len(chunk))
            got += chunk
    assert got == payload
    assert len(pieces) >= 20, pieces
    assert max(pieces) < len(payload)


def test_slow_close_delays_the_close(tp: toxiproxy.Toxiproxy, echo: BackgroundServer) -> None:
    proxy = tp.create(upstream=f"127.0.0.1:{echo.port}", name="sc")
    proxy.add_toxic(type="slow_close", attributes={"delay": 400})
    with _connect(proxy) as sock:
        _round_trip_ms(sock)
        started = time.perf_counter()
        sock.shutdown(socket.SHUT_WR)
        assert _recv_all(sock) == b""
        elapsed = time.perf_counter() - started
    assert 0.38 <= elapsed <= 1.0, elapsed


def test_disabled_proxy_refuses_and_drops(tp: toxiproxy.Toxiproxy, echo: BackgroundServer) -> None:
    proxy = tp.create(upstream=f"127.0.0.1:{echo.port}", name="down")
    with _connect(proxy) as open_sock:
        _round_trip_ms(open_sock)
        with proxy.down():
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(_addr(proxy.listen), timeout=5)
            _assert_dropped(open_sock)
    with _connect(proxy) as sock:
        _round_trip_ms(sock)  # enabled again, on the same port


def test_upstream_change_drops_connections(
    tp: toxiproxy.Toxiproxy, client: ToxiproxyClient
) -> None:
    with BackgroundServer("echo") as old, BackgroundServer("hello") as new:
        proxy = tp.create(upstream=f"127.0.0.1:{old.port}", name="move")
        with _connect(proxy) as sock:
            _round_trip_ms(sock)
            client.update("move", upstream=f"127.0.0.1:{new.port}")
            _assert_dropped(sock)
        with _connect(proxy) as sock:
            sock.settimeout(5)
            assert sock.recv(10) == b"hello\n"  # the new upstream greets
        assert client.get("move")["upstream"] == f"127.0.0.1:{new.port}"


def test_toxicity_is_decided_per_connection(
    tp: toxiproxy.Toxiproxy, echo: BackgroundServer
) -> None:
    proxy = tp.create(upstream=f"127.0.0.1:{echo.port}", name="half")
    proxy.add_toxic(type="latency", attributes={"latency": 60}, toxicity=0.5)
    slow_connections = 0
    for _ in range(30):
        with _connect(proxy) as sock:
            trips = [_round_trip_ms(sock) for _ in range(3)]
        slow = [t >= 55 for t in trips]
        assert len(set(slow)) == 1, trips  # the same decision for every chunk of a connection
        slow_connections += slow[0]
    assert 5 <= slow_connections <= 25, slow_connections


def test_upstream_stream_toxics_act_on_requests(tp: toxiproxy.Toxiproxy) -> None:
    with BackgroundServer("echo") as upstream:
        proxy = tp.create(upstream=f"127.0.0.1:{upstream.port}", name="up")
        proxy.add_toxic(type="latency", stream="upstream", attributes={"latency": 100})
        with _connect(proxy) as sock:
            assert _round_trip_ms(sock, b"abc") >= 95
        proxy.destroy_toxic("latency_upstream")
        proxy.add_toxic(type="limit_data", stream="upstream", attributes={"bytes": 4})
        before = upstream.received
        with _connect(proxy) as sock:
            sock.sendall(b"0123456789")
            sock.settimeout(5)
            with contextlib.suppress(ConnectionResetError):
                _recv_all(sock)  # closed after 4 bytes reached the upstream
        _eventually(lambda: upstream.received - before == 4, "4 bytes reached the upstream")
        time.sleep(0.2)  # and no more arrive later
        assert upstream.received - before == 4


def _eventually(predicate: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        time.sleep(0.02)
