"""TM transfer frames, the framer/deframer (packets across frames) and ASM synchronisation."""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.ccsds import (
    CcsdsError,
    Clcw,
    CrcError,
    FrameError,
    FrameSynchronizer,
    SpacePacket,
    TmDeframer,
    TmFrame,
    TmFramer,
    attach_asm,
    crc16,
    tm_randomize,
)
from fsw.ccsds.tmframe import FHP_IDLE, FHP_NO_PACKET_START, tm_data_len


def test_tm_frame_known_answer() -> None:
    clcw = Clcw(vcid=0, report_value=9).encode()
    frame = TmFrame(42, 3, b"\x01\x02", mc_count=0x10, vc_count=0x20, fhp=0, ocf=clcw)
    raw = frame.encode()
    # SCID 42 = 0b0000101010 -> 02 a, VC 3 -> 0b011 << 1, OCF flag 1 -> a7
    assert raw[:6].hex() == "02a710201800"
    assert raw[6:8] == b"\x01\x02" and raw[8:12] == clcw and crc16(raw) == 0
    assert TmFrame.decode(raw) == frame and TmFrame.decode(raw).clcw == Clcw(0, 9)


frames = st.builds(
    TmFrame,
    spacecraft_id=st.integers(0, 0x3FF),
    vcid=st.integers(0, 7),
    data=st.binary(min_size=1, max_size=300),
    mc_count=st.integers(0, 255),
    vc_count=st.integers(0, 255),
    fhp=st.integers(0, 0x7FF),
    ocf=st.one_of(st.none(), st.binary(min_size=4, max_size=4)),
    secondary_header=st.binary(max_size=63),
    has_fecf=st.booleans(),
)


@given(frames)
def test_tm_frame_round_trip(frame: TmFrame) -> None:
    raw = frame.encode()
    assert len(raw) == frame.length
    assert TmFrame.decode(raw, has_fecf=frame.has_fecf) == frame


def test_tm_frame_errors() -> None:
    raw = TmFrame(1, 0, bytes(20)).encode()
    bad = bytearray(raw)
    bad[10] ^= 4
    with pytest.raises(CrcError):
        TmFrame.decode(bytes(bad))
    with pytest.raises(FrameError, match="too short"):
        TmFrame.decode(raw[:8])
    with pytest.raises(FrameError, match="outside"):
        TmFrame(1, 8, b"x")
    with pytest.raises(FrameError, match="OCF is 4 bytes"):
        TmFrame(1, 0, b"x", ocf=b"abc")
    with pytest.raises(FrameError, match="at most 63 bytes"):
        TmFrame(1, 0, b"x", secondary_header=bytes(64))
    with pytest.raises(FrameError, match="2049 bytes is longer than 2048"):
        TmFrame(1, 0, bytes(2048 - 6 - 4 - 2 + 1), ocf=bytes(4))
    assert len(TmFrame(1, 0, bytes(2048 - 6 - 4 - 2), ocf=bytes(4)).encode()) == 2048
    with pytest.raises(FrameError, match="longer than 2048"):
        TmFrame.decode(bytes(2049))


@settings(max_examples=400)
@given(st.binary(max_size=80), st.booleans())
def test_tm_frame_decoder_fuzz(raw: bytes, fecf: bool) -> None:
    try:
        frame = TmFrame.decode(raw, has_fecf=fecf)
    except CcsdsError:
        return
    assert frame.length == len(raw)


# --- framer / deframer ----------------------------------------------------------------------


def pkt(apid: int, n: int, count: int = 0) -> bytes:
    return SpacePacket(apid=apid, data=os.urandom(n), seq_count=count).encode()


def test_framer_fhp_and_spanning_packets() -> None:
    framer = TmFramer(42, frame_len=64)  # 52 data bytes per frame
    big = pkt(1, 100)  # 106 bytes: spans three frames
    small = pkt(1, 4)  # 10 bytes
    frames = [TmFrame.decode(f) for f in framer.pack(0, [big, small])]
    assert [f.fhp for f in frames] == [0, FHP_NO_PACKET_START, 2]
    assert [f.vc_count for f in frames] == [0, 1, 2] and [f.mc_count for f in frames] == [0, 1, 2]
    tail = frames[2].data
    assert tail[2:12] == small and SpacePacket.decode(tail[12:]).is_idle


