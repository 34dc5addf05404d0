"""The simulated world that SITL, HIL and the scheduler evaluation step through.

Everything that depends only on the orbit (positions, sub-satellite point, land,
Sun, eclipses, passes, camera frame slots) is precomputed once, vectorised, when the
world is built (~0.1 s for a day); :meth:`World.step` then costs a few microseconds of
Python: a sunlit-fraction integral over the step, an EPS update, and a slice of the
camera and radiation schedules.

>>> w = World.from_scenario("leo550-sso-6u", seed=1)
>>> s = w.step(10.0, payload_power_w=7.0)
>>> round(s.eps.solar_w, 1) >= 0.0, w.t_tai - w.start_tai
(True, 10.0)
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fsw.power import astro
from fsw.power.landmask import LandMask
from fsw.power.predictor import EclipseWindow, OrbitPredictor, PassWindow
from hil.sim.camera import Camera, Frame
from hil.sim.eps import Eps, EpsState, array_power_w
from hil.sim.errors import WorldError
from hil.sim.orbit import OrbitTable
from hil.sim.radiation import RadiationEnvironment, Upset
from hil.sim.scenario import Scenario, load_scenario
from hil.sim.sun import SunTable


@dataclass(slots=True, frozen=True)
class PassState:
    """The station in view and the current elevation."""

    station: str
    elevation_deg: float
    window: PassWindow


@dataclass(slots=True, frozen=True)
class WorldStep:
    """What happened during one step (t0, t1]."""

    t0_tai: float
    t1_tai: float
    eps: EpsState
    sun_fraction: float  # mean over the step
    frames: tuple[Frame, ...]
    upsets: tuple[Upset, ...]


class World:
    """One scenario's world for one seed. Build with :meth:`from_scenario`."""

    def __init__(
        self,
        scenario: Scenario,
        seed: int = 0,
        *,
        duration_s: float | None = None,
        grid_s: float = 10.0,
        land_mask: LandMask | None = None,
    ) -> None:
        if not 0.5 <= grid_s <= 120.0:
            raise WorldError(f"grid_s {grid_s} must be within 0.5..120 s")
        self.scenario = scenario
        self.seed = int(seed)
        self.start_tai = scenario.start_tai
        span = scenario.duration_s if duration_s is None else float(duration_s)
        if not span > 0.0:
            raise WorldError(f"duration_s must be > 0 (got {span})")
        self.end_tai = self.start_tai + span
        self._land = land_mask if land_mask is not None else LandMask()
        sat = astro.parse_tle(scenario.tle_line1, scenario.tle_line2)
        self.orbit = OrbitTable.build(sat, self.start_tai, self.end_tai, grid_s, self._land)
        self.sun = SunTable.build(self.orbit)
        self.passes: tuple[PassWindow, ...] = self.orbit.passes(scenario.stations)
        # LOS times are not sorted when stations overlap; a running max keeps bisect valid.
        self._pass_los = list(itertools.accumulate((p.los_tai for p in self.passes), max))
        self.camera = Camera(scenario.imaging_plan(), self.orbit, self._land, self.seed)
        self.radiation = RadiationEnvironment(scenario.radiation, self.seed, self._in_saa)
        self.eps_model = Eps(scenario.array, scenario.battery, self.start_tai)
        self._t = self.start_tai
        self._memories: dict[str, int] = {}

    @classmethod
    def from_scenario(
        cls,
        scenario: Scenario | str | Path,
        seed: int = 0,
        *,
        duration_s: float | None = None,
        grid_s: float = 10.0,
        land_mask: LandMask | None = None,
    ) -> World:
        """Build a world from a :class:`Scenario`, a TOML path or a bundled name."""
        sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        return cls(sc, seed, duration_s=duration_s, grid_s=grid_s, land_mask=land_mask)

    # ----------------------------------------------------------------- time and stepping
    @property
    def land_mask(self) -> LandMask:
        return self._land

    @property
    def t_tai(self) -> float:
        return self._t

    @property
    def eclipses(self) -> tuple[EclipseWindow, ...]:
        return self.sun.eclipses

    def subscribe(self, memory: str, n_bits: int) -> None:
        """Have :meth:`step` report upsets for ``memory`` (``n_bits`` bits)."""
        if not isinstance(n_bits, int) or n_bits <= 0:
            raise WorldError(f"memory {memory!r}: n_bits must be a positive integer")
        self._memories[memory] = n_bits

    def solar_power_w(self, t0_tai: float, t1_tai: float) -> float:
        """Mean array output over [t0, t1] (eclipses, Sun distance, attitude, degradation)."""
        frac = self.sun.mean_sun_fraction(t0_tai, t1_tai)
        return array_power_w(self.scenario.array, frac, self.sun.distance_au(t0_tai))

    def load_w(self, payload_power_w: float, radio_on: bool, safe_mode: bool = False) -> float:
        """Total bus load: bus (or SAFE) baseline, radio transmitter, payload."""
        loads = self.scenario.loads
        base = loads.safe_w if safe_mode else loads.bus_w
        return base + (loads.radio_tx_w if radio_on else 0.0) + payload_power_w

    def step(
        self,
        dt_s: float,
        payload_power_w: float = 0.0,
        radio_on: bool = False,
        *,
        safe_mode: bool = False,
    ) -> WorldStep:
        """Advance ``dt_s`` seconds with the given mean payload power and radio state."""
        if not dt_s > 0.0:
            raise WorldError(f"dt_s must be > 0 (got {dt_s})")
        if payload_power_w < 0.0:
            raise WorldError(f"payload_power_w must be >= 0 (got {payload_power_w})")
        t0, t1 = self._t, self._t + dt_s
        if t1 > self.orbit.end_tai:
            raise WorldError(
                f"step to {t1:.1f} runs past the precomputed run (ends {self.orbit.end_tai:.1f}):"
                " build the World with a longer duration_s"
            )
        frac = self.sun.mean_sun_fraction(t0, t1)
        solar = array_power_w(self.scenario.array, frac, self.sun.distance_au(t0))
        eps = self.eps_model.step(dt_s, solar, self.load_w(payload_power_w, radio_on, safe_mode))
        upsets: list[Upset] = []
        for name, n_bits in self._memories.items():
            upsets.extend(self.radiation.upsets(t0, t1, n_bits, name))
        self._t = t1
        return WorldStep(t0, t1, eps, frac, self.camera.due(t0, t1), tuple(upsets))

    # ------------------------------------------------------------------------- queries
    def _at(self, t_tai: float | None) -> float:
        return self._t if t_tai is None else float(t_tai)

    @property
    def eps(self) -> EpsState:
        """Latest EPS state (soc, battery_wh, solar_w, load_w, bus_voltage_v, ...)."""
        return self.eps_model.last

    def in_eclipse(self, t_tai: float | None = None) -> bool:
        return self.sun.in_eclipse(self._at(t_tai))

    def sun_fraction(self, t_tai: float | None = None) -> float:
        return self.sun.sun_fraction(self._at(t_tai))

    def subpoint(self, t_tai: float | None = None) -> tuple[float, float]:
        """Sub-satellite latitude and longitude in degrees."""
        return self.orbit.subpoint(self._at(t_tai))

    def over_land(self, t_tai: float | None = None) -> bool:
        lat, lon = self.subpoint(t_tai)
        return bool(self._land.is_land(lat, lon))

    def in_pass(self, t_tai: float | None = None) -> PassState | None:
        """The station in view (highest if several) and its elevation, or None."""
        t = self._at(t_tai)
        best: PassState | None = None
        first = bisect.bisect_right(self._pass_los, t)
        for p in self.passes[first:]:
            if p.aos_tai > t:
                break
            if t <= p.los_tai:
                st = next(s for s in self.scenario.stations if s.name == p.station)
                pos = self.orbit.ecef_at(t)[None, :]
                el = float(astro.elevation_deg(pos, st.lat_deg, st.lon_deg, st.alt_m / 1e3)[0])
                if best is None or el > best.elevation_deg:
                    best = PassState(p.station, el, p)
        return best

    def frames_due(self, t0_tai: float, t1_tai: float) -> tuple[Frame, ...]:
        """Camera frames taken in (t0, t1]."""
        return self.camera.due(t0_tai, t1_tai)

    def upsets(
        self, t0_tai: float, t1_tai: float, n_bits: int, memory: str = "memory"
    ) -> tuple[Upset, ...]:
        """Upsets in (t0, t1] for a memory of ``n_bits`` bits (deterministic per seed)."""
        return self.radiation.upsets(t0_tai, t1_tai, n_bits, memory)

    def _in_saa(self, t_tai: float) -> bool:
        t = min(max(t_tai, self.orbit.start_tai), self.orbit.end_tai)
        lat, lon = self.orbit.nearest_subpoint(t)
        return self.radiation.in_saa_box(lat, lon)

    def predictor(self, stations: Sequence[str] | None = None) -> OrbitPredictor:
        """The onboard predictor for this scenario (same TLE, stations, imaging plan)."""
        sc = self.scenario
        st = (
            sc.stations if stations is None else tuple(s for s in sc.stations if s.name in stations)
        )
        return OrbitPredictor(sc.tle_line1, sc.tle_line2, st, sc.imaging_plan(), self._land)
