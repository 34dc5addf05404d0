"""PUS service 11: insert, release at time, delete, report, enable/disable, persistence."""

from __future__ import annotations

import pytest

from fsw.app import build_flight
from fsw.ccsds import PusTc
from fsw.core import FlightSoftware, MemNvStore, SimClock
from fsw.core.clock import DEFAULT_START_TAI
from fsw.core.testing import CommandEncoder, decode_downlink, request_id_of, verification

T0 = DEFAULT_START_TAI


def ping(seq: int) -> bytes:
    return PusTc(apid=100, service=17, subservice=1, seq_count=seq).encode()


def boot(store: MemNvStore, t: float = T0) -> FlightSoftware:
    fs = build_flight(clock=SimClock(t), store=store)
    fs.step(0.0)
    fs.downlink_packets()
    return fs


def send(fs: FlightSoftware, tc: bytes) -> list[tuple[int, str | None]]:
    fs.uplink_packet(tc)
    fs.step(0.0)
    return verification(decode_downlink(fs), request_id_of(tc))


@pytest.mark.req("SCHED-001")
def test_insert_release_at_time_with_verification() -> None:
    fs = boot(MemNvStore())
    enc = CommandEncoder(fs)
    tc = enc.encode(
        "SCHED_INSERT",
        activities=[
            {"release_time": T0 + 5.0, "tc": ping(500)},
            {"release_time": T0 + 2.0, "tc": ping(200)},
        ],
    )
    assert send(fs, tc) == [(1, None), (3, None), (7, None)]
    assert fs.telemetry("sched.activities") == 2
    fs.step(1.9)
    assert not [r for r in decode_downlink(fs) if r.service == 17]
    fs.step(0.1)
    recs = decode_downlink(fs)
    pongs = [r for r in recs if r.service == 17]
    assert len(pongs) == 1 and abs(pongs[0].t_tai - (T0 + 2.0)) < 1e-3
    assert verification(recs, request_id_of(ping(200))) == [(1, None), (3, None), (7, None)]
    fs.step(3.0)
    recs = decode_downlink(fs)
    assert verification(recs, request_id_of(ping(500)))[-1] == (7, None)
    assert fs.telemetry("sched.released") == 2
    assert fs.telemetry("sched.activities") == 0


@pytest.mark.req("SCHED-002", "SCHED-003", "SCHED-004")
def test_report_delete_and_disable() -> None:
    fs = boot(MemNvStore())
    enc = CommandEncoder(fs)
    send(
        fs,
        enc.encode(
            "SCHED_INSERT",
            activities=[
                {"release_time": T0 + 10.0, "tc": ping(1)},
                {"release_time": T0 + 20.0, "tc": ping(2)},
            ],
        ),
    )
    fs.uplink_packet(enc.encode("SCHED_REPORT"))
    fs.step(0.0)
    (detail,) = [r for r in decode_downlink(fs) if (r.service, r.subservice) == (11, 10)]
    assert detail.fields == {
        "activities": [
            {"release_time": T0 + 10.0, "tc": ping(1)},
            {"release_time": T0 + 20.0, "tc": ping(2)},
        ]
    }
    assert send(fs, enc.encode("SCHED_DELETE", requests=[{"request_id": request_id_of(ping(1))}]))[
        -1
    ] == (7, None)
    assert send(fs, enc.encode("SCHED_DELETE", requests=[{"request_id": request_id_of(ping(1))}]))[
        -1
    ] == (8, "NOT_FOUND")
    assert send(fs, enc.encode("SCHED_DISABLE"))[-1] == (7, None)
    fs.step(25.0)
    assert not [r for r in decode_downlink(fs) if r.service == 17]
    assert fs.telemetry("sched.enabled") is False
    send(fs, enc.encode("SCHED_ENABLE"))
    fs.step(0.1)
    assert [r.service for r in decode_downlink(fs) if r.service == 17] == [17]


@pytest.mark.req("SCHED-005")
@pytest.mark.parametrize(
    ("tc_bytes", "when", "code"),
    [
        (ping(1), -1.0, "ARG_OUT_OF_RANGE"),
        (PusTc(apid=55, service=17, subservice=1).encode(), 5.0, "ILLEGAL_APID"),
        (ping(1)[:-1] + b"\x00", 5.0, "BAD_CHECKSUM"),
    ],
)
def test_insert_rejects_bad_activities(tc_bytes: bytes, when: float, code: str) -> None:
    fs = boot(MemNvStore())
    tc = CommandEncoder(fs).encode(
        "SCHED_INSERT",
        activities=[
            {"release_time": T0 + 3.0, "tc": ping(9)},
            {"release_time": T0 + when, "tc": tc_bytes},
        ],
    )
    assert send(fs, tc)[-1] == (8, code)
    assert fs.telemetry("sched.activities") == 0  # all or nothing


@pytest.mark.req("SCHED-006")
def test_schedule_survives_a_reboot_and_expired_ones_are_reported() -> None:
    store = MemNvStore()
    fs = boot(store)
    send(
        fs,
        CommandEncoder(fs).encode(
            "SCHED_INSERT",
            activities=[
                {"release_time": T0 + 30.0, "tc": ping(1)},
                {"release_time": T0 + 300.0, "tc": ping(2)},
            ],
        ),
    )
    fs2 = boot(store, T0 + 100.0)  # off for 100 s: the first activity expired
    assert [a.request_id for a in fs2.sched.activities()] == [request_id_of(ping(2))]
    assert any(e.name == "sched.EXPIRED" and e.args == (1,) for e in fs2.recent_events)
    fs2.step(200.0)
    assert [r.service for r in decode_downlink(fs2) if r.service == 17] == [17]
    fs3 = boot(store, T0 + 400.0)
    assert fs3.sched.activities() == ()
