"""Scheduler evaluation: Gnomon's power scheduler against baselines and the oracle.

For each randomized scenario (orbit, season, stations, array, battery, loads, payload,
camera rate, targets) the world is precomputed once and every policy is stepped through
the same timeline at the scenario's tick (60 s): frames arrive from the camera, the
policy decides, the payload draws latency x mode power, the EPS integrates, and a
floor violation trips fault protection (SAFE: payload off, queue flushed, camera off,
until the battery is 5 % above the floor again). The oracle is the LP of
:mod:`hil.eval.sched.oracle` over the same timeline.

Policies: ``gnomon`` (:class:`fsw.power.scheduler.PowerScheduler` with the onboard
predictor), ``greedy`` (run whatever is queued, fast mode), ``duty_cycle`` (payload on a
fixed share of each 10-tick period, sized from the orbit-average energy budget),
``sunlit_only`` (run only in sunlight); all baselines use the cascade and stop when the
battery is at the floor.

>>> report = evaluate(n_scenarios=2, seed=3)          # doctest: +SKIP
>>> sorted(report["policies"])                        # doctest: +SKIP
['duty_cycle', 'gnomon', 'greedy', 'oracle', 'sunlit_only']
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from fsw.core.clock import datetime_to_tai
from fsw.power.astro import orbit_period_s, parse_tle
from fsw.power.landmask import LandMask
from fsw.power.predictor import (
    EclipseWindow,
    Forecast,
    GroundStation,
    OrbitPredictor,
    PassWindow,
    TargetBox,
    interval_overlap,
    merge_windows,
)
from fsw.power.scheduler import (
    CascadeProfile,
    Job,
    PowerMode,
    PowerScheduler,
    RunOrder,
    SchedulerConfig,
    battery_delta_wh,
)
from hil.eval.sched.oracle import OracleProblem, OracleResult, group_frames, solve_oracle
from hil.sim.eps import Eps, array_power_w
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
    load_scenario,
)
from hil.sim.world import World

FArr = NDArray[np.float64]
POLICIES = ("gnomon", "greedy", "duty_cycle", "sunlit_only")
IMAGING_ORBITS = 6.0
TAIL_ORBITS = 2.0
SURVIVAL_ORBITS = 2.0  # after the value window: payload off, battery must stay safe
BUCKET_TICKS = 5
SAFE_EXIT_SOC_MARGIN = 0.05
WH_J = 3600.0


# --------------------------------------------------------------------------- timeline
@dataclass(slots=True, frozen=True)
class FrameJob:
    """A frame as a job: first tick it may run, deadline, priority, and the truth of
    whether the small model will be unsure about it."""

    job_id: int
    tick: int
    captured_tai: float
    deadline_tai: float
    priority: float
    unsure: bool


@dataclass(slots=True, frozen=True, eq=False)
class Timeline:
    """The world, reduced to what the scheduling study needs per tick."""

    scenario: Scenario
    seed: int
    start_tai: float
    tick_s: float
    solar_w: FArr
    radio_frac: FArr
    sun_frac: FArr
    frames: tuple[FrameJob, ...]
    imaging_end_tai: float
    value_end_tai: float
    period_s: float
    eclipses: tuple[EclipseWindow, ...]
    passes: tuple[PassWindow, ...]
    world: World = field(repr=False)

    @property
    def n_ticks(self) -> int:
        return len(self.solar_w)

    @property
    def end_tai(self) -> float:
        return self.start_tai + self.n_ticks * self.tick_s

    def t(self, k: int) -> float:
        return self.start_tai + k * self.tick_s

    @property
    def imaging_orbits(self) -> float:
        return (self.imaging_end_tai - self.start_tai) / self.period_s


def _deadline(sc: Scenario, t_cap: float, passes: Sequence[PassWindow], end: float) -> float:
    pol = sc.policy
    if pol.deadline == "next_pass":
        due = end
        for p in passes:
            if p.aos_tai >= t_cap + pol.min_deadline_s:
                due = p.aos_tai
                break
        due = min(due, t_cap + pol.max_deadline_s)
    else:
        due = t_cap + float(pol.deadline)
    return min(due, end)


def build_timeline(
    scenario: Scenario,
    seed: int,
    *,
    imaging_orbits: float = IMAGING_ORBITS,
    tail_orbits: float = TAIL_ORBITS,
    survival_orbits: float = SURVIVAL_ORBITS,
    land_mask: LandMask | None = None,
) -> Timeline:
    """Precompute the world and reduce it to ticks.

    Frames are taken for ``imaging_orbits``; their deadlines fall within the value
    window (imaging + ``tail_orbits``, rounded up to whole oracle buckets); the
    ``survival_orbits`` after it earn nothing but the battery must still fly them.
    """
    tick = scenario.policy.tick_s
    period = orbit_period_s(parse_tle(scenario.tle_line1, scenario.tle_line2))
    n_value = math.ceil((imaging_orbits + tail_orbits) * period / tick / BUCKET_TICKS)
    n_value *= BUCKET_TICKS
    n = n_value + math.ceil(survival_orbits * period / tick)
    world = World(scenario, seed, duration_s=n * tick + tick, land_mask=land_mask)
    t0 = scenario.start_tai
    edges = t0 + tick * np.arange(n + 1, dtype=np.float64)
    sun = np.array([world.sun.mean_sun_fraction(a, b) for a, b in itertools.pairwise(edges)])
    dist = np.array([world.sun.distance_au(a) for a in edges[:-1]])
    solar = np.array([array_power_w(scenario.array, f, d) for f, d in zip(sun, dist, strict=True)])
    radio = interval_overlap(
        edges[:-1], tick, merge_windows([(p.aos_tai, p.los_tai) for p in world.passes])
    )
    imaging_end = t0 + imaging_orbits * period
    end = float(edges[n_value])
    u_true = scenario.payload.true_unsure_rate
    frames = []
    for f in world.camera.frames:
        if f.t_tai >= imaging_end:
            break
        k = max(0, math.ceil((f.t_tai - t0) / tick - 1e-9))
        if k >= n:
            continue
        unsure = bool(np.random.default_rng([f.seed, 7]).random() < u_true)
        frames.append(
            FrameJob(
                f.frame_id,
                k,
                f.t_tai,
                _deadline(scenario, f.t_tai, world.passes, end),
                f.priority,
                unsure,
            )
        )
    return Timeline(
        scenario,
        seed,
        t0,
        tick,
        solar,
        radio,
        sun,
        tuple(frames),
        imaging_end,
        end,
        period,
        world.eclipses,
        world.passes,
        world,
    )


# --------------------------------------------------------------------------- policies
class Policy(Protocol):
    name: str

    def reset(self, tl: Timeline) -> None: ...

    def decide(
        self,
        k: int,
        now_tai: float,
        soc: float,
        battery_wh: float,
        queue: Sequence[Job],
        last_solar_w: float,
    ) -> tuple[list[RunOrder], tuple[int, ...]]: ...


def _fifo(
    queue: Sequence[Job], cfg: SchedulerConfig, mode: PowerMode, tick_s: float
) -> list[RunOrder]:
    orders: list[RunOrder] = []
    busy = 0.0
    for j in sorted(queue, key=lambda j: (j.captured_tai, j.job_id)):
        lat = cfg.profile.latency_s(j.stage, mode.name)
        if busy + lat > tick_s + 1e-9:
            continue
        busy += lat
        orders.append(RunOrder(j.job_id, j.stage, mode.name, lat, lat * mode.power_w))
    return orders


class GreedyPolicy:
    """Runs whatever is queued, in the fastest mode, whenever above the floor."""

    name = "greedy"

    def __init__(self, cfg: SchedulerConfig) -> None:
        self.cfg = cfg
        self.mode = min(cfg.modes, key=lambda m: cfg.profile.latency_s("small", m.name))

    def reset(self, tl: Timeline) -> None:
        pass

    def decide(
        self,
        k: int,
        now_tai: float,
        soc: float,
        battery_wh: float,
        queue: Sequence[Job],
        last_solar_w: float,
    ) -> tuple[list[RunOrder], tuple[int, ...]]:
        if soc <= self.cfg.floor_soc:
            return [], ()
        return _fifo(queue, self.cfg, self.mode, self.cfg.tick_s), ()


class SunlitOnlyPolicy:
    """Runs queued work in the efficient mode only while the spacecraft is sunlit."""

    name = "sunlit_only"

    def __init__(self, cfg: SchedulerConfig) -> None:
        self.cfg = cfg
        self.mode = cfg.efficient_mode("small")
        self._sun: FArr = np.zeros(0)

    def reset(self, tl: Timeline) -> None:
        self._sun = tl.sun_frac

    def decide(
        self,
        k: int,
        now_tai: float,
        soc: float,
        battery_wh: float,
        queue: Sequence[Job],
        last_solar_w: float,
    ) -> tuple[list[RunOrder], tuple[int, ...]]:
        if soc <= self.cfg.floor_soc or self._sun[k] < 0.5:
            return [], ()
        return _fifo(queue, self.cfg, self.mode, self.cfg.tick_s), ()


class DutyCyclePolicy:
    """Payload on for a fixed share of every 10-tick period, sized at design time from
    the orbit-average energy budget (nominal array, 20 % margin)."""

    name = "duty_cycle"
    period_ticks = 10

    def __init__(self, cfg: SchedulerConfig) -> None:
        self.cfg = cfg
        self.mode = cfg.efficient_mode("small")
        self.on_ticks = self.period_ticks

    def reset(self, tl: Timeline) -> None:
        cfg = self.cfg
        surplus_w = (
            cfg.array_power_w * float(tl.sun_frac.mean())
            - cfg.bus_power_w
            - cfg.radio_power_w * float(tl.radio_frac.mean())
        )
        duty = min(1.0, max(0.05, 0.8 * surplus_w / self.mode.power_w))
        self.on_ticks = max(1, round(duty * self.period_ticks))

    def decide(
        self,
        k: int,
        now_tai: float,
        soc: float,
        battery_wh: float,
        queue: Sequence[Job],
        last_solar_w: float,
    ) -> tuple[list[RunOrder], tuple[int, ...]]:
        if soc <= self.cfg.floor_soc or k % self.period_ticks >= self.on_ticks:
            return [], ()
        return _fifo(queue, self.cfg, self.mode, self.cfg.tick_s), ()


class GnomonPolicy:
    """The flight scheduler, fed by the onboard predictor as a flight component would."""

    name = "gnomon"

    def __init__(self, cfg: SchedulerConfig) -> None:
        self.cfg = cfg
        self.sched = PowerScheduler(cfg)
        self._pred: Forecast | None = None
        self._tl: Timeline | None = None
        self.decisions = 0
        self.reserve_wh: list[float] = []

    def reset(self, tl: Timeline) -> None:
        self.sched = PowerScheduler(self.cfg)
        self._tl = tl
        sc = tl.scenario
        self._predictor = OrbitPredictor(
            sc.tle_line1,
            sc.tle_line2,
            sc.stations,
            sc.imaging_plan(tl.imaging_end_tai),
            tl.world.land_mask,
        )
        self._pred = None
        self.reserve_wh = []

    def _prediction(self, now_tai: float) -> Forecast:
        need = now_tai + (self.cfg.horizon_orbits * self._predictor.period_s) + self.cfg.tick_s
        if self._pred is None or self._pred.end_tai < need or not self._pred.covers(now_tai):
            self._pred = self._predictor.predict(
                now_tai,
                (self.cfg.horizon_orbits + 1.5) * self._predictor.period_s,
                step_s=self.cfg.tick_s,
            )
        return self._pred

    def decide(
        self,
        k: int,
        now_tai: float,
        soc: float,
        battery_wh: float,
        queue: Sequence[Job],
        last_solar_w: float,
    ) -> tuple[list[RunOrder], tuple[int, ...]]:
        d = self.sched.decide(
            now_tai,
            soc,
            battery_wh,
            queue,
            self._prediction(now_tai),
            solar_w=last_solar_w if k > 0 else None,
        )
        self.decisions += 1
        self.reserve_wh.append(d.reserve_wh)
        return list(d.run), d.drop


# ------------------------------------------------------------------------- simulation
@dataclass(slots=True, frozen=True, eq=False)
class PolicyResult:
    """One policy's run over one timeline."""

    name: str
    value: float
    floor_violations: int
    deadline_misses: int
    dropped: int
    lost_in_safe: int
    small_runs: int
    large_runs: int
    payload_energy_j: float
    min_soc: float
    soc: FArr  # at tick boundaries (n + 1)
    payload_w: FArr  # mean per tick

    @property
    def inferences(self) -> int:
        return self.small_runs + self.large_runs


