"""The ``health`` component: heartbeats, restarts, isolation and the systemd watchdog.

Every component with rate groups beats when its ``on_tick`` returns normally. Once a
second the health component looks for silent ones: a component whose last beat is older
than ``silent_cycles`` of its own periods is reported (``health.SILENT``) and restarted
(``on_init`` again). After ``max_restarts`` restarts in a row without a healthy minute
it is isolated (no more ticks) until the ground sends ``health.RESTART``.

A hang that never returns stops the whole executive: that is what the systemd watchdog
is for. :class:`SdNotifier` sends ``WATCHDOG=1`` to ``$NOTIFY_SOCKET`` after executive
cycles, at half the ``$WATCHDOG_USEC`` interval, and only when systemd asked for it.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

from fsw.core.component import Component
from fsw.core.declarations import Channel, Event, Param, Severity, command
from fsw.core.errors import CommandFailed, FailureCode
from fsw.core.persistence import clip
from fsw.core.registry import binding_of, registry_of
from fsw.core.wire import Arg

log = logging.getLogger("fsw.health")

HEALTH_RATE_GROUP = "1Hz"
#: A component that beats this long after a restart has its restart streak cleared.
HEALTHY_AFTER_S = 60.0

_COMP = Arg("component", "str", max_len=32)


class SdNotifier:
    """systemd ``sd_notify`` client for ``READY=1`` and watchdog pings.

    Inert unless ``NOTIFY_SOCKET`` is set; pings only when ``WATCHDOG_USEC`` is set too
    (and ``WATCHDOG_PID``, if present, is this process).

    >>> SdNotifier.from_env({}).enabled
    False
    """

    def __init__(self, socket_path: str | None, watchdog_usec: int | None) -> None:
        self.socket_path = socket_path
        self.interval_s = watchdog_usec / 1e6 / 2 if watchdog_usec else None
        self.pings = 0
        self.failures = 0
        self._last_ping_s: float | None = None
        self._sock: socket.socket | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SdNotifier:
        """Read ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID``."""
        env = os.environ if env is None else env
        path = env.get("NOTIFY_SOCKET") or None
        usec: int | None
        try:
            usec = int(env.get("WATCHDOG_USEC", "")) or None
        except ValueError:
            usec = None
        pid = env.get("WATCHDOG_PID")
        if pid and pid.isdigit() and int(pid) != os.getpid():
            usec = None
        return cls(path, usec)

    @property
    def enabled(self) -> bool:
        """True when systemd asked for watchdog pings."""
        return self.socket_path is not None and self.interval_s is not None

    def notify(self, message: str) -> bool:
        """Send one sd_notify datagram (e.g. ``"READY=1"``); False if not possible."""
        if self.socket_path is None:
            return False
        addr = self.socket_path
        if addr.startswith("@"):
            addr = "\0" + addr[1:]
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.sendto(message.encode("utf-8"), addr)
        except OSError as exc:
            self.failures += 1
            log.warning("sd_notify to %s failed: %s", self.socket_path, exc)
            return False
        return True

    def maybe_ping(self, mono_s: float) -> bool:
        """Send ``WATCHDOG=1`` if half the watchdog interval passed since the last ping."""
        if self.interval_s is None or self.socket_path is None:
            return False
        if self._last_ping_s is not None and mono_s - self._last_ping_s < self.interval_s:
            return False
        self._last_ping_s = mono_s
        if self.notify("WATCHDOG=1"):
            self.pings += 1
            return True
        return False

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class HealthMonitor(Component):
    """Detects silent components, restarts or isolates them; pets the systemd watchdog."""

    NAME = "health"
    DESCRIPTION = "Heartbeats of every active component; restart, isolation; sd_notify."
    TELEMETRY = (
        Channel("restarts", "u32", description="component restarts since boot", id=4),
        Channel("isolated", "u16", description="components isolated now", yellow=(None, 0), id=5),
        Channel("silent", "u16", description="components found silent at the last check", id=6),
        Channel("tick_errors", "u32", description="on_tick calls that raised", id=7),
        Channel("wd_pings", "u32", description="systemd watchdog pings sent", id=8),
    )
    EVENTS = (
        Event(
            "TICK_ERROR",
            Severity.MEDIUM,
            "{component} on_tick raised: {error}",
            (_COMP, Arg("error", "str", max_len=200)),
            id=1,
        ),
        Event(
            "SILENT",
            Severity.HIGH,
            "{component} silent for {silent_s:.1f} s",
            (_COMP, Arg("silent_s", "f32", units="s")),
            id=2,
        ),
        Event(
            "RESTARTED",
            Severity.MEDIUM,
            "{component} restarted ({streak} in a row)",
            (_COMP, Arg("streak", "u16")),
            id=3,
        ),
        Event(
            "RESTART_FAILED",
            Severity.HIGH,
            "{component} on_init raised: {error}",
            (_COMP, Arg("error", "str", max_len=200)),
            id=4,
        ),
        Event(
            "ISOLATED",
            Severity.HIGH,
            "{component} isolated after {streak} restarts; send health.RESTART to retry",
            (_COMP, Arg("streak", "u16")),
            id=5,
        ),
    )
    PARAMETERS = (
        Param(
            "silent_cycles",
            "u16",
            default=3,
            min=1,
            max=600,
            description="missed periods before a component counts as silent",
            id=1,
        ),
        Param(
            "max_restarts",
            "u8",
            default=3,
            min=0,
            max=100,
            description="restarts in a row before isolation",
            id=2,
        ),
    )
    RATE_GROUPS = (HEALTH_RATE_GROUP,)
    TICK_PHASE = 1
    HK_INTERVAL_S = 10.0

    def __init__(self, watchdog: SdNotifier | None = None, name: str | None = None) -> None:
        super().__init__(name)
        self.watchdog = watchdog

    def on_init(self) -> None:
        self._publish()

    # ------------------------------------------------------------ called by the executive
    def tick_error(self, comp: Component, exc: BaseException) -> None:
        """``comp.on_tick`` raised: count it; the first of a streak raises an event."""
        rt = registry_of(self)
        rt.count(comp, 2)
        self.tlm_inc("tick_errors")
        b = binding_of(comp) if comp.is_bound else None
        if b is not None and not b.failing:
            b.failing = True
            comp.log.error("on_tick raised %s: %s", type(exc).__name__, exc)
            self.event("TICK_ERROR", clip(comp.name, 32), clip(f"{type(exc).__name__}: {exc}"))

    def end_of_cycle(self, mono_s: float) -> None:
        """Pet the systemd watchdog if it is due (the cycle completed)."""
        wd = self.watchdog
        if wd is not None and wd.maybe_ping(mono_s):
            self.tlm_inc("wd_pings")

    # ------------------------------------------------------------ checks
    def on_tick(self, rate_group: str) -> None:
        rt = registry_of(self)
        tick = rt.tick
        silent_cycles = self.param("silent_cycles")
        healthy_ticks = round(HEALTHY_AFTER_S / rt.config.base_period_s)
        silent = 0
        for comp in list(rt.components.values()):
            if not comp.is_bound:
                continue
            b = binding_of(comp)
            if b.period_ticks == 0 or b.isolated or comp is self:
                continue
            missed = tick - b.last_beat
            if missed > silent_cycles * b.period_ticks:
                silent += 1
                self.event("SILENT", clip(comp.name, 32), missed * rt.config.base_period_s)
                self.restart(comp, automatic=True)
            elif b.restart_streak and tick - b.last_restart_tick > healthy_ticks:
                b.restart_streak = 0
        self.tlm("silent", silent)

    def restart(self, comp: Component, *, automatic: bool) -> None:
        """Re-initialise ``comp``; isolate it after too many automatic restarts."""
        rt = registry_of(self)
        if not comp.is_bound:
            return
        b = binding_of(comp)
        if automatic and b.restart_streak >= self.param("max_restarts"):
            b.isolated = True
            self.event("ISOLATED", clip(comp.name, 32), min(b.restart_streak, 0xFFFF))
            self._publish()
            return
        b.restarts += 1
        b.restart_streak = b.restart_streak + 1 if automatic else 0
        b.last_restart_tick = rt.tick
        b.last_beat = rt.tick
        b.failing = False
        b.isolated = False
        self.tlm_inc("restarts")
        try:
            comp.on_init()
        except Exception as exc:
            rt.count(comp, 2)
            comp.log.exception("on_init raised during restart")
            self.event("RESTART_FAILED", clip(comp.name, 32), clip(f"{type(exc).__name__}: {exc}"))
        else:
            self.event("RESTARTED", clip(comp.name, 32), min(b.restart_streak, 0xFFFF))
        self._publish()

    def _publish(self) -> None:
        if not self.is_bound:
            return
        rt = registry_of(self)
        self.tlm(
            "isolated",
            sum(1 for c in rt.components.values() if c.is_bound and binding_of(c).isolated),
        )

    # ------------------------------------------------------------ commands
    @command(
        "RESTART",
        args=(Arg("component", "str", max_len=32),),
        description="Restart a component now (also lifts isolation).",
        opcode=1,
    )
    def restart_cmd(self, component: str) -> None:
        rt = registry_of(self)
        comp = rt.components.get(component)
        if comp is None:
            raise CommandFailed(FailureCode.NOT_FOUND, f"no component named '{component}'")
        self.restart(comp, automatic=False)


__all__ = ["HEALTH_RATE_GROUP", "HealthMonitor", "SdNotifier"]
