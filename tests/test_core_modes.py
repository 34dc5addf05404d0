"""Modes and fault protection: limit monitors with persistence, SAFE, actions, commands."""

from __future__ import annotations

import pytest

from fsw.app import build_flight
from fsw.ccsds import PusTc
from fsw.core import (
    Channel,
    Component,
    DeclarationError,
    FlightSoftware,
    Mode,
    Monitor,
    MonitorAction,
    SeqStep,
    StoredSequence,
    command,
)
from fsw.core.testing import CommandEncoder, decode_downlink, request_id_of, verification


class Battery(Component):
    NAME = "battery"
    TELEMETRY = (Channel("soc_pct", "f32", units="%", id=4),)
    RATE_GROUPS = ("1Hz",)

    def on_init(self) -> None:
        self.soc = 80.0

    def on_tick(self, rate_group: str) -> None:
        self.tlm("soc_pct", self.soc)


class Payload(Component):
    NAME = "experiment"
    TELEMETRY = (Channel("powered", "bool", id=4),)

    def on_init(self) -> None:
        self.powered = True
        self.tlm("powered", True)

    def on_mode(self, mode: Mode) -> None:
        self.powered = mode != Mode.SAFE
        self.tlm("powered", self.powered)

    @command(allowed_in_safe=False, opcode=1)
    def power_on(self) -> None:
        self.powered = True


PING = PusTc(apid=100, service=17, subservice=1, seq_count=77).encode()


def boot(*monitors: Monitor) -> tuple[FlightSoftware, Battery, Payload]:
    bat, pay = Battery(), Payload()
    fs = build_flight(
        components={16: bat, 17: pay},
        monitors=monitors,
        sequences=[StoredSequence(10, "ping_ground", (SeqStep(0.0, PING),))],
    )
    fs.step(0.0)
    fs.downlink_packets()
    return fs, bat, pay


def send(fs: FlightSoftware, tc: bytes) -> list[tuple[int, str | None]]:
    fs.uplink_packet(tc)
    fs.step(0.0)
    return verification(decode_downlink(fs), request_id_of(tc))


@pytest.mark.req("MODE-001", "MODE-002", "MODE-003", "MODE-004")
def test_safe_after_persistence_samples_then_exit_by_command() -> None:
    fs, bat, pay = boot(
        Monitor(
            100,
            "battery_low",
            "battery.soc_pct",
            "<",
            15.0,
            persistence=3,
            action=MonitorAction.SAFE,
        )
    )
    bat.soc = 10.0
    fs.step(2.0)
    assert fs.mode == Mode.NOMINAL  # two samples are not enough
    fs.step(1.0)
    assert fs.mode == Mode.SAFE
    assert not pay.powered and fs.telemetry("experiment.powered") is False
    names = [e.name for e in fs.recent_events]
    assert "mode.MONITOR_TRIPPED" in names and "mode.SAFE_ENTERED" in names
    assert fs.telemetry("mode.mode") == "SAFE"
    enc = CommandEncoder(fs)
    assert send(fs, enc.encode("experiment.POWER_ON"))[-1] == (2, "NOT_AUTHORISED")
    bat.soc = 50.0
    fs.step(1.0)
    assert send(fs, enc.encode("MODE_SAFE_EXIT")) == [(1, None), (3, None), (7, None)]
    assert fs.mode == Mode.NOMINAL and pay.powered
    assert send(fs, enc.encode("MODE_SAFE_EXIT"))[-1] == (8, "EXECUTION_ERROR")
    assert send(fs, enc.encode("experiment.POWER_ON"))[-1] == (7, None)


@pytest.mark.req("MODE-001")
def test_a_dip_shorter_than_the_persistence_does_not_trip() -> None:
    fs, bat, _ = boot(
        Monitor(
            100,
            "battery_low",
            "battery.soc_pct",
            "<",
            15.0,
            persistence=3,
            action=MonitorAction.SAFE,
        )
    )
    for _ in range(5):
        bat.soc = 10.0
        fs.step(2.0)
        bat.soc = 40.0
        fs.step(1.0)
    assert fs.mode == Mode.NOMINAL
    assert fs.telemetry("mode.monitor_trips") == 0