def simulate(policy: Policy, tl: Timeline) -> PolicyResult:
    """Step one policy through the timeline with EPS, fault protection and truth."""
    sc = tl.scenario
    cfg = sc.scheduler_config()
    prof = sc.payload.profile
    floor = sc.policy.floor_soc
    eps = Eps(sc.array, sc.battery, tl.start_tai)
    policy.reset(tl)
    n = tl.n_ticks
    soc = np.empty(n + 1)
    soc[0] = eps.soc
    pay_w = np.zeros(n)
    jobs: dict[int, Job] = {}
    truth = {f.job_id: f for f in tl.frames}
    value = 0.0
    violations = misses = dropped = lost = n_small = n_large = 0
    energy_j = 0.0
    safe = in_violation = False
    fi = 0
    last_solar = 0.0
    for k in range(n):
        now = tl.t(k)
        while fi < len(tl.frames) and tl.frames[fi].tick <= k:
            f = tl.frames[fi]
            fi += 1
            if safe:
                lost += 1
                continue
            jobs[f.job_id] = Job(f.job_id, f.captured_tai, f.deadline_tai, f.priority, "small")
        for jid in [j for j, job in jobs.items() if job.deadline_tai <= now]:
            if jobs.pop(jid).stage == "small":
                misses += 1
        orders: list[RunOrder] = []
        if not safe and jobs:
            orders, drops = policy.decide(
                k, now, eps.soc, eps.battery_wh, list(jobs.values()), last_solar
            )
            for jid in drops:
                job = jobs.pop(jid, None)
                if job is not None and job.stage == "small":
                    dropped += 1
        busy = 0.0
        payload_j = 0.0
        mode_power = {m.name: m.power_w for m in cfg.modes}
        for o in orders:
            job = jobs.get(o.job_id)
            if job is None:
                raise WorldError(f"policy {policy.name} ran unknown or finished job {o.job_id}")
            lat = prof.latency_s(o.variant, o.mode)
            if busy + lat > tl.tick_s + 1e-6:
                raise WorldError(f"policy {policy.name} overbooked tick {k}")
            busy += lat
            payload_j += lat * mode_power[o.mode]
            f = truth[o.job_id]
            if job.stage == "small" and o.variant == "small":
                n_small += 1
                if f.unsure:
                    value += f.priority * prof.accuracy_unsure
                    jobs[o.job_id] = dataclasses.replace(job, stage="large")
                else:
                    value += f.priority * prof.accuracy_sure
                    del jobs[o.job_id]
            elif job.stage == "large":
                n_large += 1
                value += f.priority * max(0.0, prof.accuracy_large - prof.accuracy_unsure)
                del jobs[o.job_id]
            else:  # large model straight away
                n_large += 1
                value += f.priority * (prof.accuracy_large if f.unsure else prof.accuracy_sure)
                del jobs[o.job_id]
        energy_j += payload_j
        pay_w[k] = payload_j / tl.tick_s
        loads = sc.loads
        load = (loads.safe_w if safe else loads.bus_w) + loads.radio_tx_w * tl.radio_frac[k]
        st = eps.step(tl.tick_s, float(tl.solar_w[k]), load + pay_w[k])
        last_solar = st.solar_w
        soc[k + 1] = st.soc
        if st.soc < floor - 1e-9:
            if not in_violation:
                violations += 1
                in_violation = True
            if not safe:
                safe = True
                lost += sum(1 for j in jobs.values() if j.stage == "small")
                jobs.clear()
        else:
            in_violation = False
        if safe and st.soc >= floor + SAFE_EXIT_SOC_MARGIN:
            safe = False
    misses += sum(1 for j in jobs.values() if j.stage == "small")
    return PolicyResult(
        policy.name,
        value,
        violations,
        misses,
        dropped,
        lost,
        n_small,
        n_large,
        energy_j,
        float(soc.min()),
        soc,
        pay_w,
    )


