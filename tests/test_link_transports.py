"""Transports: URL handling, the in-memory pair, loop://, UDP and TCP on loopback."""

from __future__ import annotations

import socket

import pytest

from fsw.ccsds import GroundLink, LinkConfig, PusTc, PusTm, SpacecraftLink
from fsw.ccsds.config import TEST_KEY_FILE
from fsw.link import LinkClosedError, LinkError, LinkUrlError, memory_pair, open_link
from fsw.link.tcp import TcpTransport
from fsw.link.udp import UdpTransport

pytestmark = pytest.mark.timeout(30)


def recv_until(link: object, want: int, timeout_s: float = 5.0) -> bytes:
    """Collect bytes until ``want`` arrived or about ``timeout_s`` of empty reads passed."""
    got = b""
    empty = 0
    while len(got) < want and empty < timeout_s / 0.05:
        chunk = link.recv(0.05)  # type: ignore[attr-defined]
        if chunk:
            got += chunk
        else:
            empty += 1
    return got


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("udp://127.0.0.1", "give a port"),
        ("tcp://:9000", "give a host"),
        ("udp://127.0.0.1:99999", "not a number"),
        ("serial://", "give a device"),
        ("serial:///dev/ttyS0?baud=fast", "baud must be a whole number"),
        ("serial:///dev/ttyS0?parity=E", "unknown option"),
        ("mem://x", "memory_pair"),
        ("carrier-pigeon://coop", "unknown link"),
        ("127.0.0.1:9000", "unknown link"),
    ],
)
def test_bad_urls_give_one_clear_error(url: str, message: str) -> None:
    with pytest.raises(LinkUrlError, match=message):
        open_link(url)


def test_bad_role_is_refused() -> None:
    with pytest.raises(LinkError, match="role must be"):
        open_link("loop://", role="satellite")


def test_memory_pair_carries_both_directions_in_order() -> None:
    sc, gnd = memory_pair()
    for i in range(5):
        gnd.send(bytes([i]))
    sc.send(b"downlink")
    assert [sc.recv(0) for _ in range(5)] == [bytes([i]) for i in range(5)]
    assert sc.recv(0) == b""
    assert gnd.recv(0.01) == b"downlink"
    assert gnd.stats["tx_bytes"] == 5 and sc.stats["rx_chunks"] == 5


def test_closed_transport_refuses_use() -> None:
    link = open_link("loop://")
    link.close()
    assert link.status == "closed"
    with pytest.raises(LinkClosedError):
        link.send(b"x")
    with pytest.raises(LinkClosedError):
        link.recv(0)


def test_loop_returns_what_was_sent() -> None:
    with open_link("loop://") as link:
        link.send(b"abc")
        assert link.recv(0.1) == b"abc"
        assert link.recv(0.0) == b""


def test_udp_spacecraft_binds_and_ground_reaches_it() -> None:
    sc = open_link("udp://127.0.0.1:0", role="spacecraft")
    assert isinstance(sc, UdpTransport)
    port = sc.local_address[1]
    url = f"udp://127.0.0.1:{port}"
    gnd = open_link(url, role="ground")
    try:
        # The ground's hello teaches the spacecraft where to send, before any command.
        assert sc.recv(0.5) == b""
        sc.send(b"telemetry before any command")
        assert recv_until(gnd, 28) == b"telemetry before any command"
        gnd.send(b"command")
        assert recv_until(sc, 7) == b"command"
        big = bytes(range(256)) * 1000  # split into several datagrams
        sc.send(big)
        assert recv_until(gnd, len(big)) == big
    finally:
        gnd.close()
        sc.close()


def test_udp_spacecraft_without_ground_drops_and_counts() -> None:
    with open_link("udp://127.0.0.1:0", role="spacecraft") as sc:
        sc.send(b"nobody listens")
        assert sc.stats["tx_dropped_bytes"] == 14
        assert "no ground station" in (sc.last_error or "")


def test_udp_bind_conflict_is_a_link_error() -> None:
    with open_link("udp://127.0.0.1:0") as first:
        port = first.local_address[1]  # type: ignore[attr-defined]
        with pytest.raises(LinkError, match="cannot bind"):
            open_link(f"udp://127.0.0.1:{port}", role="spacecraft")


def test_tcp_ground_waits_for_spacecraft_then_connects() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    url = f"tcp://127.0.0.1:{port}"
    gnd = open_link(url, role="ground")  # nobody listening yet: not an error
    try:
        assert gnd.status == "waiting"
        gnd.send(b"lost")
        assert gnd.stats["tx_dropped_bytes"] == 4
        assert gnd.recv(0.05) == b""
        with open_link(url, role="spacecraft") as sc:
            assert isinstance(sc, TcpTransport)
            payload = b"\xeb\x90" + bytes(100)
            for _ in range(40):
                gnd.send(payload)
                if gnd.status == "connected":
                    break
                gnd.recv(0.05)
            assert gnd.status == "connected"
            assert recv_until(sc, len(payload)) == payload
            sc.send(b"downlink")
            assert recv_until(gnd, 8) == b"downlink"
    finally:
        gnd.close()


def test_tcp_spacecraft_survives_ground_reconnect() -> None:
    with open_link("tcp://127.0.0.1:0", role="spacecraft") as sc:
        url = f"tcp://127.0.0.1:{sc.local_address[1]}"  # type: ignore[attr-defined]
        first = open_link(url, role="ground")
        first.send(b"one")
        assert recv_until(sc, 3) == b"one"
        first.close()
        assert sc.recv(0.2) == b""  # notices the close
        assert sc.stats["disconnects"] >= 1
        second = open_link(url, role="ground")
        second.send(b"two")
        assert recv_until(sc, 3) == b"two"
        sc.send(b"back")
        assert recv_until(second, 4) == b"back"
        second.close()


def test_full_stack_over_udp() -> None:
    cfg = LinkConfig.load(TEST_KEY_FILE)
    sc_link, gnd_link = SpacecraftLink(cfg), GroundLink(cfg)
    sc = open_link("udp://127.0.0.1:0", role="spacecraft")
    gnd = open_link(f"udp://127.0.0.1:{sc.local_address[1]}", role="ground")  # type: ignore[attr-defined]
    try:
        tc = PusTc(apid=0x42, service=17, subservice=1, seq_count=9).encode()
        gnd.send(gnd_link.send_tc(tc, now_s=0.0))
        got: list[bytes] = []
        for _ in range(100):
            got += sc_link.receive(sc.recv(0.05))
            if got:
                break
        assert got == [tc]
        tm = PusTm(apid=0x42, service=17, subservice=2).encode()
        sc.send(sc_link.send([tm]))
        down: list[bytes] = []
        for _ in range(100):
            down += gnd_link.receive(gnd.recv(0.05), now_s=0.5)
            if down:
                break
        assert down == [tm]
        assert gnd_link.fop.outstanding == 0
    finally:
        gnd.close()
        sc.close()
