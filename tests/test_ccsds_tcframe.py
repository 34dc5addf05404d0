"""TC transfer frames (CCSDS 232.0-B): header bits, FECF, segment header, BC frames."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.ccsds import CcsdsError, CrcError, FrameError, SeqFlags, TcFrame, TcFrameType, crc16
from fsw.ccsds.tcframe import tc_header


def test_tc_header_bits() -> None:
    # version 00, bypass 1, control 1, spare 00, SCID 0x3FF | VCID 0x3F, length-1 0x3FF | N(S)
    assert tc_header(0x3FF, 0x3F, 1024, 0xAB, True, True).hex() == "33ffffffab"
    assert tc_header(0x2A, 1, 9, 7, False, False).hex() == "002a040807"


def test_tc_frame_known_answer_with_segment_header() -> None:
    frame = TcFrame(42, 2, b"\xaa\xbb", seq=200, map_id=5, seg_flags=SeqFlags.FIRST)
    raw = frame.encode()
    assert raw[:6].hex() == "002a0809c8" + "45"
    assert len(raw) == 10 and crc16(raw) == 0
    assert TcFrame.decode(raw, has_segment_header=True) == frame


frames = st.builds(
    TcFrame,
    spacecraft_id=st.integers(0, 0x3FF),
    vcid=st.integers(0, 0x3F),
    data=st.binary(min_size=1, max_size=200),
    seq=st.integers(0, 255),
    bypass=st.booleans(),
    map_id=st.one_of(st.none(), st.integers(0, 63)),
    seg_flags=st.sampled_from(SeqFlags),
)


@given(frames)
def test_tc_frame_round_trip(frame: TcFrame) -> None:
    if frame.map_id is None:
        frame = TcFrame(frame.spacecraft_id, frame.vcid, frame.data, frame.seq, frame.bypass)
    raw = frame.encode()
    assert len(raw) == frame.length
    assert TcFrame.decode(raw, has_segment_header=frame.map_id is not None) == frame
    assert frame.frame_type is (TcFrameType.BD if frame.bypass else TcFrameType.AD)


def test_bc_frames() -> None:
    unlock = TcFrame.unlock(42, 0)
    assert unlock.encode()[:6].hex() == "302a00070000"
    assert unlock.frame_type is TcFrameType.BC and unlock.bc_command() == ("unlock", None)
    set_vr = TcFrame.set_vr(42, 0, 77)
    assert set_vr.encode()[5:8] == b"\x82\x00\x4d"
    assert TcFrame.decode(set_vr.encode(), has_segment_header=True).bc_command() == ("set_vr", 77)
    with pytest.raises(FrameError, match="unknown control command"):
        TcFrame(42, 0, b"\x83", bypass=True, control=True).bc_command()
    with pytest.raises(FrameError, match="not a control command"):
        TcFrame(42, 0, b"\x00").bc_command()


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"spacecraft_id": 1024}, "spacecraft id"),
        ({"vcid": 64}, "virtual channel"),
        ({"seq": 256}, "sequence number"),
        ({"control": True}, "bypass flag"),
        ({"data": b""}, "at least one byte"),
        ({"data": bytes(1018)}, "longer than 1024"),
        ({"map_id": 64}, "MAP id"),
        ({"map_id": 1, "bypass": True, "control": True}, "no segment header"),
    ],
)
def test_tc_frame_refuses_bad_fields(kwargs: dict[str, object], reason: str) -> None:
    base: dict[str, object] = {"spacecraft_id": 1, "vcid": 0, "data": b"x"}
    base.update(kwargs)
    with pytest.raises(FrameError, match=reason):
        TcFrame(**base)  # type: ignore[arg-type]


def test_tc_frame_decode_errors() -> None:
    raw = TcFrame(42, 0, b"hello").encode()
    with pytest.raises(FrameError, match="too short"):
        TcFrame.decode(raw[:5])
    with pytest.raises(FrameError, match="declares 12 bytes but 11"):
        TcFrame.decode(raw[:-1])
    bad = bytearray(raw)
    bad[-1] ^= 1
    with pytest.raises(CrcError, match="FECF"):
        TcFrame.decode(bytes(bad))
    versioned = bytearray(raw)
    versioned[0] |= 0x40
    with pytest.raises(FrameError, match="version 1"):
        TcFrame.decode(bytes(versioned))
    with pytest.raises(FrameError, match="declares 12 bytes but 10"):
        TcFrame.decode(raw[:-2], has_fecf=False)
    nofecf = TcFrame(42, 0, b"hello", has_fecf=False)
    assert TcFrame.decode(nofecf.encode(), has_fecf=False) == nofecf


@settings(max_examples=400)
@given(st.binary(max_size=64), st.booleans(), st.booleans())
def test_tc_frame_decoder_fuzz_random(raw: bytes, seg: bool, fecf: bool) -> None:
    try:
        frame = TcFrame.decode(raw, has_segment_header=seg, has_fecf=fecf)
    except CcsdsError:
        return
    assert frame.length == len(raw)


@settings(max_examples=300)
@given(frames, st.data())
def test_tc_frame_decoder_fuzz_mutated(frame: TcFrame, data: st.DataObject) -> None:
    raw = bytearray(frame.encode())
    for _ in range(data.draw(st.integers(1, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    with contextlib.suppress(CcsdsError):
        TcFrame.decode(bytes(raw), has_segment_header=data.draw(st.booleans()))
