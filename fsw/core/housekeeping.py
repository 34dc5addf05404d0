"""The ``hk`` component: PUS service 3 housekeeping.

A report structure (SID) is an ordered list of channel ids and a collection interval.
A (3,25) report is the SID (u16) followed by the current value of each channel, each
encoded with its channel's wire type, in order. Reports defined in code (the 1 Hz
``core`` report and one per component) are in the dictionary; the ground may create
more with (3,1) and read any structure back with (3,9) -> (3,10).

Intervals are in milliseconds on the wire and must be whole multiples of the
housekeeping cycle (100 ms).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from fsw.core.component import Component
from fsw.core.declarations import Channel, Report, command
from fsw.core.errors import CommandFailed, DeclarationError, FailureCode
from fsw.core.registry import Priority, Registry, registry_of
from fsw.core.wire import Arg, Array, Dynamic, struct_format

HK_RATE_GROUP = "10Hz"
MAX_REPORTS = 128
MAX_CHANNELS_PER_REPORT = 512

_SID = Arg("sid", "u16", description="report structure id")
_SIDS = Array("sids", (_SID,))
_INTERVAL = Arg("interval_ms", "u32", min=1, units="ms", description="collection interval")
_CHANNEL_IDS = Array("channel_ids", (Arg("channel_id", "u16"),), max_count=MAX_CHANNELS_PER_REPORT)


@dataclass(slots=True)
class HkReport:
    """One report structure and its generation state."""

    sid: int
    name: str
    interval_ms: int
    enabled: bool
    channel_ids: tuple[int, ...]
    predefined: bool
    countdown: int = 0
    _struct: struct.Struct = field(default=struct.Struct(">H"), repr=False)
    _get: Callable[[list[Any]], tuple[Any, ...]] = field(default=lambda v: (), repr=False)

    def compile(self, rt: Registry) -> None:
        infos = [rt.channel_by_id[c] for c in self.channel_ids]
        fmt = "".join(struct_format(i.channel.type, i.channel.arg.base) for i in infos)
        self._struct = struct.Struct(">H" + fmt)
        slots = [i.slot for i in infos]
        if not slots:
            self._get = lambda v: ()
        elif len(slots) == 1:
            s0 = slots[0]
            self._get = lambda v: (v[s0],)
        else:
            self._get = itemgetter(*slots)

    def pack(self, values: list[Any]) -> bytes:
        """App data of a (3,25) report: SID then the channel values."""
        return self._struct.pack(self.sid, *self._get(values))

    def to_json(self) -> dict[str, Any]:
        return {
            "sid": self.sid,
            "name": self.name,
            "interval_s": self.interval_ms / 1000.0,
            "enabled": self.enabled,
            "channels": list(self.channel_ids),
        }


class Housekeeping(Component):
    """Periodic and one-shot housekeeping reports (PUS service 3)."""

    NAME = "hk"
    DESCRIPTION = "PUS service 3: report structures of channels, periodic and one-shot."
    TELEMETRY = (
        Channel("reports_sent", "u32", description="(3,25) reports queued", id=4),
        Channel("defined", "u16", description="report structures defined", id=5),
        Channel("enabled", "u16", description="report structures generating periodically", id=6),
    )
    REPORTS = (
        Report(
            "STRUCTURE",
            3,
            10,
            (_SID, Arg("enabled", "bool"), _INTERVAL, _CHANNEL_IDS),
            "a report structure (answer to (3,9))",
        ),
        Report(
            "HK_REPORT",
            3,
            25,
            (_SID, Dynamic("values", "hk_values", "sid")),
            "housekeeping values of structure sid",
            apid="hk",
        ),
    )
    RATE_GROUPS = (HK_RATE_GROUP,)
    TICK_PHASE = 1
    HK_INTERVAL_S = 10.0

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name)
        self._reports: dict[int, HkReport] = {}
        self._defaults: list[dict[str, Any]] = []

    @property
    def cycle_ms(self) -> int:
        """Length of one housekeeping cycle; intervals are whole multiples of it."""
        cfg = registry_of(self).config
        return round(cfg.period_ticks(HK_RATE_GROUP) * cfg.base_period_s * 1000)

    def on_init(self) -> None:
        for r in self._reports.values():
            r.countdown = self._ticks(r.interval_ms)
        self._publish()

    # ------------------------------------------------------------ definitions
    def define(
        self,
        sid: int,
        name: str,
        interval_s: float,
        channels: Sequence[str | int],
        *,
        enabled: bool = True,
    ) -> HkReport:
        """Define a report in code (it goes into the dictionary). Channels by name or id.

        >>> fs.hk.define(10, "power", 1.0, ["eps.soc_pct", "eps.bus_v"])  # doctest: +SKIP
        """
        rt = registry_of(self)
        if sid in self._reports:
            raise DeclarationError(f"housekeeping sid {sid} is already defined")
        ids: list[int] = []
        for ch in channels:
            info = rt.channel_by_id.get(ch) if isinstance(ch, int) else rt.channel_by_name.get(ch)
            if info is None:
                raise DeclarationError(f"housekeeping report {name}: no channel {ch!r}")
            ids.append(info.id)
        interval_ms = round(interval_s * 1000)
        self._check_interval(interval_ms, DeclarationError)
        rep = self._add(sid, name, interval_ms, ids, enabled=enabled, predefined=True)
        self._defaults.append(rep.to_json())
        return rep

    def default_structures(self) -> list[dict[str, Any]]:
        """Reports defined in code, as they were defined (for the dictionary)."""
        return [dict(d) for d in self._defaults]

    def report(self, sid: int) -> HkReport:
        """The current structure of ``sid`` (``CommandFailed`` NOT_FOUND if unknown)."""
        rep = self._reports.get(sid)
        if rep is None:
            raise CommandFailed(FailureCode.NOT_FOUND, f"no housekeeping report sid {sid}")
        return rep

    def _add(
        self,
        sid: int,
        name: str,
        interval_ms: int,
        ids: Sequence[int],
        *,
        enabled: bool,
        predefined: bool,
    ) -> HkReport:
        rep = HkReport(sid, name, interval_ms, enabled, tuple(ids), predefined)
        rep.compile(registry_of(self))
        rep.countdown = self._ticks(interval_ms)
        self._reports[sid] = rep
        self._publish()
        return rep

    def _ticks(self, interval_ms: int) -> int:
        return max(1, interval_ms // self.cycle_ms)

    def _check_interval(self, interval_ms: int, err: Callable[[str], Exception]) -> None:
        cyc = self.cycle_ms
        if interval_ms < cyc or interval_ms % cyc:
            raise err(f"interval {interval_ms} ms is not a whole multiple of {cyc} ms")

    def _publish(self) -> None:
        if not self.is_bound:
            return
        self.tlm("defined", len(self._reports))
        self.tlm("enabled", sum(1 for r in self._reports.values() if r.enabled))

    # ------------------------------------------------------------ periodic
    def on_tick(self, rate_group: str) -> None:
        rt = registry_of(self)
        values = rt.values
        sent = 0
        for rep in self._reports.values():
            if not rep.enabled:
                continue
            rep.countdown -= 1
            if rep.countdown <= 0:
                rep.countdown = self._ticks(rep.interval_ms)
                rt.send_tm(3, 25, rep.pack(values), apid=rt.config.hk_apid, priority=Priority.HK)
                sent += 1
        if sent:
            self.tlm_inc("reports_sent", sent)

    # ------------------------------------------------------------ commands
    def _sids(self, sids: list[dict[str, Any]]) -> list[HkReport]:
        return [self.report(s["sid"]) for s in sids]

    @command(
        "HK_CREATE",
        service=3,
        subservice=1,
        args=(_SID, _INTERVAL, _CHANNEL_IDS),
        description="Create a report structure (created disabled).",
    )
    def create(self, sid: int, interval_ms: int, channel_ids: list[dict[str, Any]]) -> None:
        rt = registry_of(self)
        if sid in self._reports:
            raise CommandFailed(
                FailureCode.ARG_OUT_OF_RANGE, f"sid {sid} already exists; delete it first"
            )
        if len(self._reports) >= MAX_REPORTS:
            raise CommandFailed(FailureCode.BUSY, f"report table full ({MAX_REPORTS})")
        self._check_interval(interval_ms, lambda m: CommandFailed(FailureCode.ARG_OUT_OF_RANGE, m))
        ids = [c["channel_id"] for c in channel_ids]
        unknown = [i for i in ids if i not in rt.channel_by_id]
        if unknown:
            raise CommandFailed(
                FailureCode.NOT_FOUND,
                "unknown channel id(s) " + ", ".join(f"0x{i:04X}" for i in unknown),
            )
        self._add(sid, f"sid{sid}", interval_ms, ids, enabled=False, predefined=False)

    @command(
        "HK_DELETE",
        service=3,
        subservice=3,
        args=(_SIDS,),
        description="Delete disabled report structures.",
    )
    def delete(self, sids: list[dict[str, Any]]) -> None:
        reps = self._sids(sids)
        on = [r.sid for r in reps if r.enabled]
        if on:
            raise CommandFailed(
                FailureCode.EXECUTION_ERROR, f"disable sid(s) {on} before deleting them"
            )
        for r in reps:
            self._reports.pop(r.sid, None)
        self._publish()

    @command(
        "HK_ENABLE",
        service=3,
        subservice=5,
        args=(_SIDS,),
        description="Start periodic generation of these reports.",
    )
    def enable(self, sids: list[dict[str, Any]]) -> None:
        for r in self._sids(sids):
            if not r.enabled:
                r.enabled = True
                r.countdown = self._ticks(r.interval_ms)
        self._publish()

    @command(
        "HK_DISABLE",
        service=3,
        subservice=6,
        args=(_SIDS,),
        description="Stop periodic generation of these reports.",
    )
    def disable(self, sids: list[dict[str, Any]]) -> None:
        for r in self._sids(sids):
            r.enabled = False
        self._publish()

    @command(
        "HK_REPORT_STRUCTURE",
        service=3,
        subservice=9,
        args=(_SIDS,),
        replies=((3, 10),),
        description="Report these structures, one (3,10) each.",
    )
    def report_structure(self, sids: list[dict[str, Any]]) -> None:
        for r in self._sids(sids):
            self.send_report(
                "STRUCTURE",
                sid=r.sid,
                enabled=r.enabled,
                interval_ms=r.interval_ms,
                channel_ids=[{"channel_id": c} for c in r.channel_ids],
            )

    @command(
        "HK_ONE_SHOT",
        service=3,
        subservice=27,
        args=(_SIDS,),
        replies=((3, 25),),
        description="Generate these reports once, now.",
    )
    def one_shot(self, sids: list[dict[str, Any]]) -> None:
        rt = registry_of(self)
        reps = self._sids(sids)
        for r in reps:
            rt.send_tm(3, 25, r.pack(rt.values), apid=rt.config.hk_apid, priority=Priority.REALTIME)
        self.tlm_inc("reports_sent", len(reps))

    @command(
        "HK_MODIFY_INTERVAL",
        service=3,
        subservice=31,
        args=(Array("reports", (_SID, _INTERVAL)),),
        description="Change the collection interval of report structures.",
    )
    def modify_interval(self, reports: list[dict[str, Any]]) -> None:
        pairs = [(self.report(r["sid"]), r["interval_ms"]) for r in reports]
        for _, ms in pairs:
            self._check_interval(ms, lambda m: CommandFailed(FailureCode.ARG_OUT_OF_RANGE, m))
        for rep, ms in pairs:
            rep.interval_ms = ms
            rep.countdown = self._ticks(ms)


__all__ = ["HK_RATE_GROUP", "HkReport", "Housekeeping"]
