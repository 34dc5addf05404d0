"""Power-aware inference scheduling: which jobs to run, with which model, in which mode.

:class:`PowerScheduler` is a pure decision object for a flight component: every call to
:meth:`PowerScheduler.decide` gets the time, the battery state, the job queue and an
:class:`~fsw.power.predictor.Forecast`, and returns a :class:`Decision`. It never reads
a clock; the only state it keeps is a running estimate of the solar array's full-sun
output, learned from the ``solar_w`` telemetry passed in (so degraded panels are noticed
after one sunlit tick).

How it decides (details in docs/components/power-scheduler.md):

1. Project the battery over the next orbits (default two) without payload work: solar
   input from the predicted sunlit fraction, bus load, radio during predicted passes,
   charge/discharge efficiencies, and a full battery that spills. The battery must stay
   at or above the floor (``floor_soc`` of capacity plus ``margin_wh``) everywhere and,
   at the end, hold what the payload-off spacecraft at its normal bus load needs to fly
   the following ``survival_orbits`` (default six) above the floor and one more eclipse.
2. Price energy. Every kind of work has a value density (value per joule): a first,
   small-model look at a frame of priority p is worth p x (expected accuracy); an
   escalation to the large model (only when the small one was unsure) is worth
   p x (accuracy gain). The scheduler finds the lowest density threshold at which the
   queued work plus the frames the imaging plan will still take over the horizon fit
   the projection; work below the threshold waits (energy may be free later, when the
   battery is full) or is dropped when its deadline would pass first.
3. Fill this tick: highest density first (earliest deadline breaks ties) within the
   tick's compute time and the energy that can be spent now without breaking the
   projection; choose the power mode with the best value net of the energy price (the
   fast mode when energy is free and work is waiting, the efficient one otherwise).

>>> cfg = SchedulerConfig(
...     battery_capacity_wh=40.0, bus_power_w=2.0, radio_power_w=6.0, array_power_w=9.0,
...     modes=(PowerMode("powersave", 2.5), PowerMode("performance", 5.0)),
...     profile=CascadeProfile(small_latency_s={"powersave": 6.0, "performance": 3.5},
...                            large_latency_s={"powersave": 24.0, "performance": 13.0}))
>>> sched = PowerScheduler(cfg)
>>> sched.config.floor_wh
28.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from fsw.power.astro import FloatArray
from fsw.power.errors import SchedulerConfigError
from fsw.power.predictor import Forecast

Variant = Literal["small", "large"]
WH_J = 3600.0
#: Orbits beyond the pricing horizon over which the payload-off spacecraft, at its normal
#: bus load, must still keep above the floor (see :meth:`PowerScheduler._horizon`). The
#: extra loads come in a daily pattern: passes cluster (a polar station sees ~10 of the
#: ~15 daily orbits of a LEO satellite, none for the rest of the day), and a spacecraft
#: that is barely power-positive can be power-negative for several orbits in a row. Energy
#: spent before such a stretch is only missed when the look-ahead ends before it (issue 14:
#: with two orbits, ``random-037`` and ``random-039`` of seed 918273 broke their floors
#: 2.9-4.5 orbits after the payload spent the energy). Horizon (2) plus 14 orbits is one
#: day in LEO (90-100 min orbits), one full cycle of the pass pattern.
SURVIVAL_ORBITS = 14.0


@dataclass(slots=True, frozen=True)
class PowerMode:
    """A compute power mode: whole-board power while inferring (e.g. Jetson 7 W / 15 W,
    a Raspberry Pi's powersave / performance governor)."""

    name: str
    power_w: float

    def __post_init__(self) -> None:
        if not self.name or not (0.0 < self.power_w < 1000.0):
            raise SchedulerConfigError(
                f"power mode {self.name!r}: power {self.power_w} W must be in (0, 1000)"
            )


@dataclass(slots=True, frozen=True)
class CascadeProfile:
    """Measured behaviour of the small/large model cascade on this board.

    Latencies are seconds per job (one frame) in each power mode, measured on board.
    Accuracies are the expected share of correct keep/discard calls: the small model on
    frames it is sure about and on frames it is unsure about, and the large model on the
    frames the small one was unsure about. ``unsure_rate`` is the expected share of
    small-model results that are unsure (the scheduler's prior; measured on board).
    """

    small_latency_s: Mapping[str, float]
    large_latency_s: Mapping[str, float]
    accuracy_sure: float = 0.97
    accuracy_unsure: float = 0.70
    accuracy_large: float = 0.92
    unsure_rate: float = 0.25

    def __post_init__(self) -> None:
        for label, table in (("small", self.small_latency_s), ("large", self.large_latency_s)):
            if not table:
                raise SchedulerConfigError(f"no {label}-model latencies given")
            for mode, lat in table.items():
                if not (0.0 < lat < 86400.0):
                    raise SchedulerConfigError(
                        f"{label}-model latency in mode {mode!r} is {lat} s: must be > 0"
                    )
        for name in ("accuracy_sure", "accuracy_unsure", "accuracy_large", "unsure_rate"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise SchedulerConfigError(f"{name} = {v} must be within 0..1")

    def latency_s(self, variant: Variant, mode: str) -> float:
        table = self.small_latency_s if variant == "small" else self.large_latency_s
        try:
            return float(table[mode])
        except KeyError:
            raise SchedulerConfigError(
                f"no {variant}-model latency measured for mode {mode!r}"
            ) from None

    @property
    def small_value(self) -> float:
        """Expected accuracy of a small-model look at a frame (priority 1)."""
        u = self.unsure_rate
        return (1.0 - u) * self.accuracy_sure + u * self.accuracy_unsure

    @property
    def escalation_value(self) -> float:
        """Accuracy gained by running the large model on an unsure frame (priority 1)."""
        return max(0.0, self.accuracy_large - self.accuracy_unsure)


@dataclass(slots=True, frozen=True)
class SchedulerConfig:
    """Everything the scheduler knows about the spacecraft (all uplinkable parameters).

    ``array_power_w`` is the nominal full-sun array output for the attitude flown
    (sun-pointing, or the tumbling average); the scheduler corrects it from telemetry.
    ``floor_soc`` is the lowest state of charge allowed (0.7 = 30 % depth-of-discharge).
    """

    battery_capacity_wh: float
    bus_power_w: float
    radio_power_w: float
    array_power_w: float
    modes: tuple[PowerMode, ...]
    profile: CascadeProfile
    floor_soc: float = 0.7
    margin_wh: float = 0.0
    safe_power_w: float | None = None
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    tick_s: float = 60.0
    horizon_orbits: float = 2.0
    survival_orbits: float = SURVIVAL_ORBITS
    solar_smoothing: float = 0.3

    def __post_init__(self) -> None:
        self._check_energy()
        self._check_modes()
        if not self.tick_s > 0.0 or not self.horizon_orbits > 0.0:
            raise SchedulerConfigError("tick_s and horizon_orbits must be > 0")
        if not 0.0 <= self.survival_orbits <= 30.0:
            raise SchedulerConfigError("survival_orbits must be within 0..30")
        if not 0.0 < self.solar_smoothing <= 1.0:
            raise SchedulerConfigError("solar_smoothing must be in (0, 1]")

    def _check_energy(self) -> None:
        if not self.battery_capacity_wh > 0.0:
            raise SchedulerConfigError("battery capacity must be > 0 Wh")
        if not 0.0 <= self.floor_soc < 1.0:
            raise SchedulerConfigError(f"floor_soc {self.floor_soc} must be in 0..1")
        if self.floor_wh >= self.battery_capacity_wh:
            raise SchedulerConfigError("floor plus margin leaves no usable battery energy")
        for name in ("bus_power_w", "radio_power_w", "array_power_w", "margin_wh"):
            if not getattr(self, name) >= 0.0:
                raise SchedulerConfigError(f"{name} must be >= 0")
        for name in ("charge_efficiency", "discharge_efficiency"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise SchedulerConfigError(f"{name} must be in (0, 1]")

    def _check_modes(self) -> None:
        if not self.modes:
            raise SchedulerConfigError("at least one power mode is needed")
        if len({m.name for m in self.modes}) != len(self.modes):
            raise SchedulerConfigError("power mode names must be unique")
        for m in self.modes:
            self.profile.latency_s("small", m.name)
            self.profile.latency_s("large", m.name)

    @property
    def floor_wh(self) -> float:
        return self.floor_soc * self.battery_capacity_wh + self.margin_wh

    def mode(self, name: str) -> PowerMode:
        for m in self.modes:
            if m.name == name:
                return m
        raise SchedulerConfigError(f"unknown power mode {name!r}")

    def energy_j(self, variant: Variant, mode: str) -> float:
        """Energy of one job: measured latency x mode power."""
        return self.profile.latency_s(variant, mode) * self.mode(mode).power_w

    def efficient_mode(self, variant: Variant) -> PowerMode:
        """The mode with the least energy per job for ``variant``."""
        return min(self.modes, key=lambda m: self.energy_j(variant, m.name))


@dataclass(slots=True, frozen=True)
class Job:
    """One queued inference job (a camera frame).

    ``stage`` is 'small' for a frame not yet looked at and 'large' for one the small
    model was unsure about (the flight component re-queues it after the small run).
    """

    job_id: int
    captured_tai: float
    deadline_tai: float
    priority: float = 1.0
    stage: Variant = "small"


@dataclass(slots=True, frozen=True)
class RunOrder:
    """Run ``job_id`` now with ``variant`` in ``mode``; latency and energy as budgeted."""

    job_id: int
    variant: Variant
    mode: str
    latency_s: float
    energy_j: float


@dataclass(slots=True, frozen=True)
class Decision:
    """What to do this tick and why.

    ``reserve_wh`` is the battery energy above the floor held back for the coming
    eclipses and passes; ``budget_wh`` what could be spent now without breaking the
    projection; ``price`` the value-per-joule threshold work had to clear (0 when energy
    is free); ``reason`` one line for telemetry.
    """

    now_tai: float
    mode: str | None
    run: tuple[RunOrder, ...]
    drop: tuple[int, ...]
    reserve_wh: float
    budget_wh: float
    price: float
    energy_j: float
    reason: str

    @property
    def run_ids(self) -> tuple[int, ...]:
        return tuple(r.job_id for r in self.run)


@dataclass(slots=True)
class _Work:
    job: Job
    variant: Variant
    value: float
    density: float


@dataclass(slots=True, frozen=True)
class _Costs:
    """Energy (J) and time (s) of one job of each variant in its efficient mode."""

    small_j: float
    large_j: float
    small_s: float
    large_s: float

    def density(self, prof: CascadeProfile, variant: Variant, priority: float) -> float:
        """Value per joule of a job."""
        if variant == "small":
            return priority * prof.small_value / self.small_j
        return priority * prof.escalation_value / self.large_j


@dataclass(slots=True, frozen=True)
class _Horizon:
    """The projection from now: the battery now, the forecast sample holding now,
    sample durations (the first one partial), the net power without payload work and the
    energy the battery must hold at each sample (floor; plus one SAFE eclipse at the end)."""

    e0_wh: float
    i0: int
    dur_s: FloatArray
    base_w: FloatArray
    required_wh: FloatArray


@dataclass(slots=True, frozen=True)
class _Levels:
    """Candidate prices (value per joule, ascending, the last one inf) and, per price,
    the seconds and joules of work arriving per sample that clear it: future frames only
    (``fut_*``) and with the queued work added to the first sample (``all_*``)."""

    prices: FloatArray
    fut_s: FloatArray
    fut_j: FloatArray
    all_s: FloatArray
    all_j: FloatArray


def battery_delta_wh(
    net_w: FloatArray, dur_s: FloatArray, eta_c: float, eta_d: float
) -> FloatArray:
    """Battery energy change (Wh) for a bus-side net power held for ``dur_s``."""
    return np.where(net_w >= 0.0, net_w * eta_c, net_w / eta_d) * dur_s / WH_J


def served_energy_j(
    arrive_s: FloatArray, arrive_j: FloatArray, capacity_s: FloatArray
) -> FloatArray:
    """Energy (J) of the work actually served per sample when work arriving (seconds of
    compute, joules) queues for one accelerator with ``capacity_s`` seconds per sample.

    Rows are independent (one per price level). Backlog B_k = S_k - min(0, min_j S_j)
    with S the cumulative (arrivals - capacity): the queue's Lindley recursion, so the
    projection never assumes more compute than there is time for.
    """
    s = np.cumsum(arrive_s - capacity_s[None, :], axis=-1)
    backlog = s - np.minimum(0.0, np.minimum.accumulate(s, axis=-1))
    prev = np.concatenate([np.zeros((*backlog.shape[:-1], 1)), backlog[..., :-1]], axis=-1)
    served_s = arrive_s + prev - backlog
    total_s = arrive_s.sum(axis=-1, keepdims=True)
    joules_per_s = np.divide(
        arrive_j.sum(axis=-1, keepdims=True), total_s, out=np.zeros_like(total_s), where=total_s > 0
    )
    return np.asarray(served_s * joules_per_s, dtype=np.float64)


def clamped_trajectory(
    e0_wh: float, delta_wh: FloatArray, e_max_wh: float
) -> tuple[FloatArray, FloatArray]:
    """Battery energy after each step with a full battery spilling the excess.

    Returns (energy, headroom_to_full_min) where the second is, for each step, the
    running minimum of ``e_max - cumulative`` used by the spend-now bound. Works on
    (..., K) arrays; exact for piecewise-constant steps (Lindley recursion).
    """
    cum = np.cumsum(delta_wh, axis=-1)
    m = np.minimum.accumulate(e_max_wh - cum, axis=-1)
    energy = cum + np.minimum(e0_wh, m)
    return energy, m


class PowerScheduler:
    """Decides, each tick, which inference jobs run, with which model and power mode.

    Never lets the predicted battery fall below the floor; see the module docstring.
    """

    __slots__ = ("_array_w", "config")

    def __init__(self, config: SchedulerConfig) -> None:
        self.config = config
        self._array_w = config.array_power_w

    @property
    def array_power_estimate_w(self) -> float:
        """Current estimate of the array's full-sun output (W)."""
        return self._array_w

    def _learn_array(self, forecast: Forecast, now_tai: float, solar_w: float) -> None:
        k = forecast.index(now_tai)
        frac = float(forecast.sun_fraction[k])
        if frac > 0.98 and math.isfinite(solar_w) and solar_w >= 0.0:
            measured = solar_w / frac
            # Pessimistic: less power than believed is believed at once (the battery is at
            # stake); more is trusted gradually.
            if measured < self._array_w:
                self._array_w = measured
            else:
                a = self.config.solar_smoothing
                self._array_w = (1.0 - a) * self._array_w + a * measured

    def decide(
        self,
        now_tai: float,
        soc: float,
        battery_wh: float | None,
        queue: Sequence[Job],
        forecast: Forecast,
        *,
        solar_w: float | None = None,
    ) -> Decision:
        """Choose this tick's work. ``battery_wh`` may be None (derived from ``soc``).

        Jobs whose deadline has passed, or will pass before the next tick without
        being run, are listed in ``drop``. A forecast that does not cover ``now_tai``
        gives a decision that runs nothing (reason says to predict again).
        """
        cfg = self.config
        if battery_wh is None or not math.isfinite(battery_wh):
            battery_wh = soc * cfg.battery_capacity_wh
        e0 = min(max(float(battery_wh), 0.0), cfg.battery_capacity_wh)
        expired = tuple(j.job_id for j in queue if j.deadline_tai <= now_tai)
        live = [j for j in queue if j.deadline_tai > now_tai]
        if not forecast.covers(now_tai):
            reason = "prediction does not cover now: predict again"
            return Decision(now_tai, None, (), expired, 0.0, 0.0, math.inf, 0.0, reason)
        if solar_w is not None:
            self._learn_array(forecast, now_tai, solar_w)
        hz = self._horizon(now_tai, e0, forecast)  # 1. the projection's samples
        costs = self._costs()  # 2. work classes and their value densities
        work = self._work(live, costs)
        levels = self._levels(now_tai, work, costs, hz, forecast)  # 3. the price
        reserve_wh = self._reserve_wh(hz)
        priced = self._price(levels, hz)
        if priced is None:
            drops = expired + self._doomed(live, now_tai, cfg.tick_s, set())
            reason = "battery below the floor plus reserve: payload off"
            return Decision(now_tai, None, (), drops, reserve_wh, 0.0, math.inf, 0.0, reason)
        price, free, plan_s, plan_j = priced
        budget_wh, net0 = self._budget(plan_s, plan_j, hz)  # 4. what can be spent now
        # 5. Fill the tick: candidates above the price, best density then earliest deadline.
        cands = sorted(
            (w for w in work if w.density >= price),
            key=lambda w: (-w.density, w.job.deadline_tai, w.job.job_id),
        )
        # Just under the price, so that the marginal class (density == price) still scores > 0.
        eff_price = 0.0 if free else price * (1.0 - 1e-6)
        modes = self._modes_worth_trying(now_tai, cands, free)
        mode, orders = self._best_fill(modes, cands, eff_price, budget_wh, net0, hz.dur_s)
        drops = expired + self._doomed(live, now_tai, cfg.tick_s, {o.job_id for o in orders})
        energy_j = sum(o.energy_j for o in orders)
        reason = _reason(orders, mode, free, cands, work)
        return Decision(
            now_tai, mode, tuple(orders), drops, reserve_wh, budget_wh, eff_price, energy_j, reason
        )

    # ------------------------------------------------------------ 1. the horizon
    def _horizon(self, now_tai: float, e0_wh: float, forecast: Forecast) -> _Horizon:
        """Samples from now over ``horizon_orbits``, payload-free power and the floor.

        The battery must hold the floor at every sample and, at the horizon's end, the
        energy from which the payload-off spacecraft at its *normal* bus load (never the
        SAFE-mode load: SAFE is what a floor violation trips) flies the following
        ``survival_orbits`` of the prediction, to the end of the eclipse then under way,
        above the floor (:func:`survival_energy_wh`).
        """
        cfg = self.config
        step = forecast.step_s
        i0 = forecast.index(now_tai)
        n = max(1, math.ceil(cfg.horizon_orbits * forecast.period_s / step))
        i1 = min(len(forecast.sun_fraction), i0 + n)
        i2 = self._survival_end(forecast, i1)
        dur = np.full(i1 - i0, step)
        dur[0] = forecast.start_tai + (i0 + 1) * step - now_tai
        all_w = (
            self._array_w * forecast.sun_fraction[i0:i2]
            - cfg.bus_power_w
            - cfg.radio_power_w * forecast.pass_fraction[i0:i2]
        )
        base_w = all_w[: i1 - i0]
        tail = self._delta_wh(all_w[i1 - i0 :], np.full(i2 - i1, step))
        required = np.full(i1 - i0, cfg.floor_wh)
        required[-1] = survival_energy_wh(
            tail, np.full(i2 - i1 + 1, cfg.floor_wh), cfg.battery_capacity_wh
        )
        return _Horizon(e0_wh, i0, dur, base_w, required)

    def _survival_end(self, forecast: Forecast, i1: int) -> int:
        """Sample index ending the survival look-ahead: ``survival_orbits`` after ``i1``,
        moved on to the end of an eclipse under way then (within the prediction)."""
        n_all = len(forecast.sun_fraction)
        step = forecast.step_s
        i2 = min(n_all, i1 + math.ceil(self.config.survival_orbits * forecast.period_s / step))
        t2 = forecast.start_tai + i2 * step
        for e in forecast.eclipses:
            if e.start_tai < t2 < e.end_tai:
                i2 = min(n_all, math.ceil((e.end_tai - forecast.start_tai) / step))
                break
        return max(i1, i2)

    def _delta_wh(self, net_w: FloatArray, dur_s: FloatArray) -> FloatArray:
        cfg = self.config
        return battery_delta_wh(net_w, dur_s, cfg.charge_efficiency, cfg.discharge_efficiency)

    def _reserve_wh(self, hz: _Horizon) -> float:
        """Survival reserve: what the battery above the floor must keep with no payload work."""
        cfg = self.config
        idle_delta = self._delta_wh(hz.base_w, hz.dur_s)
        idle_room = spendable_now_wh(hz.e0_wh, idle_delta, hz.required_wh, cfg.battery_capacity_wh)
        return max(0.0, hz.e0_wh - cfg.floor_wh - max(0.0, idle_room))

    # ------------------------------------------------------------ 2. work and its value
    def _costs(self) -> _Costs:
        """Energy and time of one job of each variant, in that variant's efficient mode."""
        cfg = self.config
        small = cfg.efficient_mode("small").name
        large = cfg.efficient_mode("large").name
        return _Costs(
            small_j=cfg.energy_j("small", small),
            large_j=cfg.energy_j("large", large),
            small_s=cfg.profile.latency_s("small", small),
            large_s=cfg.profile.latency_s("large", large),
        )

    def _work(self, live: Sequence[Job], costs: _Costs) -> list[_Work]:
        prof = self.config.profile
        work = []
        for j in live:
            value = j.priority * (prof.small_value if j.stage == "small" else prof.escalation_value)
            work.append(_Work(j, j.stage, value, costs.density(prof, j.stage, j.priority)))
        return work

    # ------------------------------------------------------------ 3. the energy price
    def _levels(
        self,
        now_tai: float,
        work: Sequence[_Work],
        costs: _Costs,
        hz: _Horizon,
        forecast: Forecast,
    ) -> _Levels:
        """The candidate prices and, for each, the work (seconds and joules arriving per
        sample) that clears it: the frames the imaging plan will take, and the queue."""
        prof = self.config.profile
        n_k = len(hz.dur_s)
        t_end = now_tai + float(hz.dur_s.sum())
        fut = (forecast.frame_times_tai > now_tai) & (forecast.frame_times_tai < t_end)
        f_t = forecast.frame_times_tai[fut]
        f_p = forecast.frame_priorities[fut]
        f_k = np.clip(
            ((f_t - forecast.start_tai) // forecast.step_s).astype(np.int64) - hz.i0, 0, n_k - 1
        )
        q_d = np.array([w.density for w in work])
        q_c = np.array([costs.small_j if w.variant == "small" else costs.large_j for w in work])
        q_s = np.array([costs.small_s if w.variant == "small" else costs.large_s for w in work])
        f_ds = f_p * prof.small_value / costs.small_j
        f_de = f_p * prof.escalation_value / costs.large_j
        prices = np.unique(np.concatenate([q_d, f_ds, f_de, [np.inf]]))  # ascending
        lv = prices[:, None]
        fut_s = np.zeros((len(prices), n_k))
        fut_j = np.zeros((len(prices), n_k))
        if f_t.size:
            u = prof.unsure_rate
            run_s = f_ds[None, :] >= lv
            run_e = f_de[None, :] >= lv
            per_s = run_s * costs.small_s + run_e * (u * costs.large_s)
            per_j = run_s * costs.small_j + run_e * (u * costs.large_j)
            for li in range(len(prices)):
                fut_s[li] = np.bincount(f_k, weights=per_s[li], minlength=n_k)
                fut_j[li] = np.bincount(f_k, weights=per_j[li], minlength=n_k)
        all_s, all_j = fut_s.copy(), fut_j.copy()
        if work:
            all_s[:, 0] += ((q_d[None, :] >= lv) * q_s[None, :]).sum(axis=1)
            all_j[:, 0] += ((q_d[None, :] >= lv) * q_c[None, :]).sum(axis=1)
        return _Levels(prices, fut_s, fut_j, all_s, all_j)

    def _price(
        self, levels: _Levels, hz: _Horizon
    ) -> tuple[float, bool, FloatArray, FloatArray] | None:
        """The lowest price whose work keeps the projected battery above what is required:
        (price, energy is free, future seconds and joules planned per sample); None when
        not even the payload off does."""
        cfg = self.config
        # Served at most one sample's worth of compute time per sample.
        demand = served_energy_j(levels.all_s, levels.all_j, hz.dur_s)
        delta = self._delta_wh(hz.base_w[None, :] - demand / hz.dur_s[None, :], hz.dur_s[None, :])
        energy, _m = clamped_trajectory(hz.e0_wh, delta, cfg.battery_capacity_wh)
        feasible = np.all(energy >= hz.required_wh[None, :] - 1e-9, axis=1)
        if not feasible[-1]:
            return None
        li = int(np.flatnonzero(feasible)[0])
        price = float(levels.prices[li])
        plan_s, plan_j = levels.fut_s[li], levels.fut_j[li]
        if li > 0:
            # The next class down does not fit whole: find the share of it that does.
            share = self._marginal_share(levels, li, hz)
            if share > 0.0:
                price = float(levels.prices[li - 1])
                plan_s = levels.fut_s[li] + share * (levels.fut_s[li - 1] - levels.fut_s[li])
                plan_j = levels.fut_j[li] + share * (levels.fut_j[li - 1] - levels.fut_j[li])
        return price, li == 0, plan_s, plan_j

    def _marginal_share(self, levels: _Levels, li: int, hz: _Horizon) -> float:
        """Share (bisected to 1/1024) of the class between prices ``li - 1`` and ``li``
        that still fits the projection."""
        all_s, all_j = levels.all_s, levels.all_j

        def fits(share: float) -> bool:
            arr_s = all_s[li] + share * (all_s[li - 1] - all_s[li])
            arr_j = all_j[li] + share * (all_j[li - 1] - all_j[li])
            dem = served_energy_j(arr_s[None, :], arr_j[None, :], hz.dur_s)[0]
            d = self._delta_wh(hz.base_w - dem / hz.dur_s, hz.dur_s)
            e, _ = clamped_trajectory(hz.e0_wh, d, self.config.battery_capacity_wh)
            return bool(np.all(e >= hz.required_wh - 1e-9))

        lo, hi = 0.0, 1.0
        for _ in range(10):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if fits(mid) else (lo, mid)
        return lo

    # ------------------------------------------------------------ 4. the budget now
    def _budget(self, plan_s: FloatArray, plan_j: FloatArray, hz: _Horizon) -> tuple[float, float]:
        """What can be spent now given the future work planned at the price, and the net
        power of the first sample with that work."""
        fut_only = served_energy_j(plan_s[None, :], plan_j[None, :], hz.dur_s)[0]
        plan_delta = self._delta_wh(hz.base_w - fut_only / hz.dur_s, hz.dur_s)
        room = spendable_now_wh(
            hz.e0_wh, plan_delta, hz.required_wh, self.config.battery_capacity_wh
        )
        net0 = float(hz.base_w[0] - fut_only[0] / hz.dur_s[0])
        return max(0.0, room), net0

    def _battery_cost_wh(self, net0_w: float, dur_s: FloatArray, energy_j: float) -> float:
        """Battery energy that spending ``energy_j`` in the first sample costs."""
        first = dur_s[:1]
        before = self._delta_wh(np.array([net0_w]), first)[0]
        after = self._delta_wh(np.array([net0_w - energy_j / dur_s[0]]), first)[0]
        return float(before - after)

    # ------------------------------------------------------------ 5. this tick
    def _modes_worth_trying(
        self, now_tai: float, cands: Sequence[_Work], free: bool
    ) -> tuple[PowerMode, ...]:
        """Every mode, unless energy has a price and the most efficient mode for the
        waiting work meets all its deadlines (a faster, hungrier mode would not pay)."""
        cfg = self.config
        if free or not cands:
            return cfg.modes
        prof = cfg.profile
        is_small = np.array([w.variant == "small" for w in cands])
        due = np.array([w.job.deadline_tai for w in cands])
        n_s = int(is_small.sum())
        n_l = len(cands) - n_s
        eff = min(
            cfg.modes,
            key=lambda m: n_s * cfg.energy_j("small", m.name) + n_l * cfg.energy_j("large", m.name),
        )
        lat_eff = np.where(
            is_small, prof.latency_s("small", eff.name), prof.latency_s("large", eff.name)
        )
        order = np.argsort(due, kind="stable")  # earliest deadline first
        if bool(np.all(np.cumsum(lat_eff[order]) <= due[order] - now_tai)):
            return (eff,)
        return cfg.modes

    def _best_fill(
        self,
        modes: Sequence[PowerMode],
        cands: Sequence[_Work],
        eff_price: float,
        budget_wh: float,
        net0_w: float,
        dur_s: FloatArray,
    ) -> tuple[str | None, list[RunOrder]]:
        """The mode whose fill of the tick has the best value net of the energy price."""
        best: tuple[float, str | None, list[RunOrder]] = (0.0, None, [])
        for m in modes:
            score, orders = self._fill(m, cands, eff_price, budget_wh, net0_w, dur_s)
            if orders and score > best[0] + 1e-12:
                best = (score, m.name, orders)
        return best[1], best[2]

    def _fill(
        self,
        m: PowerMode,
        cands: Sequence[_Work],
        eff_price: float,
        budget_wh: float,
        net0_w: float,
        dur_s: FloatArray,
    ) -> tuple[float, list[RunOrder]]:
        """Candidates in order within the tick's compute time and the energy budget."""
        prof, tick = self.config.profile, self.config.tick_s
        orders: list[RunOrder] = []
        busy_s = spent_j = score = 0.0
        lat_of = {v: prof.latency_s(v, m.name) for v in ("small", "large")}
        shortest = min(lat_of.values())
        for w in cands:
            if busy_s + shortest > tick + 1e-9:
                break
            lat = lat_of[w.variant]
            e_j = lat * m.power_w
            if busy_s + lat > tick + 1e-9:
                continue
            if self._battery_cost_wh(net0_w, dur_s, spent_j + e_j) > budget_wh + 1e-12:
                continue
            busy_s += lat
            spent_j += e_j
            score += w.value - eff_price * e_j
            orders.append(RunOrder(w.job.job_id, w.variant, m.name, lat, e_j))
        return score, orders

    @staticmethod
    def _doomed(
        live: Sequence[Job], now_tai: float, tick_s: float, run_ids: set[int]
    ) -> tuple[int, ...]:
        """Jobs that cannot wait for the next tick and are not run now."""
        return tuple(
            j.job_id for j in live if j.deadline_tai <= now_tai + tick_s and j.job_id not in run_ids
        )


def _reason(
    orders: Sequence[RunOrder],
    mode: str | None,
    free: bool,
    cands: Sequence[_Work],
    work: Sequence[_Work],
) -> str:
    """One line for telemetry: what the decision does, or why it runs nothing."""
    if orders:
        return f"run {len(orders)} in {mode}" + (" (energy free)" if free else "")
    if cands:
        return "work waits: no compute time or energy budget this tick"
    if work:
        return "queued work below the energy price: waiting"
    return "queue empty"


def survival_energy_wh(delta_wh: FloatArray, required_wh: FloatArray, e_max_wh: float) -> float:
    """Least battery energy now from which the steps ``delta_wh`` (a full battery
    spilling) keep the energy at or above ``required_wh``: ``required_wh[0]`` now and
    ``required_wh[k + 1]`` after step k. ``e_max_wh`` when no start suffices (the battery
    fills up and still falls short later), so the caller holds everything back.

    >>> survival_energy_wh(np.array([-1.0, 2.0, -3.0]), np.array([5.0, 5.0, 5.0, 6.0]), 10.0)
    8.0
    >>> survival_energy_wh(np.array([5.0, -10.0]), np.array([1.0, 1.0, 1.0]), 10.0)
    10.0
    """
    req_now = float(required_wh[0])
    if not len(delta_wh):
        return min(e_max_wh, req_now)
    req = required_wh[1:]
    cum = np.cumsum(delta_wh)
    m = np.minimum.accumulate(e_max_wh - cum)
    if bool(np.any(cum + m < req - 1e-9)):
        return e_max_wh
    return float(min(e_max_wh, max(req_now, float(np.max(req - cum)))))


def spendable_now_wh(
    e0_wh: float, delta_wh: FloatArray, required_wh: FloatArray, e_max_wh: float
) -> float:
    """Largest battery draw now that keeps the clamped trajectory above ``required_wh``.

    With a draw x taken first, energy_k(x) = C_k + min(e0 - x, M_k) where C is the
    cumulative change and M_k = min over j <= k of (e_max - C_j). Step k allows
    x <= e0 + C_k - R_k, or any x <= e0 - M_k when the battery fills up before k
    anyway (the draw is absorbed by what would have spilled). Returns -inf when even
    x = 0 breaks the floor somewhere.

    >>> spendable_now_wh(30.0, np.array([-1.0, -1.0]), np.array([25.0, 25.0]), 40.0)
    3.0
    """
    cum = np.cumsum(delta_wh)
    m = np.minimum.accumulate(e_max_wh - cum)
    ok = cum + np.minimum(e0_wh, m) >= required_wh - 1e-9
    if not bool(ok.all()):
        return -math.inf
    x = np.maximum(e0_wh + cum - required_wh, e0_wh - m)
    return float(x.min())
