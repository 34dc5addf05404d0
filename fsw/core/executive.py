"""The ``exec`` component: the executive that drives every rate group from the Clock.

One executive cycle lasts the period of the fastest rate group (0.1 s by default). A
cycle executes the queued TCs, then calls ``on_tick(group)`` of every producer of each
rate group due in this cycle (in registration order), then every collector
(``TICK_PHASE = 1``: housekeeping, limit monitors, health) so they sample this cycle's
values, then lets the health component pet the watchdog. :meth:`Executive.step` runs
cycles as fast as the CPU allows and moves a :class:`~fsw.core.clock.SimClock`
(deterministic); :meth:`Executive.run_realtime` paces cycles on a board's
:class:`~fsw.core.clock.WallClock`. This is the only place that waits; components never
sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fsw.core.component import Component
from fsw.core.declarations import Channel, Event, Severity
from fsw.core.errors import CoreError, DeclarationError
from fsw.core.health import HealthMonitor
from fsw.core.registry import Binding, binding_of, registry_of
from fsw.core.wire import Arg

EXEC_RATE_GROUP = "1Hz"


_Member = tuple[Component, Callable[[str], None], Binding]


@dataclass(slots=True)
class _Group:
    name: str
    period_ticks: int
    #: members by tick phase: producers, then collectors
    phases: tuple[list[_Member], list[_Member]] = field(default_factory=lambda: ([], []))


class Executive(Component):
    """Runs rate groups from the flight clock and reports on the executive itself."""

    NAME = "exec"
    DESCRIPTION = "The executive: rate groups driven by the Clock; downlink queue statistics."
    TELEMETRY = (
        Channel("met_s", "u32", units="s", description="mission elapsed time", id=4),
        Channel("cycles", "u32", description="executive cycles run since boot", id=5),
        Channel("dl_queued", "u16", description="TM packets waiting for downlink", id=6),
        Channel(
            "dl_dropped",
            "u32",
            description="TM packets dropped: downlink queue full",
            yellow=(None, 0),
            id=7,
        ),
        Channel("overruns", "u32", description="times the executive fell behind real time", id=8),
        Channel(
            "dict_hash",
            "u32",
            description="first 32 bits of the content hash of the dictionary this "
            "flight software was built with (the ground checks its own)",
            id=9,
        ),
    )
    EVENTS = (
        Event(
            "BOOT",
            Severity.INFO,
            "flight software started: {components} components, {commands} commands",
            (Arg("components", "u16"), Arg("commands", "u16")),
            id=1,
        ),
        Event(
            "OVERRUN",
            Severity.LOW,
            "executive fell {behind_s:.3f} s behind real time; {skipped} cycles skipped",
            (Arg("behind_s", "f32", units="s"), Arg("skipped", "u32")),
            id=2,
        ),
    )
    RATE_GROUPS = (EXEC_RATE_GROUP,)
    HK_INTERVAL_S = 10.0

    def __init__(
        self, drain: Callable[[], None], health: HealthMonitor, name: str | None = None
    ) -> None:
        super().__init__(name)
        self._drain = drain
        self._health = health
        self._groups: list[_Group] = []
        self._acc_s = 0.0
        self._anchor_tai = -1.0
        self._anchor_tick = 0

    def setup_groups(self) -> None:
        """Create the rate groups of the configuration (once, after attach)."""
        cfg = registry_of(self).config
        self._groups = [_Group(n, cfg.period_ticks(n)) for n, _ in cfg.rate_groups]

    def add_member(self, comp: Component) -> None:
        """Call ``comp.on_tick`` in each of its ``RATE_GROUPS``."""
        b = binding_of(comp)
        for rg in type(comp).RATE_GROUPS:
            group = next((g for g in self._groups if g.name == rg), None)
            if group is None:
                known = ", ".join(g.name for g in self._groups)
                raise DeclarationError(f"{comp.name}: unknown rate group '{rg}' (known: {known})")
            group.phases[type(comp).TICK_PHASE].append((comp, comp.on_tick, b))

    def rate_groups(self) -> list[tuple[str, float, list[str]]]:
        """(name, period_s, member names) of every rate group."""
        base = registry_of(self).config.base_period_s
        return [
            (g.name, g.period_ticks * base, [c.name for ph in g.phases for c, _, _ in ph])
            for g in self._groups
        ]

    def on_tick(self, rate_group: str) -> None:
        rt = registry_of(self)
        self.tlm("met_s", rt.clock.met())
        self.tlm("cycles", rt.tick)
        self.tlm("dl_queued", len(rt.downlink))
        self.tlm("dl_dropped", rt.downlink.total_dropped)

    # ------------------------------------------------------------ cycles
    def cycle(self) -> None:
        """Run one executive cycle at the clock's current time."""
        rt = registry_of(self)
        rt.tick += 1
        tick = rt.tick
        self._drain()
        health = self._health
        for phase in (0, 1):
            for g in self._groups:
                if tick % g.period_ticks:
                    continue
                name = g.name
                for comp, fn, b in g.phases[phase]:
                    if b.isolated:
                        continue
                    try:
                        fn(name)
                    except Exception as exc:
                        health.tick_error(comp, exc)
                    else:
                        b.last_beat = tick
                        if b.failing:
                            b.failing = False
        health.end_of_cycle(rt.clock.met())

    def step(self, dt_s: float) -> int:
        """Advance simulated time by ``dt_s``, running every cycle due; returns the count.

        TCs queued before the call execute first, at the current time (so ``step(0)``
        just executes them). Fractions of a cycle carry over to the next call. The clock
        must be a SimClock (or have ``advance``); a wall clock is paced by
        :meth:`run_realtime` instead.
        """
        if not dt_s >= 0:
            raise CoreError(f"step needs a non-negative duration, not {dt_s}")
        rt = registry_of(self)
        clock = rt.clock
        set_tai = getattr(clock, "set_tai", None)
        advance = getattr(clock, "advance", None)
        if advance is None:
            raise CoreError("step() needs a SimClock; on a board use run_realtime()")
        self._drain()
        base = rt.config.base_period_s
        self._acc_s += dt_s
        n = int(self._acc_s / base + 1e-9)
        self._acc_s = max(0.0, self._acc_s - n * base)
        # Cycle k of the run is at anchor + k * base: no rounding error accumulates over
        # long runs. Someone else moving the clock re-anchors.
        now = clock.now_tai()
        expected = self._anchor_tai + (rt.tick - self._anchor_tick) * base
        if self._anchor_tai < 0 or abs(now - expected) > 1e-6:
            self._anchor_tai, self._anchor_tick = now, rt.tick
        for _ in range(n):
            target = self._anchor_tai + (rt.tick + 1 - self._anchor_tick) * base
            if set_tai is not None:
                if target > clock.now_tai():
                    set_tai(target)
            else:
                advance(max(0.0, target - clock.now_tai()))
            self.cycle()
        return n

    def run_realtime(
        self,
        duration_s: float | None = None,
        *,
        stop: Callable[[], bool] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_behind_cycles: int = 10,
    ) -> int:
        """Run cycles paced by the clock's ``met()`` until ``duration_s`` or ``stop()``.

        If the executive falls more than ``max_behind_cycles`` behind it skips the missed
        cycles (``exec.OVERRUN``) instead of racing to catch up. Returns cycles run.
        """
        rt = registry_of(self)
        clock = rt.clock
        base = rt.config.base_period_s
        wd = self._health.watchdog
        if wd is not None:
            wd.notify("READY=1")
        start = clock.met()
        next_t = start + base
        end = None if duration_s is None else start + duration_s
        cycles = 0
        while not (stop is not None and stop()):
            if end is not None and next_t > end + 1e-9:
                break
            now = clock.met()
            wait = next_t - now
            if wait > 0:
                sleep(wait)
                continue
            behind = -wait
            if behind > max_behind_cycles * base:
                skipped = int(behind / base)
                next_t += skipped * base
                self.tlm_inc("overruns")
                self.event("OVERRUN", behind, skipped)
            self.cycle()
            cycles += 1
            next_t += base
        return cycles


__all__ = ["EXEC_RATE_GROUP", "Executive"]
