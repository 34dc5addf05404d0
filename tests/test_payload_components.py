"""The mission components (eps, power, scrubber, payload) in the flight topology, with
hand-driven HAL devices: what an operator would see in telemetry, events and reports."""

from __future__ import annotations

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
    assert verification(records, request_id_of(bad))[-1][0] == 8
    assert verification(records, request_id_of(good))[-1] == (7, None)
    names = [e.name for e in fs.recent_events if e.name.startswith("power.TLE")]
    assert names == ["power.TLE_REJECTED", "power.TLE_LOADED"]
    assert fs.telemetry("power.predictions") >= 2


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


def test_payload_holds_off_without_battery_telemetry() -> None:
    fs, clock, cam, switch, _ = _flight(eps=EpsReading(valid=False))
    fs.step(1.0)
    cam.frames = _frames(clock, [21])
    fs.step(120.0)
    assert fs.telemetry("power.reason") == "NO_EPS"
    assert fs.telemetry("payload.frames_processed") == 0
    assert fs.telemetry("payload.queue_len") == 1
    assert switch.log == []
