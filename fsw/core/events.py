"""The ``evt`` component: PUS service 5 event reporting with an on-board filter.

An event becomes a (5,1)..(5,4) report by severity (INFO, LOW, MEDIUM, HIGH) whose data
is the event id (u16) followed by the event's arguments in declaration order. The
filter drops disabled event ids ((5,5) enable, (5,6) disable, (5,7) -> (5,8) list
disabled). A burst limit per event id and second protects the downlink from floods.
Filtered and throttled events are still logged on board and kept in
``FlightSoftware.recent_events``.
"""

from __future__ import annotations

import struct
from typing import Any

from fsw.core.component import Component
from fsw.core.declarations import Channel, Report, Severity, command
from fsw.core.errors import CommandFailed, FailureCode
from fsw.core.registry import EventInfo, Priority, registry_of
from fsw.core.wire import Arg, Array, Dynamic

_EVENT_IDS = Array("event_ids", (Arg("event_id", "u16"),))
_ID = struct.Struct(">H")


def _event_report(sev: Severity) -> Report:
    return Report(
        f"EVENT_{sev.name}",
        5,
        int(sev),
        (Arg("event_id", "u16"), Dynamic("args", "event_args", "event_id")),
        f"{sev.name.lower()} severity event report",
        apid="event",
    )


class EventManager(Component):
    """Turns events into service-5 reports; owns the on-board event filter."""

    NAME = "evt"
    DESCRIPTION = "PUS service 5: event reports by severity, on-board filter, flood limit."
    TELEMETRY = (
        Channel("sent", "u32", description="event reports queued for downlink", id=4),
        Channel("filtered", "u32", description="events dropped by the on-board filter", id=5),
        Channel("throttled", "u32", description="events dropped by the per-id burst limit", id=6),
        Channel("disabled", "u16", description="event ids currently disabled", id=7),
    )
    REPORTS = (
        *(_event_report(s) for s in Severity),
        Report("DISABLED_LIST", 5, 8, (_EVENT_IDS,), "event ids disabled on board"),
    )
    HK_INTERVAL_S = 10.0

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name)
        self._disabled: set[int] = set()
        self._window: dict[int, list[float]] = {}

    def on_init(self) -> None:
        self._window.clear()

    def sink(self, info: EventInfo, args: tuple[Any, ...]) -> None:
        """Called by the runtime for every event raised on board."""
        if not self.is_bound:
            return
        rt = registry_of(self)
        if info.id in self._disabled:
            self.tlm_inc("filtered")
            return
        now = rt.clock.now_tai()
        win = self._window.get(info.id)
        if win is None or now - win[0] >= 1.0:
            self._window[info.id] = [now, 1.0]
        elif win[1] >= rt.config.event_burst_per_s:
            self.tlm_inc("throttled")
            return
        else:
            win[1] += 1.0
        data = _ID.pack(info.id) + b"".join(
            a.pack(v) for a, v in zip(info.event.args, args, strict=True)
        )
        rt.send_tm(
            5, int(info.event.severity), data, apid=rt.config.event_apid, priority=Priority.EVENT
        )
        self.tlm_inc("sent")

    def disabled_ids(self) -> tuple[int, ...]:
        """Event ids the filter drops, sorted."""
        return tuple(sorted(self._disabled))

    def _check_ids(self, event_ids: list[dict[str, Any]]) -> list[int]:
        rt = registry_of(self)
        ids = [e["event_id"] for e in event_ids]
        unknown = [i for i in ids if i not in rt.event_by_id]
        if unknown:
            raise CommandFailed(
                FailureCode.NOT_FOUND,
                "unknown event id(s) " + ", ".join(f"0x{i:04X}" for i in unknown),
            )
        return ids

    @command(
        "EVT_ENABLE",
        service=5,
        subservice=5,
        args=(_EVENT_IDS,),
        description="Let these event ids reach the ground again.",
    )
    def enable(self, event_ids: list[dict[str, Any]]) -> None:
        self._disabled.difference_update(self._check_ids(event_ids))
        self.tlm("disabled", len(self._disabled))

    @command(
        "EVT_DISABLE",
        service=5,
        subservice=6,
        args=(_EVENT_IDS,),
        description="Stop these event ids at the on-board filter.",
    )
    def disable(self, event_ids: list[dict[str, Any]]) -> None:
        self._disabled.update(self._check_ids(event_ids))
        self.tlm("disabled", len(self._disabled))

    @command(
        "EVT_REPORT_DISABLED",
        service=5,
        subservice=7,
        replies=((5, 8),),
        description="Report the disabled event ids in a (5,8).",
    )
    def report_disabled(self) -> None:
        self.send_report("DISABLED_LIST", event_ids=[{"event_id": i} for i in self.disabled_ids()])


__all__ = ["EventManager"]
