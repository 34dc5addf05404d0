"""No replay after a reboot: the link's receive state lives in storage, not in RAM.

Issue #14 measured it: authentic uplink was recorded, the flight killed and restarted,
and the replayed frames executed (MODE_SAFE_ENTER among them) because every SDLS
anti-replay number and FARM-1's V(R) lived in memory only. These tests record authentic
traffic, reboot the flight on the same storage (in process here, as a killed
``gnomon fsw run`` process in the slow test at the end) and replay it: nothing executes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from fsw.app import build_flight
from fsw.ccsds import GroundLink, InitMode, PusTc, PusTm, TcFrame, encode_cltu
from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig
from fsw.ccsds.crc import fecf16
from fsw.ccsds.errors import LinkStateError
from fsw.ccsds.linkstate import (
    LinkState,
    MemoryStateStore,
    SaReset,
    SaState,
    StateStatus,
    StoredState,
)
from fsw.ccsds.stack import SpacecraftLink
from fsw.ccsds.tcframe import tc_header
from fsw.comms.radio import NvLinkStateStore, RadioHost
from fsw.core.clock import SimClock, WallClock
from fsw.core.flight import FlightSoftware
from fsw.core.nvstore import DirNvStore, MemNvStore
from fsw.core.testing import CommandEncoder
from fsw.link import BaseTransport, memory_pair, open_link
from fsw.main import StartupError, provision_link_state

ROOT = Path(__file__).resolve().parents[1]
CFG = LinkConfig.load(TEST_KEY_FILE)


def boot(storage: Path) -> tuple[FlightSoftware, RadioHost]:
    """A flight on ``storage`` (a reboot is just another boot on the same directory)."""
    fs = build_flight(clock=SimClock(), storage_dir=storage, link_config=CFG)
    return fs, RadioHost(fs)


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    provision_link_state(tmp_path / "nv", None)
    return tmp_path / "nv"


def fly(fs: FlightSoftware, radio: RadioHost, ground: GroundLink, cltu: bytes, t: float) -> int:
    """Uplink one CLTU, run the flight a second, feed the downlink (CLCW) to the ground."""
    n = radio.uplink(cltu)
    fs.step(1.0)
    ground.receive(radio.downlink(), now_s=t + 0.5)
    return n


def record_session(fs: FlightSoftware, radio: RadioHost, ground: GroundLink) -> list[bytes]:
    """Authentic traffic as an eavesdropper records it: PINGs, then MODE_SAFE_ENTER."""
    enc = CommandEncoder(fs)
    recorded = []
    for n, name in enumerate(("PING", "PING", "MODE_SAFE_ENTER", "PING")):
        cltu = ground.send_tc(enc.encode(name), now_s=float(n))
        recorded.append(cltu)
        assert fly(fs, radio, ground, cltu, float(n)) == 1
    assert fs.mode.name == "SAFE"
    assert fs.telemetry("cmd.tc_accepted") == 4
    return recorded


def executed(fs: FlightSoftware) -> int:
    return int(fs.telemetry("cmd.tc_received"))


# --- replay after a reboot ------------------------------------------------------------


@pytest.mark.req("COMMS-008")
def test_recorded_frames_replayed_after_a_reboot_execute_nothing(storage: Path) -> None:
    fs, radio = boot(storage)
    ground = GroundLink(CFG)
    recorded = record_session(fs, radio, ground)
    # A frame the flight never received, numbered below the last one it accepted.
    delayed = ground.send_tc(CommandEncoder(fs).encode("PING"), bypass=True, now_s=4.0)
    assert fly(fs, radio, ground, ground.send_tc(CommandEncoder(fs).encode("PING"), now_s=4.0), 4.0)
    recorded.append(delayed)
    del fs, radio  # the crash: nothing is shut down cleanly
    fs2, radio2 = boot(storage)
    report = fs2.component("comms").link.state_report  # type: ignore[attr-defined]
    assert report.status is StateStatus.RESTORED
    assert fs2.mode.name == "NOMINAL"
    for cltu in recorded * 3:
        assert radio2.uplink(cltu) == 0
    fs2.step(1.0)
    assert executed(fs2) == 0
    assert fs2.mode.name == "NOMINAL"  # the replayed MODE_SAFE_ENTER did nothing
    assert fs2.telemetry("comms.sdls_replays") == 3 * len(recorded)
    assert fs2.telemetry("comms.farm_vr") == 5  # V(R) came back too
    assert any(e.name == "comms.SDLS_REJECTED" for e in fs2.recent_events)
    # ... and the ground that sent them carries on commanding.
    ping = PusTc(apid=100, service=17, subservice=1, seq_count=9).encode()
    assert fly(fs2, radio2, ground, ground.send_tc(ping, now_s=10.0), 10.0) == 1
    assert executed(fs2) == 1


@pytest.mark.req("COMMS-008", "COMMS-009")
def test_forged_set_vr_frames_before_the_replay_change_nothing(storage: Path) -> None:
    fs, radio = boot(storage)
    ground = GroundLink(CFG)
    recorded = record_session(fs, radio, ground)
    fs2, radio2 = boot(storage)
    for vr in range(256):  # every V(R) an attacker could try, then the recorded frames
        radio2.uplink(encode_cltu(TcFrame.set_vr(CFG.spacecraft_id, CFG.tc_vcid, vr).encode()))
        for cltu in recorded:
            radio2.uplink(cltu)
    radio2.uplink(encode_cltu(TcFrame.unlock(CFG.spacecraft_id, CFG.tc_vcid).encode()))
    fs2.step(1.0)
    assert executed(fs2) == 0
    assert fs2.telemetry("comms.farm_vr") == 4
    assert fs2.telemetry("comms.sdls_unknown_spi") == 257  # the unauthenticated BC frames
    assert fs2.telemetry("comms.sdls_replays") == 256 * len(recorded)
    # The legitimate ground resumes (its own Set V(R) is authenticated), and old frames
    # sent behind it still execute nothing.
    for cltu in ground.initiate(20.0, InitMode.WITH_SET_VR, vr=4):
        assert radio2.uplink(cltu) == 0
    fs2.step(1.0)
    ground.receive(radio2.downlink(), now_s=20.5)
    for cltu in recorded:
        assert radio2.uplink(cltu) == 0
    ping = PusTc(apid=100, service=17, subservice=1, seq_count=9).encode()
    assert fly(fs2, radio2, ground, ground.send_tc(ping, now_s=21.0), 21.0) == 1
    assert executed(fs2) == 1


@pytest.mark.req("COMMS-008")
def test_a_key_rotation_survives_a_reboot(storage: Path) -> None:
    fs, radio = boot(storage)
    ground = GroundLink(CFG)
    enc = CommandEncoder(fs)
    old_key = [ground.send_tc(enc.encode("PING"), now_s=0.0)]
    assert fly(fs, radio, ground, old_key[0], 0.0) == 1
    rotate = ground.send_tc(enc.encode("comms.ROTATE_KEY", spi=1, key_id=2), now_s=1.0)
    old_key.append(rotate)
    assert fly(fs, radio, ground, rotate, 1.0) == 1
    assert fs.telemetry("comms.key_rotations") == 1
    ground.rotate_key(1, 2)
    new_key = [ground.send_tc(enc.encode("PING"), now_s=2.0)]
    assert fly(fs, radio, ground, new_key[0], 2.0) == 1
    fs2, radio2 = boot(storage)
    fs2.step(1.0)
    assert fs2.telemetry("comms.sdls_key_id") == 2
    for cltu in old_key + new_key:
        assert radio2.uplink(cltu) == 0
    fs2.step(1.0)
    assert executed(fs2) == 0
    assert fs2.telemetry("comms.sdls_bad_mac") == 2  # the pre-rotation frames: old key
    assert fs2.telemetry("comms.sdls_replays") == 1  # the post-rotation one: used number
    # A ground that never rotated is refused; the one that rotated is heard.
    stale = GroundLink(CFG)
    stale.resume_arsns(ground.arsns())
    ping = PusTc(apid=100, service=17, subservice=1, seq_count=5).encode()
    assert radio2.uplink(stale.send_tc(ping, now_s=5.0)) == 0
    fs2.step(1.0)
    assert fs2.telemetry("comms.sdls_bad_mac") == 3
    assert fly(fs2, radio2, ground, ground.send_tc(ping, now_s=6.0), 6.0) == 1
    assert executed(fs2) == 1


@pytest.mark.req("COMMS-008")
def test_a_frame_whose_state_cannot_be_saved_is_refused_and_sent_again(tmp_path: Path) -> None:
    class FlakyStore:
        durable = True

        def __init__(self) -> None:
            self.inner = MemoryStateStore()
            self.broken = False

        def load(self) -> StoredState:
            return self.inner.load()

        def save(self, payload: bytes) -> None:
            if self.broken:
                raise LinkStateError("cannot save 'link_state': No space left on device")
            self.inner.save(payload)

    store = FlakyStore()
    store.inner.save(LinkState(0, (SaState(1, 1, 0), SaState(2, 3, 0), SaState(3, 4, 0))).encode())
    sc, ground = SpacecraftLink(CFG, store), GroundLink(CFG)
    tc = PusTc(apid=100, service=17, subservice=1).encode()
    store.broken = True
    assert sc.receive(ground.send_tc(tc, now_s=0.0)) == []  # not executed
    assert sc.counters["state_save_failures"] == 1 and sc.counters["farm_vr"] == 0
    assert "No space left" in sc.last_save_error
    store.broken = False
    resent = ground.poll(now_s=CFG.fop_t1_s + 0.1)  # COP-1: no acknowledgement, so resend
    assert len(resent) == 1 and sc.receive(resent[0]) == [tc]
    assert sc.counters["farm_vr"] == 1
    assert LinkState.decode(store.inner.payload or b"").farm_vr == 1


@pytest.mark.req("COMMS-008")
def test_a_save_failure_raises_an_event(storage: Path) -> None:
    fs, radio = boot(storage)
    link = fs.component("comms").link  # type: ignore[attr-defined]

    def full(payload: bytes) -> None:
        raise LinkStateError("cannot save 'link_state': No space left on device")

    link._store.save = full
    ground = GroundLink(CFG)
    assert radio.uplink(ground.send_tc(CommandEncoder(fs).encode("PING"), now_s=0.0)) == 0
    fs.step(1.0)
    assert fs.telemetry("comms.state_save_failures") == 1
    assert executed(fs) == 0
    assert any(e.name == "comms.LINK_STATE_SAVE_FAILED" for e in fs.recent_events)


# --- the saved record -----------------------------------------------------------------


def test_link_state_round_trip_and_refusals() -> None:
    state = LinkState(200, (SaState(1, 2, (1 << 96) - 1, (1 << 64) - 1), SaState(9, 0, 0)))
    assert LinkState.decode(state.encode()) == state
    for bad, why in (
        (b"\xff\x00", "not readable"),
        (b"[]", "not a JSON object"),
        (b'{"version": 2, "farm_vr": 0, "sas": []}', "version 2"),
        (b'{"version": 1, "farm_vr": 300, "sas": []}', "farm_vr"),
        (b'{"version": 1, "farm_vr": 1, "sas": [{"spi": 1}]}', "malformed"),
        (
            b'{"version": 1, "farm_vr": 1, "sas": [{"spi": 1, "key_id": 1, "highest": 0, '
            b'"bitmap": "1"}, {"spi": 1, "key_id": 1, "highest": 0, "bitmap": "1"}]}',
            "twice",
        ),
    ):
        with pytest.raises(LinkStateError, match=why):
            LinkState.decode(bad)


@pytest.mark.req("PERS-009")
def test_mirrored_copies_survive_a_torn_write_and_a_cut_short_save(tmp_path: Path) -> None:
    st = DirNvStore(tmp_path)
    st.save_mirrored("k", b"one", 1)
    st.save_mirrored("k", b"two", 2)
    assert (st.load_mirrored("k").payload, st.load_mirrored("k").problems) == (b"two", ())
    # A reset while copy A is being written: A torn, B holds the state before.
    a, b = tmp_path / "k.gsa", tmp_path / "k.gsb"
    before = b.read_bytes()
    st.save_mirrored("k", b"three", 3)
    a.write_bytes(a.read_bytes()[:-1])
    b.write_bytes(before)
    res = st.load_mirrored("k")
    assert res.payload == b"two" and "copy A is torn" in res.problems[0]
    # A reset between the two writes: A is new, B one save behind: the newer one wins.
    st.save_mirrored("k", b"three", 3)
    old_b = b.read_bytes()
    st.save_mirrored("k", b"four", 4)
    b.write_bytes(old_b)
    res = st.load_mirrored("k")
    assert res.payload == b"four" and "copy B is one save behind" in res.problems[0]
    # Both copies bad: nothing usable, but it existed.
    a.write_bytes(b"junk")
    b.write_bytes(b"junk")
    res = st.load_mirrored("k")
    assert (res.payload, res.existed) == (None, True)
    assert not st.load_mirrored("never").existed


@pytest.mark.req("COMMS-010")
def test_one_damaged_copy_is_reported_and_rewritten(storage: Path) -> None:
    fs, radio = boot(storage)
    ground = GroundLink(CFG)
    recorded = record_session(fs, radio, ground)
    copy_a = storage / "link_state.gsa"
    raw = bytearray(copy_a.read_bytes())
    raw[-3] ^= 0x01  # one flipped bit
    copy_a.write_bytes(bytes(raw))
    fs2, radio2 = boot(storage)
    assert any(e.name == "comms.LINK_STATE_RECOVERED" for e in fs2.recent_events)
    assert NvLinkStateStore(DirNvStore(storage)).load().problems == ()  # rewritten
    for cltu in recorded:
        assert radio2.uplink(cltu) == 0
    fs2.step(1.0)
    assert executed(fs2) == 0


@pytest.mark.req("COMMS-010")
@pytest.mark.parametrize("damage", ["missing", "both corrupt", "unknown key"])
def test_no_usable_state_refuses_every_authenticated_frame(tmp_path: Path, damage: str) -> None:
    storage = tmp_path / "nv"
    if damage != "missing":
        provision_link_state(storage, None)
    if damage == "both corrupt":
        for name in ("link_state.gsa", "link_state.gsb"):
            (storage / name).write_bytes(b"\x00" * 40)
    if damage == "unknown key":
        NvLinkStateStore(DirNvStore(storage)).save(LinkState(0, (SaState(1, 77, 0),)).encode())
    fs, radio = boot(storage)
    lost = [e for e in fs.recent_events if e.name == "comms.LINK_STATE_LOST"]
    assert len(lost) == 1 and lost[0].severity.name == "HIGH"
    ground = GroundLink(CFG)
    for n in range(3):  # the legitimate ground too: nobody can tell what is fresh
        tc = PusTc(apid=100, service=17, subservice=1, seq_count=n).encode()
        assert radio.uplink(ground.send_tc(tc, bypass=True, now_s=float(n))) == 0
    fs.step(1.0)
    assert executed(fs) == 0
    assert fs.telemetry("comms.sdls_locked") is True
    assert fs.telemetry("comms.sdls_locked_refused") == 3
    assert any(e.name == "comms.LOCKED_REFUSED" for e in fs.recent_events)
    assert fs.telemetry("comms.state_saves") == 0  # a lost state is never overwritten


def test_provisioning_refuses_a_storage_that_holds_a_state(storage: Path) -> None:
    with pytest.raises(StartupError, match="provisioned once"):
        provision_link_state(storage, None)
    (storage / "link_state.gsa").write_bytes(b"junk")
    (storage / "link_state.gsb").unlink()
    with pytest.raises(StartupError, match="already holds"):
        provision_link_state(storage, None)


def test_a_memory_store_starts_fresh_and_a_durable_one_remembers() -> None:
    assert SpacecraftLink(CFG).state_report.status is StateStatus.VOLATILE
    mem = NvLinkStateStore(MemNvStore())
    sc = SpacecraftLink(CFG, mem)
    assert sc.state_report.status is StateStatus.FRESH and not sc.locked
    ground = GroundLink(CFG)
    tc = PusTc(apid=100, service=17, subservice=1).encode()
    assert sc.receive(ground.send_tc(tc, now_s=0.0)) == [tc]
    again = SpacecraftLink(CFG, mem)  # the same memory: e.g. SITL rebuilding the flight
    assert again.state_report.status is StateStatus.RESTORED
    assert again.counters["sdls_spi1_arsn"] == 1 and again.counters["farm_vr"] == 1


# --- the SDLS reset -------------------------------------------------------------------


def _challenge(fs: FlightSoftware) -> bytes:
    fs.step(1.0)
    hi, lo = fs.telemetry("comms.sdls_challenge_hi"), fs.telemetry("comms.sdls_challenge_lo")
    return int(hi).to_bytes(4, "big") + int(lo).to_bytes(4, "big")


@pytest.mark.req("COMMS-010")
def test_the_sdls_reset_restores_commanding_and_keeps_old_frames_out(tmp_path: Path) -> None:
    storage = tmp_path / "nv"
    provision_link_state(storage, None)
    fs, radio = boot(storage)
    ground = GroundLink(CFG)
    recorded = record_session(fs, radio, ground)
    for name in ("link_state.gsa", "link_state.gsb"):  # the storage loses the state
        (storage / name).unlink()
    fs2, radio2 = boot(storage)
    assert fs2.component("comms").link.locked  # type: ignore[attr-defined]
    challenge = _challenge(fs2)
    # A reset under the wrong challenge (say, recorded at an earlier boot) is refused.
    stale = GroundLink(CFG)
    stale.resume_arsns(ground.arsns())
    assert radio2.uplink(stale.sa_reset(bytes(8), now_s=30.0)) == 0
    fs2.step(1.0)
    assert fs2.telemetry("comms.sdls_resets_refused") == 1
    assert any(e.name == "comms.SDLS_RESET_REFUSED" for e in fs2.recent_events)
    # The ground answers the current challenge under the recovery key.
    reset = ground.sa_reset(challenge, now_s=31.0)
    assert radio2.uplink(reset) == 0
    fs2.step(1.0)
    assert fs2.telemetry("comms.sdls_resets") == 1
    assert fs2.telemetry("comms.sdls_locked") is False
    assert any(e.name == "comms.SDLS_RESET" for e in fs2.recent_events)
    assert _challenge(fs2) != challenge  # one reset per challenge
    # Everything recorded before stays refused (the floor is the ground's last number) ...
    for cltu in [*recorded, reset]:
        assert radio2.uplink(cltu) == 0
    fs2.step(1.0)
    assert executed(fs2) == 0
    assert fs2.telemetry("comms.sdls_resets_refused") == 2  # the replayed reset
    # ... the ground commands again, and the reset state survives the next reboot.
    ping = PusTc(apid=100, service=17, subservice=1, seq_count=9).encode()
    assert fly(fs2, radio2, ground, ground.send_tc(ping, now_s=32.0), 32.0) == 1
    fs3, radio3 = boot(storage)
    assert fs3.component("comms").link.state_report.status is StateStatus.RESTORED  # type: ignore[attr-defined]
    for cltu in recorded:
        assert radio3.uplink(cltu) == 0
    fs3.step(1.0)
    assert executed(fs3) == 0


def _reset_cltu(directive: bytes, key_id: int | None = None) -> bytes:
    """A reset frame around ``directive``, signed by the recovery key (or key ``key_id``)."""
    rec = CFG.make_recovery_sa()
    assert rec is not None
    if key_id is not None:
        rec.rekey(CFG.key(key_id))
    seg = bytes([0xC0 | CFG.map_id])
    length = 5 + len(seg) + rec.overhead + len(directive) + 2
    aad = tc_header(CFG.spacecraft_id, CFG.tc_vcid, length, 0, True, False) + seg
    body = aad + rec.protect(directive, aad)
    return encode_cltu(body + fecf16(body).to_bytes(2, "big"))


@pytest.mark.req("COMMS-010")
def test_a_reset_must_be_whole_while_locked_signed_and_never_lowers_a_floor(
    tmp_path: Path,
) -> None:
    sc = SpacecraftLink(CFG, NvLinkStateStore(DirNvStore(tmp_path)))
    assert sc.locked and sc.state_report.status is StateStatus.MISSING
    # Naming SPI 1 only: SPIs 2 and 3 would stay at unknown numbers.
    sc.receive(_reset_cltu(SaReset(sc.challenge, ((1, 1, 100),), farm_vr=0).encode()))
    assert sc.locked and "missing SPI 2, 3" in sc.last_reset_refusal
    # The whole reset, but signed with another key than the recovery key.
    whole = SaReset(sc.challenge, ((1, 1, 100), (2, 3, 0), (3, 4, 0)), farm_vr=0).encode()
    sc.receive(_reset_cltu(whole, key_id=1))
    assert sc.locked and sc.counters["sdls_bad_mac"] == 1
    sc.receive(_reset_cltu(whole))
    assert not sc.locked and sc.counters["sdls_spi1_arsn"] == 100
    # Once the state is known again, a reset may raise a floor, never lower it.
    sc.receive(_reset_cltu(SaReset(sc.challenge, ((1, 2, 7),)).encode()))
    assert sc.counters["sdls_resets"] == 2
    assert sc.counters["sdls_spi1_arsn"] == 100 and sc.key_id(1) == 2


@pytest.mark.slow
@pytest.mark.req("COMMS-010")
def test_a_ground_station_runs_the_sdls_reset_on_a_locked_flight(tmp_path: Path) -> None:
    """The operator's procedure (`gnomon ground sdls-reset`), against a flight flying in
    real time: wait for the challenge, reset, command again. About 10-20 s: the challenge
    comes down in the comms housekeeping, every 10 s."""
    from test_ground_harness import flight_dictionary

    from ground.errors import StationError
    from ground.station import GroundStation

    fs = build_flight(clock=WallClock(), storage_dir=tmp_path / "nv", link_config=CFG)
    assert fs.component("comms").link.locked  # type: ignore[attr-defined]
    sc_end, ground_end = memory_pair()
    radio, stop = RadioHost(fs), threading.Event()
    flying = threading.Thread(
        target=radio.serve, args=(sc_end,), kwargs={"stop": stop.is_set}, daemon=True
    )
    flying.start()
    station = GroundStation(
        flight_dictionary(), CFG, transport=ground_end, arsn_file=tmp_path / "arsn.json"
    )
    try:
        with station:
            refused = station.send("PING")  # refused on board: nobody can tell it is fresh
            summary = station.sdls_reset(60.0)
            assert summary["reset"] and summary["was_locked"]
            ping = station.send("PING")
            assert station.await_stage(ping, "completed", 30.0)
            assert not refused.reached("accepted")
            with pytest.raises(StationError, match="no comms housekeeping"):
                GroundStation(flight_dictionary(), CFG, transport=ground_end).sdls_reset(0.0)
    finally:
        stop.set()
        flying.join(timeout=10.0)
    assert fs.telemetry("comms.sdls_resets") == 1
    assert fs.telemetry("comms.sdls_locked_refused") >= 1


def test_sdls_reset_cli_says_what_a_bad_option_should_look_like() -> None:
    from typer.testing import CliRunner

    from ground.cli import ground_app

    result = CliRunner().invoke(ground_app, ["sdls-reset", "--sa", "1:2"])
    assert result.exit_code == 2
    assert "--sa '1:2' is not SPI=NUMBER, e.g. 1=2" in result.output


def test_rotating_to_the_recovery_key_is_refused() -> None:
    sc = SpacecraftLink(CFG)
    with pytest.raises(Exception, match="recovery key"):
        sc.rotate_key(1, CFG.recovery_key_id or 5)


# --- UDP peers ------------------------------------------------------------------------


@pytest.mark.req("COMMS-009")
def test_a_new_udp_sender_taking_the_downlink_is_counted() -> None:
    fs = build_flight(clock=WallClock(), link_config=CFG)
    radio = RadioHost(fs)
    transport = open_link("udp://127.0.0.1:0", role="spacecraft")
    host, port = transport.local_address  # type: ignore[attr-defined]
    stop = threading.Event()
    server = threading.Thread(
        target=radio.serve, args=(transport,), kwargs={"stop": stop.is_set}, daemon=True
    )
    server.start()
    senders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    try:
        for s in (*senders, senders[0]):  # ground, then someone else, then the ground
            s.sendto(b"\x00", (host, port))
            time.sleep(0.2)
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline and fs.telemetry("comms.peer_changes") != 2:
            time.sleep(0.1)
        assert transport.stats["peer_changes"] == 2
        assert fs.telemetry("comms.peer_changes") == 2
    finally:
        stop.set()
        server.join(timeout=10.0)
        transport.close()
        for s in senders:
            s.close()


# --- the real thing: `gnomon fsw run`, kill -9, restart, replay ------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Flight:
    """``gnomon fsw run`` in its own process on a UDP port and a storage directory."""

    def __init__(self, storage: Path, port: int, log: Path) -> None:
        self.log = log
        self.out = log.open("w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gnomon.cli",
                "fsw",
                "run",
                "--link",
                f"udp://127.0.0.1:{port}",
                "--storage",
                str(storage),
                "--key-file",
                str(TEST_KEY_FILE),
                "--duration",
                "900",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self.out,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.out.close()

    def stop(self) -> dict[str, object]:
        """Ctrl-C, then the JSON summary ``fsw run`` prints (counters, mode, commands)."""
        self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=120)
        self.out.close()
        assert self.proc.returncode == 0, self.log.read_text()
        doc: dict[str, object] = json.loads(out)
        return doc


class Tap:
    """A UDP socket that sends recorded datagrams and decodes what comes back."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addr = ("127.0.0.1", port)
        self.ground = GroundLink(CFG)
        self.reports: list[tuple[int, int]] = []

    def hello_until_heard(self, timeout_s: float) -> None:
        """Say hello until the flight answers (it is up and listening)."""
        self.sock.settimeout(0.5)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.sock.sendto(b"", self.addr)
            try:
                self.take(self.sock.recv(65536))
                return
            except (TimeoutError, ConnectionRefusedError):
                continue
        raise AssertionError(f"the flight did not answer on {self.addr} in {timeout_s} s")

    def take(self, data: bytes) -> None:
        for pkt in self.ground.receive(data, now_s=0.0):
            tm = PusTm.decode(pkt)
            self.reports.append((tm.service, tm.subservice))

    def listen(self, seconds: float) -> None:
        self.sock.settimeout(0.2)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.take(self.sock.recv(65536))
            except (TimeoutError, ConnectionRefusedError):
                continue

    def close(self) -> None:
        self.sock.close()