@pytest.mark.req("MODE-007")
def test_disabled_monitor_does_not_trip_and_can_be_reenabled() -> None:
    fs, bat, _ = boot(
        Monitor(100, "battery_low", "battery.soc_pct", "<", 15.0, action=MonitorAction.SAFE)
    )
    enc = CommandEncoder(fs)
    assert send(fs, enc.encode("MON_DISABLE", monitor_ids=[{"monitor_id": 100}]))[-1] == (7, None)
    bat.soc = 5.0
    fs.step(5.0)
    assert fs.mode == Mode.NOMINAL
    fs.uplink_packet(enc.encode("MON_REPORT"))
    fs.step(0.0)
    (rep,) = [r for r in decode_downlink(fs) if (r.service, r.subservice) == (12, 14)]
    assert rep.fields is not None
    assert {"monitor_id": 100, "enabled": False, "tripped": False, "count": 0} in rep.fields[
        "monitors"
    ]
    send(fs, enc.encode("MON_ENABLE", monitor_ids=[{"monitor_id": 100}]))
    fs.step(1.0)
    assert fs.mode == Mode.SAFE
    assert send(fs, enc.encode("MON_ENABLE", monitor_ids=[{"monitor_id": 999}]))[-1] == (
        8,
        "NOT_FOUND",
    )


@pytest.mark.req("MODE-005")
def test_event_action_trips_once_and_clears() -> None:
    fs, bat, _ = boot(Monitor(100, "battery_warn", "battery.soc_pct", "<=", 30.0, persistence=2))
    bat.soc = 25.0
    fs.step(10.0)
    trips = [e for e in fs.recent_events if e.name == "mode.MONITOR_TRIPPED"]
    assert len(trips) == 1
    assert trips[0].text == ("battery_warn: battery.soc_pct = 25 <= 30 for 2 samples; action EVENT")
    assert fs.mode == Mode.NOMINAL
    bat.soc = 60.0
    fs.step(1.0)
    assert [e.text for e in fs.recent_events if e.name == "mode.MONITOR_CLEARED"] == [
        "battery_warn: back within limits"
    ]
    bat.soc = 25.0
    fs.step(2.0)
    assert len([e for e in fs.recent_events if e.name == "mode.MONITOR_TRIPPED"]) == 2


@pytest.mark.req("MODE-006")
def test_sequence_action_runs_the_stored_sequence() -> None:
    fs, bat, _ = boot(
        Monitor(
            100,
            "battery_seq",
            "battery.soc_pct",
            "<",
            15.0,
            action=MonitorAction.SEQUENCE,
            sequence_id=10,
        )
    )
    bat.soc = 1.0
    fs.step(1.0)
    recs = decode_downlink(fs)
    assert verification(recs, request_id_of(PING)) == [(1, None), (3, None), (7, None)]
    assert any(
        e.name == "seq.STARTED" and "monitor battery_seq" in e.text for e in fs.recent_events
    )


@pytest.mark.req("MODE-004")
def test_mode_hooks_and_safe_enter_command() -> None:
    fs, _, _ = boot()
    seen: list[Mode] = []
    fs.modes.add_mode_hook(seen.append)
    enc = CommandEncoder(fs)
    assert send(fs, enc.encode("MODE_SAFE_ENTER"))[-1] == (7, None)
    assert send(fs, enc.encode("MODE_SAFE_ENTER"))[-1] == (8, "EXECUTION_ERROR")
    send(fs, enc.encode("MODE_SAFE_EXIT"))
    assert seen == [Mode.SAFE, Mode.NOMINAL]
    assert fs.telemetry("mode.safe_entries") == 1


@pytest.mark.req("MODE-008")
def test_bad_monitor_definitions() -> None:
    fs, _, _ = boot()
    with pytest.raises(DeclarationError, match=r"no channel 'battery\.nope'"):
        fs.add_monitor(Monitor(101, "x", "battery.nope", "<", 1.0))
    with pytest.raises(DeclarationError, match="operator must be one of"):
        Monitor(101, "x", "battery.soc_pct", "=<", 1.0)
    with pytest.raises(DeclarationError, match="needs sequence_id"):
        Monitor(101, "x", "battery.soc_pct", "<", 1.0, action=MonitorAction.SEQUENCE)
