"""Onboard prediction from the uplinked TLE: eclipses, ground passes and imaging.

Everything the power scheduler needs to know about the next orbits comes from here,
computed on board with sgp4 and :mod:`fsw.power.astro` (no simulator imports):

* eclipse windows (penumbra, Sun centre hidden, umbra) from a conical shadow;
* ground-station passes above each station's elevation mask;
* the camera's frame slots over land in daylight, each with its target priority;
* per-sample tables (``step_s`` apart) of sunlit fraction, radio (pass) fraction and
  expected frames, which the scheduler integrates into an energy projection.

>>> from fsw.core.clock import DEFAULT_START_TAI
>>> pred = OrbitPredictor(
...     "1 99999U          26325.00000000  .00000000  00000-0  10000-3 0    01",
...     "2 99999  97.5900 100.0000 0001000  90.0000   0.0000 15.20000000    07",
...     stations=(GroundStation("svalbard", 78.23, 15.39, 500.0),),
... )  # doctest: +SKIP
>>> p = pred.predict(DEFAULT_START_TAI)  # doctest: +SKIP
>>> p.next_eclipse(DEFAULT_START_TAI).duration_s  # doctest: +SKIP
2130.4
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sgp4.api import Satrec

from fsw.power import astro
from fsw.power.astro import FloatArray
from fsw.power.errors import PowerError
from fsw.power.landmask import LandMask


@dataclass(slots=True, frozen=True)
class GroundStation:
    """A ground station and its elevation mask."""

    name: str
    lat_deg: float
    lon_deg: float
    alt_m: float = 0.0
    min_elevation_deg: float = 5.0

    def __post_init__(self) -> None:
        if not -90.0 <= self.lat_deg <= 90.0 or not -180.0 <= self.lon_deg <= 360.0:
            raise PowerError(
                f"station {self.name!r}: latitude {self.lat_deg} / longitude {self.lon_deg} "
                "out of range"
            )
        if not -5.0 <= self.min_elevation_deg < 90.0:
            raise PowerError(
                f"station {self.name!r}: elevation mask {self.min_elevation_deg} deg "
                "must be in -5..90"
            )


@dataclass(slots=True, frozen=True)
class EclipseWindow:
    """One passage through Earth's shadow (TAI seconds).

    ``start_tai``/``end_tai`` are when the Sun's centre disappears/reappears behind the
    limb (the usual "eclipse" times); penumbra bounds the partial phase; umbra is None
    when the orbit only grazes the shadow. Windows cut by the prediction range start or
    end at that range.
    """

    start_tai: float
    end_tai: float
    penumbra_start_tai: float
    penumbra_end_tai: float
    umbra_start_tai: float | None
    umbra_end_tai: float | None

    @property
    def duration_s(self) -> float:
        return self.end_tai - self.start_tai


@dataclass(slots=True, frozen=True)
class PassWindow:
    """A pass above a station's elevation mask (acquisition to loss of signal)."""

    station: str
    aos_tai: float
    los_tai: float
    tca_tai: float
    max_elevation_deg: float

    @property
    def duration_s(self) -> float:
        return self.los_tai - self.aos_tai


@dataclass(slots=True, frozen=True)
class TargetBox:
    """A latitude/longitude box whose frames carry a priority (e.g. 3.0 = three times
    the value of an ordinary frame). Longitudes may wrap (lon_min > lon_max)."""

    lat_min_deg: float
    lat_max_deg: float
    lon_min_deg: float
    lon_max_deg: float
    priority: float

    def contains(self, lat_deg: FloatArray, lon_deg: FloatArray) -> np.ndarray:
        lat_ok = (lat_deg >= self.lat_min_deg) & (lat_deg <= self.lat_max_deg)
        if self.lon_min_deg <= self.lon_max_deg:
            lon_ok = (lon_deg >= self.lon_min_deg) & (lon_deg <= self.lon_max_deg)
        else:
            lon_ok = (lon_deg >= self.lon_min_deg) | (lon_deg <= self.lon_max_deg)
        return np.asarray(lat_ok & lon_ok)


