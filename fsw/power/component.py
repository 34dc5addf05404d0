"""The ``power`` component: onboard orbit prediction and power-aware payload scheduling.

It owns the flight's :class:`~fsw.power.predictor.OrbitPredictor` (built from the TLE:
the platform's pre-launch one, or one uplinked with ``power.SET_TLE``) and the
:class:`~fsw.power.scheduler.PowerScheduler`. Once a second it keeps a prediction that
covers the scheduler's horizon and publishes the next pass and eclipse; the payload asks
it for a :class:`~fsw.power.scheduler.Decision` each scheduling tick
(:meth:`Power.decide`) and for each frame's deadline (:meth:`Power.deadline_tai`).

Without a platform description (``build_flight()`` with no HAL) it predicts nothing and
every decision is "no platform": the payload stays off.

>>> from fsw.app import build_flight
>>> fs = build_flight()
>>> _ = fs.step(1.0)
>>> fs.telemetry("power.reason"), fs.telemetry("power.tle_loaded")
('NO_PLATFORM', False)
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from fsw.core import (
    Arg,
    Channel,
    CommandFailed,
    Component,
    Event,
    FailureCode,
    Param,
    Severity,
    command,
)
from fsw.core.clock import tai_to_datetime
from fsw.hal.interfaces import EpsReading, EpsSensor, NoEps, Platform
from fsw.power.errors import PowerError
from fsw.power.guard import GUARD_REASONS, EnergyGuard, GuardConfig, GuardVerdict
from fsw.power.landmask import LandMask
from fsw.power.predictor import Forecast, OrbitPredictor
from fsw.power.scheduler import Decision, Job, PowerScheduler, SchedulerConfig, Variant

#: Why the last decision ran what it ran (``power.reason``).
REASONS: tuple[str, ...] = (
    "NONE",
    "RUN",
    "RUN_FREE",
    "WAITING",
    "BELOW_PRICE",
    "QUEUE_EMPTY",
    "PAYLOAD_OFF",
    "NO_PREDICTION",
    "NO_EPS",
    "NO_PLATFORM",
    "DISABLED",
)
TLE_LINE_LEN = 69
#: Predict this many orbits beyond what the scheduler needs, so a prediction lasts a while.
PREDICT_EXTRA_ORBITS = 1.5


def prediction_orbits(cfg: SchedulerConfig) -> float:
    """Orbits a prediction must cover from now: the scheduler's pricing horizon and the
    payload-off survival look-ahead after it."""
    return cfg.horizon_orbits + cfg.survival_orbits


def reason_code(d: Decision) -> str:
    """Map a scheduler decision to one of :data:`REASONS`.

    >>> reason_code(Decision(0.0, None, (), (), 0.0, 0.0, 0.0, 0.0, "queue empty"))
    'QUEUE_EMPTY'
    """
    text = d.reason
    if text.startswith("run "):
        return "RUN_FREE" if "energy free" in text else "RUN"
    if text.startswith("work waits"):
        return "WAITING"
    if text.startswith("queued work below"):
        return "BELOW_PRICE"
    if text.startswith("queue empty"):
        return "QUEUE_EMPTY"
    if text.startswith("battery below"):
        return "PAYLOAD_OFF"
    if text.startswith("prediction does not cover"):
        return "NO_PREDICTION"
    return "NONE"


class Power(Component):
    """Orbit prediction from the TLE and the power-aware inference scheduler."""

    NAME = "power"
    DESCRIPTION = "Onboard orbit prediction (TLE) and power-aware payload scheduling."
    TELEMETRY = (
        Channel("tle_loaded", "bool", description="a TLE is loaded and predicting", id=4),
        Channel("tle_age_h", "f32", units="h", description="hours since the TLE epoch", id=5),
        Channel("predictions", "u32", description="orbit predictions computed", id=6),
        Channel(
            "next_pass_s",
            "f32",
            units="s",
            description="seconds to the next predicted AOS (0 in a pass, -1 unknown)",
            id=7,
        ),
        Channel("in_pass", "bool", description="a ground pass is predicted now", id=8),
        Channel(
            "next_eclipse_s",
            "f32",
            units="s",
            description="seconds to the next predicted eclipse (0 in eclipse, -1 unknown)",
            id=9,
        ),
        Channel("in_eclipse", "bool", description="eclipse predicted now", id=10),
        Channel("decisions", "u32", description="scheduling decisions taken", id=11),
        Channel("last_runs", "u16", description="jobs the last decision ran", id=12),
        Channel("last_drops", "u16", description="jobs the last decision dropped", id=13),
        Channel(
            "reserve_wh",
            "f32",
            units="Wh",
            description="battery energy above the floor held back for eclipses and passes",
            id=14,
        ),
        Channel(
            "budget_wh",
            "f32",
            units="Wh",
            description="energy the last decision could spend",
            id=15,
        ),
        Channel(
            "price", "f32", description="value per joule work had to clear (-1: payload off)", id=16
        ),
        Channel(
            "array_estimate_w", "f32", units="W", description="learned full-sun array output", id=17
        ),
        Channel(
            "reason", "enum", labels=REASONS, description="why the last decision was taken", id=18
        ),
        Channel(
            "guard_refused",
            "u32",
            description="run orders the energy guard refused since boot",
            id=19,
        ),
        Channel(
            "guard_reason",
            "enum",
            labels=GUARD_REASONS,
            description="why the energy guard last refused work (NONE: it has refused nothing)",
            id=20,
        ),
        Channel(
            "guard_margin_wh",
            "f32",
            units="Wh",
            description="worst-case energy above the floor with the admitted work",
            id=21,
        ),
        Channel(
            "guard_inhibited", "bool", description="the energy guard inhibits the payload", id=22
        ),
        Channel(
            "guard_solar_w",
            "f32",
            units="W",
            description="full-sun array output the guard counts on (learned, less margin)",
            id=23,
        ),
    )
    EVENTS = (
        Event(
            "TLE_LOADED",
            Severity.INFO,
            "TLE loaded (epoch {epoch_utc}); predicting",
            (Arg("epoch_utc", "str", max_len=32),),
            id=1,
        ),
        Event(
            "TLE_REJECTED",
            Severity.MEDIUM,
            "TLE rejected: {reason}",
            (Arg("reason", "str", max_len=120),),
            id=2,
        ),
        Event(
            "PREDICTED",
            Severity.INFO,
            "predicted {hours:.1f} h: {passes} passes, {eclipses} eclipses, {frames} frames",
            (
                Arg("hours", "f32", units="h"),
                Arg("passes", "u16"),
                Arg("eclipses", "u16"),
                Arg("frames", "u16"),
            ),
            id=3,
        ),
        Event(
            "PREDICT_FAILED",
            Severity.MEDIUM,
            "orbit prediction failed: {reason}",
            (Arg("reason", "str", max_len=120),),
            id=4,
        ),
        Event(
            "PAYLOAD_OFF",
            Severity.LOW,
            "payload held off: battery projection reaches the floor ({reserve_wh:.1f} Wh reserved)",
            (Arg("reserve_wh", "f32", units="Wh"),),
            id=5,
        ),
        Event("PAYLOAD_ALLOWED", Severity.INFO, "payload allowed again", id=6),
        Event(
            "GUARD_REFUSED",
            Severity.LOW,
            "energy guard refused {count} jobs in the last {seconds:.0f} s: {reason} "
            "(worst-case margin {margin_wh:.2f} Wh)",
            (
                Arg("count", "u32"),
                Arg("seconds", "f32", units="s"),
                Arg("reason", "enum", labels=GUARD_REASONS),
                Arg("margin_wh", "f32", units="Wh"),
            ),
            id=7,
        ),
        Event(
            "PAYLOAD_INHIBITED",
            Severity.MEDIUM,
            "payload inhibited: even with no work the worst-case projection reaches the floor "
            "({margin_wh:.2f} Wh)",
            (Arg("margin_wh", "f32", units="Wh"),),
            id=8,
        ),
        Event(
            "PAYLOAD_RELEASED",
            Severity.INFO,
            "payload inhibit released: worst-case margin {margin_wh:.2f} Wh",
            (Arg("margin_wh", "f32", units="Wh"),),
            id=9,
        ),
    )
    PARAMETERS = (
        Param(
            "enabled",
            "bool",
            default=True,
            description="the scheduler may run payload work (False: payload off)",
            id=1,
        ),
        Param(
            "extra_margin_wh",
            "f32",
            default=0.0,
            min=0.0,
            max=100.0,
            units="Wh",
            description="energy kept above the platform's floor and margin",
            id=2,
        ),
        Param(
            "horizon_orbits",
            "f32",
            default=2.0,
            min=0.5,
            max=6.0,
            description="orbits the battery projection looks ahead",
            id=3,
        ),
        Param(
            "guard_solar_margin",
            "f32",
            default=0.03,
            min=0.0,
            max=0.9,
            description="share of the learned array output the energy guard does not count on",
            id=4,
        ),
        Param(
            "guard_eclipse_margin_s",
            "f32",
            default=15.0,
            min=0.0,
            max=1800.0,
            units="s",
            description="the guard widens every predicted eclipse and pass by this, both ends",
            id=5,
        ),
        Param(
            "guard_capacity_margin",
            "f32",
            default=0.03,
            min=0.0,
            max=0.5,
            description="share of the battery capacity the guard does not count on (fade)",
            id=6,
        ),
    )
    RATE_GROUPS = ("1Hz",)
    HK_INTERVAL_S = 10.0

    def __init__(
        self,
        platform: Platform | None = None,
        eps: EpsSensor | None = None,
        *,
        land_mask: LandMask | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.platform = platform
        self.eps: EpsSensor = eps if eps is not None else NoEps()
        self._land = land_mask
        self._tle: tuple[str, str] | None = platform.tle if platform is not None else None
        self.scheduler: PowerScheduler | None = None
        self.predictor: OrbitPredictor | None = None
        self.forecast: Forecast | None = None
        self.last_decision: Decision | None = None
        self.guard: EnergyGuard | None = None
        self.last_verdict: GuardVerdict | None = None

    # ------------------------------------------------------------------ lifecycle
    def on_init(self) -> None:
        self._off = False
        self._predictions = 0
        self._decisions = 0
        self.forecast = None
        self.last_decision = None
        self.scheduler = None
        self.guard = None
        self.last_verdict = None
        self._guard_pending = 0
        self._guard_window_tai: float | None = None
        self._guard_last_reason = "NONE"
        self._guard_last_margin = 0.0
        self._build_scheduler()
        self.predictor = None
        if self._tle is not None and self.platform is not None:
            try:
                self.predictor = self._make_predictor(*self._tle)
            except PowerError as exc:
                self.event("TLE_REJECTED", _short(str(exc)))
        self.tlm("reason", "NO_PLATFORM" if self.platform is None else "NONE")
        self.tlm("price", -1.0)

    def _config(self) -> SchedulerConfig | None:
        if self.platform is None:
            return None
        base = self.platform.scheduler
        return dataclasses.replace(
            base,
            margin_wh=base.margin_wh + float(self.param("extra_margin_wh")),
            horizon_orbits=float(self.param("horizon_orbits")),
        )

    def _build_scheduler(self) -> None:
        # A new configuration starts from the platform's nominal array output again; the
        # scheduler re-learns the real output within a few sunlit decisions.
        cfg = self._config()
        self.scheduler = PowerScheduler(cfg) if cfg is not None else None
        self._build_guard()

    def _guard_config(self) -> GuardConfig | None:
        cfg = self.config
        if cfg is None or self.platform is None:
            return None
        margin_s = float(self.param("guard_eclipse_margin_s"))
        return GuardConfig.from_scheduler(
            cfg,
            bus_peak_w=self.platform.bus_peak_w,
            solar_margin=float(self.param("guard_solar_margin")),
            capacity_margin=float(self.param("guard_capacity_margin")),
            eclipse_margin_s=margin_s,
            pass_margin_s=margin_s,
        )

    def _build_guard(self) -> None:
        """The guard for the configuration in force (its learned state kept)."""
        gcfg = self._guard_config()
        if gcfg is None:
            self.guard = None
        elif self.guard is None:
            self.guard = EnergyGuard(gcfg)
        else:
            self.guard.reconfigure(gcfg)

    def _make_predictor(self, line1: str, line2: str) -> OrbitPredictor:
        assert self.platform is not None
        return OrbitPredictor(
            line1, line2, self.platform.stations, self.platform.imaging, self._land
        )

    def validate_param(self, name: str, value: Any) -> str | None:
        if name == "extra_margin_wh" and self.platform is not None:
            base = self.platform.scheduler
            if base.floor_wh + float(value) >= base.battery_capacity_wh:
                return "floor plus margin would leave no usable battery energy"
        return None

    def on_param_changed(self, name: str, value: Any) -> None:
        if name in ("extra_margin_wh", "horizon_orbits") and self.is_bound:
            self._build_scheduler()
            self.forecast = None  # a longer horizon needs a longer prediction
        elif name.startswith("guard_") and self.is_bound:
            self._build_guard()

    # ------------------------------------------------------------------ prediction
    @property
    def config(self) -> SchedulerConfig | None:
        """The scheduler configuration in force (platform plus parameters)."""
        return self.scheduler.config if self.scheduler is not None else None

    def _needed_until(self, now_tai: float) -> float:
        assert self.predictor is not None and self.scheduler is not None
        cfg = self.scheduler.config
        return now_tai + prediction_orbits(cfg) * self.predictor.period_s + cfg.tick_s

    def ensure_forecast(self, now_tai: float) -> Forecast | None:
        """A prediction covering the horizon from ``now_tai`` (recomputed when needed)."""
        if self.predictor is None or self.scheduler is None:
            return None
        p = self.forecast
        if p is not None and p.covers(now_tai) and p.end_tai >= self._needed_until(now_tai):
            return p
        cfg = self.scheduler.config
        span = (prediction_orbits(cfg) + PREDICT_EXTRA_ORBITS) * self.predictor.period_s
        try:
            p = self.predictor.predict(now_tai, span, step_s=cfg.tick_s)
        except PowerError as exc:
            self.event("PREDICT_FAILED", _short(str(exc)))
            self.forecast = None
            return None
        self.forecast = p
        self._predictions += 1
        self.tlm("predictions", self._predictions)
        self.event(
            "PREDICTED",
            span / 3600.0,
            len(p.passes),
            len(p.eclipses),
            min(len(p.frame_times_tai), 0xFFFF),
        )
        return p

    def on_tick(self, rate_group: str) -> None:
        now = self.clock.now_tai()
        self.tlm("tle_loaded", self.predictor is not None)
        if self.predictor is not None:
            self.tlm("tle_age_h", (now - self.predictor.epoch_tai) / 3600.0)
        p = self.ensure_forecast(now)
        if p is None:
            for ch in ("next_pass_s", "next_eclipse_s"):
                self.tlm(ch, -1.0)
            self.tlm("in_pass", False)
            self.tlm("in_eclipse", False)
            return
        cur = _current_pass(p, now)
        self.tlm("in_pass", cur)
        nxt = p.next_pass(now)
        self.tlm("next_pass_s", 0.0 if cur else (nxt.aos_tai - now if nxt else -1.0))
        ecl = p.next_eclipse(now)
        in_ecl = ecl is not None and ecl.start_tai <= now < ecl.end_tai
        self.tlm("in_eclipse", in_ecl)
        self.tlm(
            "next_eclipse_s", 0.0 if in_ecl else (ecl.start_tai - now if ecl is not None else -1.0)
        )

    # ------------------------------------------------------------------ services
    def deadline_tai(self, captured_tai: float) -> float:
        """When the result of a frame captured at ``captured_tai`` is due."""
        if self.platform is None:
            return captured_tai + 6.0 * 3600.0
        pf = self.platform
        latest = captured_tai + pf.max_deadline_s
        if pf.deadline != "next_pass":
            return min(captured_tai + float(pf.deadline), latest)
        p = self.forecast
        if p is not None:
            nxt = p.next_pass(captured_tai, pf.min_deadline_s)
            if nxt is not None:
                return min(nxt.aos_tai, latest)
        return latest

    def mode_power_w(self, mode: str) -> float:
        """Whole-board power of a payload power mode (W); 0 when unknown."""
        cfg = self.config
        if cfg is None:
            return 0.0
        return next((m.power_w for m in cfg.modes if m.name == mode), 0.0)

    def latency_s(self, variant: Variant, mode: str) -> float:
        """The platform's measured latency of one job (the deterministic latency model)."""
        cfg = self.config
        if cfg is None:
            raise PowerError("no platform description: no latency profile")
        return cfg.profile.latency_s(variant, mode)

    def decide(self, now_tai: float, queue: Sequence[Job]) -> Decision | None:
        """This scheduling tick's decision for ``queue``; None when nothing may run.

        ``power.reason`` tells why (no platform, no TLE/prediction, no EPS, disabled).
        """
        if self.scheduler is None:
            self.tlm("reason", "NO_PLATFORM")
            return None
        if not self.param("enabled"):
            self.tlm("reason", "DISABLED")
            return None
        pred = self.ensure_forecast(now_tai)
        if pred is None:
            self.tlm("reason", "NO_PREDICTION")
            return None
        r: EpsReading = self.eps.read()
        if not r.valid:
            self.tlm("reason", "NO_EPS")
            return None
        d = self.scheduler.decide(now_tai, r.soc, r.battery_wh, queue, pred, solar_w=r.solar_w)
        d = self._guarded(now_tai, r, pred, d)
        self._decisions += 1
        self.last_decision = d
        code = reason_code(d)
        self.tlm("decisions", self._decisions)
        self.tlm("last_runs", len(d.run))
        self.tlm("last_drops", min(len(d.drop), 0xFFFF))
        self.tlm("reserve_wh", d.reserve_wh)
        self.tlm("budget_wh", d.budget_wh)
        self.tlm("price", d.price if math.isfinite(d.price) else -1.0)
        self.tlm("array_estimate_w", self.scheduler.array_power_estimate_w)
        self.tlm("reason", code)
        off = code == "PAYLOAD_OFF"
        if off and not self._off:
            self.event("PAYLOAD_OFF", d.reserve_wh)
        elif not off and self._off:
            self.event("PAYLOAD_ALLOWED")
        self._off = off
        return d

    def _guarded(self, now_tai: float, r: EpsReading, pred: Forecast, d: Decision) -> Decision:
        """The scheduler proposes, the guard disposes: ``d`` with only the orders the
        energy guard admits; its telemetry and (throttled) events."""
        guard = self.guard
        if guard is None or self.predictor is None:
            return d
        tick = self.scheduler.config.tick_s if self.scheduler is not None else 60.0
        guard.learn_solar(pred, r.t_tai - tick, r.t_tai, r.solar_w)
        was_inhibited = guard.inhibited
        v = guard.review(
            now_tai,
            r.soc,
            r.battery_wh,
            d.run,
            pred,
            tle_age_s=now_tai - self.predictor.epoch_tai,
        )
        self.last_verdict = v
        self.tlm("guard_refused", min(guard.refused_total, 0xFFFFFFFF))
        if v.refused:
            self.tlm("guard_reason", v.reason)
        self.tlm("guard_margin_wh", _finite(v.margin_wh))
        self.tlm("guard_inhibited", v.inhibited)
        self.tlm("guard_solar_w", v.solar_w)
        if v.inhibited and not was_inhibited:
            self.event("PAYLOAD_INHIBITED", _finite(v.idle_margin_wh))
        elif was_inhibited and not v.inhibited:
            self.event("PAYLOAD_RELEASED", _finite(v.idle_margin_wh))
        self._throttled_refusal_event(now_tai, v, guard.config.event_interval_s)
        return v.apply(d)

    def _throttled_refusal_event(self, now_tai: float, v: GuardVerdict, every_s: float) -> None:
        """``GUARD_REFUSED``: the first refusal after a quiet spell at once, then at most
        one per ``every_s`` summing the refusals since the last one (``guard_refused``
        counts every one)."""
        start = self._guard_window_tai
        if v.refused:
            self._guard_pending += v.refused
            self._guard_last_reason = v.reason
            self._guard_last_margin = _finite(v.margin_wh)
        due = start is None or now_tai - start >= every_s
        if not due:
            return
        if self._guard_pending:
            self.event(
                "GUARD_REFUSED",
                self._guard_pending,
                0.0 if start is None else now_tai - start,
                self._guard_last_reason,
                self._guard_last_margin,
            )
            self._guard_pending = 0
            self._guard_window_tai = now_tai
        else:
            self._guard_window_tai = None  # a quiet spell: the next refusal reports at once

    # ------------------------------------------------------------------ commands
    @command(
        args=(Arg("line1", "str", max_len=TLE_LINE_LEN), Arg("line2", "str", max_len=TLE_LINE_LEN)),
        description="Load a new two-line element set and predict from it.",
        opcode=1,
    )
    def set_tle(self, line1: str, line2: str) -> None:
        if self.platform is None:
            raise CommandFailed(FailureCode.EXECUTION_ERROR, "no platform description on board")
        try:
            pred = self._make_predictor(line1, line2)
        except PowerError as exc:
            self.event("TLE_REJECTED", _short(str(exc)))
            raise CommandFailed(FailureCode.VALUE_REJECTED, _short(str(exc))) from None
        self._tle = (line1, line2)
        self.predictor = pred
        self.forecast = None
        epoch = tai_to_datetime(pred.epoch_tai).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.event("TLE_LOADED", epoch)
        self.ensure_forecast(self.clock.now_tai())

    @command(description="Predict again now from the loaded TLE.", opcode=2)
    def predict(self) -> None:
        if self.predictor is None:
            raise CommandFailed(FailureCode.EXECUTION_ERROR, "no TLE loaded: send SET_TLE")
        self.forecast = None
        if self.ensure_forecast(self.clock.now_tai()) is None:
            raise CommandFailed(FailureCode.EXECUTION_ERROR, "prediction failed (see event)")


def _current_pass(p: Forecast, now_tai: float) -> bool:
    starts = [w.aos_tai for w in p.passes]
    i = bisect.bisect_right(starts, now_tai)
    return any(w.aos_tai <= now_tai <= w.los_tai for w in p.passes[max(0, i - 3) : i])


def _finite(x: float) -> float:
    """A value telemetry can carry (-1e9 stands for 'no projection')."""
    return x if math.isfinite(x) else -1e9


def _short(text: str, limit: int = 120) -> str:
    data = text.encode("utf-8")[:limit]
    return data.decode("utf-8", errors="ignore")


__all__ = ["REASONS", "Power", "reason_code"]
