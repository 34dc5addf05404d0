"""The SITL back-end of the HAL: the flight's devices, driven by the simulated world.

* :class:`SimEps` reads the world's EPS state (battery, array, load, bus voltage);
* :class:`SimCamera` hands over the frames the world's camera took (pixels drawn from
  ``models.synth`` on delivery) and remembers each frame's ground truth;
* :class:`SimPayloadPower` records the payload computer's power mode over time and
  integrates it, so the world's EPS sees exactly the energy the payload drew.

:func:`sim_hal` bundles them with the scenario's platform description and the shipped
model artifacts into the :class:`~fsw.hal.interfaces.Hal` that ``build_flight`` takes;
the flight topology is the one a board runs.

>>> from fsw.app import build_flight
>>> from fsw.core.clock import SimClock
>>> from hil.sim.world import World
>>> world = World.from_scenario("sitl-short", seed=1)
>>> clock = SimClock(world.start_tai)
>>> hal = sim_hal(world, clock)
>>> fs = build_flight(clock, hal=hal)
>>> fs.telemetry("payload.models_loaded")
2
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from fsw.ai import shipped_dir
from fsw.core.clock import Clock
from fsw.hal.interfaces import CameraFrame, EpsReading, Hal, ModelFiles, Platform
from hil.sim.camera import Frame, scene_tiles
from hil.sim.errors import WorldError
from hil.sim.scenario import Scenario
from hil.sim.world import World

#: The shipped int8 artifacts (package data of ``fsw.ai``; the flight never imports models).
ARTIFACTS_DIR = shipped_dir()


class SimEps:
    """The EPS sensor: the world's latest EPS state, always valid."""

    def __init__(self, world: World) -> None:
        self.world = world

    def read(self) -> EpsReading:
        s = self.world.eps
        return EpsReading(True, s.t_tai, s.soc, s.battery_wh, s.solar_w, s.load_w, s.bus_voltage_v)


@dataclass(slots=True, frozen=True)
class FrameTruth:
    """What a frame really showed (the simulator knows; the flight guesses)."""

    keep: bool
    cloud_fraction: float
    surface: str


class SimCamera:
    """Frames the world's camera took, delivered on the next :meth:`poll`: each a scene
    of ``tiles_per_frame`` tiles (:func:`~hil.sim.camera.scene_tiles`; one tile: its
    pixels as (bands, height, width))."""

    def __init__(self, tiles_per_frame: int = 1) -> None:
        self.tiles_per_frame = tiles_per_frame
        self._pending: list[Frame] = []
        #: Ground truth of every delivered frame, by frame id.
        self.truth: dict[int, FrameTruth] = {}
        self.delivered = 0

    @property
    def available(self) -> bool:
        return True

    def push(self, frames: Iterable[Frame]) -> None:
        """Frames the world took during the last step (the SITL runner calls this)."""
        self._pending.extend(frames)

    def poll(self) -> list[CameraFrame]:
        out = []
        for f in self._pending:
            tile = f.tile()
            self.truth[f.frame_id] = FrameTruth(tile.keep, tile.cloud_fraction, tile.surface)
            n = self.tiles_per_frame
            pixels = tile.pixels if n == 1 else scene_tiles(tile.pixels, n)
            out.append(CameraFrame(f.frame_id, f.t_tai, f.lat_deg, f.lon_deg, f.priority, pixels))
        self._pending.clear()
        self.delivered += len(out)
        return out


