"""The Sun as seen from the world's orbit: eclipses and sunlit fraction.

Eclipse windows (conical shadow: penumbra, Sun centre behind the limb, umbra) are found
on the orbit grid and refined to 1 ms; the visible solar fraction at any instant is 1
outside the penumbra, 0 in umbra and the exact disk-segment share in between. Step
averages integrate the penumbra as a sharp edge at the centre crossing (the partial
phase lasts ~10 s in LEO and is symmetric about it, so the error is second order).

>>> # see World.sun_fraction and World.in_eclipse for the per-step queries
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from fsw.power import astro
from fsw.power.astro import AU_KM, FloatArray
from fsw.power.predictor import EclipseWindow, eclipse_windows
from hil.sim.orbit import OrbitTable


@dataclass(slots=True, frozen=True, eq=False)
class SunTable:
    """Sun vectors and shadow state on the orbit grid, plus the eclipse windows."""

    orbit: OrbitTable
    sun_teme_km: FloatArray
    sun_distance_au: FloatArray
    ground_sun_elevation_deg: FloatArray
    eclipses: tuple[EclipseWindow, ...]
    _starts: list[float] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._starts.extend(e.penumbra_start_tai for e in self.eclipses)

    @classmethod
    def build(cls, orbit: OrbitTable) -> SunTable:
        t = orbit.t_tai
        sun = astro.sun_position_km(t)
        sun_ecef = astro.teme_to_ecef(sun, t)
        elev = astro.ground_sun_elevation_deg(orbit.lat_deg, orbit.lon_deg, sun_ecef)
        dist = np.linalg.norm(sun, axis=-1) / AU_KM
        return cls(orbit, sun, dist, elev, eclipse_windows(orbit.sat, t))

    def _window(self, t_tai: float) -> EclipseWindow | None:
        i = bisect.bisect_right(self._starts, t_tai) - 1
        if i >= 0 and t_tai < self.eclipses[i].penumbra_end_tai:
            return self.eclipses[i]
        return None

    def in_eclipse(self, t_tai: float) -> bool:
        """True while the Sun's centre is behind the Earth."""
        w = self._window(t_tai)
        return w is not None and w.start_tai <= t_tai < w.end_tai

    def sun_fraction(self, t_tai: float) -> float:
        """Visible share (0..1) of the solar disk at ``t_tai`` (exact in penumbra)."""
        w = self._window(t_tai)
        if w is None:
            return 1.0
        u0, u1 = w.umbra_start_tai, w.umbra_end_tai
        if u0 is not None and u1 is not None and u0 <= t_tai < u1:
            return 0.0
        tt = np.array([t_tai])
        sep, rho_e, rho_s = astro.shadow_geometry(
            astro.propagate_teme(self.orbit.sat, tt), astro.sun_position_km(tt)
        )
        return float(astro.visible_sun_fraction(sep, rho_e, rho_s)[0])

    def mean_sun_fraction(self, t0_tai: float, t1_tai: float) -> float:
        """Average sunlit share over [t0, t1] (eclipse edges at the centre crossings)."""
        if t1_tai <= t0_tai:
            return self.sun_fraction(t0_tai)
        shade = 0.0
        i = max(0, bisect.bisect_right(self._starts, t0_tai) - 1)
        for w in self.eclipses[i:]:
            if w.start_tai >= t1_tai:
                break
            shade += max(0.0, min(t1_tai, w.end_tai) - max(t0_tai, w.start_tai))
        return 1.0 - shade / (t1_tai - t0_tai)

    def distance_au(self, t_tai: float) -> float:
        i, f = self.orbit._locate(t_tai)
        return float((1.0 - f) * self.sun_distance_au[i] + f * self.sun_distance_au[i + 1])