@dataclass(slots=True, frozen=True)
class ImagingPlan:
    """When the camera takes frames: every ``frame_interval_s`` on a fixed grid anchored
    at ``start_tai``, while the sub-satellite point is over land (if ``land_only``) with
    the Sun at least ``min_sun_elevation_deg`` above its horizon, until ``end_tai``."""

    frame_interval_s: float
    start_tai: float
    end_tai: float = math.inf
    min_sun_elevation_deg: float = 10.0
    land_only: bool = True
    targets: tuple[TargetBox, ...] = ()
    default_priority: float = 1.0

    def __post_init__(self) -> None:
        if not self.frame_interval_s > 0.0:
            raise PowerError(f"frame interval {self.frame_interval_s} s must be > 0")
        if self.end_tai <= self.start_tai:
            raise PowerError("imaging plan ends before it starts")

    def slots(self, t0_tai: float, t1_tai: float) -> FloatArray:
        """Frame slot times in [t0, t1) and inside the plan's window."""
        lo, hi = max(t0_tai, self.start_tai), min(t1_tai, self.end_tai)
        if hi <= lo:
            return np.empty(0)
        k0 = math.ceil((lo - self.start_tai) / self.frame_interval_s - 1e-9)
        k1 = math.ceil((hi - self.start_tai) / self.frame_interval_s - 1e-9)
        return self.start_tai + self.frame_interval_s * np.arange(k0, k1, dtype=np.float64)

    def priority(self, lat_deg: FloatArray, lon_deg: FloatArray) -> FloatArray:
        """Priority of a frame at each point: the highest target box, else the default."""
        out = np.full(np.shape(lat_deg), self.default_priority, dtype=np.float64)
        for box in self.targets:
            out = np.where(box.contains(lat_deg, lon_deg), np.maximum(out, box.priority), out)
        return out