class SimPayloadPower:
    """The payload power switch: a log of (time, power) steps, integrated on demand.

    >>> from fsw.core.clock import SimClock
    >>> clock = SimClock(100.0)
    >>> sw = SimPayloadPower(clock, {"7W": 7.0})
    >>> sw.set_mode("7W"); clock.advance(3.0); sw.set_mode(None)
    >>> sw.energy_j(100.0, 110.0)
    21.0
    """

    def __init__(self, clock: Clock, mode_power_w: Mapping[str, float]) -> None:
        self.clock = clock
        self.mode_power_w = dict(mode_power_w)
        self._mode: str | None = None
        self._t: list[float] = [clock.now_tai()]
        self._p: list[float] = [0.0]
        self.switches = 0

    @property
    def available(self) -> bool:
        return True

    @property
    def mode(self) -> str | None:
        return self._mode

    def set_mode(self, mode: str | None) -> None:
        if mode is not None and mode not in self.mode_power_w:
            raise WorldError(
                f"unknown payload power mode {mode!r} (known: {', '.join(self.mode_power_w)})"
            )
        self._mode = mode
        t = self.clock.now_tai()
        p = 0.0 if mode is None else self.mode_power_w[mode]
        if t <= self._t[-1]:
            self._p[-1] = p  # several switches in one instant: the last one holds
        elif p != self._p[-1]:
            self._t.append(t)
            self._p.append(p)
        self.switches += 1

    def energy_j(self, t0_tai: float, t1_tai: float) -> float:
        """Energy the payload drew in [t0, t1] (J)."""
        if t1_tai <= t0_tai:
            return 0.0
        ts, ps = self._t, self._p
        i = max(0, bisect.bisect_right(ts, t0_tai) - 1)
        e = 0.0
        for k in range(i, len(ts)):
            a = max(ts[k], t0_tai)
            b = min(ts[k + 1] if k + 1 < len(ts) else t1_tai, t1_tai)
            if b > a:
                e += ps[k] * (b - a)
        return e

    def forget_before(self, t_tai: float) -> None:
        """Drop history before ``t_tai`` (keeps the log short on long runs)."""
        i = bisect.bisect_right(self._t, t_tai) - 1
        if i > 0:
            del self._t[:i]
            del self._p[:i]


def platform_of(sc: Scenario) -> Platform:
    """The platform description the flight is given for a scenario: what the scheduler
    knows (nominal array, battery, loads, power modes, latency profile), the stations,
    the imaging plan, the TLE and the deadline policy."""
    return Platform(
        scheduler=sc.scheduler_config(),
        stations=sc.stations,
        imaging=sc.imaging_plan(),
        tle=(sc.tle_line1, sc.tle_line2),
        deadline=sc.policy.deadline,
        min_deadline_s=sc.policy.min_deadline_s,
        max_deadline_s=sc.policy.max_deadline_s,
        bus_peak_w=sc.loads.bus_peak_w,
    )


def shipped_models(artifacts: Path = ARTIFACTS_DIR) -> ModelFiles:
    """The shipped cloudnet-s/-l artifacts; each file is its own golden copy."""
    return ModelFiles(artifacts / "cloudnet-s.gnm", artifacts / "cloudnet-l.gnm")


@dataclass(slots=True, frozen=True)
class SimDevices:
    """The simulated devices behind a SITL HAL (the runner steps them)."""

    eps: SimEps
    camera: SimCamera
    payload_power: SimPayloadPower


def sim_hal(world: World, clock: Clock, models: ModelFiles | None = None) -> Hal:
    """A HAL whose devices are driven by ``world`` (deterministic latency model)."""
    return sim_hal_with_devices(world, clock, models)[0]


def sim_hal_with_devices(
    world: World, clock: Clock, models: ModelFiles | None = None
) -> tuple[Hal, SimDevices]:
    """:func:`sim_hal` plus the device objects, for the runner that steps them."""
    sc = world.scenario
    dev = SimDevices(
        SimEps(world),
        SimCamera(sc.payload.tiles_per_frame),
        SimPayloadPower(clock, {m.name: m.power_w for m in sc.payload.modes}),
    )
    hal = Hal(
        eps=dev.eps,
        camera=dev.camera,
        payload_power=dev.payload_power,
        platform=platform_of(sc),
        models=models if models is not None else shipped_models(),
        latency_model="profile",
        name="sim",
    )
    return hal, dev


__all__ = [
    "ARTIFACTS_DIR",
    "FrameTruth",
    "SimCamera",
    "SimDevices",
    "SimEps",
    "SimPayloadPower",
    "platform_of",
    "shipped_models",
    "sim_hal",
    "sim_hal_with_devices",
]
