"""PUS service 5: severities, the on-board filter, the disabled list, the flood limit."""

from __future__ import annotations

import pytest

from fsw.app import build_flight
from fsw.core import Arg, Component, CoreError, Event, FlightSoftware, Severity, command
from fsw.core.testing import CommandEncoder, decode_downlink, request_id_of, verification


class Thermal(Component):
    NAME = "thermal"
    EVENTS = (
        Event("NOTE", Severity.INFO, "note {n}", (Arg("n", "u8"),), id=1),
        Event(
            "COLD",
            Severity.LOW,
            "panel {panel} at {temp_c:.1f} C",
            (Arg("panel", "str", max_len=8), Arg("temp_c", "f32", units="C")),
            id=2,
        ),
        Event("HEATER_STUCK", Severity.MEDIUM, "heater stuck", id=3),
        Event(
            "OVERHEAT",
            Severity.HIGH,
            "overheat {state}",
            (Arg("state", "enum", labels=("WARM", "HOT")),),
            id=4,
        ),
    )

    @command(args=(Arg("count", "u8"),), opcode=1)
    def burst(self, count: int) -> None:
        for i in range(count):
            self.event("NOTE", i)


@pytest.fixture
def fs() -> FlightSoftware:
    fs = build_flight(components={16: Thermal()})
    fs.step(0.0)
    fs.downlink_packets()
    return fs


def eid(fs: FlightSoftware, name: str) -> int:
    return fs.registry.event_by_name[name].id


@pytest.mark.req("EVT-001")
def test_each_severity_has_its_subservice_and_args(fs: FlightSoftware) -> None:
    th = fs.components["thermal"]
    th.event("NOTE", 3)
    th.event("COLD", panel="+X", temp_c=-21.5)
    th.event("HEATER_STUCK")
    th.event("OVERHEAT", "HOT")
    recs = [r for r in decode_downlink(fs) if r.service == 5]
    assert [r.subservice for r in recs] == [1, 2, 3, 4]
    assert all(r.apid == fs.config.event_apid for r in recs)
    assert recs[1].fields == {
        "event_id": eid(fs, "thermal.COLD"),
        "args": {"panel": "+X", "temp_c": -21.5},
    }
    assert recs[3].fields == {"event_id": eid(fs, "thermal.OVERHEAT"), "args": {"state": "HOT"}}
    assert fs.recent_events[-3].text == "panel +X at -21.5 C"


@pytest.mark.req("EVT-002")
def test_bad_event_arguments_are_a_programming_error(fs: FlightSoftware) -> None:
    th = fs.components["thermal"]
    with pytest.raises(CoreError, match="takes 1 arguments, got 0"):
        th.event("NOTE")
    with pytest.raises(CoreError, match="n=300 is above the maximum 255"):
        th.event("NOTE", 300)
    with pytest.raises(CoreError, match="has no event 'NOPE'"):
        th.event("NOPE")


@pytest.mark.req("EVT-003", "EVT-004")
def test_filter_disable_enable_and_list(fs: FlightSoftware) -> None:
    enc = CommandEncoder(fs)
    cold = eid(fs, "thermal.COLD")
    tc = enc.encode("EVT_DISABLE", event_ids=[{"event_id": cold}])
    fs.uplink_packet(tc)
    fs.step(0.0)
    assert verification(decode_downlink(fs), request_id_of(tc))[-1] == (7, None)
    fs.components["thermal"].event("COLD", "+Y", -30.0)
    assert not [r for r in decode_downlink(fs) if r.service == 5]
    assert fs.telemetry("evt.filtered") == 1
    assert fs.recent_events[-1].name == "thermal.COLD"  # still logged on board
    fs.uplink_packet(enc.encode("EVT_REPORT_DISABLED"))
    fs.step(0.0)
    (lst,) = [r for r in decode_downlink(fs) if (r.service, r.subservice) == (5, 8)]
    assert lst.fields == {"event_ids": [{"event_id": cold}]}
    fs.uplink_packet(enc.encode("EVT_ENABLE", event_ids=[{"event_id": cold}]))
    fs.step(0.0)
    fs.downlink_packets()
    fs.components["thermal"].event("COLD", "+Y", -30.0)
    assert [r.subservice for r in decode_downlink(fs) if r.service == 5] == [2]
    assert fs.telemetry("evt.disabled") == 0


@pytest.mark.req("EVT-005")
def test_unknown_event_id_is_not_found(fs: FlightSoftware) -> None:
    tc = CommandEncoder(fs).encode("EVT_DISABLE", event_ids=[{"event_id": 0xFE01}])
    fs.uplink_packet(tc)
    fs.step(0.0)
    assert verification(decode_downlink(fs), request_id_of(tc))[-1] == (8, "NOT_FOUND")


@pytest.mark.req("EVT-006")
def test_flood_limit_per_event_id_and_second(fs: FlightSoftware) -> None:
    enc = CommandEncoder(fs)
    fs.uplink_packet(enc.encode("thermal.BURST", count=25))
    fs.step(0.0)
    notes = [
        r
        for r in decode_downlink(fs)
        if r.service == 5 and r.fields and r.fields["event_id"] == eid(fs, "thermal.NOTE")
    ]
    assert len(notes) == fs.config.event_burst_per_s
    assert fs.telemetry("evt.throttled") == 25 - fs.config.event_burst_per_s
    fs.step(1.0)
    fs.downlink_packets()
    fs.components["thermal"].event("NOTE", 1)
    assert any(r.service == 5 for r in decode_downlink(fs))  # a new second, a new budget
