"""PUS service 17 and interoperability with an independent PUS library (spacepackets)."""

from __future__ import annotations

import pytest
from spacepackets.ecss import PusTc as SpTc
from spacepackets.ecss import PusTm as SpTm
from spacepackets.ecss.pus_1_verification import ManagedParamsVerification, Service1Tm
from spacepackets.ecss.tm import ManagedParams

from fsw.app import build_flight
from fsw.ccsds import cuc_decode
from fsw.core.clock import DEFAULT_START_TAI, SimClock


@pytest.mark.req("CMD-002")
def test_ping_from_spacepackets_gives_reports_spacepackets_parses() -> None:
    clock = SimClock(DEFAULT_START_TAI)
    fs = build_flight(clock=clock)
    fs.step(0.0)
    fs.downlink_packets()
    tc = SpTc(service=17, message_subtype=1, apid=fs.config.tc_apid, seq_count=42)
    raw_tc = tc.pack()
    fs.uplink_packet(raw_tc)
    fs.step(0.0)
    parsed = [SpTm.unpack(raw, timestamp_len=6) for raw in fs.downlink_packets()]
    kinds = [(p.service, p.message_subtype) for p in parsed]
    assert kinds == [(1, 1), (1, 3), (17, 2), (1, 7)]
    for p in parsed:
        assert p.apid == fs.config.tc_apid
        assert cuc_decode(p.timestamp) == DEFAULT_START_TAI
    acc = Service1Tm.unpack(
        parsed[0].pack(), ManagedParams(timestamp_len=6), ManagedParamsVerification()
    )
    assert acc.tc_req_id.tc_packet_id.apid == fs.config.tc_apid
    assert acc.tc_req_id.tc_psc.seq_count == 42
    done = Service1Tm.unpack(
        parsed[3].pack(), ManagedParams(timestamp_len=6), ManagedParamsVerification()
    )
    assert done.tc_req_id.tc_psc.seq_count == 42


@pytest.mark.req("CMD-002")
def test_failure_report_parses_with_a_two_byte_code() -> None:
    fs = build_flight()
    fs.uplink_packet(SpTc(service=17, message_subtype=77, apid=100, seq_count=3).pack())
    fs.step(0.0)
    fails = [SpTm.unpack(r, timestamp_len=6) for r in fs.downlink_packets()]
    fail = next(f for f in fails if (f.service, f.message_subtype) == (1, 2))
    s1 = Service1Tm.unpack(
        fail.pack(), ManagedParams(timestamp_len=6), ManagedParamsVerification(bytes_err_code=2)
    )
    assert s1.error_code is not None and s1.error_code.val == 5  # UNKNOWN_COMMAND
    assert s1.tc_req_id.tc_psc.seq_count == 3
    assert b"no command (17,77)" in s1.failure_notice.data


def test_ping_sequence_counts_and_time_advance() -> None:
    clock = SimClock(DEFAULT_START_TAI)
    fs = build_flight(clock=clock)
    fs.step(0.0)
    fs.downlink_packets()
    times = []
    for n in range(3):
        fs.uplink_packet(SpTc(service=17, message_subtype=1, apid=100, seq_count=n).pack())
        fs.step(2.0)
        pongs = [SpTm.unpack(r, timestamp_len=6) for r in fs.downlink_packets()]
        pong = next(p for p in pongs if p.service == 17)
        times.append(cuc_decode(pong.timestamp))
    assert [round(t - DEFAULT_START_TAI, 3) for t in times] == [0.0, 2.0, 4.0]
