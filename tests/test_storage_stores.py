"""The `stores` component (PUS-C service 15): routing, decimation, commands, playback on
its own virtual channel, and the ground's de-duplication of playback."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from fsw.app import build_flight
from fsw.ccsds import PusTm
from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig
from fsw.comms.radio import RadioHost
from fsw.core.clock import SimClock
from fsw.core.dictionary import build_dictionary
from fsw.core.flight import FlightSoftware
from fsw.core.registry import Priority
from fsw.core.testing import CommandEncoder, TmRecord, decode_downlink
from fsw.storage.packetstore import check_store
from fsw.storage.stores import PacketStores, Route, StoreSpec, _Store
from ground.session import GroundSession

T0 = 2_000_000_000.0


def _stores(fs: FlightSoftware) -> PacketStores:
    comp = fs.component("stores")
    assert isinstance(comp, PacketStores)
    return comp


def _send(fs: FlightSoftware, name: str, **args: Any) -> list[TmRecord]:
    """Execute one command; the TM it made (verification and replies)."""
    fs.downlink_packets()
    tc = CommandEncoder(fs).encode(name, **args)
    fs.uplink_packet(tc)
    fs.step(0.0)
    return decode_downlink(fs)


def _verdict(records: list[TmRecord]) -> int:
    """The last verification subservice (7: completed, 2/4/8: failed)."""
    return [r.subservice for r in records if r.service == 1][-1]


def _services(packets: list[bytes]) -> list[tuple[int, int]]:
    return [(p[7], p[8]) for p in packets]


@pytest.mark.req("STO-003")
def test_out_of_contact_housekeeping_goes_only_to_its_store_and_events_go_both_ways(
    tmp_path: Path,
) -> None:
    fs = build_flight(SimClock(T0), stores_dir=tmp_path)
    st = _stores(fs)
    fs.downlink_packets()
    st.set_contact(False)
    fs.step(30.0)
    queued = fs.downlink_packets()
    assert (3, 25) not in _services(queued)  # no stale HK waiting for the pass
    held = {name: [(p[7], p[8]) for _, p in s.store.records()] for name, s in _by_name(st).items()}
    assert (3, 25) in held["hk"] and all(sv == (3, 25) for sv in held["hk"])
    _send(fs, "STORE_STATUS")  # a verification and a (15,13) report
    evt = [(p[7], p[8]) for _, p in _by_name(st)["evt"].store.records()]
    assert (1, 1) in evt and (15, 13) in evt
    assert fs.telemetry("stores.stored") == sum(len(v) for v in held.values()) + len(evt) - len(
        held["evt"]
    )


def _by_name(st: PacketStores) -> dict[str, _Store]:
    return {s.spec.name: s for s in st.stores.values()}


@pytest.mark.req("STO-003")
def test_routing_rules_choose_the_store_by_apid_service_and_subservice(tmp_path: Path) -> None:
    specs = (StoreSpec(1, "a", 1 << 20), StoreSpec(2, "b", 1 << 20))
    routes = (Route("a", service=5), Route("b", apid=101))
    fs = FlightSoftware(SimClock(T0))  # the core alone: no default stores
    st = PacketStores(tmp_path, fs.storage, specs, routes, name="two")
    fs.add_component(st, component_id=40)
    st.route(Priority.EVENT, _tm(101, 5, 1), T0)  # an event: rule 1 first
    st.route(Priority.EVENT, _tm(101, 3, 25), T0)  # apid 101: rule 2
    st.route(Priority.EVENT, _tm(100, 1, 1), T0)  # no rule: not stored, counted
    a, b = st.stores[1].store, st.stores[2].store
    assert [p[7] for _, p in a.records()] == [5]
    assert [p[7] for _, p in b.records()] == [3]
    assert fs.telemetry("two.unrouted") == 1


def _tm(apid: int, service: int, sub: int) -> bytes:
    return PusTm(apid=apid, service=service, subservice=sub, app_data=b"\x00\x01xy").encode()


@pytest.mark.req("STO-004")
def test_housekeeping_is_decimated_near_full_and_every_report_left_out_is_counted(
    tmp_path: Path,
) -> None:
    specs = (
        StoreSpec(1, "evt", 1 << 20, circular=False, decimate_at=1.0),
        StoreSpec(2, "sci", 1 << 20, circular=False, decimate_at=1.0),
        StoreSpec(3, "hk", 64 * 1024, segment_bytes=4096, decimate_at=0.5, decimate_keep=4),
    )
    fs = FlightSoftware(SimClock(T0))  # the core alone: no default stores
    st = PacketStores(tmp_path, fs.storage, specs, name="small")
    fs.add_component(st, component_id=41)
    st.set_contact(False)
    # The flight's own tap is the default `stores`; feed this one the same HK stream.
    hk = _tm(100, 3, 25)
    offered = 0
    while not st.stores[3].decimating:
        st.route(Priority.HK, hk, T0 + offered)
        offered += 1
        st.on_tick("1Hz")
    assert any(e.name == "small.DECIMATING" for e in fs.recent_events)
    before = st.stores[3].store.counts["stored"]
    for i in range(400):
        st.route(Priority.HK, hk, T0 + offered + i)
    stored = st.stores[3].store.counts["stored"] - before
    decimated = st.stores[3].counts["decimated"]
    assert stored + decimated == 400  # nothing silently dropped
    assert stored == 100  # one in four kept
    assert st.summary()["hk"]["decimated"] == decimated


@pytest.mark.req("STO-005")
def test_service_15_commands_enable_disable_delete_and_status(tmp_path: Path) -> None:
    fs = build_flight(SimClock(T0), stores_dir=tmp_path)
    st = _stores(fs)
    fs.step(20.0)
    hk = st.stores[3]
    n = hk.store.record_count
    assert n > 0
    assert _verdict(_send(fs, "STORE_DISABLE", store_id=3)) == 7
    fs.step(20.0)
    assert hk.store.record_count == n and hk.counts["disabled_skips"] > 0
    _send(fs, "STORE_ENABLE", store_id=3)
    fs.step(20.0)
    assert hk.store.record_count > n
    mid = hk.store.newest_t
    assert mid is not None
    fs.step(20.0)
    _send(fs, "STORE_DELETE", store_id=3, t_tai=mid)
    assert (hk.store.oldest_t or 0.0) > mid
    rep = [r for r in _send(fs, "STORE_STATUS") if (r.service, r.subservice) == (15, 13)]
    assert len(rep) == 1 and rep[0].fields is not None
    rows = {r["store_id"]: r for r in rep[0].fields["stores"]}
    assert rows[3]["packets"] == hk.store.record_count and rows[3]["enabled"]
    assert rows[3]["oldest"] == pytest.approx(hk.store.oldest_t, abs=1e-3)
    assert _verdict(_send(fs, "STORE_ENABLE", store_id=9)) == 8  # (1,8): no such store


def _flight_and_ground(tmp_path: Path) -> tuple[FlightSoftware, RadioHost, GroundSession]:
    cfg = LinkConfig.load(TEST_KEY_FILE)
    fs = build_flight(SimClock(T0), tmp_path / "nv", link_config=cfg)
    radio = RadioHost(fs)
    session = GroundSession(build_dictionary(fs), cfg)
    return fs, radio, session


@pytest.mark.req("STO-006")
def test_aos_plays_the_stores_back_on_their_own_vc_and_the_ground_keeps_each_packet_once(
    tmp_path: Path,
) -> None:
    fs, radio, ground = _flight_and_ground(tmp_path)
    st = _stores(fs)
    ground.receive(radio.downlink(), 0.0)  # realtime in contact: the ground has these
    st.set_contact(False)
    fs.step(120.0)  # a gap: housekeeping only in the store
    rt = ground.stats["decoded"]
    st.set_contact(True)  # AOS: the default sequence starts the open playbacks
    assert all(s.open is not None for s in st.stores.values())
    for _ in range(200):
        data = radio.downlink(max_packets=20, max_bytes=4096)
        if not data:
            break
        ground.receive(data, 1.0)
    stats = ground.stats
    assert stats["tm_playback_packets"] == radio.stats["playback_packets"] > 0
    assert stats["playback_duplicates"] > 0  # what realtime brought before the gap
    assert stats["playback_new"] + stats["playback_duplicates"] == stats["playback_packets"]
    assert stats["tm_packets_missing"] == 0 or stats["playback_new"] >= stats["tm_packets_missing"]
    # Every HK report of the gap reached the ground once, with its on-board time.
    hk_times = {t for t, p in st.stores[3].store.records() if p[7] == 3}
    assert stats["decoded"] - rt >= len(hk_times) - stats["playback_duplicates"]
    again = stats["playback_new"]
    st.dump_open(0)
    radio.downlink(max_packets=20, max_bytes=4096)
    assert ground.stats["playback_new"] == again  # nothing new to play: no duplicates archived


@pytest.mark.req("STO-007")
def test_los_stops_playback_and_the_next_pass_resumes_where_it_stopped_even_after_a_reset(
    tmp_path: Path,
) -> None:
    fs, radio, _ = _flight_and_ground(tmp_path)
    st = _stores(fs)
    st.set_contact(False)
    fs.step(300.0)
    total = st.stores[3].store.record_count
    st.set_contact(True)
    radio.downlink(max_packets=5, max_bytes=3000)  # a few kB, then LOS
    st.set_contact(False)
    played = st.stores[3].counts["dumped"]
    assert 0 < played < total
    assert radio.downlink(max_packets=5, max_bytes=3000) == b""  # LOS: nothing goes out
    st.close()
    # A reset: a new flight on the same storage resumes the playback where it stood.
    fs2 = build_flight(SimClock(T0 + 400.0), tmp_path / "nv", link_config=fs_link_cfg())
    st2 = _stores(fs2)
    st2.set_contact(False)
    st2.set_contact(True)
    radio2 = RadioHost(fs2)
    fs2.downlink_packets()
    sent: list[bytes] = []
    while True:
        got = st2.take(4096)
        if not got:
            break
        sent += got
    hk = [p for p in sent if p[7] == 3]
    assert len(hk) >= total - played  # the rest of the first store, then what came since
    assert radio2.stats["playback_packets"] == 0
    for sto in st2.stores.values():
        st2.close()
        assert check_store(sto.store.path).ok


def fs_link_cfg() -> LinkConfig:
    return LinkConfig.load(TEST_KEY_FILE)


@pytest.mark.req("STO-005")
def test_a_time_range_dump_plays_back_that_span_first_and_can_be_aborted(tmp_path: Path) -> None:
    fs = build_flight(SimClock(T0), stores_dir=tmp_path)
    st = _stores(fs)
    st.set_contact(False)
    fs.step(100.0)
    st.set_contact(True)
    st.dump_suspend(0)  # only the time range below
    _send(fs, "STORE_DUMP_RANGE", store_id=3, t_from=T0 + 20.0, t_to=T0 + 40.0)
    out: list[bytes] = []
    while True:
        got = st.take(2048)
        if not got:
            break
        out += got
    times = [r.t_tai for r in decode_downlink(fs, out)]
    assert times and min(times) >= T0 + 20.0 - 1e-3 and max(times) <= T0 + 40.0 + 1e-3
    assert any(e.name == "stores.DUMP_DONE" for e in fs.recent_events)
    _send(fs, "STORE_DUMP_RANGE", store_id=3, t_from=T0, t_to=T0 + 100.0)
    assert st.stores[3].by_time is not None
    _send(fs, "STORE_DUMP_ABORT", store_id=3)
    assert st.stores[3].by_time is None and st.take(2048) == []


_FLIGHT = textwrap.dedent(
    """
    import sys
    from fsw.app import build_flight
    from fsw.core.clock import SimClock
    fs = build_flight(SimClock(2_000_000_000.0), sys.argv[1])
    st = fs.component("stores")
    st.set_contact(False)
    while True:
        fs.step(5.0)
        fs.downlink_packets()
        sys.stdout.write(f"{st.stores[3].store.counts['stored']}\\n")
        sys.stdout.flush()
    """
)


@pytest.mark.req("STO-001")
def test_kill_9_of_the_flight_mid_run_then_restart_keeps_the_stores_intact(
    tmp_path: Path,
) -> None:
    seed = random.SystemRandom().randrange(2**32)
    print(f"test_storage_stores: kill seed {seed}")
    target = random.Random(seed).randrange(50, 400)
    proc = subprocess.Popen(
        [sys.executable, "-c", _FLIGHT, str(tmp_path / "nv")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert proc.stdout is not None
    stored = 0
    for line in proc.stdout:
        stored = int(line)
        if stored >= target:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    fs = build_flight(SimClock(T0 + 1e4), tmp_path / "nv")  # the restart
    st = _stores(fs)
    assert st.stores[3].store.record_count >= stored  # every HK report it reported stored
    for sto in st.stores.values():
        assert all(p[0] >> 5 == 0 for _, p in sto.store.records())  # whole space packets
    torn = fs.telemetry("stores.torn_records")
    assert (torn > 0) == any(e.name == "stores.STORE_REPAIRED" for e in fs.recent_events)
    fs.step(10.0)  # and it carries on storing
    st.close()
    for sto in st.stores.values():
        assert check_store(sto.store.path).ok


def _drain(st: PacketStores) -> list[bytes]:
    out: list[bytes] = []
    while got := st.take(4096):
        out += got
    return out


@pytest.mark.req("STO-006")
def test_open_playback_skips_housekeeping_sent_in_realtime_and_a_range_dump_does_not(
    tmp_path: Path,
) -> None:
    fs = build_flight(SimClock(T0), stores_dir=tmp_path)
    st = _stores(fs)  # in contact: housekeeping goes realtime and is stored as sent
    fs.step(60.0)
    held = [p for _, p in st.stores[3].store.records()]
    assert held
    st.set_contact(False)
    st.set_contact(True)  # AOS: the open playbacks start
    assert [p for p in _drain(st) if p[7] == 3] == []
    _send(fs, "STORE_DUMP_RANGE", store_id=3, t_from=T0, t_to=T0 + 60.0)
    assert [p for p in _drain(st) if p[7] == 3] == held
