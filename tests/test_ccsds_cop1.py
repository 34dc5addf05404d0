"""COP-1: the CLCW, FARM-1 (flight) and FOP-1 (ground), alone and over a lossy link."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.ccsds import (
    CcsdsError,
    Clcw,
    CopError,
    Farm1,
    FarmState,
    FarmVerdict,
    Fop1,
    FopState,
    FrameError,
    GroundLink,
    InitMode,
    LinkConfig,
    PusTc,
    SpacecraftLink,
    TcFrame,
    crc16,
    encode_cltu,
)
from fsw.ccsds.config import TEST_KEY_FILE
from fsw.ccsds.tcframe import tc_header

# --- CLCW -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clcw", "hex_"),
    [
        (Clcw(vcid=0, report_value=0), "01000000"),
        (Clcw(vcid=63, report_value=255), "01fc00ff"),
        (Clcw(vcid=0, report_value=0, no_rf_available=True), "01008000"),
        (Clcw(vcid=0, report_value=0, no_bit_lock=True), "01004000"),
        (Clcw(vcid=0, report_value=0, lockout=True), "01002000"),
        (Clcw(vcid=0, report_value=0, wait=True), "01001000"),
        (Clcw(vcid=0, report_value=0, retransmit=True), "01000800"),
        (Clcw(vcid=0, report_value=0, farm_b_counter=3), "01000600"),
        (Clcw(vcid=0, report_value=0, status=7), "1d000000"),
    ],
)
def test_clcw_bits(clcw: Clcw, hex_: str) -> None:
    assert clcw.encode().hex() == hex_
    assert Clcw.decode(bytes.fromhex(hex_)) == clcw


def test_clcw_decode_errors() -> None:
    with pytest.raises(FrameError, match="type-2"):
        Clcw.decode(b"\x81\x00\x00\x00")
    with pytest.raises(FrameError, match="version 1"):
        Clcw.decode(b"\x21\x00\x00\x00")
    with pytest.raises(FrameError, match="4 bytes"):
        Clcw.decode(b"\x01\x00")


# --- FARM-1 ---------------------------------------------------------------------------------


def ad(seq: int, vcid: int = 0) -> TcFrame:
    return TcFrame(42, vcid, b"cmd", seq=seq)


def test_farm_accepts_in_order_only() -> None:
    farm = Farm1(vcid=0, window=10)
    assert farm.handle(ad(0)) is FarmVerdict.ACCEPTED_AD
    assert farm.handle(ad(0)) is FarmVerdict.DISCARDED_DUPLICATE
    assert farm.handle(ad(2)) is FarmVerdict.DISCARDED_GAP
    assert farm.clcw().retransmit and farm.vr == 1
    assert farm.handle(ad(1)) is FarmVerdict.ACCEPTED_AD
    assert not farm.clcw().retransmit and farm.vr == 2


def test_farm_window_edges_and_lockout_recovery_by_unlock() -> None:
    farm = Farm1(vcid=0, window=10)  # PW = NW = 5
    farm.vr = 250
    assert farm.handle(ad(254)) is FarmVerdict.DISCARDED_GAP  # +4: inside the positive window
    assert farm.handle(ad(245)) is FarmVerdict.DISCARDED_DUPLICATE  # -5: inside the negative one
    assert farm.state is FarmState.OPEN
    assert farm.handle(ad(255)) is FarmVerdict.DISCARDED_ENTERED_LOCKOUT  # +5: lockout area
    assert farm.state is FarmState.LOCKOUT and farm.clcw().lockout
    assert farm.handle(ad(250)) is FarmVerdict.DISCARDED_IN_LOCKOUT
    assert farm.handle(TcFrame(42, 0, b"x", bypass=True)) is FarmVerdict.ACCEPTED_BD
    assert farm.handle(TcFrame.set_vr(42, 0, 9)) is FarmVerdict.IGNORED_SET_VR_IN_LOCKOUT
    assert farm.handle(TcFrame.unlock(42, 0)) is FarmVerdict.ACCEPTED_UNLOCK
    assert farm.state is FarmState.OPEN and farm.vr == 250
    assert farm.clcw().farm_b_counter == 3  # BD + Set V(R) + Unlock
    assert farm.handle(ad(250)) is FarmVerdict.ACCEPTED_AD


def test_farm_set_vr_and_wait() -> None:
    farm = Farm1(vcid=0)
    assert farm.handle(TcFrame.set_vr(42, 0, 100)) is FarmVerdict.ACCEPTED_SET_VR
    assert farm.vr == 100
    farm.set_buffer_available(False)
    assert farm.handle(ad(100)) is FarmVerdict.DISCARDED_NO_BUFFER
    assert farm.state is FarmState.WAIT and farm.clcw().wait and farm.clcw().retransmit
    farm.set_buffer_available(True)
    assert farm.state is FarmState.OPEN
    assert farm.handle(ad(100)) is FarmVerdict.ACCEPTED_AD


def test_farm_refuses_bad_configuration_and_foreign_frames() -> None:
    with pytest.raises(CopError):
        Farm1(vcid=0, window=7)
    with pytest.raises(CopError, match="VC 1"):
        Farm1(vcid=0).handle(ad(0, vcid=1))
    bad_bc = TcFrame(42, 0, b"\x99", bypass=True, control=True)
    assert Farm1(vcid=0).handle(bad_bc) is FarmVerdict.DISCARDED_BAD_CONTROL


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=20), max_size=30), st.integers(0, 255))
def test_farm_fuzz_keeps_consistent_state(raws: list[bytes], start_vr: int) -> None:
    """Random bytes through frame decode into FARM-1: only CcsdsError, and the FARM's
    state stays coherent (V(R) moves only on accepted AD/Set V(R), counters in range)."""
    farm = Farm1(vcid=0, window=20)
    farm.vr = start_vr
    for raw in raws:
        before = farm.vr
        try:
            frame = TcFrame.decode(raw, has_segment_header=bool(len(raw) & 1))
            if frame.vcid != 0:
                continue
            verdict = farm.handle(frame)
        except CcsdsError:
            continue
        assert 0 <= farm.vr <= 255 and 0 <= farm.farm_b_counter <= 3
        if verdict is FarmVerdict.ACCEPTED_AD:
            assert farm.vr == (before + 1) & 0xFF
        elif verdict is not FarmVerdict.ACCEPTED_SET_VR:
            assert farm.vr == before
        if farm.lockout:
            assert farm.state is FarmState.LOCKOUT
        Clcw.decode(farm.clcw().encode())


# --- FOP-1 ----------------------------------------------------------------------------------


def make_fop(**kwargs: object) -> Fop1:
    fop = Fop1(42, 0, build_ad=lambda ns, d: TcFrame(42, 0, d, seq=ns).encode(), **kwargs)  # type: ignore[arg-type]
    fop.initiate_ad(now_s=0.0)
    return fop


def seqs(frames: list[bytes]) -> list[int]:
    return [TcFrame.decode(f).seq for f in frames]


def test_fop_window_and_acknowledgement() -> None:
    fop = make_fop(window=3)
    for i in range(5):
        fop.request(bytes([i]))
    assert seqs(fop.poll(0.0)) == [0, 1, 2]
    assert fop.outstanding == 3 and fop.queued == 2
    fop.on_clcw(Clcw(0, report_value=2), now_s=0.1)
    assert fop.outstanding == 1
    assert seqs(fop.poll(0.1)) == [3, 4]


def test_fop_retransmits_on_clcw_request_once() -> None:
    fop = make_fop(window=5)
    for i in range(3):
        fop.request(bytes([i]))
    fop.poll(0.0)
    fop.on_clcw(Clcw(0, report_value=1, retransmit=True), now_s=0.1)
    assert fop.state is FopState.RETRANSMIT_WITHOUT_WAIT
    assert seqs(fop.poll(0.1)) == [1, 2]
    fop.on_clcw(Clcw(0, report_value=1, retransmit=True), now_s=0.2)  # same report again
    assert fop.poll(0.2) == []  # no second retransmission before T1
    fop.on_clcw(Clcw(0, report_value=3), now_s=0.3)
    assert fop.state is FopState.ACTIVE and fop.outstanding == 0


def test_fop_retransmits_on_timer_then_alerts_at_the_limit() -> None:
    fop = make_fop(t1_s=1.0, transmission_limit=3)
    fop.request(b"x")
    assert seqs(fop.poll(0.0)) == [0]
    assert fop.poll(0.5) == []
    assert seqs(fop.poll(1.0)) == [0]
    assert seqs(fop.poll(2.0)) == [0]
    assert fop.poll(3.0) == []  # third expiry: limit reached
    assert fop.state is FopState.INITIAL and "T1 expired" in (fop.alert or "")
    with pytest.raises(CopError, match="not running"):
        fop.request(b"y")


def test_fop_alerts_on_lockout_and_bad_nr() -> None:
    fop = make_fop()
    fop.request(b"x")
    fop.poll(0.0)
    fop.on_clcw(Clcw(0, report_value=0, lockout=True), now_s=0.1)
    assert fop.state is FopState.INITIAL and "Lockout" in (fop.alert or "")
    fop = make_fop()
    fop.request(b"x")
    fop.poll(0.0)
    fop.on_clcw(Clcw(0, report_value=5), now_s=0.1)
    assert fop.state is FopState.INITIAL and "N(R)=5" in (fop.alert or "")


def test_fop_initiate_with_set_vr_waits_for_confirmation() -> None:
    fop = make_fop()
    fop.initiate_ad(0.0, InitMode.WITH_SET_VR, vr=40)
    (bc,) = fop.poll(0.0)
    assert TcFrame.decode(bc).bc_command() == ("set_vr", 40)
    assert fop.state is FopState.INITIALISING_WITH_BC
    fop.on_clcw(Clcw(0, report_value=3), now_s=0.1)  # stale CLCW: keeps waiting
    assert fop.state is FopState.INITIALISING_WITH_BC
    assert len(fop.poll(2.5)) == 1  # BC frame retransmitted on T1
    fop.on_clcw(Clcw(0, report_value=40), now_s=2.6)
    assert fop.state is FopState.ACTIVE
    fop.request(b"y")
    assert seqs(fop.poll(2.6)) == [40]
    with pytest.raises(CopError):
        fop.initiate_ad(0.0, InitMode.WITH_SET_VR)


# --- the whole link: soak, lockout and recovery ----------------------------------------------


class LossyLink:
    """Drops and reorders whole CLTUs/CADUs, as a bad RF link would."""

    def __init__(self, seed: int, drop: float, reorder: float) -> None:
        self.rng = random.Random(seed)
        self.drop = drop
        self.reorder = reorder
        self.held: list[bytes] = []
        self.dropped = 0
        self.reordered = 0

    def carry(self, items: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        for item in items:
            if self.rng.random() < self.drop:
                self.dropped += 1
                continue
            if self.rng.random() < self.reorder:
                self.held.append(item)  # delivered after later traffic
                self.reordered += 1
                continue
            out.append(item)
            if self.held and self.rng.random() < 0.5:
                out.append(self.held.pop(0))
        return out


def test_one_thousand_commands_over_a_lossy_reordering_link() -> None:
    cfg = LinkConfig.load(TEST_KEY_FILE)
    sc, gnd = SpacecraftLink(cfg), GroundLink(cfg)
    up = LossyLink(seed=11, drop=0.2, reorder=0.05)
    down = LossyLink(seed=12, drop=0.2, reorder=0.0)
    commands = [
        PusTc(
            apid=0x30, service=8, subservice=1, seq_count=i, app_data=i.to_bytes(4, "big")
        ).encode()
        for i in range(1000)
    ]
    delivered: list[bytes] = []
    todo = list(commands)
    now = 0.0
    for _ in range(20_000):
        if len(delivered) == len(commands) and gnd.fop.outstanding == 0:
            break
        now += 0.1
        cltus = gnd.poll(now)
        if todo and gnd.fop.queued < 8:
            cltus.append(gnd.send_tc(todo.pop(0), now_s=now))
        for cltu in up.carry([c for c in cltus if c]):
            delivered += sc.receive(cltu)
        for cadu in down.carry([sc.idle_frame()]):
            gnd.receive(cadu, now_s=now)
    assert delivered == commands  # every command exactly once, in order
    assert up.dropped > 150 and up.reordered > 20
    assert gnd.link_stats["fop_ad_retransmissions"] > 0
    assert gnd.fop.state is FopState.ACTIVE and gnd.stats["fop_alerts"] == 0
    assert sc.counters["frames_accepted"] == 1000 and sc.counters["farm_lockouts"] == 0


def test_lockout_and_recovery_by_unlock() -> None:
    cfg = LinkConfig.load(TEST_KEY_FILE)
    sc, gnd = SpacecraftLink(cfg), GroundLink(cfg)
    first = PusTc(apid=1, service=17, subservice=1, seq_count=0).encode()
    assert sc.receive(gnd.send_tc(first, now_s=0.0)) == [first]
    # An authentic frame far outside the FARM window (e.g. from a second ground station
    # with its own sequence numbers) locks FARM-1 out.
    sa = cfg.make_sa(1)
    sa.arsn = 500
    seg = bytes([0xC0 | cfg.map_id])
    header = tc_header(42, 0, 5 + 1 + sa.overhead + len(first) + 2, 100, False, False)
    body = header + seg + sa.protect(first, header + seg)
    assert sc.receive(encode_cltu(body + crc16(body).to_bytes(2, "big"))) == []
    assert sc.counters["farm_lockout"] == 1
    # Commands are now refused, and the ground learns why from the CLCW.
    second = PusTc(apid=1, service=17, subservice=1, seq_count=1).encode()
    assert sc.receive(gnd.send_tc(second, now_s=1.0)) == []
    gnd.receive(sc.idle_frame(), now_s=1.1)
    assert gnd.fop_state is FopState.INITIAL and "Lockout" in (gnd.fop.alert or "")
    # Recovery: initiate AD with Unlock; the next CLCW confirms; commanding resumes.
    for cltu in gnd.initiate(2.0, InitMode.WITH_UNLOCK):
        assert sc.receive(cltu) == []
    assert sc.counters["farm_lockout"] == 0
    gnd.receive(sc.idle_frame(), now_s=2.1)
    assert gnd.fop_state is FopState.ACTIVE
    assert sc.receive(gnd.send_tc(second, now_s=2.2)) == [second]


def test_bypass_frames_pass_a_locked_out_farm() -> None:
    cfg = LinkConfig.load(TEST_KEY_FILE)
    sc, gnd = SpacecraftLink(cfg), GroundLink(cfg)
    sc.farm.lockout = True
    tc = PusTc(apid=1, service=17, subservice=1).encode()
    assert sc.receive(gnd.send_tc(tc, now_s=0.0)) == []
    assert sc.receive(gnd.send_tc(tc, bypass=True, now_s=0.0)) == [tc]
    assert sc.farm.farm_b_counter == 1
    # Under SDLS a bare (unauthenticated) Unlock is refused; the ground's, which carries
    # the security header and MAC, unlocks.
    raw_bc = encode_cltu(TcFrame.unlock(42, 0).encode())
    assert sc.receive(raw_bc) == [] and sc.farm.lockout
    assert sc.counters["sdls_unknown_spi"] == 1
    for cltu in gnd.initiate(1.0, InitMode.WITH_UNLOCK):
        assert sc.receive(cltu) == []
    assert not sc.farm.lockout and sc.counters["bc_frames"] == 2


def test_without_sdls_a_plain_unlock_unlocks() -> None:
    cfg = LinkConfig(spacecraft_id=42)
    sc = SpacecraftLink(cfg)
    sc.farm.lockout = True
    assert sc.receive(encode_cltu(TcFrame.unlock(42, 0).encode())) == []
    assert not sc.farm.lockout


@settings(max_examples=300)
@given(st.binary(min_size=0, max_size=6))
def test_clcw_decoder_fuzz(raw: bytes) -> None:
    try:
        clcw = Clcw.decode(raw)
    except CcsdsError:
        return
    spare_bits = 0x00030100  # the two spares after the VC id and the one before V(R)
    assert clcw.encode() == (int.from_bytes(raw, "big") & ~spare_bits).to_bytes(4, "big")
    assert Clcw.decode(clcw.encode()) == clcw
