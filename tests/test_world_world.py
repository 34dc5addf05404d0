"""The World API that SITL and HIL step through."""

from __future__ import annotations

import pytest

from fsw.power.landmask import LandMask
from hil.sim.errors import WorldError
from hil.sim.world import World


@pytest.fixture()
def world() -> World:
    return World.from_scenario("leo550-sso-6u", seed=3)


def test_step_advances_time_and_charges_in_sunlight(world: World) -> None:
    assert not world.in_eclipse()
    s = world.step(60.0, payload_power_w=0.0)
    assert s.t1_tai - s.t0_tai == 60.0 and world.t_tai == world.start_tai + 60.0
    assert s.sun_fraction == 1.0
    assert s.eps.solar_w == pytest.approx(world.scenario.array.full_sun_power_w, rel=0.04)
    assert s.eps.battery_wh > world.eps_model.initial_wh


def test_eclipse_means_no_solar_and_a_draining_battery(world: World) -> None:
    e = world.eclipses[0]
    while world.t_tai + 10.0 <= e.start_tai + 60.0:
        world.step(10.0)
    assert world.in_eclipse() and world.sun_fraction() == 0.0
    before = world.eps.battery_wh
    s = world.step(10.0, payload_power_w=7.0, radio_on=True)
    assert s.eps.solar_w == 0.0
    assert s.eps.load_w == pytest.approx(5.0 + 12.0 + 7.0)
    assert s.eps.battery_wh < before


def test_penumbra_gives_a_partial_sun(world: World) -> None:
    e = world.eclipses[0]
    mid = 0.5 * (e.penumbra_start_tai + e.start_tai)
    assert 0.0 < world.sun_fraction(mid) < 1.0
    assert world.sun_fraction(e.start_tai + 0.001) <= 0.5 <= world.sun_fraction(e.start_tai - 0.001)


def test_pass_query_reports_the_station_above_its_mask(world: World) -> None:
    inside = [p for p in world.passes if p.los_tai + 5.0 <= world.end_tai]
    p = max(inside, key=lambda p: p.max_elevation_deg)
    st = world.in_pass(p.tca_tai)
    assert st is not None and st.station == p.station
    assert st.elevation_deg == pytest.approx(p.max_elevation_deg, abs=0.2)
    mask = next(s for s in world.scenario.stations if s.name == p.station).min_elevation_deg
    assert world.in_pass(p.aos_tai + 1.0).elevation_deg >= mask  # type: ignore[union-attr]
    after = world.in_pass(p.los_tai + 5.0)
    assert after is None or after.station != p.station


def test_a_pass_cut_by_the_end_of_the_span_is_given_whole() -> None:
    """One pass, one maximum elevation: the geometry does not depend on the span."""
    long = World.from_scenario("leo550-sso-6u", seed=3, duration_s=8 * 3600.0)
    whole = next(p for p in long.passes if p.aos_tai > long.start_tai + 4.5 * 3600.0)
    for cut_at in (whole.aos_tai + 60.0, whole.tca_tai, whole.los_tai - 60.0):
        short = World.from_scenario("leo550-sso-6u", seed=3, duration_s=cut_at - long.start_tai)
        last = short.passes[-1]
        assert (last.station, last.aos_tai) == (whole.station, pytest.approx(whole.aos_tai))
        assert last.los_tai == pytest.approx(whole.los_tai, abs=0.01)
        assert last.max_elevation_deg == pytest.approx(whole.max_elevation_deg, abs=0.01)


def test_subpoint_and_land(world: World) -> None:
    land = LandMask()
    for k in range(0, 17000, 500):
        t = world.start_tai + k
        lat, lon = world.subpoint(t)
        assert -90 <= lat <= 90 and -180 <= lon <= 180
        assert world.over_land(t) == bool(land.is_land(lat, lon))


def test_subscribed_memory_gets_its_upsets(world: World) -> None:
    world.subscribe("arena", 8 * 2**30)  # a big memory so that a few minutes see upsets
    seen: list[object] = []
    for _ in range(60):
        seen += world.step(10.0).upsets
    assert seen == list(world.upsets(world.start_tai, world.t_tai, 8 * 2**30, "arena"))
    assert seen


def test_frames_reported_by_steps_match_the_camera(world: World) -> None:
    got: list[object] = []
    while world.t_tai + 30.0 <= world.start_tai + 6000.0:
        got += world.step(30.0).frames
    assert got == list(world.frames_due(world.start_tai, world.t_tai))
    assert got


def test_stepping_past_the_run_is_refused(world: World) -> None:
    with pytest.raises(WorldError, match="longer duration_s"):
        world.step(world.scenario.duration_s + 100.0)
    with pytest.raises(WorldError, match="dt_s"):
        world.step(0.0)
    with pytest.raises(WorldError, match="outside the precomputed run"):
        world.subpoint(world.start_tai - 100.0)


def test_predictor_shares_tle_stations_and_plan(world: World) -> None:
    pred = world.predictor().predict(world.start_tai, 3 * 3600.0)
    frames = [f.t_tai for f in world.frames_due(world.start_tai - 1, world.start_tai + 3 * 3600)]
    assert list(pred.frame_times_tai) == frames
    assert len(pred.passes) == len([p for p in world.passes if p.aos_tai < pred.end_tai])