def oracle_problem(tl: Timeline) -> OracleProblem:
    """The LP for a timeline (buckets of BUCKET_TICKS ticks)."""
    sc = tl.scenario
    prof = sc.payload.profile
    n = round((tl.value_end_tai - tl.start_tai) / tl.tick_s)
    n_b = math.ceil(n / BUCKET_TICKS)
    load_w = sc.loads.bus_w + sc.loads.radio_tx_w * tl.radio_frac
    net_tick_wh = (tl.solar_w - load_w) * tl.tick_s / WH_J
    net = np.bincount(np.arange(n) // BUCKET_TICKS, weights=net_tick_wh[:n], minlength=n_b)
    first = [f.tick // BUCKET_TICKS for f in tl.frames]
    last = [
        (math.ceil((f.deadline_tai - tl.start_tai) / tl.tick_s) - 1) // BUCKET_TICKS
        for f in tl.frames
    ]
    last = [min(x, n_b - 1) for x in last]
    groups = group_frames(
        first, last, [f.priority for f in tl.frames], [f.unsure for f in tl.frames]
    )
    modes = sc.payload.modes
    cap = sc.battery.capacity_wh
    return OracleProblem(
        bucket_s=BUCKET_TICKS * tl.tick_s,
        net_wh=np.asarray(net, dtype=np.float64),
        e0_wh=sc.battery.soc0 * cap,
        floor_wh=sc.policy.floor_soc * cap,
        capacity_wh=cap,
        eta_c=sc.battery.charge_efficiency,
        eta_d=sc.battery.discharge_efficiency,
        mode_power_w=tuple(m.power_w for m in modes),
        small_latency_s=tuple(prof.latency_s("small", m.name) for m in modes),
        large_latency_s=tuple(prof.latency_s("large", m.name) for m in modes),
        accuracy_sure=prof.accuracy_sure,
        accuracy_unsure=prof.accuracy_unsure,
        accuracy_large=prof.accuracy_large,
        groups=groups,
        terminal_wh=survival_energy_wh(tl, n),
    )


def survival_energy_wh(tl: Timeline, k0: int) -> float:
    """Least battery energy at tick ``k0`` from which the rest of the timeline can be
    flown with the payload off, never below the floor, ending with enough to ride out
    the longest eclipse in SAFE mode: the obligation the flight scheduler keeps."""
    sc = tl.scenario
    cap = sc.battery.capacity_wh
    floor = sc.policy.floor_soc * cap
    if k0 >= tl.n_ticks:
        return floor
    load_w = sc.loads.bus_w + sc.loads.radio_tx_w * tl.radio_frac[k0:]
    dur = np.full(len(load_w), tl.tick_s)
    delta = battery_delta_wh(
        tl.solar_w[k0:] - load_w,
        dur,
        sc.battery.charge_efficiency,
        sc.battery.discharge_efficiency,
    )
    cum = np.cumsum(delta)
    longest = max((e.duration_s for e in tl.eclipses if e.end_tai > tl.t(k0)), default=0.0)
    required = np.full(len(cum), floor)
    required[-1] += longest * sc.loads.safe_w / sc.battery.discharge_efficiency / WH_J
    return float(min(cap, max(floor, float(np.max(required - cum)))))


@dataclass(slots=True, frozen=True, eq=False)
class ScenarioEval:
    """All policies and the oracle on one timeline."""

    timeline: Timeline
    results: dict[str, PolicyResult]
    oracle: OracleResult


def make_policies(cfg: SchedulerConfig) -> list[Policy]:
    return [GnomonPolicy(cfg), GreedyPolicy(cfg), DutyCyclePolicy(cfg), SunlitOnlyPolicy(cfg)]


def evaluate_timeline(tl: Timeline, policies: Sequence[str] = POLICIES) -> ScenarioEval:
    cfg = tl.scenario.scheduler_config()
    results = {p.name: simulate(p, tl) for p in make_policies(cfg) if p.name in policies}
    return ScenarioEval(tl, results, solve_oracle(oracle_problem(tl)))


# ------------------------------------------------------------------ random scenarios
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


# ----------------------------------------------------------------------- evaluation
def _policy_metrics(r: PolicyResult, oracle_value: float, orbits: float) -> dict[str, float]:
    return {
        "value": r.value,
        "value_vs_oracle": min(1.0, r.value / oracle_value) if oracle_value > 0 else 1.0,
        "floor_violations": r.floor_violations,
        "deadline_misses": r.deadline_misses,
        "dropped": r.dropped,
        "lost_in_safe": r.lost_in_safe,
        "energy_per_inference_j": r.payload_energy_j / r.inferences if r.inferences else 0.0,
        "frames_per_orbit": r.small_runs / orbits,
        "min_soc": r.min_soc,
    }


def scenario_metrics(ev: ScenarioEval) -> dict[str, dict[str, float]]:
    """Per-policy metrics (and the oracle's) for one evaluated scenario."""
    tl = ev.timeline
    orbits = tl.imaging_orbits
    out = {name: _policy_metrics(r, ev.oracle.value, orbits) for name, r in ev.results.items()}
    o = ev.oracle
    inf = o.small_runs + o.escalations
    out["oracle"] = {
        "value": o.value,
        "value_vs_oracle": 1.0,
        "floor_violations": 0,
        "deadline_misses": float(len(tl.frames) - o.small_runs),
        "dropped": 0.0,
        "lost_in_safe": 0.0,
        "energy_per_inference_j": o.payload_energy_j / inf if inf else 0.0,
        "frames_per_orbit": o.small_runs / orbits,
        "min_soc": float(o.energy_wh.min() / tl.scenario.battery.capacity_wh),
    }
    return out


def evaluate(
    n_scenarios: int = 100,
    seed: int = 0,
    *,
    plot_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Evaluate all policies and the oracle on ``n_scenarios`` randomized scenarios.

    Returns a JSON-able report: ``policies`` keyed by policy name with ``value`` (mean
    per scenario), ``value_vs_oracle`` (mean of per-scenario ratios, each capped at 1),
    ``floor_violations`` and ``deadline_misses`` (totals), ``energy_per_inference_j``
    and ``frames_per_orbit`` (means), plus ``goal`` and per-scenario rows.
    """
    if n_scenarios < 1:
        raise WorldError("need at least one scenario")
    t_start = time.perf_counter()
    rng = np.random.default_rng(seed)
    land = LandMask()
    rows: list[dict[str, Any]] = []
    for i in range(n_scenarios):
        sc = random_scenario(rng, i, land)
        tl = make_feasible(build_timeline(sc, seed * 1000 + i, land_mask=land))
        ev = evaluate_timeline(tl)
        m = scenario_metrics(ev)
        rows.append(
            {
                "name": tl.scenario.name,
                "frames": len(tl.frames),
                **{k: {kk: round(float(vv), 4) for kk, vv in v.items()} for k, v in m.items()},
            }
        )
        if plot_dir is not None:
            plot_scenario(ev, Path(plot_dir) / f"{tl.scenario.name}.png")
        if progress is not None:
            progress(i + 1, n_scenarios)
    names = (*POLICIES, "oracle")
    policies: dict[str, dict[str, float]] = {}
    for name in names:
        col = [r[name] for r in rows]
        ratios = np.array([c["value_vs_oracle"] for c in col])
        policies[name] = {
            "value": float(np.mean([c["value"] for c in col])),
            "value_vs_oracle": float(ratios.mean()),
            "value_vs_oracle_min": float(ratios.min()),
            "value_vs_oracle_p10": float(np.percentile(ratios, 10)),
            "floor_violations": int(sum(c["floor_violations"] for c in col)),
            "scenarios_with_violations": int(sum(1 for c in col if c["floor_violations"] > 0)),
            "deadline_misses": float(sum(c["deadline_misses"] for c in col)),
            "dropped": float(sum(c["dropped"] for c in col)),
            "energy_per_inference_j": float(np.mean([c["energy_per_inference_j"] for c in col])),
            "frames_per_orbit": float(np.mean([c["frames_per_orbit"] for c in col])),
        }
    g = policies["gnomon"]
    return {
        "scenarios": n_scenarios,
        "seed": seed,
        "tick_s": 60.0,
        "imaging_orbits": IMAGING_ORBITS,
        "policies": policies,
        "goal": {
            "target_value_vs_oracle": 0.95,
            "gnomon_value_vs_oracle": g["value_vs_oracle"],
            "gnomon_floor_violations": g["floor_violations"],
            "met": bool(g["value_vs_oracle"] >= 0.95 and g["floor_violations"] == 0),
        },
        "elapsed_s": round(time.perf_counter() - t_start, 2),
        "per_scenario": rows,
    }


def evaluate_named(name_or_path: str | Path, seed: int = 0) -> ScenarioEval:
    """Evaluate all policies on one scenario file (imaging for 6 orbits, 2 orbit tail)."""
    return evaluate_timeline(make_feasible(build_timeline(load_scenario(name_or_path), seed)))


# ------------------------------------------------------------------------------ plot
def plot_scenario(ev: ScenarioEval, path: Path) -> Path:
    """PNG of SoC, solar input, eclipses, passes and inference activity against time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tl = ev.timeline
    t_h = (tl.start_tai + tl.tick_s * np.arange(tl.n_ticks + 1) - tl.start_tai) / 3600.0
    fig, axes = plt.subplots(3, 1, figsize=(11, 8), sharex=True)
    ax_soc, ax_pow, ax_act = axes
    for ax in axes:
        for e in tl.eclipses:
            ax.axvspan(
                (e.start_tai - tl.start_tai) / 3600,
                (e.end_tai - tl.start_tai) / 3600,
                color="0.85",
                lw=0,
            )
        for p in tl.passes:
            ax.axvspan(
                (p.aos_tai - tl.start_tai) / 3600,
                (p.los_tai - tl.start_tai) / 3600,
                color="tab:green",
                alpha=0.25,
                lw=0,
            )
    cap = tl.scenario.battery.capacity_wh
    for name, r in ev.results.items():
        ax_soc.plot(
            t_h, r.soc, label=f"{name} ({r.value:.0f})", lw=1.4 if name == "gnomon" else 0.9
        )
    ob = np.arange(len(ev.oracle.energy_wh)) * BUCKET_TICKS * tl.tick_s / 3600.0
    ax_soc.plot(ob, ev.oracle.energy_wh / cap, "k--", lw=1, label=f"oracle ({ev.oracle.value:.0f})")
    ax_soc.axhline(tl.scenario.policy.floor_soc, color="tab:red", lw=1, ls=":", label="floor")
    ax_soc.set_ylabel("state of charge")
    ax_soc.legend(fontsize=7, ncol=3, loc="lower left")
    ax_pow.plot(t_h[:-1], tl.solar_w, color="tab:orange", label="solar input (W)")
    ax_pow.plot(
        t_h[:-1],
        ev.results["gnomon"].payload_w,
        color="tab:blue",
        lw=0.8,
        label="gnomon payload (W)",
    )
    ax_pow.set_ylabel("power (W)")
    ax_pow.legend(fontsize=7, loc="upper right")
    arrivals = np.bincount([f.tick for f in tl.frames], minlength=tl.n_ticks)[: tl.n_ticks]
    ax_act.bar(t_h[:-1], arrivals, width=tl.tick_s / 3600, color="0.6", label="frames captured")
    for name in ("gnomon", "greedy"):
        if name in ev.results:
            busy = ev.results[name].payload_w > 0
            ax_act.plot(
                t_h[:-1][busy],
                np.full(busy.sum(), arrivals.max() + (1 if name == "gnomon" else 2)),
                "|",
                ms=6,
                label=f"{name} inferring",
            )
    for ax in axes:
        ax.axvline((tl.value_end_tai - tl.start_tai) / 3600.0, color="k", lw=0.6, ls="--")
    ax_act.set_ylabel("frames / tick")
    ax_act.set_xlabel("hours since start (grey: eclipse, green: passes)")
    ax_act.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"{tl.scenario.name}: {tl.scenario.description}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