def test_framer_counts_per_vc_and_master_channel() -> None:
    framer = TmFramer(42, frame_len=64)
    a = [TmFrame.decode(f) for f in framer.pack(0, [pkt(1, 10)])]
    b = [TmFrame.decode(f) for f in framer.pack(1, [pkt(2, 10)])]
    idle = TmFrame.decode(framer.idle_frame(ocf=bytes(4)))
    c = [TmFrame.decode(f) for f in framer.pack(0, [pkt(1, 10)])]
    assert [(f.vcid, f.vc_count, f.mc_count) for f in a + b + [idle] + c] == [
        (0, 0, 0),
        (1, 0, 1),
        (7, 0, 2),
        (0, 1, 3),
    ]
    assert idle.fhp == FHP_IDLE and idle.is_idle


def test_framer_without_flush_waits_and_small_room_spills_idle() -> None:
    framer = TmFramer(42, frame_len=64)
    assert framer.pack(0, [pkt(1, 20)], flush=False) == []
    assert framer.pending(0) == 26
    # 26 + 23 = 49 bytes: 3 bytes left, too few for an idle packet, so it spills over.
    frames = framer.pack(0, [pkt(1, 17)])
    assert len(frames) == 1
    deframer = TmDeframer()
    assert len(deframer.feed(frames[0])) == 2
    assert framer.pending(0) == 0
    later = framer.pack(0, [pkt(1, 5)])
    assert TmFrame.decode(later[0]).fhp == 4  # after the 4-byte idle-packet tail
    assert len(deframer.feed(later[0])) == 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 400), min_size=1, max_size=30),
    st.integers(40, 300),
    st.randoms(use_true_random=False),
)
def test_framer_deframer_round_trip_any_sizes(
    sizes: list[int], frame_len: int, rng: random.Random
) -> None:
    framer = TmFramer(7, frame_len=frame_len)
    pkts = [pkt(i % 5, n, i) for i, n in enumerate(sizes)]
    frames: list[bytes] = []
    i = 0
    while i < len(pkts):
        batch = rng.randint(1, 4)
        frames += framer.pack(0, pkts[i : i + batch], ocf=bytes(4), flush=rng.random() < 0.5)
        i += batch
    frames += framer.pack(0, [], flush=True)
    frames.insert(rng.randint(0, len(frames)), framer.idle_frame())
    deframer = TmDeframer(spacecraft_id=7)
    out = [p for f in frames for p in deframer.feed(f)]
    assert out == pkts
    assert deframer.stats["packets_lost"] == 0


def test_deframer_loses_only_the_packet_cut_by_a_lost_frame() -> None:
    framer = TmFramer(42, frame_len=80)
    pkts = [pkt(3, 60, i) for i in range(12)]  # 66-byte packets in 68-byte data fields
    frames = framer.pack(0, pkts)
    deframer = TmDeframer()
    out = [p for k, f in enumerate(frames) if k != 4 for p in deframer.feed(f)]
    assert deframer.stats["vc_count_gaps"] == 1
    lost = [p for p in pkts if p not in out]
    assert 1 <= len(lost) <= 2 and [p for p in pkts if p in out] == out
    assert deframer.stats["packets_lost"] >= 1


def test_deframer_rejects_other_spacecraft_and_bad_fecf() -> None:
    frames = TmFramer(43, frame_len=64).pack(0, [pkt(1, 10)])
    deframer = TmDeframer(spacecraft_id=42)
    with pytest.raises(FrameError, match="spacecraft 43"):
        deframer.feed(frames[0])
    bad = bytearray(TmFramer(42, frame_len=64).pack(0, [pkt(1, 10)])[0])
    bad[20] ^= 1
    with pytest.raises(CrcError):
        deframer.feed(bytes(bad))
    assert deframer.stats["frames_rejected"] == 2


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=90), max_size=8), st.data())
def test_deframer_fuzz_no_state_corruption(junk: list[bytes], data: st.DataObject) -> None:
    """Random and mutated frames never raise anything but CcsdsError, and good traffic
    afterwards still comes through whole."""
    framer = TmFramer(42, frame_len=64)
    deframer = TmDeframer(spacecraft_id=42, check_fecf=data.draw(st.booleans()))
    good = framer.pack(0, [pkt(1, 30)])
    mutated = [bytearray(f) for f in good]
    for f in mutated:
        f[data.draw(st.integers(0, len(f) - 1))] ^= data.draw(st.integers(1, 255))
    for raw in [*junk, *map(bytes, mutated)]:
        try:
            for p in deframer.feed(raw):
                SpacePacket.decode(p)
        except CcsdsError:
            pass
    deframer.reset()
    fresh = [pkt(2, 100, 1), pkt(2, 7, 2)]
    out = [p for f in TmFramer(42, frame_len=64).pack(0, fresh) for p in deframer.feed(f)]
    assert out == fresh


