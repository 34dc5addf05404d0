"""The energy guard: the scheduler proposes, the guard disposes.

:class:`EnergyGuard` stands outside the optimiser (as cFS's Limit Checker and Health
and Safety stand outside the apps they police). Every scheduling tick it reviews the
:class:`~fsw.power.scheduler.Decision` the scheduler proposed and admits a run order only
if a *worst-case* projection still keeps the battery at or above the floor through the
end of the next eclipse, and still holds the reserve for the pass after it. It shares no
state and no estimate with the scheduler; its projection is deliberately pessimistic:

* the projection runs from now through the end of the next eclipse and through the first
  pass after it (when it comes within an orbit): the reserve for the next pass;
* the battery is what the EPS measures now (``soc``), converted to energy with the
  smaller of the nameplate capacity and the EPS's own (``battery_wh / soc``), less
  ``capacity_margin`` (a faded battery holds less than its label);
* solar input is the guard's own estimate of the full-sun array output: the lowest
  full-sun measurement of the last ``solar_window_s`` (about an orbit; until the first
  one, the platform's nominal output), less ``solar_margin``; none at all inside an
  eclipse widened by ``eclipse_margin_s`` at both ends (penumbra, prediction error), and
  none before the eclipse either when the TLE is older than ``max_tle_age_s`` (a stale
  prediction: the eclipse may come any time);
* the load is the highest bus load (``bus_peak_w``, the real bus, never the SAFE-mode
  load) plus the transmitter through every predicted pass, widened by ``pass_margin_s``;
* the work proposed draws its energy within this tick.

Below a threshold it inhibits the payload, with hysteresis: when even no work at all
leaves the worst-case projection below the floor, nothing runs until the payload-off
margin is back above ``release_wh``. Every refused order is counted with its reason
(:data:`GUARD_REASONS`); the ``power`` component publishes them (telemetry, throttled
events). docs/components/power-guard.md states the guarantee.

>>> from fsw.power.scheduler import CascadeProfile, PowerMode, SchedulerConfig
>>> cfg = SchedulerConfig(
...     battery_capacity_wh=40.0, bus_power_w=2.0, radio_power_w=6.0, array_power_w=9.0,
...     modes=(PowerMode("slow", 2.5),),
...     profile=CascadeProfile(small_latency_s={"slow": 8.0}, large_latency_s={"slow": 30.0}))
>>> guard = EnergyGuard(GuardConfig.from_scheduler(cfg))
>>> guard.config.bus_peak_w, guard.config.floor_wh
(2.0, 28.0)
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fsw.power.astro import FloatArray
from fsw.power.errors import SchedulerConfigError
from fsw.power.predictor import Forecast, PassWindow
from fsw.power.scheduler import (
    Decision,
    RunOrder,
    SchedulerConfig,
    battery_delta_wh,
    clamped_trajectory,
)

#: Why the guard refused the last refused work (``power.guard_reason``).
GUARD_REASONS: tuple[str, ...] = ("NONE", "PROJECTION", "INHIBITED", "NO_PREDICTION")
#: Resolution of the worst-case projection (s).
GUARD_STEP_S = 10.0


@dataclass(slots=True, frozen=True)
class GuardConfig:
    """What the guard assumes; every margin errs towards keeping energy.

    ``floor_soc`` and ``margin_wh`` are the scheduler's floor; ``bus_peak_w`` is the
    highest bus load the spacecraft draws in NOMINAL mode (heaters on, every unit
    powered): the guard never counts on the lower SAFE-mode load. ``release_wh`` is the
    hysteresis of the payload inhibit (payload-off worst-case margin needed to release
    it). ``event_interval_s`` throttles the refusal events the component raises.
    """

    battery_capacity_wh: float
    floor_soc: float
    margin_wh: float
    bus_peak_w: float
    radio_power_w: float
    array_power_w: float
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    tick_s: float = 60.0
    solar_margin: float = 0.03
    capacity_margin: float = 0.03
    eclipse_margin_s: float = 15.0
    pass_margin_s: float = 15.0
    max_tle_age_s: float = 7.0 * 86400.0
    solar_window_s: float = 6000.0
    release_wh: float = 0.5
    event_interval_s: float = 600.0

    def __post_init__(self) -> None:
        if not self.battery_capacity_wh > 0.0:
            raise SchedulerConfigError("guard: battery capacity must be > 0 Wh")
        if not 0.0 <= self.floor_soc < 1.0:
            raise SchedulerConfigError(f"guard: floor_soc {self.floor_soc} must be in 0..1")
        for name in ("solar_margin", "capacity_margin"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise SchedulerConfigError(f"guard: {name} must be within 0..1")
        for name in (
            "margin_wh",
            "bus_peak_w",
            "radio_power_w",
            "array_power_w",
            "eclipse_margin_s",
            "pass_margin_s",
            "max_tle_age_s",
            "solar_window_s",
            "release_wh",
            "event_interval_s",
        ):
            v = getattr(self, name)
            if not (v >= 0.0 and math.isfinite(v)):
                raise SchedulerConfigError(f"guard: {name} must be a finite number >= 0")
        for name in ("charge_efficiency", "discharge_efficiency"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise SchedulerConfigError(f"guard: {name} must be in (0, 1]")
        if not self.tick_s > 0.0:
            raise SchedulerConfigError("guard: tick_s must be > 0")

    @property
    def floor_wh(self) -> float:
        """The floor at the nameplate capacity (Wh), as the scheduler states it."""
        return self.floor_soc * self.battery_capacity_wh + self.margin_wh

    @classmethod
    def from_scheduler(
        cls, cfg: SchedulerConfig, *, bus_peak_w: float | None = None, **margins: float
    ) -> GuardConfig:
        """The guard for a scheduler configuration: same battery, floor, radio and
        nominal array; the highest bus load (default: the scheduler's bus load)."""
        return cls(
            battery_capacity_wh=cfg.battery_capacity_wh,
            floor_soc=cfg.floor_soc,
            margin_wh=cfg.margin_wh,
            bus_peak_w=cfg.bus_power_w if bus_peak_w is None else max(bus_peak_w, cfg.bus_power_w),
            radio_power_w=cfg.radio_power_w,
            array_power_w=cfg.array_power_w,
            charge_efficiency=cfg.charge_efficiency,
            discharge_efficiency=cfg.discharge_efficiency,
            tick_s=cfg.tick_s,
            **margins,
        )


@dataclass(slots=True, frozen=True)
class GuardVerdict:
    """What the guard let through of one proposal, and why.

    ``margin_wh`` is the least worst-case energy above the floor (and the pass reserve)
    with the admitted work; ``idle_margin_wh`` the same with no work at all. ``reason``
    is one of :data:`GUARD_REASONS` (``NONE``: nothing refused).
    """

    admitted: tuple[RunOrder, ...]
    refused: int
    reason: str
    margin_wh: float
    idle_margin_wh: float
    inhibited: bool
    solar_w: float
    capacity_wh: float

    def apply(self, d: Decision) -> Decision:
        """``d`` with only the admitted orders (and its reason saying so when any was
        refused)."""
        if not self.refused:
            return d
        reason = f"guard refused {self.refused}: {self.reason.lower().replace('_', ' ')}"
        return dataclasses.replace(
            d,
            run=self.admitted,
            mode=d.mode if self.admitted else None,
            energy_j=sum(o.energy_j for o in self.admitted),
            reason=reason,
        )


class EnergyGuard:
    """Reviews every proposed decision against a worst-case battery projection.

    Its only state: the learned full-sun array output, the inhibit latch and counters
    (``refused_total``, ``refusals_by_reason``).
    """

    __slots__ = (
        "_array_w",
        "_inhibited",
        "_solar",
        "config",
        "refusals_by_reason",
        "refused_total",
    )

    def __init__(self, config: GuardConfig) -> None:
        self.config = config
        self._array_w = config.array_power_w
        self._solar: deque[tuple[float, float]] = deque()
        self._inhibited = False
        self.refused_total = 0
        self.refusals_by_reason: dict[str, int] = dict.fromkeys(GUARD_REASONS[1:], 0)

    def reconfigure(self, config: GuardConfig) -> None:
        """New margins or limits; the learned array output and the inhibit latch stay."""
        self.config = config

    @property
    def inhibited(self) -> bool:
        """The payload is inhibited (battery below the threshold, not yet released)."""
        return self._inhibited

    @property
    def array_power_estimate_w(self) -> float:
        """The guard's own estimate of the array's full-sun output (W), before margin."""
        return self._array_w

    def learn_solar(
        self, forecast: Forecast | None, t0_tai: float, t1_tai: float, solar_w: float
    ) -> None:
        """Learn the full-sun output from the solar power measured over [t0, t1] (only
        when the prediction has the spacecraft in full sun at both ends). The estimate is
        the lowest such measurement within the last ``solar_window_s``: a drop (damage, a
        tumbling attitude's bad side) counts at once, a rise only once the low readings
        have aged out of the window."""
        if forecast is None or not (math.isfinite(solar_w) and solar_w >= 0.0):
            return
        fracs = [
            float(forecast.sun_fraction[forecast.index(t)])
            for t in (t0_tai, t1_tai)
            if forecast.covers(t)
        ]
        if not fracs or min(fracs) <= 0.98:
            return
        window = self._solar
        window.append((t1_tai, solar_w / min(fracs)))
        while window and window[0][0] < t1_tai - self.config.solar_window_s:
            window.popleft()
        self._array_w = min(w for _t, w in window)

    def review(
        self,
        now_tai: float,
        soc: float,
        battery_wh: float | None,
        orders: Sequence[RunOrder],
        forecast: Forecast | None,
        *,
        tle_age_s: float = 0.0,
    ) -> GuardVerdict:
        """Admit the longest prefix of ``orders`` (the scheduler's order of preference)
        whose energy keeps the worst-case projection at or above the floor."""
        cap = self._capacity_wh(soc, battery_wh)
        solar = self._array_w * (1.0 - self.config.solar_margin)
        if forecast is None or not forecast.covers(now_tai):
            return self._refuse(orders, "NO_PREDICTION", -math.inf, -math.inf, solar, cap)
        proj = _Projection.build(self.config, now_tai, soc, cap, solar, forecast, tle_age_s)
        idle = proj.margin_wh(0.0)
        if self._inhibited and idle >= self.config.release_wh:
            self._inhibited = False
        elif not self._inhibited and idle < 0.0:
            self._inhibited = True
        if self._inhibited:
            return self._refuse(orders, "INHIBITED", idle, idle, solar, cap)
        energy = np.cumsum([o.energy_j for o in orders])
        lo, hi = 0, len(orders)  # largest n with margin(energy[n-1]) >= 0 (monotone)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if proj.margin_wh(float(energy[mid - 1])) >= 0.0:
                lo = mid
            else:
                hi = mid - 1
        n = lo
        margin = proj.margin_wh(float(energy[n - 1])) if n else idle
        if n == len(orders):
            return GuardVerdict(tuple(orders), 0, "NONE", margin, idle, False, solar, cap)
        verdict = GuardVerdict(
            tuple(orders[:n]), len(orders) - n, "PROJECTION", margin, idle, False, solar, cap
        )
        self._count(verdict)
        return verdict

    def _capacity_wh(self, soc: float, battery_wh: float | None) -> float:
        """Capacity the guard believes: the smaller of nameplate and the EPS's own
        (energy / SoC), less the capacity margin."""
        cap = self.config.battery_capacity_wh
        if battery_wh is not None and math.isfinite(battery_wh) and soc > 0.05:
            cap = min(cap, battery_wh / soc)
        return cap * (1.0 - self.config.capacity_margin)

    def _refuse(
        self,
        orders: Sequence[RunOrder],
        reason: str,
        margin: float,
        idle: float,
        solar: float,
        cap: float,
    ) -> GuardVerdict:
        verdict = GuardVerdict((), len(orders), reason, margin, idle, self._inhibited, solar, cap)
        self._count(verdict)
        return verdict

    def _count(self, v: GuardVerdict) -> None:
        if v.refused:
            self.refused_total += v.refused
            self.refusals_by_reason[v.reason] += v.refused


@dataclass(slots=True, frozen=True)
class _Projection:
    """The worst-case projection from now to the end of the next eclipse and the pass
    after it, payload aside: energy above the floor now, its ceiling, net power per step."""

    headroom_wh: float
    ceiling_wh: float
    net_w: FloatArray
    dur_s: FloatArray
    tick_steps: int
    eta_c: float
    eta_d: float
    tick_s: float

    @classmethod
    def build(
        cls,
        cfg: GuardConfig,
        now: float,
        soc: float,
        cap_wh: float,
        solar_w: float,
        fc: Forecast,
        tle_age_s: float,
    ) -> _Projection:
        if tle_age_s > cfg.max_tle_age_s:
            sun, radio = _stale_profile(cfg, fc)
        else:
            sun, radio = _predicted_profile(cfg, now, fc)
        net = solar_w * sun - cfg.bus_peak_w - cfg.radio_power_w * radio
        dur = np.full(len(net), GUARD_STEP_S)
        floor_soc = cfg.floor_soc
        margin_soc = cfg.margin_wh / cfg.battery_capacity_wh
        return cls(
            headroom_wh=(soc - floor_soc - margin_soc) * cap_wh,
            ceiling_wh=(1.0 - floor_soc - margin_soc) * cap_wh,
            net_w=net,
            dur_s=dur,
            tick_steps=max(1, math.ceil(cfg.tick_s / GUARD_STEP_S)),
            eta_c=cfg.charge_efficiency,
            eta_d=cfg.discharge_efficiency,
            tick_s=cfg.tick_s,
        )

    def margin_wh(self, payload_j: float) -> float:
        """Least worst-case energy above the floor (and above the pass reserve at the
        end) with ``payload_j`` drawn over this tick."""
        net = self.net_w.copy()
        k = min(self.tick_steps, len(net))
        net[:k] -= payload_j / (k * GUARD_STEP_S)
        delta = battery_delta_wh(net, self.dur_s, self.eta_c, self.eta_d)
        energy, _ = clamped_trajectory(self.headroom_wh, delta, self.ceiling_wh)
        return min(self.headroom_wh, float(energy.min()))


def _predicted_profile(cfg: GuardConfig, now: float, fc: Forecast) -> tuple[FloatArray, FloatArray]:
    """Sun (0/1) and transmitter (0/1) per step from now through the end of the next
    eclipse and the first pass after it (if it comes within an orbit), every predicted
    eclipse and pass widened by its margin at both ends."""
    em, pm = cfg.eclipse_margin_s, cfg.pass_margin_s
    ecl = fc.next_eclipse(now)
    end = ecl.end_tai + em if ecl is not None else now + fc.period_s
    end = max(end, now + cfg.tick_s)
    nxt = _next_pass(fc.passes, end - pm)  # under way at the eclipse's end, or after it
    if nxt is not None and nxt.aos_tai < end + fc.period_s:
        end = max(end, nxt.los_tai + pm)
    n = max(1, math.ceil((end - now) / GUARD_STEP_S))
    t = now + GUARD_STEP_S * np.arange(n, dtype=np.float64)
    sun = np.ones(n)
    for e in fc.eclipses:
        sun[(t + GUARD_STEP_S > e.start_tai - em) & (t < e.end_tai + em)] = 0.0
    radio = np.zeros(n)
    for p in fc.passes:
        radio[(t + GUARD_STEP_S > p.aos_tai - pm) & (t < p.los_tai + pm)] = 1.0
    return sun, radio


def _stale_profile(cfg: GuardConfig, fc: Forecast) -> tuple[FloatArray, FloatArray]:
    """A TLE too old to time eclipses and passes by: the longest eclipse starts now and a
    pass as long as the longest one follows it, with no sunlight until its end."""
    longest_ecl = max((e.duration_s for e in fc.eclipses), default=0.0) + 2 * cfg.eclipse_margin_s
    longest_pass = max((p.duration_s for p in fc.passes), default=0.0)
    n1 = max(1, math.ceil(max(longest_ecl, cfg.tick_s) / GUARD_STEP_S))
    n2 = math.ceil((longest_pass + 2 * cfg.pass_margin_s) / GUARD_STEP_S) if fc.passes else 0
    radio = np.concatenate([np.zeros(n1), np.ones(n2)])
    return np.zeros(n1 + n2), radio


def _next_pass(passes: Sequence[PassWindow], after_tai: float) -> PassWindow | None:
    """The first pass still under way at ``after_tai`` or starting after it."""
    for p in passes:
        if p.los_tai > after_tai:
            return p
    return None


__all__ = ["GUARD_REASONS", "GUARD_STEP_S", "EnergyGuard", "GuardConfig", "GuardVerdict"]
