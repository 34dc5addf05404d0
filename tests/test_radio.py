"""The flight radio: Comms + RadioHost carry commands and telemetry over the real link."""

from __future__ import annotations

import random

import pytest

from fsw.app import build_flight
from fsw.ccsds import GroundLink, PusTc, PusTm
from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig
from fsw.comms.radio import RadioHost
from fsw.core.clock import SimClock
from fsw.core.testing import CommandEncoder, decode_downlink


@pytest.fixture
def cfg() -> LinkConfig:
    return LinkConfig.load(TEST_KEY_FILE)


def _reports(ground: GroundLink, data: bytes) -> list[tuple[int, int]]:
    return [(t.service, t.subservice) for t in map(PusTm.decode, ground.receive(data, now_s=0))]


@pytest.mark.req("COMMS-001")
def test_ping_goes_up_and_its_reports_come_down(cfg: LinkConfig) -> None:
    fs = build_flight(clock=SimClock(), link_config=cfg)
    radio, ground = RadioHost(fs), GroundLink(cfg)
    cltu = ground.send_tc(PusTc(apid=100, service=17, subservice=1, seq_count=7).encode(), now_s=0)
    assert radio.uplink(cltu) == 1
    fs.step(0)
    reports = _reports(ground, radio.downlink())
    assert reports[:4] == [(1, 1), (1, 3), (17, 2), (1, 7)]
    assert ground.fop.outstanding == 0  # the CLCW in the TM acknowledged the frame


@pytest.mark.req("COMMS-002")
def test_single_bit_errors_in_the_uplink_are_corrected_and_counted(cfg: LinkConfig) -> None:
    fs = build_flight(clock=SimClock(), link_config=cfg)
    radio, ground = RadioHost(fs), GroundLink(cfg)
    cltu = bytearray(ground.send_tc(PusTc(apid=100, service=17, subservice=1).encode(), now_s=0))
    cltu[5] ^= 0x10  # inside the first codeblock's information bytes
    assert radio.uplink(bytes(cltu)) == 1
    fs.step(1.0)
    assert fs.telemetry("comms.bits_corrected") == 1
    assert fs.telemetry("comms.frames_accepted") == 1


@pytest.mark.req("COMMS-003")
def test_forged_frames_are_rejected_counted_and_reported(cfg: LinkConfig) -> None:
    fs = build_flight(clock=SimClock(), link_config=cfg)
    radio = RadioHost(fs)
    wrong = LinkConfig.load(TEST_KEY_FILE)
    forger = GroundLink(wrong)
    forger.rotate_key(wrong.active_spi or 1, 2)  # a key the spacecraft does not use for SPI 1
    assert (
        radio.uplink(forger.send_tc(PusTc(apid=100, service=17, subservice=1).encode(), now_s=0))
        == 0
    )
    fs.step(1.0)
    assert fs.telemetry("comms.sdls_bad_mac") == 1
    assert any(e.name == "comms.SDLS_REJECTED" for e in fs.recent_events)
    assert fs.telemetry("cmd.tc_accepted") == 0


@pytest.mark.req("COMMS-004")
def test_key_rotation_by_command(cfg: LinkConfig) -> None:
    fs = build_flight(clock=SimClock(), link_config=cfg)
    radio, ground = RadioHost(fs), GroundLink(cfg)
    enc = CommandEncoder(fs)
    radio.uplink(ground.send_tc(enc.encode("comms.ROTATE_KEY", spi=1, key_id=2), now_s=0))
    fs.step(1.0)
    ground.receive(radio.downlink(), now_s=1)
    assert fs.telemetry("comms.key_rotations") == 1
    assert any(e.name == "comms.KEY_ROTATED" for e in fs.recent_events)
    # A ground still on the old key is refused ...
    stale = GroundLink(cfg)
    assert (
        radio.uplink(stale.send_tc(PusTc(apid=100, service=17, subservice=1).encode(), now_s=2))
        == 0
    )
    fs.step(1.0)
    assert fs.telemetry("comms.sdls_bad_mac") == 1
    # ... and the ground that rotated with the spacecraft is heard.
    ground.rotate_key(1, 2)
    assert (
        radio.uplink(
            ground.send_tc(PusTc(apid=100, service=17, subservice=1, seq_count=2).encode(), now_s=3)
        )
        == 1
    )


@pytest.mark.req("COMMS-004")
def test_rotating_to_a_key_not_on_board_fails_and_keeps_the_old_key(cfg: LinkConfig) -> None:
    fs = build_flight(clock=SimClock(), link_config=cfg)
    radio, ground = RadioHost(fs), GroundLink(cfg)
    enc = CommandEncoder(fs)
    raw = enc.encode("comms.ROTATE_KEY", spi=1, key_id=999)
    radio.uplink(ground.send_tc(raw, now_s=0))
    fs.step(1.0)
    fails = [r for r in decode_downlink(fs) if (r.service, r.subservice) == (1, 8)]
    assert len(fails) == 1
    assert (fails[0].fields or {}).get("failure_code") == "NOT_FOUND"
    assert fs.telemetry("comms.key_rotations") == 0