@dataclass(slots=True, frozen=True, eq=False)
class Forecast:
    """What the next orbits hold, from ``start_tai`` for ``len(sun_fraction)`` samples.

    Sample k covers [start + k*step, start + (k+1)*step). ``sun_fraction`` is the share
    of it in sunlight, ``pass_fraction`` the share inside any pass (radio time),
    ``frames`` the frame slots that will fire and ``frame_priority`` their summed
    priority. ``frame_times_tai``/``frame_priorities`` list the slots themselves.
    """

    start_tai: float
    step_s: float
    period_s: float
    sun_fraction: FloatArray
    pass_fraction: FloatArray
    frames: FloatArray
    frame_priority: FloatArray
    frame_times_tai: FloatArray
    frame_priorities: FloatArray
    eclipses: tuple[EclipseWindow, ...]
    passes: tuple[PassWindow, ...]
    _pass_starts: list[float] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._pass_starts.extend(p.aos_tai for p in self.passes)

    @property
    def end_tai(self) -> float:
        return self.start_tai + self.step_s * len(self.sun_fraction)

    @property
    def t_tai(self) -> FloatArray:
        """Start time of each sample."""
        return self.start_tai + self.step_s * np.arange(len(self.sun_fraction), dtype=np.float64)

    def covers(self, t_tai: float) -> bool:
        return self.start_tai <= t_tai < self.end_tai

    def index(self, t_tai: float) -> int:
        """Sample holding ``t_tai``; :class:`PowerError` outside the prediction."""
        if not self.covers(t_tai):
            raise PowerError(
                f"time {t_tai:.0f} is outside the prediction "
                f"[{self.start_tai:.0f}, {self.end_tai:.0f}): predict again"
            )
        return int((t_tai - self.start_tai) // self.step_s)

    def in_eclipse(self, t_tai: float) -> bool:
        return any(e.start_tai <= t_tai < e.end_tai for e in self.eclipses)

    def next_eclipse(self, t_tai: float) -> EclipseWindow | None:
        """The eclipse in progress at ``t_tai`` or the next one, if predicted."""
        for e in self.eclipses:
            if e.end_tai > t_tai:
                return e
        return None

    def next_pass(self, t_tai: float, after_s: float = 0.0) -> PassWindow | None:
        """The first pass whose AOS is at or after ``t_tai + after_s``, if predicted."""
        i = bisect.bisect_left(self._pass_starts, t_tai + after_s)
        return self.passes[i] if i < len(self.passes) else None


def eclipse_windows(sat: Satrec, t: FloatArray) -> tuple[EclipseWindow, ...]:
    """Eclipses over the sample times ``t`` (uniform or not), refined to 1 ms."""

    def margins(tt: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        sep, rho_e, rho_s = astro.shadow_geometry(
            astro.propagate_teme(sat, tt), astro.sun_position_km(tt)
        )
        return sep - rho_e, sep - rho_e - rho_s, sep - rho_e + rho_s

    centre, pen, umb = margins(t)
    centre_t, centre_up = astro.find_crossings(t, centre, lambda tt: margins(tt)[0])
    pen_t, pen_up = astro.find_crossings(t, pen, lambda tt: margins(tt)[1])
    umb_t, umb_up = astro.find_crossings(t, umb, lambda tt: margins(tt)[2])
    starts = list(centre_t[~centre_up])
    ends = list(centre_t[centre_up])
    if centre[0] < 0.0:
        starts.insert(0, float(t[0]))
    if centre[-1] < 0.0:
        ends.append(float(t[-1]))
    windows = []
    for s, e in zip(starts, ends, strict=True):
        pen_s = [x for x in pen_t[~pen_up] if s - 120.0 <= x <= s]
        pen_e = [x for x in pen_t[pen_up] if e <= x <= e + 120.0]
        umb_s = [x for x in umb_t[~umb_up] if s <= x <= e]
        umb_e = [x for x in umb_t[umb_up] if s <= x <= e]
        windows.append(
            EclipseWindow(
                start_tai=float(s),
                end_tai=float(e),
                penumbra_start_tai=float(pen_s[-1]) if pen_s else float(s),
                penumbra_end_tai=float(pen_e[0]) if pen_e else float(e),
                umbra_start_tai=float(umb_s[0]) if umb_s else None,
                umbra_end_tai=float(umb_e[-1]) if umb_e else None,
            )
        )
    return tuple(windows)


def pass_windows(
    sat: Satrec, station: GroundStation, t: FloatArray, r_ecef: FloatArray | None = None
) -> tuple[PassWindow, ...]:
    """Passes of ``sat`` over ``station`` within the sample times ``t`` (AOS/LOS to 1 ms)."""
    alt_km = station.alt_m / 1000.0

    def elev(tt: FloatArray) -> FloatArray:
        r = astro.teme_to_ecef(astro.propagate_teme(sat, tt), tt)
        return astro.elevation_deg(r, station.lat_deg, station.lon_deg, alt_km)

    if r_ecef is None:
        el = elev(t)
    else:
        el = astro.elevation_deg(r_ecef, station.lat_deg, station.lon_deg, alt_km)
    mask = station.min_elevation_deg
    cross_t, rising = astro.find_crossings(t, el - mask, lambda tt: elev(tt) - mask)
    aos = list(cross_t[rising])
    los = list(cross_t[~rising])
    if el[0] >= mask:
        aos.insert(0, float(t[0]))
    if el[-1] >= mask:
        los.append(float(t[-1]))
    passes = []
    for a, b in zip(aos, los, strict=True):
        fine = np.linspace(a, b, max(3, int((b - a) / 2.0) + 1))
        e = elev(fine)
        k = int(np.argmax(e))
        passes.append(PassWindow(station.name, float(a), float(b), float(fine[k]), float(e[k])))
    return tuple(passes)


def interval_overlap(
    starts: FloatArray, step_s: float, windows: Sequence[tuple[float, float]]
) -> FloatArray:
    """Share (0..1) of each interval [s, s+step) covered by the union of ``windows``."""
    out = np.zeros(len(starts))
    ends = starts + step_s
    for a, b in windows:
        out += np.clip(np.minimum(ends, b) - np.maximum(starts, a), 0.0, None)
    return np.clip(out / step_s, 0.0, 1.0)


def merge_windows(windows: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Union of (start, end) windows as sorted, non-overlapping windows."""
    merged: list[tuple[float, float]] = []
    for a, b in sorted(windows):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


class OrbitPredictor:
    """Propagates the uplinked TLE to predict the next orbits (flight code).

    Immutable once built; :meth:`predict` is a pure function of its arguments.
    Raises :class:`~fsw.power.errors.TleError` for a bad element set.
    """

    __slots__ = ("_land", "_sat", "imaging", "stations")

    def __init__(
        self,
        tle_line1: str,
        tle_line2: str,
        stations: Sequence[GroundStation] = (),
        imaging: ImagingPlan | None = None,
        land_mask: LandMask | None = None,
    ) -> None:
        self._sat = astro.parse_tle(tle_line1, tle_line2)
        self.stations = tuple(stations)
        self.imaging = imaging
        self._land = land_mask if land_mask is not None else LandMask()

    @property
    def period_s(self) -> float:
        return astro.orbit_period_s(self._sat)

    @property
    def epoch_tai(self) -> float:
        return astro.tle_epoch_tai(self._sat)

    def frame_slots(self, t0_tai: float, t1_tai: float) -> tuple[FloatArray, FloatArray]:
        """Times and priorities of the frames the imaging plan will take in [t0, t1)."""
        if self.imaging is None:
            return np.empty(0), np.empty(0)
        slots = self.imaging.slots(t0_tai, t1_tai)
        if slots.size == 0:
            return slots, np.empty(0)
        r = astro.teme_to_ecef(astro.propagate_teme(self._sat, slots), slots)
        lat, lon, _alt = astro.ecef_to_geodetic(r)
        sun = astro.teme_to_ecef(astro.sun_position_km(slots), slots)
        ok = astro.ground_sun_elevation_deg(lat, lon, sun) >= self.imaging.min_sun_elevation_deg
        if self.imaging.land_only:
            ok &= self._land.is_land(lat, lon)
        return slots[ok], self.imaging.priority(lat[ok], lon[ok])

    def predict(
        self, start_tai: float, duration_s: float | None = None, step_s: float = 60.0
    ) -> Forecast:
        """Predict ``duration_s`` (default three orbits) from ``start_tai``.

        Windows are found on a 30 s grid and refined by bisection; tables are per
        ``step_s`` sample.
        """
        if duration_s is None:
            duration_s = 3.0 * self.period_s
        if not (duration_s > 0.0 and step_s > 0.0) or duration_s / step_s > 1e6:
            raise PowerError(f"bad prediction span {duration_s} s at step {step_s} s")
        n = max(1, math.ceil(duration_s / step_s))
        end = start_tai + n * step_s
        grid = np.linspace(start_tai, end, max(3, math.ceil((end - start_tai) / 30.0) + 1))
        eclipses = eclipse_windows(self._sat, grid)
        r_ecef = astro.teme_to_ecef(astro.propagate_teme(self._sat, grid), grid)
        passes = sorted(
            (p for st in self.stations for p in pass_windows(self._sat, st, grid, r_ecef)),
            key=lambda p: p.aos_tai,
        )
        starts = start_tai + step_s * np.arange(n, dtype=np.float64)
        shade = interval_overlap(starts, step_s, [(e.start_tai, e.end_tai) for e in eclipses])
        radio = interval_overlap(
            starts, step_s, merge_windows([(p.aos_tai, p.los_tai) for p in passes])
        )
        f_t, f_p = self.frame_slots(start_tai, end)
        k = ((f_t - start_tai) // step_s).astype(np.int64)
        frames = np.bincount(k, minlength=n).astype(np.float64)[:n]
        prio = np.bincount(k, weights=f_p, minlength=n).astype(np.float64)[:n]
        return Forecast(
            start_tai=float(start_tai),
            step_s=float(step_s),
            period_s=self.period_s,
            sun_fraction=1.0 - shade,
            pass_fraction=radio,
            frames=frames,
            frame_priority=prio,
            frame_times_tai=f_t,
            frame_priorities=f_p,
            eclipses=eclipses,
            passes=tuple(passes),
        )