# --- ASM and the frame synchroniser ---------------------------------------------------------


def test_attach_asm_known_answer() -> None:
    frame = bytes(8)
    assert attach_asm([frame]) == b"\x1a\xcf\xfc\x1d" + tm_randomize(frame)
    assert attach_asm([frame], randomize=False) == b"\x1a\xcf\xfc\x1d" + frame
    with pytest.raises(FrameError):
        attach_asm([b"ab", b"abc"])


def make_frames(n: int, frame_len: int = 100) -> list[bytes]:
    """``n`` frames, each carrying exactly one packet."""
    framer = TmFramer(42, frame_len=frame_len)
    frames = framer.pack(0, [pkt(1, tm_data_len(frame_len) - 6, i) for i in range(n)])
    assert len(frames) == n
    return frames


def test_sync_finds_frames_in_noise_and_any_chunking() -> None:
    frames = make_frames(20)
    rng = random.Random(3)
    stream = os.urandom(37) + attach_asm(frames[:10]) + os.urandom(5) + attach_asm(frames[10:])
    sync = FrameSynchronizer(100)
    out: list[bytes] = []
    i = 0
    while i < len(stream):
        step = rng.randint(1, 300)
        out += sync.feed(stream[i : i + step])
        i += step
    assert out == frames
    assert sync.stats["lock_losses"] == 1 and sync.stats["bytes_skipped"] >= 42


def test_sync_recovers_after_slips_and_drops_corrupt_frames() -> None:
    frames = make_frames(30)
    cadus = [attach_asm([f]) for f in frames]
    cadus[5] = cadus[5][:50] + cadus[5][51:]  # one byte lost (slip)
    cadus[12] = cadus[12][:40] + b"\x00\x00" + cadus[12][40:]  # two bytes inserted
    corrupt = bytearray(cadus[20])
    corrupt[60] ^= 0x10  # body bit error: FECF catches it
    cadus[20] = bytes(corrupt)
    asm_hit = bytearray(cadus[25])
    asm_hit[1] ^= 0x01  # one ASM bit error while locked: tolerated
    cadus[25] = bytes(asm_hit)
    sync = FrameSynchronizer(100)
    out = sync.feed(b"".join(cadus))
    expected = [f for k, f in enumerate(frames) if k not in (5, 12, 20)]
    assert out == expected
    assert sync.stats["fecf_errors"] >= 1 and sync.stats["asm_bit_errors"] == 1
    assert sync.stats["locks"] >= 3


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=600), st.data())
def test_sync_fuzz(noise: bytes, data: st.DataObject) -> None:
    frames = make_frames(4, frame_len=64)
    stream = bytearray(noise[: len(noise) // 2] + attach_asm(frames) + noise[len(noise) // 2 :])
    for _ in range(data.draw(st.integers(0, 5))):
        stream[data.draw(st.integers(0, len(stream) - 1))] ^= data.draw(st.integers(1, 255))
    sync = FrameSynchronizer(64, asm_tolerance_bits=data.draw(st.integers(0, 3)))
    out: list[bytes] = []
    pos = 0
    while pos < len(stream):
        step = data.draw(st.integers(1, 200))
        out += sync.feed(bytes(stream[pos : pos + step]))
        pos += step
    for frame in out:
        assert len(frame) == 64 and crc16(frame) == 0
        TmFrame.decode(frame)
