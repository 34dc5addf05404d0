"""The simulated RF channel: passes only, bit errors, drops, the downlink rate; and the
link layers' answer to it (BCH on the uplink, FECF on the downlink)."""

from __future__ import annotations

import pytest

from fsw.ccsds import GroundLink, PusTc, PusTm, SpacecraftLink
from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig
from hil.sim.channel import ChannelConfig, RfChannel
from hil.sim.errors import WorldError

CFG = LinkConfig.load(TEST_KEY_FILE)
CADU = 4 + CFG.tm_frame_len
PASS = [(100.0, 700.0)]


def test_nothing_gets_through_outside_a_pass() -> None:
    ch = RfChannel(ChannelConfig(uplink_drop=0.0, downlink_drop=0.0), PASS, seed=1, cadu_len=CADU)
    cadus = SpacecraftLink(CFG).send([PusTm(apid=5, service=3, subservice=25).encode()])
    assert ch.uplink(b"\xeb\x90" + bytes(10), 50.0) == b""
    assert ch.downlink(cadus, 800.0) == b""
    assert ch.downlink(cadus, 400.0) != b""
    assert (ch.stats["cltus_blocked"], ch.stats["cadus_sent"]) == (1, 1)
    assert RfChannel(ChannelConfig(passes_only=False), PASS).visible(50.0)


def test_bit_errors_and_drops_follow_the_configured_rates() -> None:
    ch = RfChannel(ChannelConfig(uplink_ber=1e-3, uplink_drop=0.1), PASS, seed=7)
    data = bytes(125)  # 1000 bits: about one flip each
    out = [ch.uplink(data, 200.0) for _ in range(2000)]
    dropped = sum(o == b"" for o in out)
    flips = sum(bin(b).count("1") for o in out for b in o)
    assert 150 < dropped < 250  # 10 % of 2000
    assert 1500 < flips < 2100  # ~1 per surviving CLTU
    assert ch.stats["bits_flipped_up"] == flips


def test_same_seed_same_errors() -> None:
    cfg = ChannelConfig(uplink_ber=1e-3, uplink_drop=0.2)
    a, b = RfChannel(cfg, PASS, seed=3), RfChannel(cfg, PASS, seed=3)
    data = bytes(range(200))
    assert [a.uplink(data, 200.0) for _ in range(50)] == [b.uplink(data, 200.0) for _ in range(50)]


def test_bch_corrects_single_bit_errors_and_cop1_gets_every_command_through() -> None:
    """Through a noisy, lossy uplink every TC arrives once, in order (BCH + COP-1)."""
    sc, gnd = SpacecraftLink(CFG), GroundLink(CFG)
    ch = RfChannel(
        ChannelConfig(
            uplink_ber=3e-4, uplink_drop=0.2, downlink_drop=0.0, downlink_ber=0.0, passes_only=False
        ),
        [],
        seed=11,
        cadu_len=CADU,
    )
    tcs = [PusTc(apid=100, service=17, subservice=1, seq_count=i).encode() for i in range(12)]
    got: list[bytes] = []
    now = 0.0
    for tc in tcs:
        got += sc.receive(ch.uplink(gnd.send_tc(tc, now_s=now), now))
    for _ in range(200):  # ground: retransmit on T1; spacecraft: CLCW in every TM frame
        now += 0.5
        for cltu in gnd.poll(now):
            got += sc.receive(ch.uplink(cltu, now))
        gnd.receive(ch.downlink(sc.idle_frame(), now), now_s=now)
        if got == tcs and gnd.fop.outstanding == 0:
            break
    assert got == tcs
    assert ch.stats["cltus_dropped"] > 0 and sc.counters["bits_corrected"] > 0


def test_a_corrupted_tm_frame_is_rejected_on_the_ground() -> None:
    sc, gnd = SpacecraftLink(CFG), GroundLink(CFG)
    ch = RfChannel(ChannelConfig(downlink_ber=2e-4, downlink_drop=0.0), PASS, seed=5, cadu_len=CADU)
    tms = [
        PusTm(apid=102, service=3, subservice=25, seq_count=i, app_data=bytes(900)).encode()
        for i in range(40)
    ]
    got = []
    for tm in tms:
        got += gnd.receive(ch.downlink(sc.send([tm]), 300.0), now_s=300.0)
    hit = ch.stats["cadus_corrupted"]
    assert hit > 5
    assert len(got) == len(tms) - hit  # every frame with an error is lost, no other
    assert set(got) <= set(tms)


def test_downlink_rate_budget() -> None:
    ch = RfChannel(ChannelConfig(downlink_bps=8 * 2000.0), PASS, cadu_len=CADU)
    ch.refill(1.0, 50.0)
    assert ch.budget_bytes == 0.0  # no credit outside a pass
    ch.refill(1.0, 200.0)
    assert ch.budget_bytes == pytest.approx(2000.0)
    ch.refill(5.0, 201.0)
    assert ch.budget_bytes == pytest.approx(2000.0)  # at most a second banked
    ch.downlink(bytes(3 * CADU), 202.0)
    assert ch.budget_bytes == pytest.approx(2000.0 - 3 * CADU)
    with pytest.raises(WorldError, match="whole"):
        ch.downlink(bytes(CADU + 1), 202.0)
