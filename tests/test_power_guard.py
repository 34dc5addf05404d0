"""The energy guard: the scheduler proposes, the guard disposes.

Unit tests of its decisions, the ``power`` component's telemetry and throttled events, and
an adversarial, hypothesis-driven closed loop in which the scheduler is told a nominal
spacecraft while the world is worse (unknown panel degradation, tumbling, long eclipses,
capacity fade, stale predictions, load spikes): the battery never goes below the floor.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, seed, settings
from hypothesis import strategies as st

from fsw.power.guard import EnergyGuard, GuardConfig
from fsw.power.predictor import EclipseWindow, Forecast, PassWindow
from fsw.power.scheduler import (
    CascadeProfile,
    Job,
    PowerMode,
    PowerScheduler,
    RunOrder,
    SchedulerConfig,
)

T0 = 2_173_910_400.0
PERIOD = 5700.0
STEP = 60.0


def _config(**kw: object) -> SchedulerConfig:
    base: dict[str, object] = dict(
        battery_capacity_wh=40.0,
        bus_power_w=2.0,
        radio_power_w=6.0,
        array_power_w=9.0,
        modes=(PowerMode("slow", 2.5), PowerMode("fast", 5.0)),
        profile=CascadeProfile(
            small_latency_s={"slow": 8.0, "fast": 4.5},
            large_latency_s={"slow": 30.0, "fast": 16.0},
        ),
        floor_soc=0.7,
        margin_wh=0.2,
    )
    base.update(kw)
    return SchedulerConfig(**base)  # type: ignore[arg-type]


def _forecast(
    eclipse_frac: float = 0.36,
    passes: tuple[tuple[float, float], ...] = (),
    n_orbits: float = 18.0,
    start: float = T0,
    shift_s: float = 0.0,
    frames_per_orbit: int = 0,
) -> Forecast:
    """Eclipse at the end of each orbit (moved by ``shift_s``), frames mid-daylight."""
    n = int(n_orbits * PERIOD / STEP)
    t = start + STEP * np.arange(n)
    eclipses = []
    for k in range(-1, int(n_orbits) + 2):
        a = T0 + k * PERIOD + (1.0 - eclipse_frac) * PERIOD + shift_s
        b = a + eclipse_frac * PERIOD
        eclipses.append(EclipseWindow(a, b, a - 4.0, b + 4.0, a + 4.0, b - 4.0))
    shade = np.zeros(n)
    for e in eclipses:
        shade += np.clip(np.minimum(t + STEP, e.end_tai) - np.maximum(t, e.start_tai), 0, None)
    radio = np.zeros(n)
    pw = []
    for a, b in passes:
        radio += np.clip(np.minimum(t + STEP, b) - np.maximum(t, a), 0, None) / STEP
        pw.append(PassWindow("gs", a, b, 0.5 * (a + b), 40.0))
    f_t: list[float] = []
    for k in range(int(n_orbits) + 1):
        base = T0 + k * PERIOD + 0.2 * PERIOD
        f_t += list(base + np.linspace(0.0, 0.3 * PERIOD, frames_per_orbit, endpoint=False))
    f_arr = np.array([x for x in f_t if start <= x < start + n * STEP])
    k_idx = ((f_arr - start) // STEP).astype(int)
    return Forecast(
        start_tai=start,
        step_s=STEP,
        period_s=PERIOD,
        sun_fraction=np.clip(1.0 - shade / STEP, 0.0, 1.0),
        pass_fraction=np.clip(radio, 0, 1),
        frames=np.bincount(k_idx, minlength=n).astype(float)[:n],
        frame_priority=np.bincount(k_idx, minlength=n).astype(float)[:n],
        frame_times_tai=f_arr,
        frame_priorities=np.ones(len(f_arr)),
        eclipses=tuple(e for e in eclipses if e.end_tai > start and e.start_tai < t[-1] + STEP),
        passes=tuple(pw),
    )


def _orders(n: int, energy_j: float = 20.0) -> list[RunOrder]:
    return [RunOrder(i, "small", "slow", energy_j / 2.5, energy_j) for i in range(n)]


# ------------------------------------------------------------------ decisions
@pytest.mark.req("GRD-001")
def test_guard_admits_what_the_worst_case_allows_and_refuses_the_rest() -> None:
    cfg = _config()
    fc = _forecast()
    now = T0 + 0.6 * PERIOD  # eclipse (2052 s) starts in 228 s
    guard = EnergyGuard(GuardConfig.from_scheduler(cfg))
    # ~1.7 Wh above what the 2052 s eclipse at 2 W (+ margins) needs; 30 orders want 2.5 Wh.
    v = guard.review(now, 0.7 + 2.85 / 40, None, _orders(30, 300.0), fc)
    assert 0 < len(v.admitted) < 30 and v.refused == 30 - len(v.admitted)
    assert v.reason == "PROJECTION" and v.margin_wh >= 0.0
    assert guard.refused_total == v.refused and guard.refusals_by_reason["PROJECTION"] == v.refused
    assert [o.job_id for o in v.admitted] == list(range(len(v.admitted)))  # preference kept
    rich = guard.review(now, 0.95, None, _orders(30, 300.0), fc)
    assert len(rich.admitted) == 30 and rich.reason == "NONE"


@pytest.mark.req("GRD-001")
def test_a_pass_starting_as_the_eclipse_ends_is_in_the_worst_case() -> None:
    # Found by the adversarial test (seed 2298749762): a pass beginning right at eclipse
    # exit was cut off at the widened eclipse end and its transmitter energy not counted.
    cfg = _config(array_power_w=5.0)
    eclipse_end = T0 + PERIOD
    with_pass = _forecast(0.375, passes=((eclipse_end, eclipse_end + 360.0),))
    now = T0 + 0.5 * PERIOD
    guard = GuardConfig.from_scheduler(cfg)
    quiet = EnergyGuard(guard).review(now, 0.8, None, [], _forecast(0.375))
    busy = EnergyGuard(guard).review(now, 0.8, None, [], with_pass)
    # 30 s of transmitter (6 W) in the widened dark, then 360 s of bus + transmitter
    # against the array (5 W less 3 %) until LOS plus margin.
    deficit_wh = (6.0 * 30.0 + (6.0 + 2.0 - 5.0 * 0.97) * 360.0) / 0.95 / 3600.0
    assert quiet.idle_margin_wh - busy.idle_margin_wh == pytest.approx(deficit_wh, rel=0.1)


@pytest.mark.req("GRD-001")
def test_guard_budgets_the_real_bus_load_not_the_safe_mode_load() -> None:
    cfg = _config(safe_power_w=0.5)
    fc = _forecast()
    now = T0 + 0.6 * PERIOD
    soc = 0.735  # ~1.2 Wh of headroom: the eclipse at 2 W fits (SAFE 0.5 W would), at 3 W not
    plain = EnergyGuard(GuardConfig.from_scheduler(cfg)).review(now, soc, None, _orders(3), fc)
    peak = EnergyGuard(GuardConfig.from_scheduler(cfg, bus_peak_w=3.0))
    hot = peak.review(now, soc, None, _orders(3), fc)
    assert plain.idle_margin_wh > hot.idle_margin_wh
    assert not plain.inhibited and plain.admitted
    assert hot.inhibited and hot.admitted == ()


@pytest.mark.req("GRD-002")
def test_inhibit_has_hysteresis() -> None:
    cfg = _config()
    fc = _forecast()
    now = T0 + 0.6 * PERIOD
    guard = EnergyGuard(GuardConfig.from_scheduler(cfg, release_wh=1.0))
    low = guard.review(now, 0.72, None, _orders(2), fc)
    assert low.inhibited and low.reason == "INHIBITED" and low.admitted == ()
    # Just above the threshold (margin >= 0 with no work) is not enough to release.
    idle_zero_soc = 0.72 - low.idle_margin_wh / (40 * 0.97)
    just_above = guard.review(now, idle_zero_soc + 0.3 / 40, None, _orders(2), fc)
    assert 0.0 <= just_above.idle_margin_wh < 1.0 and just_above.inhibited
    released = guard.review(now, idle_zero_soc + 1.5 / 40, None, _orders(2), fc)
    assert not released.inhibited and released.admitted
    assert guard.refusals_by_reason["INHIBITED"] == 4


@pytest.mark.req("GRD-003")
def test_a_stale_tle_gets_no_solar_credit_before_the_eclipse() -> None:
    cfg = _config()
    fc = _forecast()
    now = T0 + 0.1 * PERIOD  # early sunlight: the sun would refill what is spent now
    soc = 0.7 + 2.0 / 40
    orders = _orders(20, 300.0)
    fresh = EnergyGuard(GuardConfig.from_scheduler(cfg)).review(now, soc, None, orders, fc)
    stale = EnergyGuard(GuardConfig.from_scheduler(cfg)).review(
        now, soc, None, orders, fc, tle_age_s=10 * 86400.0
    )
    assert len(fresh.admitted) == 20
    assert len(stale.admitted) < len(fresh.admitted) and stale.margin_wh < fresh.margin_wh


@pytest.mark.req("GRD-003")
def test_guard_learns_a_degraded_array_at_once_and_a_faded_battery_from_the_eps() -> None:
    cfg = _config()
    fc = _forecast()
    guard = EnergyGuard(GuardConfig.from_scheduler(cfg))
    t = T0 + 0.2 * PERIOD
    guard.learn_solar(fc, t - STEP, t, 4.5)
    assert guard.array_power_estimate_w == pytest.approx(4.5)
    guard.learn_solar(fc, t, t + STEP, 9.0)  # a good reading does not undo a bad one
    assert guard.array_power_estimate_w == pytest.approx(4.5)
    v = guard.review(t, 0.8, 0.8 * 30.0, [], fc)  # the EPS says 30 Wh at 100 %
    assert v.capacity_wh == pytest.approx(30.0 * 0.97)


@pytest.mark.req("GRD-003")
def test_no_prediction_refuses_everything() -> None:
    guard = EnergyGuard(GuardConfig.from_scheduler(_config()))
    v = guard.review(T0, 0.95, None, _orders(4), None)
    assert v.admitted == () and v.reason == "NO_PREDICTION" and guard.refused_total == 4


# ------------------------------------------------------------------ the adversarial loop
@dataclass(slots=True)
class World:
    """What the spacecraft really is (the scheduler is told the nominal one)."""

    eclipse_frac: float
    degradation: float
    degrade_at_s: float
    tumble_amp: float
    tumble_period_s: float
    fade: float
    tle_age_days: float
    shift_s: float
    spikes: tuple[tuple[float, float, float], ...]  # (start s, duration s, extra W)
    bus_peak_w: float
    soc0: float
    passes: tuple[tuple[float, float], ...]
    array_w: float
    greedy: bool  # the proposer: a greedy optimiser (every queued job, fast mode) or Gnomon's

    def solar_w(self, cfg: SchedulerConfig, t_s: float, sun: float) -> float:
        a = cfg.array_power_w * (1.0 - (self.degradation if t_s >= self.degrade_at_s else 0.0))
        tumble = 1.0 + self.tumble_amp * math.sin(2.0 * math.pi * t_s / self.tumble_period_s)
        return max(0.0, a * tumble * sun)

    def bus_w(self, cfg: SchedulerConfig, t_s: float) -> float:
        extra = sum(w for a, d, w in self.spikes if a <= t_s < a + d)
        return min(self.bus_peak_w, cfg.bus_power_w + extra)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    eclipse_frac = draw(st.floats(0.30, 0.42))  # up to ~40 min of a 95 min orbit
    stale = draw(st.booleans())
    n_spikes = draw(st.integers(0, 6))
    spikes = tuple(
        (
            draw(st.floats(0.0, 3 * PERIOD)),
            draw(st.floats(60.0, 1800.0)),
            draw(st.floats(0.0, 2.0)),
        )
        for _ in range(n_spikes)
    )
    passes = []
    for k in range(4):
        if draw(st.booleans()):
            a = T0 + k * PERIOD + draw(st.floats(0.0, 0.95)) * PERIOD
            passes.append((a, a + draw(st.floats(240.0, 720.0))))
    return World(
        eclipse_frac=eclipse_frac,
        degradation=draw(st.floats(0.0, 0.5)),
        degrade_at_s=draw(st.floats(0.0, 2 * PERIOD)),
        tumble_amp=draw(st.floats(0.0, 0.3)),
        tumble_period_s=draw(st.floats(120.0, PERIOD)),
        fade=draw(st.floats(0.0, 0.3)),
        tle_age_days=draw(st.floats(8.0, 30.0)) if stale else draw(st.floats(0.0, 6.0)),
        # A stale TLE mistimes eclipses by minutes; a fresh one by the guard's margin at most.
        shift_s=draw(st.floats(-600.0, 600.0)) if stale else draw(st.floats(-10.0, 10.0)),
        spikes=spikes,
        bus_peak_w=4.0,
        soc0=draw(st.floats(0.705, 0.8)),
        passes=tuple(sorted(passes)),
        array_w=draw(st.floats(5.0, 10.0)),
        greedy=draw(st.booleans()),
    )


def _greedy(queue: list[Job]) -> list[RunOrder]:
    """A proposer that ignores energy: as many queued jobs as fit the tick, fast mode."""
    n = int(STEP // 4.5)
    return [RunOrder(j.job_id, "small", "fast", 4.5, 4.5 * 5.0) for j in queue[:n]]


def _fly(
    cfg: SchedulerConfig, w: World, *, payload: bool, ticks: int, soc0: float | None = None
) -> float:
    """Fly the world for ``ticks`` with a proposer and the guard (or the payload off);
    the lowest true state of charge. The world integrates each tick in 10 s steps."""
    cap_true = cfg.battery_capacity_wh * (1.0 - w.fade)
    e = (w.soc0 if soc0 is None else soc0) * cap_true
    told = _forecast(w.eclipse_frac, w.passes, n_orbits=ticks * STEP / PERIOD + 18.0)
    truth = _forecast(
        w.eclipse_frac,
        tuple((a + w.shift_s, b + w.shift_s) for a, b in w.passes),
        n_orbits=ticks * STEP / PERIOD + 1.0,
        shift_s=w.shift_s,
    )
    sched = PowerScheduler(cfg)
    guard = EnergyGuard(GuardConfig.from_scheduler(cfg, bus_peak_w=w.bus_peak_w))
    queue = [Job(i, T0, T0 + 6 * PERIOD) for i in range(400)]
    lowest = e / cap_true
    solar_avg = 0.0
    for k in range(ticks):
        now = T0 + k * STEP
        soc = e / cap_true
        payload_j = 0.0
        if payload:
            d = sched.decide(now, soc, e, queue, told, solar_w=solar_avg if k else None)
            proposed = _greedy(queue) if w.greedy else list(d.run)
            if k:
                guard.learn_solar(told, now - STEP, now, solar_avg)
            v = guard.review(now, soc, e, proposed, told, tle_age_s=w.tle_age_days * 86400.0)
            done = {o.job_id for o in v.admitted} | (set() if w.greedy else set(d.drop))
            queue = [j for j in queue if j.job_id not in done]
            payload_j = sum(o.energy_j for o in v.admitted)
        solar_sum = 0.0
        for j in range(6):  # 10 s world steps; the payload's energy in this tick
            t_s = k * STEP + 10.0 * j
            idx = truth.index(T0 + t_s)
            in_ecl = any(x.start_tai <= T0 + t_s < x.end_tai for x in truth.eclipses)
            solar = w.solar_w(cfg, t_s, 0.0 if in_ecl else 1.0)
            radio = cfg.radio_power_w * float(truth.pass_fraction[idx] > 0.0)
            net = solar - w.bus_w(cfg, t_s) - radio - payload_j / STEP
            e += (net * 0.95 if net >= 0 else net / 0.95) * 10.0 / 3600.0
            e = min(e, cap_true)
            lowest = min(lowest, e / cap_true)
            solar_sum += solar
        solar_avg = solar_sum / 6.0
    return lowest


def _adversarial(w: World, ticks: int) -> None:
    cfg = _config(array_power_w=w.array_w, bus_power_w=2.0)
    # The promise holds for a spacecraft that, with its payload off, recovers from just
    # above the floor in that world (one that is power-negative even with the payload off,
    # over the orbits flown and two more, is out of scope: no payload decision can save it).
    more = ticks + int(2 * PERIOD / STEP)
    idle = min(_fly(cfg, w, payload=False, ticks=more, soc0=s) for s in (w.soc0, 0.72))
    assume(idle >= cfg.floor_soc + 0.002)
    lowest = _fly(cfg, w, payload=True, ticks=ticks)
    assert lowest >= cfg.floor_soc - 1e-9, f"lowest SoC {lowest:.4f} below the floor"


#: Each run draws a fresh seed and prints it (`pytest -s` shows it; a failure report
#: shows it too): rerun a failure with `GNOMON_GUARD_SEED=<seed>`.
_SEED = int(
    __import__("os").environ.get("GNOMON_GUARD_SEED", random.SystemRandom().randrange(2**32))
)
print(f"test_power_guard: hypothesis seed {_SEED}")


@pytest.mark.req("GRD-004")
@seed(_SEED)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(w=worlds())
def test_the_floor_holds_in_adversarial_worlds(w: World) -> None:
    """Budget: 25 worlds of 3 orbits each (about 20 s on a 2-core CI box). Unknown panel
    degradation (up to 50 %, from a random time), tumbling (+/-30 %), eclipses up to 42 % of
    the orbit, capacity fade up to 30 %, stale TLEs (8-30 days, eclipses and passes off by
    up to 10 min), load spikes up to the declared peak bus load: SoC never below the floor.
    The seed is printed at import (``test_power_guard: hypothesis seed N``)."""
    _adversarial(w, int(3 * PERIOD / STEP))


@pytest.mark.slow
@pytest.mark.req("GRD-004")
@seed(_SEED)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(w=worlds())
def test_the_floor_holds_in_adversarial_worlds_long(w: World) -> None:
    """Budget: 300 worlds of 3 orbits (about 4 min); as above."""
    _adversarial(w, int(3 * PERIOD / STEP))
