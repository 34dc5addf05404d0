"""UDP with fixed addresses each way and one frame per datagram (``fsw.link.datagram``):
what Yamcs' UdpTmFrameLink and UdpTcFrameLink expect of a spacecraft.

Every socket binds 127.0.0.1 on an ephemeral port. The "Yamcs" ends here are bare
sockets: one datagram is one frame, with nothing of Gnomon's around it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.ccsds import PusTc, PusTm
from fsw.ccsds.cltu import encode_cltu
from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig
from fsw.ccsds.randomizer import tm_randomize
from fsw.ccsds.stack import GroundLink, SpacecraftLink
from fsw.ccsds.tmframe import TmFrame
from fsw.link import LinkError, LinkUrlError, open_link
from fsw.link.datagram import DatagramTransport, split_cltus

CFG = LinkConfig.load(TEST_KEY_FILE)
L = CFG.tm_frame_len


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def yamcs_tm() -> Iterator[socket.socket]:
    """A bare socket where the TM frames go (Yamcs' TM link port)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5.0)
    yield s
    s.close()


def recv_all(s: socket.socket, n: int) -> list[bytes]:
    return [s.recv(65536) for _ in range(n)]


@pytest.mark.req("COMMS-009")
def test_each_tm_frame_leaves_in_its_own_datagram_without_asm(yamcs_tm: socket.socket) -> None:
    tm_port = yamcs_tm.getsockname()[1]
    sc_link = SpacecraftLink(CFG)
    with open_link(f"udp://127.0.0.1:0?tm=127.0.0.1:{tm_port}&mode=frame", tm_frame_len=L) as radio:
        packets = [PusTm(apid=100, service=17, subservice=2).encode()] * 3
        radio.send(sc_link.send(packets) + sc_link.idle_frame())
        got = recv_all(yamcs_tm, 2)
        assert radio.stats["tx_frames"] == 2
    assert [len(d) for d in got] == [L, L]
    frames = [TmFrame.decode(tm_randomize(d)) for d in got]  # derandomized, FECF checked
    assert [f.spacecraft_id for f in frames] == [42, 42]
    assert [f.vcid for f in frames] == [0, CFG.idle_vcid]
    assert all(f.ocf is not None for f in frames)  # the CLCW rides on every frame


@pytest.mark.req("COMMS-009")
def test_cltus_from_any_port_are_taken_and_no_sender_moves_the_downlink(
    yamcs_tm: socket.socket,
) -> None:
    tm_port = yamcs_tm.getsockname()[1]
    sc_link, ground = SpacecraftLink(CFG), GroundLink(CFG)
    with open_link(f"udp://127.0.0.1:0?tm=127.0.0.1:{tm_port}&mode=frame", tm_frame_len=L) as radio:
        assert isinstance(radio, DatagramTransport)
        tc_addr = radio.local_address
        commands = [PusTc(apid=100, service=17, subservice=1, seq_count=i).encode() for i in (1, 2)]
        cltus = split_cltus(b"".join(ground.send_tc(c, now_s=0.0) for c in commands))
        assert len(cltus) == 2
        for cltu in cltus:  # each from a new ephemeral port, as Yamcs' TC link sends
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
                tx.sendto(cltu, tc_addr)
                tx.sendto(b"", tc_addr)  # an empty datagram: counted, ignored
        delivered = []
        for _ in range(2):
            delivered += sc_link.receive(radio.recv(5.0))
        assert delivered == commands
        assert radio.recv(0.05) == b""
        assert radio.stats["rx_empty"] == 2
        radio.send(sc_link.idle_frame())
        assert len(yamcs_tm.recv(65536)) == L  # still to the TM address, not a sender
        assert radio.stats["peer_changes"] == 0


def test_gnomon_ground_and_spacecraft_fly_over_a_frame_link() -> None:
    tc_port, tm_port = free_port(), free_port()
    url = f"udp://127.0.0.1:{tc_port}?tm=127.0.0.1:{tm_port}&mode=frame"
    sc_link, ground = SpacecraftLink(CFG), GroundLink(CFG)
    with (
        open_link(url, "spacecraft", tm_frame_len=L) as sc,
        open_link(url, "ground", tm_frame_len=L) as gnd,
    ):
        ping = PusTc(apid=100, service=17, subservice=1).encode()
        gnd.send(ground.send_tc(ping, now_s=0.0))
        assert sc_link.receive(sc.recv(5.0)) == [ping]
        reply = PusTm(apid=100, service=17, subservice=2).encode()
        sc.send(sc_link.send([reply]))
        assert ground.receive(gnd.recv(5.0), now_s=0.1) == [reply]
        assert ground.fop.outstanding == 0  # the CLCW came back too


def test_asm_can_be_kept_and_stream_mode_sends_bytes(yamcs_tm: socket.socket) -> None:
    tm_port = yamcs_tm.getsockname()[1]
    sc_link = SpacecraftLink(CFG)
    with open_link(
        f"udp://127.0.0.1:0?tm=127.0.0.1:{tm_port}&mode=frame&asm=1", tm_frame_len=L
    ) as radio:
        radio.send(sc_link.idle_frame())
        assert yamcs_tm.recv(65536)[:4] == bytes.fromhex("1acffc1d")
    with open_link(f"udp://:0?tm={tm_port}") as stream:  # host left out: loopback
        assert isinstance(stream, DatagramTransport)
        assert stream.local_address[0] == "127.0.0.1"
        stream.send(sc_link.idle_frame() * 2)
        assert len(yamcs_tm.recv(65536)) == 2 * (4 + L)  # the bytes as they are


def test_a_ground_drops_datagrams_that_are_not_one_frame() -> None:
    tm_port = free_port()
    with open_link(
        f"udp://127.0.0.1:1?tm=127.0.0.1:{tm_port}&mode=frame", "ground", tm_frame_len=L
    ) as gnd:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            tx.sendto(b"x" * 10, ("127.0.0.1", tm_port))
        assert gnd.recv(0.5) == b""
        assert gnd.stats["rx_bad_length"] == 1


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("udp://127.0.0.1:0?mode=frame", "TM address"),
        ("udp://127.0.0.1:0?tm=1&mode=burst", "stream or frame"),
        ("udp://127.0.0.1:0?tm=1&asm=1", "asm= goes with mode=frame"),
        ("udp://127.0.0.1:0?tm=1&mode=frame&asm=yes", "asm must be 0 or 1"),
        ("udp://127.0.0.1:0?tm=1&rate=9", "unknown option"),
        ("udp://127.0.0.1:0?tm=host", "needs a port"),
        ("udp://127.0.0.1:0?tm=1&mode=frame", "TM frame length"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, reason: str) -> None:
    with pytest.raises(LinkUrlError, match=reason):
        open_link(url, "spacecraft")


def test_a_port_in_use_is_one_error_naming_it() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        with pytest.raises(LinkError, match="another process"):
            open_link(f"udp://127.0.0.1:{port}?tm=1", "spacecraft")


@settings(max_examples=50)
@given(st.lists(st.binary(min_size=6, max_size=300), min_size=1, max_size=5))
def test_split_cltus_returns_each_cltu_whole(frames: list[bytes]) -> None:
    cltus = [encode_cltu(f) for f in frames]
    assert split_cltus(b"".join(cltus)) == cltus
