"""Power-aware inference scheduling: which jobs to run, with which model, in which mode.

:class:`PowerScheduler` is a pure decision object for a flight component: every call to
:meth:`PowerScheduler.decide` gets the time, the battery state, the job queue and an
:class:`~fsw.power.predictor.Prediction`, and returns a :class:`Decision`. It never reads
a clock; the only state it keeps is a running estimate of the solar array's full-sun
output, learned from the ``solar_w`` telemetry passed in (so degraded panels are noticed
after one sunlit tick).

How it decides (details in docs/components/power-scheduler.md):

1. Project the battery over the next orbits (default two) without payload work: solar
   input from the predicted sunlit fraction, bus load, radio during predicted passes,
   charge/discharge efficiencies, and a full battery that spills. The battery must stay
   at or above the floor (``floor_soc`` of capacity plus ``margin_wh``) everywhere and,
   at the end, hold enough to ride out one more eclipse in SAFE mode.
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
from fsw.power.predictor import Prediction

Variant = Literal["small", "large"]
WH_J = 3600.0


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
    solar_smoothing: float = 0.3

    def __post_init__(self) -> None:
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
        if not self.modes:
            raise SchedulerConfigError("at least one power mode is needed")
        if len({m.name for m in self.modes}) != len(self.modes):
            raise SchedulerConfigError("power mode names must be unique")
        for m in self.modes:
            self.profile.latency_s("small", m.name)
            self.profile.latency_s("large", m.name)
        if not self.tick_s > 0.0 or not self.horizon_orbits > 0.0:
            raise SchedulerConfigError("tick_s and horizon_orbits must be > 0")
        if not 0.0 < self.solar_smoothing <= 1.0:
            raise SchedulerConfigError("solar_smoothing must be in (0, 1]")

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

    def _learn_array(self, prediction: Prediction, now_tai: float, solar_w: float) -> None:
        k = prediction.index(now_tai)
        frac = float(prediction.sun_fraction[k])
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
        prediction: Prediction,
        *,
        solar_w: float | None = None,
    ) -> Decision:
        """Choose this tick's work. ``battery_wh`` may be None (derived from ``soc``).

        Jobs whose deadline has passed, or will pass before the next tick without
        being run, are listed in ``drop``. A prediction that does not cover ``now_tai``
        gives a decision that runs nothing (reason says to predict again).
        """
        cfg = self.config
        if battery_wh is None or not math.isfinite(battery_wh):
            battery_wh = soc * cfg.battery_capacity_wh
        e0 = min(max(float(battery_wh), 0.0), cfg.battery_capacity_wh)
        tick = cfg.tick_s
        expired = tuple(j.job_id for j in queue if j.deadline_tai <= now_tai)
        live = [j for j in queue if j.deadline_tai > now_tai]
        if not prediction.covers(now_tai):
            return Decision(
                now_tai,
                None,
                (),
                expired,
                0.0,
                0.0,
                math.inf,
                0.0,
                "prediction does not cover now: predict again",
            )
        if solar_w is not None:
            self._learn_array(prediction, now_tai, solar_w)

        # 1. Horizon samples from now.
        step = prediction.step_s
        i0 = prediction.index(now_tai)
        n = max(1, math.ceil(cfg.horizon_orbits * prediction.period_s / step))
        i1 = min(len(prediction.sun_fraction), i0 + n)
        dur = np.full(i1 - i0, step)
        dur[0] = prediction.start_tai + (i0 + 1) * step - now_tai
        sun = prediction.sun_fraction[i0:i1]
        base_w = (
            self._array_w * sun
            - cfg.bus_power_w
            - cfg.radio_power_w * prediction.pass_fraction[i0:i1]
        )
        eta_c, eta_d = cfg.charge_efficiency, cfg.discharge_efficiency
        floor = cfg.floor_wh
        safe_w = cfg.bus_power_w if cfg.safe_power_w is None else cfg.safe_power_w
        longest_eclipse_s = max((e.duration_s for e in prediction.eclipses), default=0.0)
        required = np.full(i1 - i0, floor)
        required[-1] += longest_eclipse_s * safe_w / eta_d / WH_J

        # 2. Work classes and their value densities (at each variant's efficient mode).
        prof = cfg.profile
        c_small = cfg.energy_j("small", cfg.efficient_mode("small").name)
        c_large = cfg.energy_j("large", cfg.efficient_mode("large").name)
        t_small = prof.latency_s("small", cfg.efficient_mode("small").name)
        t_large = prof.latency_s("large", cfg.efficient_mode("large").name)

        def density(variant: Variant, priority: float) -> float:
            if variant == "small":
                return priority * prof.small_value / c_small
            return priority * prof.escalation_value / c_large

        work = []
        for j in live:
            value = j.priority * (prof.small_value if j.stage == "small" else prof.escalation_value)
            work.append(_Work(j, j.stage, value, density(j.stage, j.priority)))
        t_end = now_tai + float(dur.sum())
        fut = (prediction.frame_times_tai > now_tai) & (prediction.frame_times_tai < t_end)
        f_t = prediction.frame_times_tai[fut]
        f_p = prediction.frame_priorities[fut]
        f_k = np.clip(((f_t - prediction.start_tai) // step).astype(np.int64) - i0, 0, i1 - i0 - 1)
        q_d = np.array([w.density for w in work])
        q_c = np.array([c_small if w.variant == "small" else c_large for w in work])
        q_s = np.array([t_small if w.variant == "small" else t_large for w in work])
        f_ds = f_p * prof.small_value / c_small
        f_de = f_p * prof.escalation_value / c_large
        levels = np.unique(np.concatenate([q_d, f_ds, f_de, [np.inf]]))  # ascending

        # 3. Work per level (seconds and joules arriving per sample), served at most one
        #    sample's worth of compute time per sample, and the projected battery.
        n_lv, n_k = len(levels), i1 - i0
        lv = levels[:, None]
        fut_s = np.zeros((n_lv, n_k))
        fut_j = np.zeros((n_lv, n_k))
        if f_t.size:
            u = prof.unsure_rate
            run_s = f_ds[None, :] >= lv
            run_e = f_de[None, :] >= lv
            per_s = run_s * t_small + run_e * (u * t_large)
            per_j = run_s * c_small + run_e * (u * c_large)
            for li in range(n_lv):
                fut_s[li] = np.bincount(f_k, weights=per_s[li], minlength=n_k)
                fut_j[li] = np.bincount(f_k, weights=per_j[li], minlength=n_k)
        all_s, all_j = fut_s.copy(), fut_j.copy()
        if work:
            all_s[:, 0] += ((q_d[None, :] >= lv) * q_s[None, :]).sum(axis=1)
            all_j[:, 0] += ((q_d[None, :] >= lv) * q_c[None, :]).sum(axis=1)
        demand = served_energy_j(all_s, all_j, dur)
        delta = battery_delta_wh(
            base_w[None, :] - demand / dur[None, :], dur[None, :], eta_c, eta_d
        )
        energy, _m = clamped_trajectory(e0, delta, cfg.battery_capacity_wh)
        feasible = np.all(energy >= required[None, :] - 1e-9, axis=1)

        # Survival reserve: what the battery above the floor must keep with no payload work.
        idle_delta = battery_delta_wh(base_w, dur, eta_c, eta_d)
        idle_room = spendable_now_wh(e0, idle_delta, required, cfg.battery_capacity_wh)
        reserve_wh = max(0.0, e0 - floor - max(0.0, idle_room))
        if not feasible[-1]:
            return Decision(
                now_tai,
                None,
                (),
                expired + self._doomed(live, now_tai, tick, set()),
                reserve_wh,
                0.0,
                math.inf,
                0.0,
                "battery below the floor plus reserve: payload off",
            )
        li = int(np.flatnonzero(feasible)[0])
        price = float(levels[li])
        free = li == 0
        plan_s, plan_j = fut_s[li], fut_j[li]
        if li > 0:
            # The next class down does not fit whole: find the share of it that does.
            def fits(share: float) -> bool:
                arr_s = all_s[li] + share * (all_s[li - 1] - all_s[li])
                arr_j = all_j[li] + share * (all_j[li - 1] - all_j[li])
                dem = served_energy_j(arr_s[None, :], arr_j[None, :], dur)[0]
                d = battery_delta_wh(base_w - dem / dur, dur, eta_c, eta_d)
                e, _ = clamped_trajectory(e0, d, cfg.battery_capacity_wh)
                return bool(np.all(e >= required - 1e-9))

            lo, hi = 0.0, 1.0
            for _ in range(10):
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if fits(mid) else (lo, mid)
            if lo > 0.0:
                price = float(levels[li - 1])
                plan_s = fut_s[li] + lo * (fut_s[li - 1] - fut_s[li])
                plan_j = fut_j[li] + lo * (fut_j[li - 1] - fut_j[li])

        # 4. What can be spent now, given the future work planned at this price.
        fut_only = served_energy_j(plan_s[None, :], plan_j[None, :], dur)[0]
        plan_delta = battery_delta_wh(base_w - fut_only / dur, dur, eta_c, eta_d)
        budget_wh = max(0.0, spendable_now_wh(e0, plan_delta, required, cfg.battery_capacity_wh))
        net0 = float(base_w[0] - fut_only[0] / dur[0])

        def battery_cost_wh(energy_j: float) -> float:
            before = battery_delta_wh(np.array([net0]), dur[:1], eta_c, eta_d)[0]
            after = battery_delta_wh(np.array([net0 - energy_j / dur[0]]), dur[:1], eta_c, eta_d)[0]
            return float(before - after)

        # 5. Fill the tick: candidates above the price, best density then earliest deadline.
        cands = sorted(
            (w for w in work if w.density >= price),
            key=lambda w: (-w.density, w.job.deadline_tai, w.job.job_id),
        )
        best: tuple[float, str | None, list[RunOrder]] = (0.0, None, [])
        # Just under the price, so that the marginal class (density == price) still scores > 0.
        eff_price = 0.0 if free else price * (1.0 - 1e-6)
        modes = cfg.modes
        if not free and cands:
            # Energy has a price: a faster, hungrier mode only pays if the efficient one
            # cannot get the waiting work done by its deadlines (earliest deadline first).
            is_small = np.array([w.variant == "small" for w in cands])
            due = np.array([w.job.deadline_tai for w in cands])
            n_s = int(is_small.sum())
            n_l = len(cands) - n_s
            eff = min(
                cfg.modes,
                key=lambda m: (
                    n_s * cfg.energy_j("small", m.name) + n_l * cfg.energy_j("large", m.name)
                ),
            )
            lat_eff = np.where(
                is_small, prof.latency_s("small", eff.name), prof.latency_s("large", eff.name)
            )
            order = np.argsort(due, kind="stable")
            if bool(np.all(np.cumsum(lat_eff[order]) <= due[order] - now_tai)):
                modes = (eff,)
        for m in modes:
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
                if battery_cost_wh(spent_j + e_j) > budget_wh + 1e-12:
                    continue
                busy_s += lat
                spent_j += e_j
                score += w.value - eff_price * e_j
                orders.append(RunOrder(w.job.job_id, w.variant, m.name, lat, e_j))
            if orders and score > best[0] + 1e-12:
                best = (score, m.name, orders)
        _score, mode, orders = best
        run_ids = {o.job_id for o in orders}
        drops = expired + self._doomed(live, now_tai, tick, run_ids)
        energy_j = sum(o.energy_j for o in orders)
        if orders:
            reason = f"run {len(orders)} in {mode}" + (" (energy free)" if free else "")
        elif cands:
            reason = "work waits: no compute time or energy budget this tick"
        elif work:
            reason = "queued work below the energy price: waiting"
        else:
            reason = "queue empty"
        return Decision(
            now_tai, mode, tuple(orders), drops, reserve_wh, budget_wh, eff_price, energy_j, reason
        )

    @staticmethod
    def _doomed(
        live: Sequence[Job], now_tai: float, tick_s: float, run_ids: set[int]
    ) -> tuple[int, ...]:
        """Jobs that cannot wait for the next tick and are not run now."""
        return tuple(
            j.job_id for j in live if j.deadline_tai <= now_tai + tick_s and j.job_id not in run_ids
        )


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
