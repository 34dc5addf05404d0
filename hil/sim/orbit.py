"""The world's orbit: TLE construction and a precomputed position table.

The run's positions are computed once, vectorised with ``Satrec.sgp4_array``, on a fixed
grid (default 10 s); per-step queries interpolate the Earth-fixed position (chord error
about 0.1 km at 10 s). Passes are found on the grid and refined to 1 ms.

>>> from fsw.core.clock import DEFAULT_START_TAI
>>> l1, l2 = make_tle(DEFAULT_START_TAI, 550.0, sso_inclination_deg(550.0), 33.5)
>>> round(sso_inclination_deg(550.0), 2)
97.59
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sgp4 import exporter
from sgp4.api import WGS72, Satrec
from sgp4.io import fix_checksum

from fsw.power import astro
from fsw.power.astro import FloatArray
from fsw.power.landmask import LandMask
from fsw.power.predictor import GroundStation, PassWindow, pass_windows
from hil.sim.errors import WorldError

MU_KM3_S2 = 398600.4418
J2 = 1.08262668e-3
SIDEREAL_YEAR_S = 365.2421897 * 86400.0
_SGP4_EPOCH_JD = 2433281.5  # 1949-12-31T00:00 UT, sgp4init's epoch origin
#: How far beyond the grid a cut pass is followed to its AOS/LOS (longer than any LEO pass).
PASS_SEARCH_S = 3600.0


def sso_inclination_deg(altitude_km: float) -> float:
    """Inclination (deg) that makes a circular orbit sun-synchronous (J2 precession)."""
    a = astro.R_EARTH_KM + altitude_km
    n = math.sqrt(MU_KM3_S2 / a**3)
    rate = 2.0 * math.pi / SIDEREAL_YEAR_S
    cos_i = -rate / (1.5 * J2 * (astro.R_EARTH_KM / a) ** 2 * n)
    if not -1.0 <= cos_i <= 1.0:
        raise WorldError(f"no sun-synchronous inclination at {altitude_km} km")
    return math.degrees(math.acos(cos_i))


def raan_for_ltan_deg(epoch_tai: float, ltan_hours: float) -> float:
    """Right ascension of the ascending node giving local time ``ltan_hours`` there."""
    sun = astro.sun_position_km(epoch_tai)[0]
    sun_ra = math.degrees(math.atan2(sun[1], sun[0]))
    return (sun_ra + (ltan_hours - 12.0) * 15.0) % 360.0


def make_tle(
    epoch_tai: float,
    altitude_km: float,
    inclination_deg: float,
    raan_deg: float,
    *,
    mean_anomaly_deg: float = 0.0,
    arg_perigee_deg: float = 90.0,
    eccentricity: float = 1e-4,
    bstar: float = 1e-5,
    satnum: int = 99999,
    designator: str = "26001A",
) -> tuple[str, str]:
    """Two TLE lines for a near-circular orbit (validated by parsing them back)."""
    if not 150.0 <= altitude_km <= 40000.0:
        raise WorldError(f"altitude {altitude_km} km is not a sensible Earth orbit")
    a = astro.R_EARTH_KM + altitude_km
    n_rad_min = math.sqrt(MU_KM3_S2 / a**3) * 60.0
    jd, fr = astro.tai_to_jd_utc(epoch_tai)
    sat = Satrec()
    sat.sgp4init(
        WGS72,
        "i",
        satnum,
        float(jd[0] - _SGP4_EPOCH_JD + fr[0]),
        bstar,
        0.0,
        0.0,
        eccentricity,
        math.radians(arg_perigee_deg),
        math.radians(inclination_deg),
        math.radians(mean_anomaly_deg % 360.0),
        n_rad_min,
        math.radians(raan_deg % 360.0),
    )
    l1, l2 = exporter.export_tle(sat)
    body = l1[:9] + f"{designator[:8]:<8}" + l1[17:68]
    l1 = fix_checksum(body)
    astro.parse_tle(l1, l2)
    return l1, l2


def _geodetic_lat_lon(x: float, y: float, z: float) -> tuple[float, float]:
    """Scalar WGS84 latitude/longitude (deg) of an Earth-fixed point (fast path)."""
    p = math.hypot(x, y)
    e2 = astro.WGS84_E2
    lat = math.atan2(z, p * (1.0 - e2))
    for _ in range(4):
        n = astro.R_EARTH_KM / math.sqrt(1.0 - e2 * math.sin(lat) ** 2)
        alt = p / max(math.cos(lat), 1e-12) - n
        lat = math.atan2(z, p * (1.0 - e2 * n / (n + alt)))
    return math.degrees(lat), math.degrees(math.atan2(y, x))


@dataclass(slots=True, frozen=True, eq=False)
class OrbitTable:
    """Positions on a uniform grid ``t_tai = start + k * step_s`` (k = 0..N-1)."""

    sat: Satrec
    start_tai: float
    step_s: float
    t_tai: FloatArray
    r_teme_km: FloatArray
    r_ecef_km: FloatArray
    lat_deg: FloatArray
    lon_deg: FloatArray
    alt_km: FloatArray
    over_land: np.ndarray

    @classmethod
    def build(
        cls, sat: Satrec, start_tai: float, end_tai: float, step_s: float, land: LandMask
    ) -> OrbitTable:
        n = math.ceil((end_tai - start_tai) / step_s) + 2
        t = start_tai + step_s * np.arange(n, dtype=np.float64)
        try:
            r = astro.propagate_teme(sat, t)
        except astro.TleError as exc:
            raise WorldError(f"orbit cannot be propagated over the run: {exc}") from exc
        ecef = astro.teme_to_ecef(r, t)
        lat, lon, alt = astro.ecef_to_geodetic(ecef)
        return cls(sat, start_tai, step_s, t, r, ecef, lat, lon, alt, land.is_land(lat, lon))

    @property
    def end_tai(self) -> float:
        return float(self.t_tai[-1])

    def _locate(self, t_tai: float) -> tuple[int, float]:
        x = (t_tai - self.start_tai) / self.step_s
        if not 0.0 <= x <= len(self.t_tai) - 1:
            raise WorldError(
                f"time {t_tai:.1f} is outside the precomputed run "
                f"[{self.start_tai:.1f}, {self.end_tai:.1f}]: build the World with a longer "
                "duration_s"
            )
        i = min(int(x), len(self.t_tai) - 2)
        return i, x - i

    def ecef_at(self, t_tai: float) -> FloatArray:
        """Earth-fixed position (3,) km, interpolated."""
        i, f = self._locate(t_tai)
        return (1.0 - f) * self.r_ecef_km[i] + f * self.r_ecef_km[i + 1]

    def subpoint(self, t_tai: float) -> tuple[float, float]:
        """Geodetic latitude and longitude (deg) of the sub-satellite point."""
        x, y, z = (float(v) for v in self.ecef_at(t_tai))
        return _geodetic_lat_lon(x, y, z)

    def nearest_subpoint(self, t_tai: float) -> tuple[float, float]:
        """Sub-satellite point at the nearest grid time (cheap; for coarse boxes)."""
        i, f = self._locate(t_tai)
        k = i + 1 if f >= 0.5 else i
        return float(self.lat_deg[k]), float(self.lon_deg[k])

    def passes(self, stations: Sequence[GroundStation]) -> tuple[PassWindow, ...]:
        """All passes over the grid, sorted by AOS.

        A pass cut by either end of the grid is given whole (its true AOS, LOS and
        maximum elevation, propagated beyond the grid): a pass's geometry does not depend
        on how long a run is, so every view of it (``gnomon world pass-times`` over any
        span, the SITL report) shows one maximum elevation.
        """
        found = [
            self._whole(st, p)
            for st in stations
            for p in pass_windows(self.sat, st, self.t_tai, self.r_ecef_km)
        ]
        return tuple(sorted(found, key=lambda p: p.aos_tai))

    def _whole(self, station: GroundStation, p: PassWindow) -> PassWindow:
        """``p`` itself, or the whole pass when the grid's start or end cuts it."""
        t0, t1 = float(self.t_tai[0]), float(self.t_tai[-1])
        if p.aos_tai > t0 and p.los_tai < t1:
            return p
        lo = p.aos_tai - (PASS_SEARCH_S if p.aos_tai <= t0 else 0.0)
        hi = p.los_tai + (PASS_SEARCH_S if p.los_tai >= t1 else 0.0)
        grid = np.arange(lo, hi + self.step_s, self.step_s)
        try:
            around = pass_windows(self.sat, station, grid)
        except astro.TleError:
            return p  # cannot propagate further: keep what the grid saw
        mid = 0.5 * (max(p.aos_tai, t0) + min(p.los_tai, t1))
        return next((w for w in around if w.aos_tai <= mid <= w.los_tai), p)
