"""The sim-bridge messages and port: known answers, round trips, fuzz (the mux framing
under them is tested in tests/test_link_mux.py)."""

from __future__ import annotations

import contextlib
import math
import queue

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsw.hal.interfaces import EpsReading
from fsw.hal.simbridge import (
    BRIDGE,
    CHANNELS,
    BoardHello,
    BridgePort,
    BulkRequest,
    EpsSample,
    FrameMsg,
    Message,
    PlatformMsg,
    PowerModeMsg,
    SimBridgeError,
    TimeSync,
    decode_message,
    platform_from_json,
    platform_to_json,
)
from fsw.link import memory_pair
from fsw.link.mux import MuxFrame
from hil.sim.scenario import load_scenario
from hil.sim.sim_hal import platform_of


def test_known_answer_time_sync_body() -> None:
    msg = TimeSync(2_100_000_000.0, 10.0, 7)
    assert msg.encode().hex() == "0141df4add40000000402400000000000000000007"
    assert decode_message(msg.encode()) == msg


def test_a_message_travels_in_one_bridge_frame() -> None:
    frame = MuxFrame.decode(BulkRequest(7).frame(), channels=CHANNELS)
    assert frame.channel == BRIDGE
    assert decode_message(frame.payload) == BulkRequest(7)


@given(st.binary(max_size=300))
def test_fuzz_random_bytes_raise_only_the_package_error(data: bytes) -> None:
    try:
        decode_message(data)
    except SimBridgeError as exc:
        assert exc.offset >= 0 and exc.reason


def test_the_bridge_port_counts_what_crosses_the_cable() -> None:
    a, b = memory_pair()
    seen: queue.Queue[Message] = queue.Queue()
    bulk: queue.Queue[int] = queue.Queue()
    board, bench = BridgePort(a, on_message=seen.put, on_bulk=bulk.put), BridgePort(b)
    try:
        bench.send_message(TimeSync(1.0, 1.0, 1))
        bench.mux.send(BRIDGE, b"\x63junk")  # not a message: counted, not raised
        bench.send_bulk(bytes(1000))
        bench.radio.send(b"\x1a\xcf\xfc\x1d")
        assert seen.get(timeout=3.0) == TimeSync(1.0, 1.0, 1)
        assert bulk.get(timeout=3.0) == 1000
        assert board.radio.recv(3.0) == b"\x1a\xcf\xfc\x1d"
        assert board.stats["bad_messages"] == 1 and board.stats["messages_in"] == 1
        assert board.stats["radio_in"] == 4 and board.stats["bulk_in"] == 1000
        assert bench.stats["messages_out"] == 1 and bench.stats["radio_out"] == 4
    finally:
        board.close()
        bench.close()


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
