"""The framed mux (fsw.link.mux): known answers, round trips, resync, fuzz, the port."""

from __future__ import annotations

import contextlib
import queue

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.ccsds.crc import crc16
from fsw.link import LinkError, memory_pair
from fsw.link.mux import MAX_PAYLOAD, OVERHEAD, SYNC, Demux, MuxError, MuxFrame, MuxPort

RADIO, DATA = 0, 7
frames_st = st.builds(MuxFrame, st.integers(0, 255), st.binary(max_size=600))


def test_known_answer_frame_layout() -> None:
    wire = MuxFrame(RADIO, b"\x1a\xcf\xfc\x1d").encode()
    assert wire.hex() == "c35a0000048c181acffc1d683a"
    assert wire[:2] == SYNC and wire[2] == RADIO and wire[3:5] == b"\x00\x04"
    assert int.from_bytes(wire[5:7], "big") == crc16(b"\x00\x00\x04")
    assert int.from_bytes(wire[-2:], "big") == crc16(b"\x1a\xcf\xfc\x1d")
    assert len(wire) == 4 + OVERHEAD


@given(frames_st)
def test_frame_round_trip(frame: MuxFrame) -> None:
    assert MuxFrame.decode(frame.encode()) == frame


@settings(max_examples=60)
@given(st.lists(frames_st, max_size=6), st.lists(st.integers(1, 50), max_size=20))
def test_demux_finds_every_frame_in_any_chunking(frames: list[MuxFrame], cuts: list[int]) -> None:
    wire = b"".join(f.encode() for f in frames)
    d = Demux()
    got: list[MuxFrame] = []
    pos = 0
    for n in cuts:
        got += d.feed(wire[pos : pos + n])
        pos += n
    got += d.feed(wire[pos:])
    assert got == frames
    assert d.stats["garbage_bytes"] == 0 and d.stats["crc_errors"] == 0


def test_glitch_loses_one_frame_not_the_stream() -> None:
    a, b, c = (MuxFrame(RADIO, bytes([i]) * 40).encode() for i in range(3))
    hit = bytearray(b)
    hit[20] ^= 0x10  # a bit flipped on the cable inside frame b
    d = Demux()
    got = d.feed(b"\x00\xc3noise" + a + bytes(hit) + b"\xc3\x5a\xff" + c)
    assert [f.payload[0] for f in got] == [0, 2]
    assert d.stats["crc_errors"] >= 1 and d.stats["garbage_bytes"] > 0


def test_corrupted_length_is_caught_by_the_header_crc() -> None:
    good = MuxFrame(DATA, b"x" * 10).encode()
    bad = bytearray(good)
    bad[3] = 0xFF  # length now says ~65 KB: must not make the demux wait for it
    d = Demux()
    assert d.feed(bytes(bad) + good) == [MuxFrame(DATA, b"x" * 10)]
    with pytest.raises(MuxError, match="header CRC"):
        MuxFrame.decode(bytes(bad))


def test_encode_refuses_what_the_wire_cannot_carry() -> None:
    with pytest.raises(MuxError, match="limit"):
        MuxFrame(RADIO, bytes(MAX_PAYLOAD + 1)).encode()
    with pytest.raises(MuxError, match=r"outside 0\.\.255"):
        MuxFrame(256, b"").encode()


@given(st.binary(max_size=300))
def test_fuzz_random_bytes_raise_only_the_package_error(data: bytes) -> None:
    try:
        MuxFrame.decode(data)
    except MuxError as exc:
        assert exc.offset >= 0 and exc.reason
    Demux().feed(data)  # never raises
    Demux(channels=(0, 1)).feed(data)


@given(
    frames_st,
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=4),
)
def test_fuzz_mutated_frames(frame: MuxFrame, flips: list[tuple[int, int]]) -> None:
    wire = bytearray(frame.encode())
    for pos, mask in flips:
        wire[pos % len(wire)] ^= mask
    with contextlib.suppress(MuxError):
        MuxFrame.decode(bytes(wire))
    out = Demux().feed(bytes(wire))
    assert len(out) <= 1


def test_frames_on_channels_not_in_use_are_garbage() -> None:
    stray = MuxFrame(9, b"x").encode()
    good = MuxFrame(DATA, b"y").encode()
    d = Demux(channels=(RADIO, DATA))
    assert d.feed(stray + good) == [MuxFrame(DATA, b"y")]
    assert d.stats["garbage_bytes"] == len(stray)
    with pytest.raises(MuxError, match="unknown channel 9"):
        MuxFrame.decode(stray, channels=(RADIO, DATA))


def test_the_mux_error_is_a_link_error_with_offset_and_reason() -> None:
    with pytest.raises(LinkError) as info:
        MuxFrame.decode(MuxFrame(RADIO, b"abc").encode() + b"!")
    assert isinstance(info.value, MuxError)
    assert (info.value.reason, info.value.offset) == ("1 bytes after the frame", 12)
    assert str(info.value) == "mux: 1 bytes after the frame (at byte 12)"


def test_a_port_routes_channels_to_handlers_and_transports() -> None:
    a, b = memory_pair()
    got: queue.Queue[bytes] = queue.Queue()
    rx = MuxPort(a, {DATA: got.put}, transports={RADIO: "radio"})
    tx = MuxPort(b, transports={RADIO: "radio"})
    try:
        tx.send(DATA, bytes(MAX_PAYLOAD + 10))  # split into two frames
        tx.send(3, b"nobody listens")
        tx.channel(RADIO).send(b"\x1a\xcf\xfc\x1d")
        assert rx.channel(RADIO).recv(3.0) == b"\x1a\xcf\xfc\x1d"
        assert len(got.get(timeout=3.0)) == MAX_PAYLOAD and len(got.get(timeout=3.0)) == 10
        assert rx.channel(RADIO).url == "mem://spacecraft#radio"
        assert rx.bytes_in == {DATA: MAX_PAYLOAD + 10, RADIO: 4}
        assert tx.bytes_out == {DATA: MAX_PAYLOAD + 10, 3: 14, RADIO: 4}
        assert rx.demux.stats["garbage_bytes"] > 0  # channel 3 is not in use at rx
        with pytest.raises(MuxError, match="not a transport"):
            rx.channel(DATA)
    finally:
        rx.close()
        tx.close()
    with pytest.raises(LinkError, match="closed"):
        rx.channel(RADIO).recv(0.0)


def test_a_failing_handler_is_counted_and_the_cable_keeps_going() -> None:
    a, b = memory_pair()
    seen: queue.Queue[bytes] = queue.Queue()

    def handler(payload: bytes) -> None:
        seen.put(payload)
        if payload == b"bug":
            raise RuntimeError("bug in a handler")

    rx, tx = MuxPort(a, {DATA: handler}), MuxPort(b)
    try:
        tx.send(DATA, b"bug")
        tx.send(DATA, b"fine")
        assert seen.get(timeout=3.0) == b"bug" and seen.get(timeout=3.0) == b"fine"
        assert rx.stats["handler_errors"] == 1
    finally:
        rx.close()
        tx.close()


def test_a_channel_cannot_be_both_handled_and_a_transport() -> None:
    a, _ = memory_pair()
    with pytest.raises(MuxError, match="channel 0 has a handler and is a transport"):
        MuxPort(a, {RADIO: print}, transports={RADIO: "radio"})


def test_docstring_examples_run() -> None:
    import doctest

    import fsw.link.mux

    result = doctest.testmod(fsw.link.mux)
    assert result.attempted > 0 and result.failed == 0
