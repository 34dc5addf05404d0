"""Space packets, PUS-C packets, CRC, sequence counting, segmentation, stream extraction."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.ccsds import (
    CcsdsError,
    CrcError,
    PacketError,
    PacketExtractor,
    PacketType,
    PusTc,
    PusTm,
    Reassembler,
    SeqFlags,
    SequenceChecker,
    SequenceCounter,
    SpacePacket,
    TmFrame,
    crc16,
    segment,
)
from fsw.ccsds.crc import CRC16_USES_C_EXTENSION, crc16_function, fecf16
from fsw.ccsds.spacepacket import decode_prefix, encode_packet, peek_length

packets = st.builds(
    SpacePacket,
    apid=st.integers(0, 0x7FF),
    data=st.binary(min_size=1, max_size=300),
    packet_type=st.sampled_from(PacketType),
    seq_flags=st.sampled_from(SeqFlags),
    seq_count=st.integers(0, 0x3FFF),
    sec_header_flag=st.booleans(),
)


# --- CRC --------------------------------------------------------------------------------


def test_crc_check_value_and_c_extension() -> None:
    assert crc16(b"123456789") == 0x29B1
    assert crc16(bytearray(b"123456789")) == 0x29B1
    assert crc16(b"") == 0xFFFF
    # The compiled extension does the work, not crcmod's pure-Python fallback: the
    # function crcmod built for us calls the C builtin with a packed (C) table.
    assert CRC16_USES_C_EXTENSION
    import crcmod._crcfunext as ext

    init, table, fun = crc16_function().__defaults__  # type: ignore[misc]
    assert fun is ext._crc16 and isinstance(table, bytes) and init == 0xFFFF
    assert ext._crc16(b"123456789", 0xFFFF, table) == 0x29B1


def _bitwise_crc(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


@given(st.binary(max_size=200))
def test_crc_matches_a_bitwise_reference(data: bytes) -> None:
    assert crc16(data) == _bitwise_crc(data)


@given(st.binary(max_size=2100), st.sampled_from([bytes, bytearray, memoryview]))
def test_frame_crc_engine_agrees_with_the_packet_crc_engine(data: bytes, kind: type) -> None:
    # The FECF engine (anycrc) and the PEC engine (crcmod) are one function, over every
    # length a TC or TM frame can have and every buffer type the decoders hand in.
    assert fecf16(kind(data)) == crc16(data)
    if len(data) <= 200:
        assert fecf16(data) == _bitwise_crc(data)


def test_frame_crc_known_answers() -> None:
    assert fecf16(b"123456789") == 0x29B1
    assert fecf16(b"") == 0xFFFF
    frame = TmFrame(42, 0, bytes(range(256)) * 4, fhp=0, ocf=bytes(4)).encode()
    assert fecf16(frame) == 0  # an intact frame's CRC over its own FECF is zero
    assert int.from_bytes(frame[-2:], "big") == _bitwise_crc(frame[:-2])


# --- space packets ----------------------------------------------------------------------


def test_space_packet_known_answer() -> None:
    pkt = SpacePacket(
        apid=0x123,
        data=b"\xaa\xbb",
        packet_type=PacketType.TC,
        seq_flags=SeqFlags.FIRST,
        seq_count=0x2A,
        sec_header_flag=True,
    )
    assert pkt.encode().hex() == "1923402a0001aabb"
    assert SpacePacket.decode(bytes.fromhex("1923402a0001aabb")) == pkt


@given(packets)
def test_space_packet_round_trip(pkt: SpacePacket) -> None:
    raw = pkt.encode()
    assert len(raw) == 6 + len(pkt.data) == peek_length(raw)
    assert SpacePacket.decode(raw) == pkt
    assert decode_prefix(raw + b"tail", 0) == (pkt, len(raw))


def test_idle_packet() -> None:
    idle = SpacePacket.idle(10)
    assert idle.is_idle and idle.encode() == bytes.fromhex("07ffc0000003") + b"\x55" * 4
    with pytest.raises(PacketError, match="shorter than 7"):
        SpacePacket.idle(6)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x00\x01\xc0", "need 6 header bytes"),
        (bytes.fromhex("0001c0000005aa"), "declares 12 bytes"),
        (bytes.fromhex("2001c0000000aa"), "version 1"),
        (bytes.fromhex("0001c0000000aabb"), "1 bytes after the end"),
    ],
)
def test_space_packet_decode_errors(raw: bytes, reason: str) -> None:
    with pytest.raises(PacketError, match=reason):
        SpacePacket.decode(raw)


@pytest.mark.parametrize(
    "kwargs",
    [{"apid": 0x800}, {"apid": -1}, {"seq_count": 0x4000}, {"data": b""}],
)
def test_space_packet_refuses_bad_fields(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {"apid": 1, "data": b"x"}
    base.update(kwargs)
    with pytest.raises(PacketError):
        SpacePacket(**base)  # type: ignore[arg-type]


def test_decoded_packet_is_a_real_frozen_dataclass() -> None:
    pkt = SpacePacket.decode(SpacePacket(apid=5, data=b"ab").encode())
    assert dataclasses.replace(pkt, seq_count=3).seq_count == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        pkt.apid = 7  # type: ignore[misc]
    assert hash(pkt) == hash(SpacePacket(apid=5, data=b"ab"))


@settings(max_examples=300)
@given(st.binary(max_size=80))
def test_space_packet_decoder_fuzz_random(raw: bytes) -> None:
    try:
        pkt = SpacePacket.decode(raw)
    except CcsdsError:
        return
    assert pkt.encode() == raw


@settings(max_examples=300)
@given(packets, st.data())
def test_space_packet_decoder_fuzz_mutated(pkt: SpacePacket, data: st.DataObject) -> None:
    raw = bytearray(pkt.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    for candidate in (bytes(raw), bytes(raw[:cut])):
        with contextlib.suppress(CcsdsError):
            SpacePacket.decode(candidate)


# --- PUS-C --------------------------------------------------------------------------------


def test_pus_tc_known_answer() -> None:
    # Same bytes as spacepackets' documented ping TC (apid 1, seq 22).
    tc = PusTc(apid=0x01, service=17, subservice=1, seq_count=22)
    assert tc.encode().hex() == "1801c01600062f11010000ab62"
    assert PusTc.decode(tc.encode()) == tc


def test_pus_tm_known_answer() -> None:
    tm = PusTm(apid=0x01, service=17, subservice=2, seq_count=5, time=bytes.fromhex("000000018000"))
    raw = tm.encode()
    assert raw[:13].hex() == "0801c005000e20110200000000"
    assert raw[13:19].hex() == "000000018000"
    assert crc16(raw) == 0
    assert PusTm.decode(raw) == tm


pus_tcs = st.builds(
    PusTc,
    apid=st.integers(0, 0x7FF),
    service=st.integers(0, 255),
    subservice=st.integers(0, 255),
    app_data=st.binary(max_size=100),
    seq_count=st.integers(0, 0x3FFF),
    source_id=st.integers(0, 0xFFFF),
    ack_flags=st.integers(0, 15),
    seq_flags=st.sampled_from(SeqFlags),
)
pus_tms = st.builds(
    PusTm,
    apid=st.integers(0, 0x7FF),
    service=st.integers(0, 255),
    subservice=st.integers(0, 255),
    app_data=st.binary(max_size=100),
    time=st.binary(min_size=6, max_size=6),
    seq_count=st.integers(0, 0x3FFF),
    msg_counter=st.integers(0, 0xFFFF),
    dest_id=st.integers(0, 0xFFFF),
    time_ref_status=st.integers(0, 15),
)


@given(pus_tcs)
def test_pus_tc_round_trip(tc: PusTc) -> None:
    raw = tc.encode()
    assert PusTc.decode(raw) == tc
    assert PusTc.from_packet(SpacePacket.decode(raw)) == tc


@given(pus_tms)
def test_pus_tm_round_trip(tm: PusTm) -> None:
    raw = tm.encode()
    assert PusTm.decode(raw) == tm
    assert PusTm.from_packet(SpacePacket.decode(raw)) == tm


def test_pus_pec_error_names_both_values() -> None:
    raw = bytearray(PusTc(apid=1, service=17, subservice=1).encode())
    raw[-1] ^= 0xFF
    with pytest.raises(CrcError, match="does not match computed") as err:
        PusTc.decode(bytes(raw))
    assert err.value.offset == len(raw) - 2


def test_pus_wrong_kind_and_version() -> None:
    tm = PusTm(apid=1, service=3, subservice=25).encode()
    with pytest.raises(PacketError, match="expected a telecommand"):
        PusTc.decode(tm)
    tc = bytearray(PusTc(apid=1, service=17, subservice=1).encode())
    tc[6] = (1 << 4) | (tc[6] & 0xF)  # PUS version 1
    tc[-2:] = crc16(bytes(tc[:-2])).to_bytes(2, "big")
    with pytest.raises(PacketError, match="PUS version 1"):
        PusTc.decode(bytes(tc))


@settings(max_examples=300)
@given(st.one_of(pus_tcs.map(lambda t: t.encode()), pus_tms.map(lambda t: t.encode())), st.data())
def test_pus_decoders_fuzz(raw: bytes, data: st.DataObject) -> None:
    mutated = bytearray(raw)
    for _ in range(data.draw(st.integers(0, 3))):
        i = data.draw(st.integers(0, len(mutated) - 1))
        mutated[i] ^= data.draw(st.integers(1, 255))
    cut = data.draw(st.integers(0, len(mutated)))
    for candidate in (bytes(mutated), bytes(mutated[:cut]), data.draw(st.binary(max_size=40))):
        for decode in (PusTc.decode, PusTm.decode):
            with contextlib.suppress(CcsdsError):
                decode(candidate)


# --- sequence counts, segmentation, stream extraction ----------------------------------


def test_sequence_counter_wraps_per_apid() -> None:
    counter = SequenceCounter()
    for _ in range(0x3FFF):
        counter.next(1)
    assert counter.next(1) == 0x3FFF
    assert counter.next(1) == 0
    assert counter.next(2) == 0


def test_sequence_checker_reports_gaps_across_the_wrap() -> None:
    chk = SequenceChecker()
    assert chk.check(9, 0x3FFE) == 0
    assert chk.check(9, 0x3FFF) == 0
    assert chk.check(9, 2) == 2  # 0 and 1 lost across the wrap
    assert chk.check(9, 1) == 0  # late: out of order, not a gap
    assert chk.check(3, 100) == 0  # APIDs are independent
    assert chk.stats == {"packets": 5, "gaps": 1, "missing": 2, "out_of_order": 1}


@given(st.binary(min_size=1, max_size=2000), st.integers(1, 300))
def test_segmentation_round_trip(user: bytes, max_len: int) -> None:
    parts = segment(0x55, user, max_len, SequenceCounter())
    assert all(len(p.data) <= max_len for p in parts)
    r = Reassembler()
    results = [r.push(SpacePacket.decode(p.encode())) for p in parts]
    assert results[-1] == user and all(x is None for x in results[:-1])


def test_reassembler_drops_incomplete_groups() -> None:
    parts = segment(7, bytes(range(250)), 100, SequenceCounter())
    r = Reassembler()
    assert r.push(parts[0]) is None
    assert r.push(parts[2]) is None  # middle segment lost: count jumps
    assert r.stats["dropped_incomplete"] == 1
    assert r.push(parts[1]) is None  # orphan continuation
    assert r.stats["dropped_orphan"] == 1
    assert r.push(SpacePacket(apid=7, data=b"whole")) == b"whole"


def test_extractor_skips_garbage_and_waits_for_halves() -> None:
    pkts = [SpacePacket(apid=a, data=bytes([a]) * a).encode() for a in (1, 2, 30)]
    stream = b"\xff\xfe" + pkts[0] + b"\xe0" + pkts[1] + SpacePacket.idle(9).encode() + pkts[2]
    ext = PacketExtractor()
    out: list[bytes] = []
    for i in range(0, len(stream), 5):
        out += ext.feed(stream[i : i + 5])
    assert out == pkts
    assert ext.stats["bytes_skipped"] == 3 and ext.stats["idle_packets"] == 1


def test_extractor_apid_filter_resyncs() -> None:
    good = SpacePacket(apid=0x10, data=b"ok").encode()
    other = SpacePacket(apid=0x11, data=b"??").encode()
    ext = PacketExtractor(apids=[0x10])
    assert ext.feed(other + good) == [good]


@settings(max_examples=200)
@given(st.lists(st.binary(max_size=50), max_size=10))
def test_extractor_fuzz(chunks: list[bytes]) -> None:
    ext = PacketExtractor(max_len=200)
    for chunk in chunks:
        for pkt in ext.feed(chunk):
            assert SpacePacket.decode(pkt).encode() == pkt


@given(packets)
def test_encode_packet_matches_the_dataclass(pkt: SpacePacket) -> None:
    raw = encode_packet(
        pkt.apid, pkt.data, pkt.packet_type, pkt.seq_flags, pkt.seq_count, pkt.sec_header_flag
    )
    assert raw == pkt.encode()


@pytest.mark.parametrize(("apid", "data", "count"), [(0x800, b"x", 0), (1, b"", 0), (1, b"x", -1)])
def test_encode_packet_checks_fields(apid: int, data: bytes, count: int) -> None:
    with pytest.raises(PacketError):
        encode_packet(apid, data, seq_count=count)