class RecordingTransport:
    """The ground's transport, with every datagram it sends kept (what a recorder hears)."""

    def __init__(self, url: str) -> None:
        self.inner = open_link(url, role="ground")
        self.sent: list[bytes] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def send(self, data: bytes) -> None:
        if data:
            self.sent.append(bytes(data))
        self.inner.send(data)


@pytest.fixture
def flight_dir(tmp_path: Path) -> Iterator[Path]:
    provision_link_state(tmp_path / "nv", TEST_KEY_FILE)
    yield tmp_path


@pytest.mark.slow
@pytest.mark.req("COMMS-008", "COMMS-009")
@pytest.mark.parametrize("variant", ["replay", "forged set-vr", "key rotation"])
def test_fsw_run_killed_and_restarted_executes_no_replay(flight_dir: Path, variant: str) -> None:
    """The issue's campaign against the real process: record, kill -9, restart, replay."""
    from test_ground_harness import flight_dictionary

    from ground.station import GroundStation
    from ground.testapi import TestApi

    storage, port = flight_dir / "nv", _free_port()
    url, arsn_file = f"udp://127.0.0.1:{port}", flight_dir / "arsn.json"
    first = Flight(storage, port, flight_dir / "first.log")
    second: Flight | None = None
    try:
        # 1. A ground commands the flight; a recorder keeps every datagram it sends.
        recorder = RecordingTransport(url)
        station = GroundStation(
            flight_dictionary(), CFG, transport=cast(BaseTransport, recorder), arsn_file=arsn_file
        )
        with station:
            api = TestApi(station, timeout_s=30.0)
            api.await_contact(120.0)
            api.send_and_await("PING", stage="completed", timeout=30)
            if variant == "key rotation":
                api.send_and_await("comms.ROTATE_KEY", spi=1, key_id=2, stage="completed")
                assert station.session.link is not None
                station.session.link.rotate_key(1, 2)
            api.send_and_await("PING", stage="completed", timeout=30)
            api.send_and_await("MODE_SAFE_ENTER", stage="completed", timeout=30)
        recorded = list(recorder.sent)
        # 2. kill -9, and the same board boots again on the same storage.
        first.kill9()
        second = Flight(storage, port, flight_dir / "second.log")
        tap = Tap(port)
        try:
            tap.hello_until_heard(120.0)
            if variant == "forged set-vr":
                for vr in range(256):
                    frame = TcFrame.set_vr(CFG.spacecraft_id, CFG.tc_vcid, vr).encode()
                    tap.sock.sendto(encode_cltu(frame), tap.addr)
            for datagram in recorded:
                tap.sock.sendto(datagram, tap.addr)
            tap.listen(3.0)
            if variant == "key rotation":  # the ground that rotated is heard
                ground = GroundStation(flight_dictionary(), CFG, url, arsn_file=arsn_file)
                assert ground.session.link is not None
                ground.session.link.rotate_key(1, 2)
                with ground:
                    TestApi(ground, timeout_s=30.0).send_and_await("PING", timeout=30)
            for datagram in recorded:  # and the recording again, behind it
                tap.sock.sendto(datagram, tap.addr)
            tap.listen(3.0)
        finally:
            tap.close()
        summary = second.stop()
    finally:
        for flight in (first, second):
            if flight is not None and flight.proc.poll() is None:
                flight.kill9()
    link, commands = summary["link"], summary["commands"]
    assert isinstance(link, dict) and isinstance(commands, dict)
    print(f"{variant}: {len(recorded)} datagrams recorded, replayed twice;", json.dumps(commands))
    print({k: link[k] for k in ("sdls_replays", "sdls_bad_mac", "sdls_unknown_spi", "farm_vr")})
    assert commands["tc_received"] == (1 if variant == "key rotation" else 0)
    assert not {(1, 1), (1, 7), (17, 2)} & set(tap.reports)  # no reports of executed TCs
    assert summary["mode"] == "NOMINAL"  # the replayed MODE_SAFE_ENTER did nothing
    assert summary["link_state"] == "RESTORED"
    # Every recorded frame is refused, each time: even one that never reached the first
    # flight (a join Unlock sent before it listened), as its number is below the highest.
    if variant == "key rotation":
        assert link["sdls_bad_mac"] >= 2 * 2  # PING and ROTATE_KEY, under the old key
        assert link["sdls_replays"] >= 2 * 2  # PING and MODE_SAFE_ENTER, under the new one
        assert link["sdls_replays"] + link["sdls_bad_mac"] == 2 * len(recorded)
    else:
        assert link["sdls_replays"] == 2 * len(recorded)
    if variant == "forged set-vr":
        assert link["sdls_unknown_spi"] == 256
