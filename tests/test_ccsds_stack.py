"""The composed links: SpacecraftLink and GroundLink end to end, counters, keys, junk."""

from __future__ import annotations

import dataclasses
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.ccsds import (
    FopState,
    FrameError,
    GroundLink,
    InitMode,
    LinkConfig,
    PusTc,
    PusTm,
    SpacecraftLink,
    TcFrame,
    UnknownSpiError,
    encode_cltu,
)
from fsw.ccsds.config import TEST_KEY_FILE

CFG = LinkConfig.load(TEST_KEY_FILE)


def tc(n: int = 0, size: int = 4) -> bytes:
    return PusTc(
        apid=0x21, service=8, subservice=1, seq_count=n, app_data=os.urandom(size)
    ).encode()


def tm(n: int = 0, size: int = 20) -> bytes:
    return PusTm(
        apid=0x22, service=3, subservice=25, seq_count=n, app_data=os.urandom(size)
    ).encode()


@pytest.mark.parametrize("spi", [None, 1, 2, 3])
def test_uplink_round_trip_with_each_security_setting(spi: int | None) -> None:
    cfg = dataclasses.replace(CFG, active_spi=spi)
    sc, gnd = SpacecraftLink(cfg), GroundLink(cfg)
    cmds = [tc(i) for i in range(5)]
    delivered = [p for c in cmds for p in sc.receive(gnd.send_tc(c, now_s=0.0))]
    assert delivered == cmds
    assert sc.counters["frames_accepted"] == 5 and sc.counters["tc_packets"] == 5
    if spi is not None:
        assert sc.counters[f"sdls_spi{spi}_arsn"] == 5


def test_large_command_is_segmented_across_frames() -> None:
    sc, gnd = SpacecraftLink(CFG), GroundLink(CFG)
    big = tc(size=3000)  # more than one 1024-byte TC frame can carry
    cltus = gnd.send_tc(big, now_s=0.0)
    assert cltus.count(b"\xeb\x90") >= 4
    assert gnd.fop.outstanding == 4
    assert sc.receive(cltus) == [big]
    assert sc.counters["frames_accepted"] == 4


def test_uplink_survives_byte_by_byte_arrival_and_noise() -> None:
    sc, gnd = SpacecraftLink(CFG), GroundLink(CFG)
    cmds = [tc(i, 40) for i in range(3)]
    stream = b"".join(b"\x55\x55\x55" + gnd.send_tc(c, now_s=0.0) for c in cmds)
    out: list[bytes] = []
    for i in range(len(stream)):
        out += sc.receive(stream[i : i + 1])
    assert out == cmds


