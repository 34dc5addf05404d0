"""The policies the scheduler evaluation flies: Gnomon's scheduler and three baselines.

``gnomon`` (:class:`fsw.power.scheduler.PowerScheduler` with the onboard predictor),
``greedy`` (run whatever is queued, fast mode), ``duty_cycle`` (payload on a fixed share
of each 10-tick period, sized from the orbit-average energy budget), ``sunlit_only`` (run
only in sunlight); all baselines use the cascade and stop when the battery is at the
floor. Every policy answers :meth:`Policy.decide` once a tick with the run orders and the
jobs it drops.

>>> from hil.sim.scenario import load_scenario
>>> [p.name for p in make_policies(load_scenario("sitl-short").scheduler_config())]
['gnomon', 'greedy', 'duty_cycle', 'sunlit_only']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from fsw.power.component import PREDICT_EXTRA_ORBITS, prediction_orbits
from fsw.power.guard import EnergyGuard, GuardConfig
from fsw.power.predictor import Forecast, OrbitPredictor
from fsw.power.scheduler import Job, PowerMode, PowerScheduler, RunOrder, SchedulerConfig
from hil.eval.sched.timeline import FArr, Timeline

POLICIES = ("gnomon", "greedy", "duty_cycle", "sunlit_only")


class Policy(Protocol):
    """What the simulation asks of a policy: reset for a timeline, then one decision a
    tick (run orders that fit the tick, and job ids to drop)."""

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
    """Oldest first, in ``mode``, as many as fit in one tick."""
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
    """The flight scheduler checked by the flight's energy guard, fed by the onboard
    predictor, as the ``power`` component flies them (the scheduler proposes, the guard
    disposes)."""

    name = "gnomon"

    def __init__(self, cfg: SchedulerConfig, guard: GuardConfig | None = None) -> None:
        self.cfg = cfg
        self.guard_config = guard if guard is not None else GuardConfig.from_scheduler(cfg)
        self.sched = PowerScheduler(cfg)
        self.guard = EnergyGuard(self.guard_config)
        self._pred: Forecast | None = None
        self._tl: Timeline | None = None
        self.decisions = 0
        self.reserve_wh: list[float] = []

    def reset(self, tl: Timeline) -> None:
        self.sched = PowerScheduler(self.cfg)
        self.guard = EnergyGuard(self.guard_config)
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
        orbits = prediction_orbits(self.cfg)
        need = now_tai + orbits * self._predictor.period_s + self.cfg.tick_s
        if self._pred is None or self._pred.end_tai < need or not self._pred.covers(now_tai):
            self._pred = self._predictor.predict(
                now_tai,
                (orbits + PREDICT_EXTRA_ORBITS) * self._predictor.period_s,
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
        fc = self._prediction(now_tai)
        d = self.sched.decide(
            now_tai, soc, battery_wh, queue, fc, solar_w=last_solar_w if k > 0 else None
        )
        if k > 0:
            self.guard.learn_solar(fc, now_tai - self.cfg.tick_s, now_tai, last_solar_w)
        verdict = self.guard.review(
            now_tai,
            soc,
            battery_wh,
            d.run,
            fc,
            tle_age_s=now_tai - self._predictor.epoch_tai,
        )
        self.decisions += 1
        self.reserve_wh.append(d.reserve_wh)
        return list(verdict.admitted), d.drop


def make_policies(cfg: SchedulerConfig) -> list[Policy]:
    """One of each policy, all told the same scheduler configuration."""
    return [GnomonPolicy(cfg), GreedyPolicy(cfg), DutyCyclePolicy(cfg), SunlitOnlyPolicy(cfg)]


__all__ = [
    "POLICIES",
    "DutyCyclePolicy",
    "GnomonPolicy",
    "GreedyPolicy",
    "Policy",
    "SunlitOnlyPolicy",
    "make_policies",
]
