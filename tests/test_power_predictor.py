"""Onboard prediction: TLE parsing (known answers, fuzz), windows, frame slots."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sgp4.io import compute_checksum, fix_checksum

from fsw.core.clock import DEFAULT_START_TAI
from fsw.power import astro
from fsw.power.errors import PowerError, TleError
from fsw.power.predictor import GroundStation, ImagingPlan, OrbitPredictor, TargetBox
from hil.sim.orbit import make_tle, raan_for_ltan_deg, sso_inclination_deg

# Vanguard 1, the classic example set from the Spacetrack reports.
VANGUARD = (
    "1 00005U 58002B   00179.78495062  .00000023  00000-0  28098-4 0  4753",
    "2 00005  34.2682 348.7242 1859667 331.7664  19.3264 10.82419157413667",
)
L1, L2 = make_tle(DEFAULT_START_TAI, 550.0, sso_inclination_deg(550.0), 33.9)


def test_known_tle_parses_with_its_elements() -> None:
    sat = astro.parse_tle(*VANGUARD)
    assert sat.satnum == 5
    assert math.degrees(sat.inclo) == pytest.approx(34.2682)
    assert sat.ecco == pytest.approx(0.1859667)
    assert astro.orbit_period_s(sat) == pytest.approx(86400.0 / 10.82419157, rel=1e-3)


def test_made_tle_round_trips_its_orbit() -> None:
    sat = astro.parse_tle(L1, L2)
    assert math.degrees(sat.inclo) == pytest.approx(sso_inclination_deg(550.0), abs=1e-4)
    assert astro.tle_epoch_tai(sat) == pytest.approx(DEFAULT_START_TAI, abs=1e-3)
    r = astro.propagate_teme(sat, DEFAULT_START_TAI + np.arange(0.0, 6000.0, 60.0))
    alt = np.linalg.norm(r, axis=1) - astro.R_EARTH_KM
    assert alt.min() > 530.0 and alt.max() < 580.0
    assert 97.5 < sso_inclination_deg(550.0) < 97.7


@pytest.mark.req("PSCH-010")
@pytest.mark.parametrize(
    ("line1", "line2", "message"),
    [
        (VANGUARD[0][:-1] + "9", VANGUARD[1], "line 1 checksum is '9', expected 3"),
        (VANGUARD[0], VANGUARD[1][:60], "69"),
        (VANGUARD[1], VANGUARD[0], "must start with '1 '"),
        (VANGUARD[0], "2 00006" + VANGUARD[1][7:68] + "8", "different satellites"),
        # sgp4's error table gives the reason: 30 revolutions a day is inside the Earth
        (VANGUARD[0], fix_checksum(VANGUARD[1][:52] + "30.00000000" + VANGUARD[1][63:]), "decayed"),
        (VANGUARD[0], fix_checksum(VANGUARD[1][:26] + "9999999" + VANGUARD[1][33:]), "semilatus"),
    ],
)
def test_bad_tle_says_what_is_wrong(line1: str, line2: str, message: str) -> None:
    with pytest.raises(TleError, match=message):
        astro.parse_tle(line1, line2)


@pytest.mark.req("PSCH-010")
@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80), st.text(max_size=80))
def test_random_tle_text_raises_only_tle_error(a: str, b: str) -> None:
    with contextlib.suppress(TleError):
        astro.parse_tle(a, b)


@pytest.mark.req("PSCH-010")
@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mutated_tle_raises_only_tle_error(data: st.DataObject) -> None:
    lines = list(VANGUARD)
    for _ in range(data.draw(st.integers(1, 3))):
        n = data.draw(st.integers(0, 1))
        i = data.draw(st.integers(0, 68))
        ch = data.draw(st.sampled_from(list("0123456789 .-+eE")))
        lines[n] = lines[n][:i] + ch + lines[n][i + 1 :]
    # Re-checksum half the time so mutations reach the field parsers too.
    if data.draw(st.booleans()):
        lines = [ln[:68] + str(compute_checksum(ln)) for ln in lines]
    try:
        sat = astro.parse_tle(*lines)
    except TleError:
        return
    assert sat.no_kozai > 0


def test_prediction_tables_and_queries() -> None:
    st_ = GroundStation("svalbard", 78.23, 15.39, 500.0)
    plan = ImagingPlan(20.0, DEFAULT_START_TAI, targets=(TargetBox(35, 60, -10, 30, 3.0),))
    pred = OrbitPredictor(L1, L2, (st_,), plan).predict(DEFAULT_START_TAI, 86400.0, step_s=60.0)
    assert len(pred.sun_fraction) == 1440
    assert len(pred.eclipses) in (15, 16)
    e = pred.eclipses[2]
    assert 30 * 60 < e.duration_s < 37 * 60
    assert e.penumbra_start_tai < e.start_tai < e.umbra_start_tai  # type: ignore[operator]
    # Sunlit share per sample agrees with the windows.
    shade_s = float(((1.0 - pred.sun_fraction) * 60.0).sum())
    assert shade_s == pytest.approx(sum(w.duration_s for w in pred.eclipses), abs=1.0)
    assert pred.in_eclipse(e.start_tai + 1.0) and not pred.in_eclipse(e.end_tai + 1.0)
    assert pred.next_eclipse(e.end_tai - 1.0) is e
    p = pred.next_pass(DEFAULT_START_TAI + 3600.0)
    assert p is not None and p.aos_tai >= DEFAULT_START_TAI + 3600.0
    assert p.max_elevation_deg >= 5.0 and p.aos_tai < p.tca_tai < p.los_tai
    assert pred.frames.sum() == len(pred.frame_times_tai) > 100
    assert set(np.unique(pred.frame_priorities)) <= {1.0, 3.0}
    with pytest.raises(PowerError, match="predict again"):
        pred.index(pred.end_tai + 1.0)


def test_station_and_plan_validation() -> None:
    with pytest.raises(PowerError, match="elevation mask"):
        GroundStation("x", 0.0, 0.0, min_elevation_deg=95.0)
    with pytest.raises(PowerError, match="frame interval"):
        ImagingPlan(0.0, DEFAULT_START_TAI)
    with pytest.raises(PowerError, match="bad prediction span"):
        OrbitPredictor(L1, L2).predict(DEFAULT_START_TAI, -1.0)


def test_plan_end_stops_frames() -> None:
    plan = ImagingPlan(20.0, DEFAULT_START_TAI, end_tai=DEFAULT_START_TAI + 3000.0)
    pred = OrbitPredictor(L1, L2, (), plan).predict(DEFAULT_START_TAI, 12000.0)
    assert (pred.frame_times_tai < DEFAULT_START_TAI + 3000.0).all()


def test_ltan_sets_the_eclipse_length() -> None:
    noon = make_tle(
        DEFAULT_START_TAI,
        550.0,
        sso_inclination_deg(550.0),
        raan_for_ltan_deg(DEFAULT_START_TAI, 12.0),
    )
    dawn = make_tle(
        DEFAULT_START_TAI,
        550.0,
        sso_inclination_deg(550.0),
        raan_for_ltan_deg(DEFAULT_START_TAI, 18.0),
    )
    e_noon = OrbitPredictor(*noon).predict(DEFAULT_START_TAI, 12000.0).eclipses
    e_dawn = OrbitPredictor(*dawn).predict(DEFAULT_START_TAI, 12000.0).eclipses
    assert max(e.duration_s for e in e_noon) > 35 * 60
    assert max((e.duration_s for e in e_dawn), default=0.0) < 20 * 60
