"""Scenarios for the scheduler evaluation: randomized ones, sized so energy or compute
binds, and made feasible (the payload-off spacecraft must stay above the floor).

:func:`random_scenario` draws orbit, season, stations, array, battery, loads, payload,
camera rate and targets; :func:`make_feasible` shrinks the loads of a timeline until the
oracle has a solution.

>>> import numpy as np
>>> sc = random_scenario(np.random.default_rng(0), 7)
>>> sc.name, sc.policy.tick_s
('random-007', 60.0)
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import numpy as np

from fsw.core.clock import datetime_to_tai
from fsw.power.landmask import LandMask
from fsw.power.predictor import GroundStation, OrbitPredictor, TargetBox
from fsw.power.scheduler import CascadeProfile, PowerMode
from hil.eval.sched.timeline import Timeline
from hil.sim.eps import Eps
from hil.sim.errors import WorldError
from hil.sim.orbit import make_tle, raan_for_ltan_deg, sso_inclination_deg
from hil.sim.scenario import (
    ArraySpec,
    Attitude,
    BatterySpec,
    CameraSpec,
    LoadSpec,
    PayloadSpec,
    PolicySpec,
    RadiationSpec,
    Scenario,
)

_STATIONS = (
    GroundStation("svalbard", 78.23, 15.39, 500.0),
    GroundStation("kiruna", 67.86, 20.96, 400.0),
    GroundStation("fairbanks", 64.86, -147.85, 200.0),
    GroundStation("delft", 52.00, 4.37, 0.0, 10.0),
    GroundStation("matera", 40.65, 16.70, 540.0),
    GroundStation("wallops", 37.94, -75.46, 10.0),
    GroundStation("tokyo", 35.70, 139.50, 50.0),
    GroundStation("hartebeesthoek", -25.89, 27.69, 1500.0),
    GroundStation("santiago", -33.15, -70.67, 700.0),
    GroundStation("perth", -31.80, 115.90, 20.0),
    GroundStation("punta_arenas", -52.94, -70.85, 30.0),
)
_REGIONS = (
    (35.0, 60.0, -10.0, 30.0),  # Europe
    (25.0, 50.0, -125.0, -70.0),  # United States
    (-35.0, 5.0, -75.0, -35.0),  # South America
    (-5.0, 15.0, 30.0, 45.0),  # East Africa
    (5.0, 35.0, 65.0, 95.0),  # South Asia
    (20.0, 45.0, 100.0, 125.0),  # East China
    (-40.0, -15.0, 115.0, 155.0),  # Australia
    (45.0, 70.0, 40.0, 120.0),  # Siberia
)


def random_scenario(
    rng: np.random.Generator, index: int, land_mask: LandMask | None = None
) -> Scenario:
    """A randomized but plausible scenario: 6U or 3U, SSO or inclined, any season, 1-3
    stations, possibly degraded panels, with the camera rate set so that the payload's
    demand is 0.3-3x the orbit-average energy surplus."""
    day = float(rng.uniform(0.0, 730.0))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    start_tai = datetime_to_tai(start) + round(day * 86400.0 / 60.0) * 60.0
    alt = float(rng.uniform(420.0, 650.0))
    if rng.random() < 0.7:
        inc = sso_inclination_deg(alt)
        raan = raan_for_ltan_deg(start_tai, float(rng.uniform(7.5, 16.5)))
    else:
        inc = float(rng.uniform(40.0, 65.0))
        raan = float(rng.uniform(0.0, 360.0))
    l1, l2 = make_tle(start_tai, alt, inc, raan, mean_anomaly_deg=float(rng.uniform(0, 360)))
    picks = rng.choice(len(_STATIONS), size=int(rng.integers(1, 4)), replace=False)
    stations = tuple(_STATIONS[int(i)] for i in sorted(picks))
    big = rng.random() < 0.5
    degraded = float(rng.uniform(0.2, 0.6)) if rng.random() < 0.25 else 0.0
    if big:
        array = ArraySpec(float(rng.uniform(0.03, 0.07)), 0.295, "sun_pointing", degraded)
        battery = BatterySpec(float(rng.uniform(40.0, 100.0)))
        loads = LoadSpec(4.0, 2.5, float(rng.uniform(8.0, 15.0)))
        slow, fast = PowerMode("7W", 7.0), PowerMode("15W", 15.0)
    else:
        attitude: Attitude = "tumbling" if rng.random() < 0.7 else "sun_pointing"
        area = float(rng.uniform(0.05, 0.1)) if attitude == "tumbling" else 0.03
        array = ArraySpec(area, 0.28, attitude, degraded)
        battery = BatterySpec(float(rng.uniform(20.0, 45.0)))
        loads = LoadSpec(1.5, 0.8, float(rng.uniform(2.0, 5.0)))
        slow, fast = PowerMode("powersave", 2.5), PowerMode("performance", 5.0)
    floor = float(rng.uniform(0.6, 0.8))
    battery = dataclasses.replace(
        battery, soc0=float(rng.uniform(floor + 0.05, 1.0)), capacity_wh=round(battery.capacity_wh)
    )
    small = float(rng.uniform(4.0, 13.0))
    ratio = float(rng.uniform(3.0, 4.2))
    speed = float(rng.uniform(0.45, 0.6))
    belief = float(rng.uniform(0.15, 0.35))
    profile = CascadeProfile(
        small_latency_s={slow.name: small, fast.name: small * speed},
        large_latency_s={slow.name: small * ratio, fast.name: small * ratio * speed},
        accuracy_sure=float(rng.uniform(0.95, 0.99)),
        accuracy_unsure=float(rng.uniform(0.6, 0.78)),
        accuracy_large=float(rng.uniform(0.88, 0.95)),
        unsure_rate=belief,
    )
    n_targets = int(rng.integers(0, 4))
    targets = tuple(
        TargetBox(*_REGIONS[int(i)], float(rng.choice([2.0, 3.0, 4.0, 5.0])))
        for i in rng.choice(len(_REGIONS), size=n_targets, replace=False)
    )
    sc = Scenario(
        name=f"random-{index:03d}",
        description="randomized for sched eval",
        start_tai=start_tai,
        duration_s=8 * 5800.0,
        tle_line1=l1,
        tle_line2=l2,
        stations=stations,
        array=array,
        battery=battery,
        loads=loads,
        payload=PayloadSpec(
            (slow, fast), profile, float(np.clip(belief + rng.uniform(-0.08, 0.08), 0.05, 0.6))
        ),
        camera=CameraSpec(20.0, 10.0, True, targets),
        radiation=RadiationSpec(1e-7),
        policy=PolicySpec(floor_soc=floor, margin_wh=0.01 * battery.capacity_wh),
    )
    power_ratio = float(np.exp(rng.uniform(np.log(0.5), np.log(5.0))))
    demand_ratio = float(np.exp(rng.uniform(np.log(0.3), np.log(3.0))))
    return _size_scenario(sc, power_ratio, demand_ratio, land_mask)


def _size_scenario(
    sc: Scenario, power_ratio: float, demand_ratio: float, land_mask: LandMask | None = None
) -> Scenario:
    """Set the bus load and the frame interval so that the payload's efficient-mode
    power is ``power_ratio`` x the orbit-average energy surplus and its demand (all
    frames, expected escalations) is ``demand_ratio`` x that surplus. Energy binds
    when power_ratio > 1 and demand_ratio > 1; compute time binds when
    demand_ratio / power_ratio (the payload's duty) approaches 1."""
    plan10 = dataclasses.replace(sc, camera=dataclasses.replace(sc.camera, frame_interval_s=10.0))
    pred = OrbitPredictor(
        sc.tle_line1, sc.tle_line2, sc.stations, plan10.imaging_plan(), land_mask
    ).predict(sc.start_tai, None, step_s=60.0)
    orbits = len(pred.sun_fraction) * pred.step_s / pred.period_s
    frames_10s = max(1.0, float(pred.frames.sum()) / orbits)
    cfg = sc.scheduler_config(know_degradation=True)
    p_eff = cfg.efficient_mode("small").power_w
    u = sc.payload.true_unsure_rate
    t_frame = cfg.profile.latency_s("small", cfg.efficient_mode("small").name) + u * (
        cfg.profile.latency_s("large", cfg.efficient_mode("large").name)
    )
    supply_w = cfg.array_power_w * float(pred.sun_fraction.mean()) - sc.loads.radio_tx_w * float(
        pred.pass_fraction.mean()
    )
    bus_w = max(0.5, supply_w - p_eff / power_ratio)
    duty = min(1.3, demand_ratio / power_ratio)
    frames = duty * pred.period_s / t_frame
    interval = float(np.clip(10.0 * frames_10s / frames, 2.0, 120.0))
    return dataclasses.replace(
        sc,
        loads=dataclasses.replace(sc.loads, bus_w=bus_w, safe_w=min(sc.loads.safe_w, 0.6 * bus_w)),
        camera=dataclasses.replace(sc.camera, frame_interval_s=interval),
    )


def make_feasible(tl: Timeline) -> Timeline:
    """Shrink loads until the payload-off spacecraft keeps above the floor."""
    sc = tl.scenario
    for _ in range(30):
        eps = Eps(sc.array, sc.battery)
        ok = True
        for k in range(tl.n_ticks):
            load = sc.loads.bus_w + sc.loads.radio_tx_w * tl.radio_frac[k]
            if eps.step(tl.tick_s, float(tl.solar_w[k]), load).soc < sc.policy.floor_soc + 0.01:
                ok = False
                break
        if ok:
            return tl if sc is tl.scenario else dataclasses.replace(tl, scenario=sc)
        sc = dataclasses.replace(
            sc,
            loads=dataclasses.replace(
                sc.loads, bus_w=sc.loads.bus_w * 0.85, radio_tx_w=sc.loads.radio_tx_w * 0.85
            ),
            battery=dataclasses.replace(sc.battery, soc0=min(1.0, sc.battery.soc0 + 0.03)),
        )
    raise WorldError(f"scenario {sc.name}: cannot make the payload-off spacecraft power-positive")


__all__ = ["make_feasible", "random_scenario"]