@pytest.mark.req("COMMS-007")
def test_random_uplink_bytes_never_raise(cfg: LinkConfig) -> None:
    fs = build_flight(clock=SimClock(), link_config=cfg)
    radio = RadioHost(fs)
    rng = random.Random(5)
    for _ in range(200):
        radio.uplink(bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 300))))
    fs.step(1.0)
    assert fs.telemetry("cmd.tc_accepted") == 0
    assert radio.stats["uplink_bytes"] > 0


@pytest.mark.req("COMMS-005")
def test_a_restarted_ground_resumes_sdls_numbering(cfg: LinkConfig) -> None:
    fs = build_flight(clock=SimClock(), link_config=cfg)
    radio, ground = RadioHost(fs), GroundLink(cfg)
    for n in range(3):
        radio.uplink(
            ground.send_tc(PusTc(apid=100, service=17, subservice=1, seq_count=n).encode(), now_s=n)
        )
    saved = ground.arsns()
    assert saved[cfg.active_spi or 1] == 3
    # A fresh ground numbering from 1 again is refused as a replay ...
    fresh = GroundLink(cfg)
    assert (
        radio.uplink(fresh.send_tc(PusTc(apid=100, service=17, subservice=1).encode(), now_s=10))
        == 0
    )
    fs.step(1.0)
    # (its frame 0 is a copy of one FARM-1 accepted: counted as a duplicate, not an alarm)
    assert fs.telemetry("comms.frames_duplicate") == 1
    # ... one that resumes the saved numbers passes SDLS (FARM-1 then sorts the frame number).
    resumed = GroundLink(cfg)
    resumed.resume_arsns(saved)
    resumed.resume_arsns({cfg.active_spi or 1: 0})  # never goes backwards
    assert resumed.arsns() == saved
    radio.uplink(resumed.send_tc(PusTc(apid=100, service=17, subservice=1).encode(), now_s=11))
    fs.step(1.0)
    assert fs.telemetry("comms.frames_duplicate") == 1
    assert fs.telemetry("comms.sdls_replays") == 0
    assert fs.telemetry("comms.sdls_bad_mac") == 0


@pytest.mark.req("COMMS-005")
def test_a_cop1_resend_of_an_accepted_frame_is_a_duplicate_not_a_replay_alarm(
    cfg: LinkConfig,
) -> None:
    fs = build_flight(clock=SimClock(), link_config=cfg)
    radio, ground = RadioHost(fs), GroundLink(cfg)
    cltu = ground.send_tc(PusTc(apid=100, service=17, subservice=1).encode(), now_s=0)
    assert radio.uplink(cltu) == 1
    fs.step(1.0)
    fs.downlink_packets()  # the acknowledging CLCW never reaches the ground
    resends = ground.poll(now_s=cfg.fop_t1_s + 0.5)  # timer T1 expires: FOP-1 resends
    assert resends
    assert radio.uplink(b"".join(resends)) == 0
    fs.step(1.0)
    assert fs.telemetry("comms.frames_duplicate") == 1
    assert fs.telemetry("comms.sdls_replays") == 0
    assert not any(e.name == "comms.SDLS_REJECTED" for e in fs.recent_events)
    assert fs.telemetry("cmd.tc_accepted") == 1  # executed once


@pytest.mark.req("COMMS-006")
def test_replaying_an_old_recorded_frame_raises_the_replay_alarm(cfg: LinkConfig) -> None:
    fs = build_flight(clock=SimClock(), link_config=cfg)
    radio, ground = RadioHost(fs), GroundLink(cfg)
    recorded = []
    for n in range(12):
        cltu = ground.send_tc(
            PusTc(apid=100, service=17, subservice=1, seq_count=n).encode(), now_s=n
        )
        recorded.append(cltu)
        assert radio.uplink(cltu) == 1
        fs.step(1.0)
        ground.receive(radio.downlink(), now_s=n + 0.5)  # CLCWs keep the FOP window open
    assert radio.uplink(recorded[0]) == 0  # older than FARM-1 remembers: an attack, not COP-1
    fs.step(1.0)
    assert fs.telemetry("comms.sdls_replays") == 1
    assert fs.telemetry("comms.frames_duplicate") == 0
    assert any(e.name == "comms.SDLS_REJECTED" for e in fs.recent_events)
    assert fs.telemetry("cmd.tc_accepted") == 12
