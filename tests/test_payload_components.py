"""The mission components (eps, power, scrubber, payload) in the flight topology, with
hand-driven HAL devices: what an operator would see in telemetry, events and reports."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fsw.ai import shipped_dir
from fsw.ai.scrubber import Scrubber
from fsw.app import build_flight
from fsw.core.clock import SimClock
from fsw.core.dictionary import build_dictionary
from fsw.core.flight import FlightSoftware
from fsw.core.testing import CommandEncoder, decode_downlink, request_id_of, verification
from fsw.hal.interfaces import CameraFrame, EpsReading, Hal, ModelFiles, NoPayloadPower
from hil.sim.scenario import load_scenario
from hil.sim.sim_hal import platform_of, shipped_models
from models.synth import make_tile

SCENARIO = load_scenario("sitl-short")
ARTIFACTS = shipped_dir()


class FakeCamera:
    """Frames handed over by the test."""

    def __init__(self) -> None:
        self.frames: list[CameraFrame] = []

    @property
    def available(self) -> bool:
        return True

    def poll(self) -> list[CameraFrame]:
        out, self.frames = self.frames, []
        return out


class FakeEps:
    def __init__(self, reading: EpsReading) -> None:
        self.reading = reading

    def read(self) -> EpsReading:
        return self.reading


class SwitchLog(NoPayloadPower):
    """Records every power-mode switch with its time."""

    def __init__(self, clock: SimClock) -> None:
        super().__init__()
        self.clock = clock
        self.log: list[tuple[float, str | None]] = []

    @property
    def available(self) -> bool:
        return True

    def set_mode(self, mode: str | None) -> None:
        super().set_mode(mode)
        self.log.append((self.clock.now_tai(), mode))


GOOD_EPS = EpsReading(
    True, 0.0, soc=0.95, battery_wh=73.0, solar_w=20.0, load_w=5.0, bus_voltage_v=8.1
)


def _flight(
    models: ModelFiles | None = None, eps: EpsReading = GOOD_EPS
) -> tuple[FlightSoftware, SimClock, FakeCamera, SwitchLog, FakeEps]:
    clock = SimClock(SCENARIO.start_tai)
    cam, sensor, switch = FakeCamera(), FakeEps(eps), SwitchLog(clock)
    hal = Hal(
        sensor,
        cam,
        switch,
        platform_of(SCENARIO),
        models if models is not None else shipped_models(),
        "profile",
        "test",
    )
    return build_flight(clock, hal=hal), clock, cam, switch, sensor


def _results(fs: FlightSoftware) -> list[dict[str, Any]]:
    """Fields of the RESULT reports downlinked so far."""
    return [
        r.fields for r in decode_downlink(fs) if r.name == "payload.RESULT" and r.fields is not None
    ]


def _scrubber(fs: FlightSoftware) -> Scrubber:
    comp = fs.component("scrubber")
    assert isinstance(comp, Scrubber)
    return comp


def _frames(clock: SimClock, seeds: list[int]) -> list[CameraFrame]:
    out = []
    for k, seed in enumerate(seeds):
        tile = make_tile(seed, "land")
        out.append(CameraFrame(1000 + k, clock.now_tai(), 45.0, 10.0, 1.0, tile.pixels))
    return out


@pytest.mark.req("EPS-002", "PWR-001", "SCRB-005")
def test_without_a_hal_every_mission_component_is_there_and_says_no_hardware() -> None:
    fs = build_flight()
    names = {c["name"] for c in build_dictionary(fs)["components"]}
    assert {"eps", "power", "scrubber", "payload"} <= names
    fs.step(3.0)
    assert fs.telemetry("eps.valid") is False
    assert fs.telemetry("eps.soc_pct") == 0.0  # no sensor: zero, never NaN
    assert fs.telemetry("power.reason") == "NO_PLATFORM"
    assert fs.telemetry("payload.models_loaded") == 0
    assert fs.telemetry("scrubber.models") == 0
    events = [e.name for e in fs.recent_events]
    assert events.count("eps.SENSOR_LOST") == 1


@pytest.mark.req("EPS-003", "EPS-004")
def test_eps_reports_loss_and_return_of_its_sensor_once_each() -> None:
    fs, _clock, _cam, _switch, sensor = _flight(ModelFiles(Path("none-s"), Path("none-l")))
    fs.step(2.0)
    assert fs.telemetry("eps.soc_pct") == pytest.approx(95.0)
    sensor.reading = EpsReading(valid=False)
    fs.step(5.0)
    assert fs.telemetry("eps.valid") is False
    assert fs.telemetry("eps.soc_pct") == pytest.approx(95.0)  # last good value kept
    sensor.reading = EpsReading(
        True, 0.0, soc=0.71, battery_wh=54.7, solar_w=0.0, load_w=5.0, bus_voltage_v=7.6
    )
    fs.step(2.0)
    names = [e.name for e in fs.recent_events if e.name.startswith("eps.")]
    assert names == ["eps.SENSOR_LOST", "eps.SENSOR_RESTORED", "eps.SOC_LOW"]
    assert fs.telemetry("eps.sensor_failures") == 5
    assert fs.telemetry("eps.min_soc_pct") == pytest.approx(71.0)


@pytest.mark.req("PWR-002", "PWR-003")
def test_power_predicts_from_the_platform_tle_and_takes_a_new_one_by_command() -> None:
    fs, *_ = _flight(ModelFiles(Path("none-s"), Path("none-l")))
    fs.step(2.0)
    assert fs.telemetry("power.tle_loaded") is True
    # sitl-short starts 154 s before a Svalbard pass
    assert fs.telemetry("power.next_pass_s") == pytest.approx(154.0 - 2.0, abs=2.0)
    enc = CommandEncoder(fs)
    bad = enc.encode("power.SET_TLE", line1="1 99999U garbage", line2="2 99999 nonsense")
    fs.uplink_packet(bad)
    good = enc.encode("power.SET_TLE", line1=SCENARIO.tle_line1, line2=SCENARIO.tle_line2)
    fs.uplink_packet(good)
    fs.step(1.0)
    records = decode_downlink(fs)
    assert verification(records, request_id_of(bad))[-1] == (8, "VALUE_REJECTED")
    assert verification(records, request_id_of(good))[-1] == (7, None)
    names = [e.name for e in fs.recent_events if e.name.startswith("power.TLE")]
    assert names == ["power.TLE_REJECTED", "power.TLE_LOADED"]
    assert fs.telemetry("power.predictions") >= 2


@pytest.mark.req("PAY-001", "PAY-002")
def test_payload_runs_the_cascade_and_reports_every_frame() -> None:
    fs, clock, cam, switch, _ = _flight()
    fs.step(1.0)
    cam.frames = _frames(clock, [3, 4, 5, 6])
    fs.step(240.0)
    assert fs.telemetry("payload.frames_seen") == 4
    assert fs.telemetry("payload.frames_processed") == 4
    small, large = fs.telemetry("payload.small_runs"), fs.telemetry("payload.large_runs")
    assert small == 4 and large == fs.telemetry("payload.escalations")
    results = _results(fs)
    assert sorted(r["frame_id"] for r in results) == [1000, 1001, 1002, 1003]
    assert fs.telemetry("payload.frames_kept") == sum(r["keep"] for r in results)
    # The payload computer was switched on in the ordered mode, then off again.
    modes = [m for _, m in switch.log]
    assert modes[-1] is None and set(modes) - {None} <= {"7W", "15W"}
    # Energy follows the platform's latency profile (deterministic): it matches the time
    # the payload computer was on in each mode, which overshoots each batch by less than
    # one 1 Hz tick (the switch-off happens at the tick after the last job ends).
    power = {m.name: m.power_w for m in SCENARIO.payload.modes}
    on_j, batches = 0.0, 0
    for (t0, m0), (t1, _m1) in zip(switch.log, switch.log[1:], strict=False):
        if m0 is not None:
            on_j += (t1 - t0) * power[m0]
            batches += 1
    energy = fs.telemetry("payload.energy_j")
    assert energy > 0.0
    assert energy <= on_j <= energy + batches * 1.0 * max(power.values())
    assert fs.telemetry("payload.busy") is False


@pytest.mark.req("SCRB-001")
def test_scrubber_repairs_a_flipped_weight_bit_and_says_so() -> None:
    fs, *_ = _flight()
    rt = _scrubber(fs).models[1]  # cloudnet-l: 25 blocks
    before = rt.arena.copy()
    rt.arena[5 * rt.block_size + 17] ^= 0x10
    fs.step(20.0)  # 8 KiB a tick: the 29 blocks of both arenas in 15 s
    assert np.array_equal(rt.arena, before)
    assert fs.telemetry("scrubber.repaired") == 1
    assert fs.telemetry("scrubber.corrupted") == 1
    events = [e for e in fs.recent_events if e.name == "scrubber.BLOCK_REPAIRED"]
    assert [(e.args[0], e.args[1]) for e in events] == [("cloudnet-l", 5)]


@pytest.mark.req("PAY-003", "SCRB-002")
def test_unrepairable_small_model_is_disabled_and_the_large_one_takes_over(
    tmp_path: Path,
) -> None:
    small = tmp_path / "cloudnet-s.gnm"
    shutil.copy(ARTIFACTS / "cloudnet-s.gnm", small)
    fs, clock, cam, _switch, _ = _flight(ModelFiles(small, ARTIFACTS / "cloudnet-l.gnm"))
    small.write_bytes(b"\x00" * 64)  # the only golden copy is gone
    rt = _scrubber(fs).models[0]
    rt.arena[100] ^= 0x01
    fs.step(10.0)
    assert rt.enabled is False
    assert fs.telemetry("scrubber.unrepairable") >= 1
    assert fs.telemetry("scrubber.models_enabled") == 1
    cam.frames = _frames(clock, [11, 12])
    fs.step(200.0)
    results = _results(fs)
    assert len(results) == 2
    assert all(r["model"] == "LARGE" and r["fallback"] for r in results)
    names = {e.name for e in fs.recent_events}
    assert {
        "scrubber.BLOCK_UNREPAIRABLE",
        "scrubber.MODEL_DISABLED",
        "payload.MODEL_FALLBACK",
    } <= names
    assert fs.telemetry("payload.small_runs") == 0


@pytest.mark.req("PAY-007", "PWR-004")
def test_payload_holds_off_without_battery_telemetry() -> None:
    fs, clock, cam, switch, _ = _flight(eps=EpsReading(valid=False))
    fs.step(1.0)
    cam.frames = _frames(clock, [21])
    fs.step(120.0)
    assert fs.telemetry("power.reason") == "NO_EPS"
    assert fs.telemetry("payload.frames_processed") == 0
    assert fs.telemetry("payload.queue_len") == 1
    assert switch.log == []


def _send(fs: FlightSoftware, tc: bytes) -> list[tuple[int, str | None]]:
    fs.uplink_packet(tc)
    fs.step(0.0)
    return verification(decode_downlink(fs), request_id_of(tc))


def _event_names(fs: FlightSoftware, prefix: str) -> list[str]:
    return [e.name for e in fs.recent_events if e.name.startswith(prefix)]


@pytest.mark.req("EPS-001", "EPS-005")
def test_eps_publishes_every_reading_of_its_sensor() -> None:
    fs, _clock, _cam, _switch, sensor = _flight(ModelFiles(Path("none-s"), Path("none-l")))
    fs.step(1.0)
    got = {k: fs.telemetry(f"eps.{k}") for k in ("soc_pct", "battery_wh", "solar_w", "load_w")}
    assert got == pytest.approx(
        {"soc_pct": 95.0, "battery_wh": 73.0, "solar_w": 20.0, "load_w": 5.0}
    )
    assert fs.telemetry("eps.bus_voltage_v") == pytest.approx(8.1)
    assert fs.telemetry("eps.valid") is True
    sensor.reading = EpsReading(
        True, 0.0, soc=0.9, battery_wh=69.0, solar_w=0.0, load_w=6.5, bus_voltage_v=7.9
    )
    fs.step(1.0)
    got = {k: fs.telemetry(f"eps.{k}") for k in ("soc_pct", "battery_wh", "solar_w", "load_w")}
    assert got == pytest.approx(
        {"soc_pct": 90.0, "battery_wh": 69.0, "solar_w": 0.0, "load_w": 6.5}
    )
    assert fs.telemetry("eps.min_soc_pct") == pytest.approx(90.0)


def _soc(soc: float) -> EpsReading:
    return EpsReading(
        True, 0.0, soc=soc, battery_wh=77.0 * soc, solar_w=20.0, load_w=5.0, bus_voltage_v=7.8
    )


@pytest.mark.req("EPS-004")
def test_eps_warns_once_on_low_charge_and_rearms_two_percent_above() -> None:
    fs, _clock, _cam, _switch, sensor = _flight(ModelFiles(Path("none-s"), Path("none-l")))
    sensor.reading = _soc(0.71)  # below the default 72 %
    fs.step(5.0)
    assert _event_names(fs, "eps.SOC") == ["eps.SOC_LOW"]
    sensor.reading = _soc(0.735)  # above the limit, but not 2 % above it
    fs.step(3.0)
    assert _event_names(fs, "eps.SOC") == ["eps.SOC_LOW"]
    sensor.reading = _soc(0.745)
    fs.step(3.0)
    assert _event_names(fs, "eps.SOC") == ["eps.SOC_LOW", "eps.SOC_RECOVERED"]
    sensor.reading = _soc(0.70)
    fs.step(3.0)
    assert _event_names(fs, "eps.SOC") == ["eps.SOC_LOW", "eps.SOC_RECOVERED", "eps.SOC_LOW"]


@pytest.mark.req("EPS-005")
def test_eps_reset_counters_clears_sensor_failures_and_minimum_charge() -> None:
    fs, _clock, _cam, _switch, sensor = _flight(ModelFiles(Path("none-s"), Path("none-l")))
    sensor.reading = _soc(0.75)
    fs.step(1.0)
    sensor.reading = EpsReading(valid=False)
    fs.step(3.0)
    sensor.reading = _soc(0.9)
    fs.step(1.0)
    assert fs.telemetry("eps.sensor_failures") == 3
    assert fs.telemetry("eps.min_soc_pct") == pytest.approx(75.0)
    assert _send(fs, CommandEncoder(fs).encode("eps.RESET_COUNTERS"))[-1] == (7, None)
    fs.step(1.0)
    assert fs.telemetry("eps.sensor_failures") == 0
    assert fs.telemetry("eps.min_soc_pct") == pytest.approx(90.0)


@pytest.mark.req("PAY-007", "PWR-005")
def test_power_disabled_by_parameter_runs_nothing_and_says_so() -> None:
    fs, clock, cam, switch, _ = _flight()
    fs.prm.set("power.enabled", False)
    fs.step(1.0)
    cam.frames = _frames(clock, [31, 32])
    fs.step(120.0)
    assert fs.telemetry("power.reason") == "DISABLED"
    assert fs.telemetry("payload.frames_processed") == 0
    assert fs.telemetry("payload.queue_len") == 2
    assert switch.log == []


@pytest.mark.req("PWR-007")
def test_power_refuses_a_margin_that_leaves_no_usable_energy() -> None:
    fs, *_ = _flight(ModelFiles(Path("none-s"), Path("none-l")))
    power = fs.component("power")
    enc = CommandEncoder(fs)
    pid = fs.registry.param_by_name["power.extra_margin_wh"].id
    base = power.config.margin_wh  # type: ignore[attr-defined]
    tc = enc.encode("PARAM_SET", params=[{"param_id": pid, "value": 100.0}])
    assert _send(fs, tc)[-1] == (8, "VALUE_REJECTED")
    assert power.config.margin_wh == base  # type: ignore[attr-defined]
    tc = enc.encode("PARAM_SET", params=[{"param_id": pid, "value": 2.0}])
    assert _send(fs, tc)[-1] == (7, None)
    assert power.config.margin_wh == pytest.approx(base + 2.0)  # type: ignore[attr-defined]


@pytest.mark.req("PAY-007", "PWR-006", "PWR-009")
def test_power_holds_the_payload_off_at_the_floor_and_allows_it_again() -> None:
    fs, clock, cam, switch, sensor = _flight()
    sensor.reading = _soc(0.70)  # at the scheduler's floor
    fs.step(1.0)
    cam.frames = _frames(clock, [41, 42])
    fs.step(60.0)
    assert fs.telemetry("power.reason") == "PAYLOAD_OFF"
    assert fs.telemetry("power.price") == -1.0
    assert fs.telemetry("payload.frames_processed") == 0 and switch.log == []
    sensor.reading = _soc(0.99)
    fs.step(120.0)
    # The scheduler's projection and, independently, the energy guard's worst case both
    # reach the floor: each says so, and each lets the payload go again.
    assert _event_names(fs, "power.PAYLOAD") == [
        "power.PAYLOAD_INHIBITED",
        "power.PAYLOAD_OFF",
        "power.PAYLOAD_RELEASED",
        "power.PAYLOAD_ALLOWED",
    ]
    assert fs.telemetry("payload.frames_processed") == 2


@pytest.mark.req("PAY-005")
def test_full_queue_drops_the_oldest_lowest_priority_frame() -> None:
    fs, clock, cam, _switch, _ = _flight(eps=EpsReading(valid=False))  # nothing runs
    fs.prm.set("payload.queue_limit", 2)
    fs.step(1.0)
    low, high, newer = _frames(clock, [51, 52, 53])
    cam.frames = [low, dataclasses.replace(high, priority=2.0)]
    fs.step(1.0)
    cam.frames = [newer]  # same priority as `low`, newer: `low` makes room
    fs.step(1.0)
    payload = fs.component("payload")
    assert sorted(j.job_id for j in payload.queue) == [1001, 1002]  # type: ignore[attr-defined]
    cam.frames = [dataclasses.replace(low, frame_id=1009, priority=0.5)]  # least important
    fs.step(1.0)
    assert sorted(j.job_id for j in payload.queue) == [1001, 1002]  # type: ignore[attr-defined]
    drops = [e.text for e in fs.recent_events if e.name == "payload.JOBS_DROPPED"]
    assert drops == ["1 frames dropped: queue full"] * 2
    assert fs.telemetry("payload.frames_dropped") == 2


@pytest.mark.req("PAY-006")
def test_safe_mode_stops_the_payload_and_keeps_its_frames() -> None:
    fs, clock, cam, switch, _ = _flight()
    fs.step(1.0)
    cam.frames = _frames(clock, [61, 62, 63, 64])
    for _ in range(90):  # the next scheduling tick starts the work
        fs.step(1.0)
        if fs.telemetry("payload.busy"):
            break
    assert fs.telemetry("payload.busy") is True and switch.log[-1][1] is not None
    enc = CommandEncoder(fs)
    assert _send(fs, enc.encode("MODE_SAFE_ENTER"))[-1] == (7, None)
    assert switch.log[-1][1] is None  # the payload computer is switched off at once
    assert fs.telemetry("payload.busy") is False
    processed = fs.telemetry("payload.frames_processed")
    fs.step(300.0)
    assert fs.telemetry("payload.frames_processed") == processed
    assert fs.telemetry("payload.queue_len") == 4 - processed  # frames kept for later
    assert _send(fs, enc.encode("MODE_SAFE_EXIT"))[-1] == (7, None)
    fs.step(300.0)
    assert fs.telemetry("payload.frames_processed") == 4
    assert sorted(r["frame_id"] for r in _results(fs)) == [1000, 1001, 1002, 1003]


@pytest.mark.req("PAY-004")
def test_without_any_model_frames_are_dropped_and_no_model_is_raised_once() -> None:
    fs, clock, cam, _switch, _ = _flight(ModelFiles(Path("none-s"), Path("none-l")))
    fs.step(1.0)
    cam.frames = _frames(clock, [71, 72])
    fs.step(120.0)
    assert _event_names(fs, "payload.NO_MODEL") == ["payload.NO_MODEL"]
    assert fs.telemetry("payload.frames_dropped") == 2
    assert fs.telemetry("payload.queue_len") == 0
    assert _results(fs) == []


@pytest.mark.req("SCRB-003")
def test_scrub_all_fails_while_a_block_stays_bad_and_succeeds_after_a_good_golden(
    tmp_path: Path,
) -> None:
    small = tmp_path / "cloudnet-s.gnm"
    shutil.copy(ARTIFACTS / "cloudnet-s.gnm", small)
    fs, *_ = _flight(ModelFiles(small, ARTIFACTS / "cloudnet-l.gnm"))
    small.write_bytes(b"\x00" * 64)
    rt = _scrubber(fs).models[0]
    rt.arena[100] ^= 0x01
    enc = CommandEncoder(fs)
    fs.uplink_packet(enc.encode("scrubber.SCRUB_ALL"))
    fs.step(0.0)
    fail = [r for r in decode_downlink(fs) if (r.service, r.subservice) == (1, 8)]
    assert [(f.fields or {}).get("failure_code") for f in fail] == ["EXECUTION_ERROR"]
    assert "1 blocks could not be repaired" in (fail[0].fields or {})["reason"]
    assert rt.enabled is False
    shutil.copy(ARTIFACTS / "cloudnet-s.gnm", small)  # a fresh golden copy was uplinked
    assert _send(fs, enc.encode("scrubber.SCRUB_ALL"))[-1] == (7, None)
    assert rt.enabled is True
    assert fs.telemetry("scrubber.models_enabled") == 2
    assert "scrubber.MODEL_ENABLED" in _event_names(fs, "scrubber.")


@pytest.mark.req("SCRB-004")
def test_scrubber_spends_its_byte_budget_each_tick() -> None:
    fs, *_ = _flight()
    block = _scrubber(fs).models[0].block_size
    fs.step(1.0)
    assert fs.telemetry("scrubber.blocks_checked") == 8192 // block  # the default budget
    fs.prm.set("scrubber.budget_bytes", 0)
    fs.step(3.0)
    assert fs.telemetry("scrubber.blocks_checked") == 8192 // block + 3  # at least one block
    fs.prm.set("scrubber.enabled", False)
    fs.step(3.0)
    assert fs.telemetry("scrubber.blocks_checked") == 8192 // block + 3


@pytest.mark.req("SCRB-005")
def test_scrubber_without_models_does_nothing_and_scrub_all_says_why() -> None:
    fs = build_flight()
    fs.step(3.0)
    assert fs.telemetry("scrubber.models") == 0
    assert fs.telemetry("scrubber.blocks_checked") == 0
    tc = CommandEncoder(fs).encode("scrubber.SCRUB_ALL")
    fs.uplink_packet(tc)
    fs.step(0.0)
    fail = [r for r in decode_downlink(fs) if (r.service, r.subservice) == (1, 8)]
    assert [(f.fields or {}).get("reason") for f in fail] == ["no model loaded"]
