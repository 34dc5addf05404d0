"""The ``mode`` component: NOMINAL/SAFE modes and limit monitors (fault protection).

A :class:`Monitor` watches one telemetry channel once a second, cFS Limit Checker
style: when ``value <op> threshold`` holds for ``persistence`` consecutive samples it
trips once and runs its action: raise an event, start a stored sequence, or enter SAFE.
It re-arms when the condition clears. SAFE entry calls every component's ``on_mode``
(payloads switch off) and every hook added with :meth:`ModeManager.add_mode_hook`;
commands declared ``allowed_in_safe=False`` are refused (NOT_AUTHORISED) until the
ground sends MODE_SAFE_EXIT. Monitors are enabled/disabled with (12,1)/(12,2) and
reported with (12,13) -> (12,14).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from fsw.core.component import Component
from fsw.core.declarations import Channel, Event, Mode, Report, Severity, command
from fsw.core.errors import CommandFailed, DeclarationError, FailureCode
from fsw.core.persistence import clip
from fsw.core.registry import registry_of
from fsw.core.sequencer import Sequencer
from fsw.core.wire import Arg, Array, check_name

MODE_RATE_GROUP = "1Hz"
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


class MonitorAction(IntEnum):
    """What a tripped monitor does."""

    EVENT = 0
    SEQUENCE = 1
    SAFE = 2


_ACTION_ARG = Arg("action", "enum", labels=tuple(a.name for a in MonitorAction))
_MON_IDS = Array("monitor_ids", (Arg("monitor_id", "u16"),))


@dataclass(slots=True, frozen=True)
class Monitor:
    """A limit monitor on a channel (full name, e.g. ``"eps.soc_pct"``).

    >>> Monitor(1, "battery_low", "eps.soc_pct", "<", 15.0, persistence=3,
    ...         action=MonitorAction.SAFE).action.name
    'SAFE'
    """

    monitor_id: int
    name: str
    channel: str
    op: str
    threshold: float
    persistence: int = 1
    action: MonitorAction = MonitorAction.EVENT
    sequence_id: int = 0
    enabled: bool = True

    def __post_init__(self) -> None:
        check_name(self.name, what="monitor")
        object.__setattr__(self, "action", MonitorAction(self.action))
        if not 1 <= self.monitor_id <= 0xFFFF:
            raise DeclarationError(f"monitor {self.name}: id {self.monitor_id} outside 1..65535")
        if self.op not in OPERATORS:
            raise DeclarationError(
                f"monitor {self.name}: operator must be one of {', '.join(OPERATORS)}"
            )
        if not 1 <= self.persistence <= 0xFFFF:
            raise DeclarationError(f"monitor {self.name}: persistence must be 1..65535")
        if self.action == MonitorAction.SEQUENCE and not self.sequence_id:
            raise DeclarationError(f"monitor {self.name}: a SEQUENCE action needs sequence_id")


@dataclass(slots=True)
class _State:
    mon: Monitor
    slot: int
    channel_id: int
    test: Callable[[Any, Any], bool]
    enabled: bool
    count: int = 0
    tripped: bool = False


class ModeManager(Component):
    """Spacecraft mode (NOMINAL/SAFE) and limit monitors with actions."""

    NAME = "mode"
    DESCRIPTION = "Modes NOMINAL/SAFE, limit monitors (event, sequence or SAFE action)."
    TELEMETRY = (
        Channel(
            "mode",
            "enum",
            labels=tuple(m.name for m in Mode),
            description="current spacecraft mode",
            id=4,
        ),
        Channel("safe_entries", "u32", description="times SAFE was entered since boot", id=5),
        Channel("monitor_trips", "u32", description="monitor trips since boot", id=6),
        Channel("monitors_enabled", "u16", description="monitors enabled", id=7),
        Channel(
            "monitors_tripped", "u16", description="monitors tripped now", yellow=(None, 0), id=8
        ),
    )
    EVENTS = (
        Event(
            "SAFE_ENTERED",
            Severity.HIGH,
            "entered SAFE: {reason}",
            (Arg("reason", "str", max_len=100),),
            id=1,
        ),
        Event(
            "SAFE_EXITED",
            Severity.MEDIUM,
            "left SAFE: {reason}",
            (Arg("reason", "str", max_len=100),),
            id=2,
        ),
        Event(
            "MONITOR_TRIPPED",
            Severity.MEDIUM,
            "{monitor}: {channel} = {value:g} {op} {threshold:g} for {samples} samples; "
            "action {action}",
            (
                Arg("monitor", "str", max_len=32),
                Arg("channel", "str", max_len=64),
                Arg("value", "f64"),
                Arg("op", "str", max_len=2),
                Arg("threshold", "f64"),
                Arg("samples", "u16"),
                _ACTION_ARG,
            ),
            id=3,
        ),
        Event(
            "MONITOR_CLEARED",
            Severity.INFO,
            "{monitor}: back within limits",
            (Arg("monitor", "str", max_len=32),),
            id=4,
        ),
        Event(
            "ACTION_FAILED",
            Severity.MEDIUM,
            "{monitor}: action failed: {reason}",
            (Arg("monitor", "str", max_len=32), Arg("reason", "str", max_len=200)),
            id=5,
        ),
    )
    REPORTS = (
        Report(
            "MONITOR_STATUS",
            12,
            14,
            (
                Array(
                    "monitors",
                    (
                        Arg("monitor_id", "u16"),
                        Arg("enabled", "bool"),
                        Arg("tripped", "bool"),
                        Arg("count", "u16"),
                    ),
                ),
            ),
            "status of every limit monitor (answer to (12,13))",
        ),
    )
    RATE_GROUPS = (MODE_RATE_GROUP,)
    TICK_PHASE = 1
    HK_INTERVAL_S = 10.0

    def __init__(self, sequencer: Sequencer, name: str | None = None) -> None:
        super().__init__(name)
        self._seq = sequencer
        self._states: dict[int, _State] = {}
        self._hooks: list[Callable[[Mode], None]] = []

    def on_init(self) -> None:
        self._publish()

    # ------------------------------------------------------------ definitions
    def add_monitor(self, mon: Monitor) -> None:
        """Add a limit monitor (its channel must exist)."""
        rt = registry_of(self)
        if mon.monitor_id in self._states:
            raise DeclarationError(f"monitor id {mon.monitor_id} is already used")
        info = rt.channel_by_name.get(mon.channel)
        if info is None:
            raise DeclarationError(f"monitor {mon.name}: no channel '{mon.channel}'")
        self._states[mon.monitor_id] = _State(
            mon, info.slot, info.id, OPERATORS[mon.op], mon.enabled
        )
        self._publish()

    def monitors(self) -> tuple[Monitor, ...]:
        """Monitors as defined in code."""
        return tuple(s.mon for s in self._states.values())

    def monitor_json(self) -> list[dict[str, Any]]:
        """Monitor definitions for the dictionary."""
        return [
            {
                "monitor_id": s.mon.monitor_id,
                "name": s.mon.name,
                "channel": s.mon.channel,
                "channel_id": s.channel_id,
                "op": s.mon.op,
                "threshold": s.mon.threshold,
                "persistence": s.mon.persistence,
                "action": s.mon.action.name,
                "sequence_id": s.mon.sequence_id,
                "enabled": s.mon.enabled,
            }
            for s in self._states.values()
        ]

    def add_mode_hook(self, hook: Callable[[Mode], None]) -> None:
        """Call ``hook(mode)`` on every mode change (e.g. to switch payload power)."""
        self._hooks.append(hook)

    # ------------------------------------------------------------ modes
    def enter_safe(self, reason: str) -> bool:
        """Enter SAFE (payload off). Returns False if already in SAFE."""
        if self.mode == Mode.SAFE:
            return False
        self.tlm_inc("safe_entries")
        self._set_mode(Mode.SAFE)
        self.event("SAFE_ENTERED", clip(reason, 100))
        return True

    def exit_safe(self, reason: str) -> None:
        """Return to NOMINAL; monitors re-arm."""
        if self.mode != Mode.SAFE:
            raise CommandFailed(
                FailureCode.EXECUTION_ERROR, f"not in SAFE mode (mode is {self.mode.name})"
            )
        for st in self._states.values():
            st.count = 0
            st.tripped = False
        self._set_mode(Mode.NOMINAL)
        self.event("SAFE_EXITED", clip(reason, 100))

    def _set_mode(self, mode: Mode) -> None:
        rt = registry_of(self)
        rt.mode = mode
        self.tlm("mode", int(mode))
        self._publish()
        for comp in list(rt.components.values()):
            try:
                comp.on_mode(mode)
            except Exception:
                comp.log.exception("on_mode(%s) raised", mode.name)
                rt.count(comp, 2)
        for hook in self._hooks:
            try:
                hook(mode)
            except Exception:
                self.log.exception("mode hook %r raised", hook)
                rt.count(self, 2)

    # ------------------------------------------------------------ monitoring
    def on_tick(self, rate_group: str) -> None:
        values = self.binding.values
        for st in self._states.values():
            if not st.enabled:
                continue
            v = values[st.slot]
            if st.test(v, st.mon.threshold):
                if st.count < 0xFFFF:
                    st.count += 1
                if not st.tripped and st.count >= st.mon.persistence:
                    self._trip(st, v)
            else:
                if st.tripped:
                    self.event("MONITOR_CLEARED", st.mon.name)
                    st.tripped = False
                    self._publish()
                st.count = 0

    def _trip(self, st: _State, value: Any) -> None:
        mon = st.mon
        st.tripped = True
        self.tlm_inc("monitor_trips")
        self._publish()
        self.event(
            "MONITOR_TRIPPED",
            mon.name,
            clip(mon.channel, 64),
            float(value),
            mon.op,
            float(mon.threshold),
            min(st.count, 0xFFFF),
            mon.action.name,
        )
        try:
            if mon.action == MonitorAction.SAFE:
                self.enter_safe(f"monitor {mon.name}")
            elif mon.action == MonitorAction.SEQUENCE:
                self._seq.start(mon.sequence_id, f"monitor {mon.name}")
        except CommandFailed as exc:
            self.event("ACTION_FAILED", mon.name, clip(exc.reason))

    def _publish(self) -> None:
        if not self.is_bound:
            return
        self.tlm("mode", int(self.mode))
        self.tlm("monitors_enabled", sum(1 for s in self._states.values() if s.enabled))
        self.tlm("monitors_tripped", sum(1 for s in self._states.values() if s.tripped))

    def _states_for(self, monitor_ids: list[dict[str, Any]]) -> list[_State]:
        out = []
        for m in monitor_ids:
            st = self._states.get(m["monitor_id"])
            if st is None:
                raise CommandFailed(FailureCode.NOT_FOUND, f"no monitor with id {m['monitor_id']}")
            out.append(st)
        return out

    # ------------------------------------------------------------ commands
    @command(
        "MODE_SAFE_ENTER",
        service=200,
        subservice=1,
        description="Enter SAFE mode now (payload off).",
    )
    def safe_enter_cmd(self) -> None:
        if not self.enter_safe("by command"):
            raise CommandFailed(FailureCode.EXECUTION_ERROR, "already in SAFE mode")

    @command(
        "MODE_SAFE_EXIT",
        service=200,
        subservice=2,
        description="Leave SAFE mode for NOMINAL; monitors re-arm.",
    )
    def safe_exit_cmd(self) -> None:
        self.exit_safe("by command")

    @command(
        "MON_ENABLE",
        service=12,
        subservice=1,
        args=(_MON_IDS,),
        description="Enable limit monitors (their persistence count restarts).",
    )
    def enable_cmd(self, monitor_ids: list[dict[str, Any]]) -> None:
        for st in self._states_for(monitor_ids):
            if not st.enabled:
                st.enabled, st.count, st.tripped = True, 0, False
        self._publish()

    @command(
        "MON_DISABLE",
        service=12,
        subservice=2,
        args=(_MON_IDS,),
        description="Disable limit monitors.",
    )
    def disable_cmd(self, monitor_ids: list[dict[str, Any]]) -> None:
        for st in self._states_for(monitor_ids):
            st.enabled, st.count, st.tripped = False, 0, False
        self._publish()

    @command(
        "MON_REPORT",
        service=12,
        subservice=13,
        replies=((12, 14),),
        description="Report every monitor's status in a (12,14).",
    )
    def report_cmd(self) -> None:
        self.send_report(
            "MONITOR_STATUS",
            monitors=[
                {"monitor_id": k, "enabled": s.enabled, "tripped": s.tripped, "count": s.count}
                for k, s in sorted(self._states.items())
            ],
        )


__all__ = ["MODE_RATE_GROUP", "OPERATORS", "ModeManager", "Monitor", "MonitorAction"]
