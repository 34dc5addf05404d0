"""The sim-bridge mux framing and messages: known answers, round trips, resync, fuzz."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.ccsds.crc import crc16
from fsw.hal.interfaces import EpsReading
from fsw.hal.simbridge import (
    BRIDGE,
    BULK,
    MAX_PAYLOAD,
    OVERHEAD,
    RADIO,
    SYNC,
    BoardHello,
    BulkRequest,
    Demux,
    EpsSample,
    FrameMsg,
    MuxFrame,
    PlatformMsg,
    PowerModeMsg,
    SimBridgeError,
    TimeSync,
    decode_message,
    platform_from_json,
    platform_to_json,
)
from hil.sim.scenario import load_scenario
from hil.sim.sim_hal import platform_of

frames_st = st.builds(MuxFrame, st.sampled_from([RADIO, BRIDGE, BULK]), st.binary(max_size=600))


def test_known_answer_frame_layout() -> None:
    wire = MuxFrame(RADIO, b"\x1a\xcf\xfc\x1d").encode()
    assert wire.hex() == "c35a0000048c181acffc1d683a"
    assert wire[:2] == SYNC and wire[2] == RADIO and wire[3:5] == b"\x00\x04"
    assert int.from_bytes(wire[5:7], "big") == crc16(b"\x00\x00\x04")
    assert int.from_bytes(wire[-2:], "big") == crc16(b"\x1a\xcf\xfc\x1d")
    assert len(wire) == 4 + OVERHEAD


def test_known_answer_time_sync_body() -> None:
    msg = TimeSync(2_100_000_000.0, 10.0, 7)
    assert msg.encode().hex() == "0141df4add40000000402400000000000000000007"
    assert decode_message(msg.encode()) == msg


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
    good = MuxFrame(BRIDGE, b"x" * 10).encode()
    bad = bytearray(good)
    bad[3] = 0xFF  # length now says ~65 KB: must not make the demux wait for it
    d = Demux()
    assert d.feed(bytes(bad) + good) == [MuxFrame(BRIDGE, b"x" * 10)]
    with pytest.raises(SimBridgeError, match="header CRC"):
        MuxFrame.decode(bytes(bad))


def test_encode_refuses_what_the_wire_cannot_carry() -> None:
    with pytest.raises(SimBridgeError, match="limit"):
        MuxFrame(RADIO, bytes(MAX_PAYLOAD + 1)).encode()
    with pytest.raises(SimBridgeError, match="unknown channel"):
        MuxFrame(9, b"").encode()


@given(st.binary(max_size=300))
def test_fuzz_random_bytes_raise_only_the_package_error(data: bytes) -> None:
    try:
        MuxFrame.decode(data)
    except SimBridgeError as exc:
        assert exc.offset >= 0 and exc.reason
    with contextlib.suppress(SimBridgeError):
        decode_message(data)
    Demux().feed(data)  # never raises


@given(
    frames_st,
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=4),
)
def test_fuzz_mutated_frames(frame: MuxFrame, flips: list[tuple[int, int]]) -> None:
    wire = bytearray(frame.encode())
    for pos, mask in flips:
        wire[pos % len(wire)] ^= mask
    with contextlib.suppress(SimBridgeError):
        MuxFrame.decode(bytes(wire))
    out = Demux().feed(bytes(wire))
    assert len(out) <= 1


_messages = st.one_of(
    st.builds(TimeSync, st.floats(0, 1e10), st.floats(0.01, 1000), st.integers(0, 2**32 - 1)),
    st.builds(BulkRequest, st.integers(0, 2**32 - 1)),
    st.builds(
        PowerModeMsg, st.one_of(st.none(), st.text(min_size=1, max_size=12)), st.floats(0, 1e10)
    ),
    st.builds(BoardHello, st.dictionaries(st.text(max_size=8), st.integers(), max_size=4)),
    st.builds(EpsSample, st.builds(EpsReading, st.booleans(), *[st.floats(-1e6, 1e6)] * 6)),
)


@given(_messages)
def test_message_round_trip(msg: object) -> None:
    assert decode_message(msg.encode()) == msg  # type: ignore[attr-defined]


@given(_messages, st.integers(0, 200), st.integers(1, 255))
def test_fuzz_mutated_messages(msg: object, pos: int, mask: int) -> None:
    body = bytearray(msg.encode())  # type: ignore[attr-defined]
    body[pos % len(body)] ^= mask
    with contextlib.suppress(SimBridgeError):
        decode_message(bytes(body))
    with contextlib.suppress(SimBridgeError):
        decode_message(bytes(body[: pos % len(body)]))


def test_frame_message_carries_pixels_as_float16() -> None:
    px = np.random.default_rng(1).random((4, 64, 64), dtype=np.float32)
    msg = FrameMsg(42, 2.1e9, 45.5, -3.25, 2.0, px)
    back = decode_message(msg.encode())
    assert isinstance(back, FrameMsg)
    assert (back.frame_id, back.lat_deg, back.lon_deg, back.priority) == (42, 45.5, -3.25, 2.0)
    assert back.pixels.dtype == np.float32 and back.pixels.shape == (4, 64, 64)
    assert float(np.abs(back.pixels - px).max()) < 1e-3
    assert len(msg.encode()) < 4 * 64 * 64 * 2 + 64  # half of float32


def test_platform_round_trip_of_a_real_scenario() -> None:
    p = platform_of(load_scenario("sitl-short"))
    back = decode_message(PlatformMsg(p).encode())
    assert isinstance(back, PlatformMsg) and back.platform == p
    doc = platform_to_json(p)
    doc["scheduler"]["battery_capacity_wh"] = "lots"
    with pytest.raises(SimBridgeError, match="platform"):
        platform_from_json(doc)


@pytest.mark.parametrize(
    "payload,reason",
    [
        (b"", "empty"),
        (b"\x63", "unknown bridge message type 99"),
        (b"\x01" + bytes(5), "TimeSync needs 20 bytes"),
        (TimeSync(1.0, 0.0, 1).encode(), "speed"),
        (b"\x01" + TimeSync(math.nan, 1.0, 1).body(), "non-finite"),
        (b"\x04not json", "not JSON"),
        (b"\x07[1]", "JSON object"),
        (FrameMsg(1, 0, 0, 0, 1, np.zeros((1, 2, 2))).encode()[:-1], "pixel bytes"),
    ],
)
def test_bad_messages_say_what_is_wrong(payload: bytes, reason: str) -> None:
    with pytest.raises(SimBridgeError, match=reason):
        decode_message(payload)


@pytest.mark.parametrize(
    "name",
    [
        "fsw.hal.simbridge",
        "fsw.hal.board",
        "hil.bench.bench",
        "hil.bench.cable",
        "hil.bench.selftest",
        "hil.bench.cli",
    ],
)
def test_docstring_examples_run(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
