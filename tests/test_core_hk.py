"""PUS service 3: default reports, create/delete/enable/disable, structure, one-shot."""

from __future__ import annotations

import pytest

from fsw.app import build_flight
from fsw.core import Channel, Component, FlightSoftware
from fsw.core.flight import COMPONENT_SID_BASE, CORE_SID
from fsw.core.testing import CommandEncoder, TmRecord, decode_downlink, request_id_of, verification


class Eps(Component):
    NAME = "battery"
    TELEMETRY = (
        Channel("soc_pct", "f32", units="%", red=(10.0, None), id=4),
        Channel("bus_v", "u16", units="mV", id=5),
        Channel("state", "enum", labels=("OFF", "CHARGING", "FULL"), id=6),
    )
    RATE_GROUPS = ("1Hz",)
    HK_INTERVAL_S = 5.0

    def on_init(self) -> None:
        self.n = 0

    def on_tick(self, rate_group: str) -> None:
        self.n += 1
        self.tlm("soc_pct", 50.0 + self.n)
        self.tlm("bus_v", 7400 + self.n)
        self.tlm("state", "CHARGING")


@pytest.fixture
def fs() -> FlightSoftware:
    fs = build_flight(components={16: Eps()})
    fs.step(0.0)
    fs.downlink_packets()
    return fs


def hk(recs: list[TmRecord], sid: int) -> list[TmRecord]:
    return [
        r
        for r in recs
        if (r.service, r.subservice) == (3, 25) and r.fields and r.fields["sid"] == sid
    ]


def send(fs: FlightSoftware, tc: bytes) -> tuple[list[tuple[int, str | None]], list[TmRecord]]:
    fs.uplink_packet(tc)
    fs.step(0.0)
    recs = decode_downlink(fs)
    return verification(recs, request_id_of(tc)), recs


@pytest.mark.req("HK-001")
def test_default_reports_arrive_at_their_periods(fs: FlightSoftware) -> None:
    fs.step(10.0)
    recs = decode_downlink(fs)
    eps_sid = COMPONENT_SID_BASE + fs.components["battery"].component_id
    assert len(hk(recs, CORE_SID)) == 10
    eps = hk(recs, eps_sid)
    assert len(eps) == 2
    assert all(r.apid == fs.config.hk_apid for r in eps)
    last = eps[-1].fields
    assert last is not None
    assert last["values"]["battery.bus_v"] == fs.telemetry("battery.bus_v")
    assert last["values"]["battery.state"] == "CHARGING"
    assert abs(last["values"]["battery.soc_pct"] - fs.telemetry("battery.soc_pct")) < 1e-5
    assert list(last["values"])[:3] == [
        "battery.cmds_accepted",
        "battery.cmds_rejected",
        "battery.errors",
    ]
    n_hk = sum(1 for r in recs if (r.service, r.subservice) == (3, 25))
    # core every 1 s, battery every 5 s, and one 10-s report per core component, comms,
    # the five mission components (eps, power, scrubber, payload, cfdp) and storage (stores,
    # files)
    assert fs.telemetry("hk.reports_sent") == n_hk == 10 + 2 + 16
    core = hk(recs, CORE_SID)[-1].fields
    assert core is not None and core["values"]["mode.mode"] == "NOMINAL"


@pytest.mark.req("HK-002", "HK-003")
def test_create_enable_report_structure_and_delete(fs: FlightSoftware) -> None:
    enc = CommandEncoder(fs)
    soc = fs.registry.channel_by_name["battery.soc_pct"].id
    bus = fs.registry.channel_by_name["battery.bus_v"].id
    ids = [{"channel_id": soc}, {"channel_id": bus}]
    v, _ = send(fs, enc.encode("HK_CREATE", sid=77, interval_ms=2000, channel_ids=ids))
    assert v == [(1, None), (3, None), (7, None)]
    fs.step(4.0)
    assert hk(decode_downlink(fs), 77) == []  # created disabled
    v, recs = send(fs, enc.encode("HK_REPORT_STRUCTURE", sids=[{"sid": 77}]))
    (structure,) = [r for r in recs if (r.service, r.subservice) == (3, 10)]
    assert structure.fields == {
        "sid": 77,
        "enabled": False,
        "interval_ms": 2000,
        "channel_ids": ids,
    }
    send(fs, enc.encode("HK_ENABLE", sids=[{"sid": 77}]))
    fs.step(6.0)
    got = hk(decode_downlink(fs), 77)
    assert len(got) == 3
    assert got[0].fields is not None and list(got[0].fields["values"]) == [
        "battery.soc_pct",
        "battery.bus_v",
    ]
    v, _ = send(fs, enc.encode("HK_DELETE", sids=[{"sid": 77}]))
    assert v[-1] == (8, "EXECUTION_ERROR")  # must be disabled first
    send(fs, enc.encode("HK_DISABLE", sids=[{"sid": 77}]))
    v, _ = send(fs, enc.encode("HK_DELETE", sids=[{"sid": 77}]))
    assert v[-1] == (7, None)
    v, _ = send(fs, enc.encode("HK_ONE_SHOT", sids=[{"sid": 77}]))
    assert v[-1] == (8, "NOT_FOUND")


@pytest.mark.req("HK-004")
def test_one_shot_and_modify_interval(fs: FlightSoftware) -> None:
    enc = CommandEncoder(fs)
    v, recs = send(fs, enc.encode("HK_ONE_SHOT", sids=[{"sid": CORE_SID}]))
    assert v == [(1, None), (3, None), (7, None)]
    assert len(hk(recs, CORE_SID)) == 1
    v, _ = send(
        fs, enc.encode("HK_MODIFY_INTERVAL", reports=[{"sid": CORE_SID, "interval_ms": 5000}])
    )
    assert v[-1] == (7, None)
    fs.step(10.0)
    assert len(hk(decode_downlink(fs), CORE_SID)) == 2


@pytest.mark.req("HK-005")
@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"sid": CORE_SID, "interval_ms": 1000, "channel_ids": []}, "ARG_OUT_OF_RANGE"),
        ({"sid": 90, "interval_ms": 150, "channel_ids": []}, "ARG_OUT_OF_RANGE"),
        ({"sid": 90, "interval_ms": 1000, "channel_ids": [{"channel_id": 0xFFFF}]}, "NOT_FOUND"),
    ],
)
def test_create_rejects(fs: FlightSoftware, kwargs: dict[str, object], code: str) -> None:
    v, _ = send(fs, CommandEncoder(fs).encode_args("HK_CREATE", kwargs))
    assert v[-1] == (8, code)
    assert fs.telemetry("hk.errors") == 1


@pytest.mark.req("HK-006")
def test_disabled_report_stops(fs: FlightSoftware) -> None:
    v, _ = send(fs, CommandEncoder(fs).encode("HK_DISABLE", sids=[{"sid": CORE_SID}]))
    assert v[-1] == (7, None)
    fs.step(5.0)
    assert hk(decode_downlink(fs), CORE_SID) == []
    assert fs.telemetry("hk.enabled") == len(fs.hk.default_structures()) - 1