def test_single_bit_errors_are_corrected_and_counted() -> None:
    sc, gnd = SpacecraftLink(CFG), GroundLink(CFG)
    cmd = tc(size=60)
    cltu = bytearray(gnd.send_tc(cmd, now_s=0.0))
    for blk in range(0, (len(cltu) - 10) // 8, 2):
        cltu[2 + blk * 8 + 3] ^= 0x10
    assert sc.receive(bytes(cltu)) == [cmd]
    assert sc.counters["bits_corrected"] == len(range(0, (len(cltu) - 10) // 8, 2))


def test_rejections_are_counted_by_reason() -> None:
    sc, gnd = SpacecraftLink(CFG), GroundLink(CFG)
    other_sc = GroundLink(dataclasses.replace(CFG, spacecraft_id=43))
    other_vc = GroundLink(dataclasses.replace(CFG, tc_vcid=5))
    assert sc.receive(other_sc.send_tc(tc(), now_s=0.0)) == []
    assert sc.receive(other_vc.send_tc(tc(), now_s=0.0)) == []
    wrong_key = dataclasses.replace(CFG, keys=((1, bytes(32)), *CFG.keys[1:]))
    assert sc.receive(GroundLink(wrong_key).send_tc(tc(), now_s=0.0)) == []
    no_sdls = dataclasses.replace(CFG, active_spi=None)
    assert sc.receive(GroundLink(no_sdls).send_tc(tc(), now_s=0.0)) == []  # unauthenticated
    good = gnd.send_tc(tc(), now_s=0.0)
    assert len(sc.receive(good)) == 1
    assert sc.receive(good) == []  # the same CLTU recorded and played back
    bad_fecf = bytearray(TcFrame(42, 0, b"\xc0\x00\x01", seq=1).encode())
    bad_fecf[-1] ^= 1
    assert sc.receive(encode_cltu(bytes(bad_fecf))) == []
    c = sc.counters
    assert c["frames_rejected_scid"] == 1 and c["frames_rejected_vcid"] == 1
    assert c["sdls_bad_mac"] == 1 and c["sdls_unknown_spi"] == 1
    # An authentic frame played back while FARM-1 still remembers its number is counted as
    # a duplicate (exactly what a COP-1 resend looks like), not as an SDLS replay alarm.
    assert c["frames_duplicate"] == 1 and c["sdls_replays"] == 0
    assert c["frames_rejected_fecf"] == 1
    assert c["frames_accepted"] == 1
    sc.reset_counters()
    assert sc.counters["frames_accepted"] == 0 and sc.counters["farm_vr"] == 1


def test_key_rotation_by_command() -> None:
    sc, gnd = SpacecraftLink(CFG), GroundLink(CFG)
    assert len(sc.receive(gnd.send_tc(tc(1), now_s=0.0))) == 1
    sc.rotate_key(1, key_id=2)  # the rotation command executed on board
    assert sc.receive(gnd.send_tc(tc(2), now_s=0.0)) == []  # ground still on the old key
    assert sc.counters["sdls_bad_mac"] == 1
    gnd.rotate_key(1, key_id=2)
    # The frame sent with the old key can never be accepted: restart the AD service.
    gnd.initiate(1.0, InitMode.WITH_UNLOCK)
    gnd.receive(sc.idle_frame(), now_s=1.1)
    assert gnd.fop_state is FopState.ACTIVE
    cmd = tc(3)
    assert sc.receive(gnd.send_tc(cmd, now_s=1.2)) == [cmd]
    assert sc.counters["key_rotations"] == 1
    with pytest.raises(UnknownSpiError):
        sc.rotate_key(9, key_id=1)


def test_downlink_round_trip_on_several_vcs_with_clcw() -> None:
    sc, gnd = SpacecraftLink(CFG), GroundLink(CFG)
    hk = [tm(i, 300) for i in range(10)]
    science = [tm(i, 2000) for i in range(3)]
    stream = sc.send(hk) + sc.idle_frame() + sc.send(science, vcid=1)
    # VC 1, the last of the test keys' tm_vcids, is the playback VC: held apart.
    assert gnd.receive(stream, now_s=0.0) == hk
    assert gnd.take_playback() == science and gnd.take_playback() == []
    assert gnd.last_clcw is not None and gnd.last_clcw.report_value == 0
    assert sc.counters["tm_idle_frames"] == 1 and gnd.stats["tm_packets"] == 10
    assert gnd.stats["tm_playback_packets"] == 3
    with pytest.raises(FrameError, match="not configured"):
        sc.send(hk, vcid=5)


def test_ground_counts_missing_telemetry() -> None:
    sc, gnd = SpacecraftLink(CFG), GroundLink(CFG)
    frames = [sc.send([tm(i, 1000)]) for i in range(6)]
    del frames[2]
    gnd.receive(b"".join(frames), now_s=0.0)
    assert gnd.stats["tm_packets"] == 5 and gnd.stats["tm_packets_missing"] == 1


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=6))
def test_junk_never_raises_and_never_corrupts_either_end(junk: list[bytes]) -> None:
    sc, gnd = SpacecraftLink(CFG), GroundLink(CFG)
    for chunk in junk:
        assert sc.receive(chunk) == []
        gnd.receive(chunk, now_s=0.0)
    cmd, tlm = tc(7), tm(7)
    # Junk may leave a false partial CLTU in the buffer; an idle sequence (16 x 0x55, an
    # uncorrectable codeblock in any alignment) ends it, so the real CLTU gets through.
    got = sc.receive(b"\x55" * 16 + gnd.send_tc(cmd, now_s=0.0))
    assert got == [cmd]
    assert gnd.receive(sc.send([tlm]) + sc.send([tlm]), now_s=0.1)[-1] == tlm


def test_full_window_holds_commands_until_the_clcw_acknowledges() -> None:
    sc, gnd = SpacecraftLink(CFG), GroundLink(CFG)  # FOP window 8
    cmds = [tc(i) for i in range(10)]
    sent = [gnd.send_tc(c, now_s=0.0) for c in cmds]
    assert all(sent[:8]) and sent[8:] == [b"", b""]
    assert [p for s in sent for p in sc.receive(s)] == cmds[:8]
    assert gnd.poll(0.05) == []  # still no acknowledgement: nothing to send
    gnd.receive(sc.idle_frame(), now_s=0.1)  # its CLCW reports V(R) = 8
    later = gnd.poll(0.1)
    assert len(later) == 2
    assert [p for c in later for p in sc.receive(c)] == cmds[8:]
