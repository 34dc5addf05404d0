"""Our orbit, Sun, eclipse and pass geometry against skyfield (DE421 from the de421 package).

The de421 PyPI package ships the ephemeris as jplephem's (deprecated) .npy series, not a
.bsp file, so a small skyfield VectorFunction adapter serves Sun and Earth from it; nothing
is downloaded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

skyfield = pytest.importorskip("skyfield")
de421 = pytest.importorskip("de421")

from jplephem.ephem import Ephemeris  # noqa: E402
from skyfield.api import EarthSatellite, load, wgs84  # noqa: E402
from skyfield.constants import AU_KM  # noqa: E402
from skyfield.vectorlib import VectorFunction  # noqa: E402

from fsw.power import astro  # noqa: E402
from fsw.power.predictor import OrbitPredictor  # noqa: E402
from hil.sim.scenario import load_scenario  # noqa: E402
from hil.sim.world import World  # noqa: E402


class _De421Body(VectorFunction):
    """Barycentric Sun or Earth from the de421 package, for skyfield."""

    def __init__(self, eph: Any, name: str) -> None:
        self.center = 0
        self.target = 10 if name == "sun" else 399
        self._eph = eph
        self._name = name

    def _at(self, t: Any) -> tuple[Any, Any, None, None]:
        whole, frac = np.atleast_1d(t.whole), np.atleast_1d(t.tdb_fraction)
        if self._name == "sun":
            p, v = self._eph.position_and_velocity("sun", whole, frac)
        else:
            pe, ve = self._eph.position_and_velocity("earthmoon", whole, frac)
            pm, vm = self._eph.position_and_velocity("moon", whole, frac)
            p, v = pe - pm * self._eph.earth_share, ve - vm * self._eph.earth_share
        if np.ndim(t.whole) == 0:
            p, v = p[:, 0], v[:, 0]
        return p / AU_KM, v / AU_KM, None, None


@pytest.fixture(scope="module")
def sky() -> dict[str, Any]:
    eph = Ephemeris(de421)
    return {
        "ts": load.timescale(),
        "sun": _De421Body(eph, "sun"),
        "earth": _De421Body(eph, "earth"),
    }


def _times(sky: dict[str, Any], tai: Any) -> Any:
    return sky["ts"].tai_jd(astro.JD_CCSDS_EPOCH + np.asarray(tai) / 86400.0)


@pytest.fixture(scope="module")
def world() -> World:
    return World.from_scenario("leo550-sso-6u", seed=0, duration_s=86400.0)


def test_sun_direction_matches_de421_within_0_015_degree(sky: dict[str, Any]) -> None:
    tai = load_scenario("leo550-sso-6u").start_tai + np.linspace(0.0, 365 * 86400.0, 25)
    t = _times(sky, tai)
    ra, dec, dist = (sky["sun"] - sky["earth"]).at(t).radec(epoch=t)
    ref = np.stack(
        [
            np.cos(dec.radians) * np.cos(ra.radians),
            np.cos(dec.radians) * np.sin(ra.radians),
            np.sin(dec.radians),
        ],
        axis=-1,
    )
    ours = astro.sun_position_km(tai)
    ours_hat = ours / np.linalg.norm(ours, axis=-1, keepdims=True)
    sep_deg = np.degrees(np.arccos(np.clip(np.sum(ref * ours_hat, axis=-1), -1, 1)))
    # The Almanac series includes annual aberration (20 arcsec); skyfield astrometric does not.
    assert sep_deg.max() < 0.015
    assert np.allclose(np.linalg.norm(ours, axis=-1), dist.km, rtol=2e-4)


def test_eclipse_entry_and_exit_agree_with_skyfield_to_a_second(
    sky: dict[str, Any], world: World
) -> None:
    sc = world.scenario
    sat = EarthSatellite(sc.tle_line1, sc.tle_line2, ts=sky["ts"])
    eph = {"sun": sky["sun"], "earth": sky["earth"]}
    edges = [(e.start_tai, False) for e in world.eclipses[1:-1]] + [
        (e.end_tai, True) for e in world.eclipses[1:-1]
    ]
    assert len(edges) >= 26  # a day of a 95-minute orbit
    offsets = np.arange(-10.0, 10.01, 0.25)
    worst = 0.0
    for t_edge, sunlit_after in edges:
        lit = sat.at(_times(sky, t_edge + offsets)).is_sunlit(eph)
        flips = np.flatnonzero(lit[:-1] != lit[1:])
        assert flips.size == 1, "skyfield sees exactly one shadow edge near ours"
        assert bool(lit[-1]) == sunlit_after
        t_sky = offsets[flips[0]] + 0.125
        worst = max(worst, abs(t_sky))
    assert worst < 1.0


def test_pass_aos_and_los_agree_with_skyfield_to_a_few_seconds(
    sky: dict[str, Any], world: World
) -> None:
    sc = world.scenario
    sat = EarthSatellite(sc.tle_line1, sc.tle_line2, ts=sky["ts"])
    t0, t1 = _times(sky, world.start_tai + 600.0), _times(sky, world.end_tai - 600.0)
    compared = 0
    for st in sc.stations:
        topos = wgs84.latlon(st.lat_deg, st.lon_deg, elevation_m=st.alt_m)
        times, events = sat.find_events(topos, t0, t1, altitude_degrees=st.min_elevation_deg)
        tai = (times.tai - astro.JD_CCSDS_EPOCH) * 86400.0
        rises = tai[events == 0]
        sets = tai[events == 2]
        ours = [p for p in world.passes if p.station == st.name]
        for r in rises:
            nearest = min(ours, key=lambda p: abs(p.aos_tai - r))
            assert abs(nearest.aos_tai - r) < 3.0
            compared += 1
        for s in sets:
            nearest = min(ours, key=lambda p: abs(p.los_tai - s))
            assert abs(nearest.los_tai - s) < 3.0
            compared += 1
    assert compared >= 30


def test_subpoint_matches_skyfield(sky: dict[str, Any], world: World) -> None:
    sc = world.scenario
    sat = EarthSatellite(sc.tle_line1, sc.tle_line2, ts=sky["ts"])
    tai = world.start_tai + np.linspace(0.0, 20000.0, 40)
    sub = wgs84.subpoint_of(sat.at(_times(sky, tai)))
    for k, t in enumerate(tai):
        lat, lon = world.subpoint(float(t))
        assert abs(lat - sub.latitude.degrees[k]) < 0.02
        dlon = (lon - sub.longitude.degrees[k] + 180.0) % 360.0 - 180.0
        assert abs(dlon) * np.cos(np.radians(lat)) < 0.02


def test_onboard_predictor_windows_match_the_world(world: World) -> None:
    sc = world.scenario
    pred = OrbitPredictor(sc.tle_line1, sc.tle_line2, sc.stations).predict(
        world.start_tai, 6 * 3600.0
    )
    for e in pred.eclipses[1:-1]:
        twin = min(world.eclipses, key=lambda w: abs(w.start_tai - e.start_tai))
        assert abs(twin.start_tai - e.start_tai) < 0.01
        assert abs(twin.end_tai - e.end_tai) < 0.01
    for p in pred.passes[1:-1]:
        match = min(world.passes, key=lambda w: abs(w.aos_tai - p.aos_tai))
        assert match.station == p.station
        assert abs(match.los_tai - p.los_tai) < 0.01
