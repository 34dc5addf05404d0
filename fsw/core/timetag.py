"""The ``sched`` component: PUS service 11 time-based schedule.

(11,4) inserts activities, each a release time (CUC 4+2, TAI) and a whole TC packet;
when the release time comes the TC is executed as if just uplinked (its own service-1
reports follow). (11,5) deletes by request id (the TC's first 4 header bytes), (11,16)
reports the schedule in (11,10) packets, (11,1)/(11,2) enable/disable releasing.
The schedule is saved to storage after every change; at boot, activities whose release
time passed while the software was off are dropped and reported (``sched.EXPIRED``).
Each activity keeps the dictionary hash it was inserted under: after a software update
that changed the dictionary, a saved activity is refused at release with (1,2)
``DICTIONARY_MISMATCH`` instead of running a raw opcode that may mean something else.
Activities saved before the hash was kept (schedule format 1) cannot be told apart and
run as before.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any, Protocol

from fsw.ccsds import CcsdsError, CrcError, PusTc
from fsw.core.component import Component
from fsw.core.declarations import Channel, Event, Report, Severity, command
from fsw.core.errors import CommandFailed, FailureCode
from fsw.core.persistence import Persistence
from fsw.core.registry import registry_of
from fsw.core.wire import Arg, Array

STORE_KEY = "schedule"


class Execute(Protocol):
    """How a stored TC is run: the dispatcher's ``execute``."""

    def __call__(self, raw: bytes, source: str, *, dict_hash: int = 0) -> None: ...


MAX_ACTIVITIES = 512
SCHED_RATE_GROUP = "10Hz"
#: An (11,10) report carries at most this many bytes of activities; more are split.
MAX_REPORT_BYTES = 1800

_ACT_FIELDS = (
    Arg("release_time", "cuc", units="s", description="TAI, CUC 4+2"),
    Arg("tc", "packet", description="the whole TC space packet"),
)
_ACTIVITIES = Array("activities", _ACT_FIELDS, max_count=MAX_ACTIVITIES)
_ACTIVITIES_REPORT = Array("activities", _ACT_FIELDS)


@dataclass(slots=True, frozen=True, order=True)
class Activity:
    """One scheduled TC: release time (TAI seconds), the packet bytes and the dictionary
    hash it was checked under (0: not known)."""

    release_tai: float
    order: int
    tc: bytes
    dict_hash: int = 0

    @property
    def request_id(self) -> int:
        return int.from_bytes(self.tc[:4], "big")


def check_tc(raw: bytes, tc_apid: int, what: str) -> PusTc:
    """Decode an embedded TC or fail with a code an operator understands."""
    try:
        tc = PusTc.decode(raw)
    except CrcError as exc:
        raise CommandFailed(FailureCode.BAD_CHECKSUM, f"{what}: {exc.reason}") from None
    except CcsdsError as exc:
        raise CommandFailed(FailureCode.MALFORMED, f"{what}: {exc.reason}") from None
    if tc.apid != tc_apid:
        raise CommandFailed(
            FailureCode.ILLEGAL_APID,
            f"{what}: APID {tc.apid} is not served here (TC APID is {tc_apid})",
        )
    return tc


class TimeTagSchedule(Component):
    """Releases time-tagged TCs at their time (PUS service 11); persisted."""

    NAME = "sched"
    DESCRIPTION = "PUS service 11: time-tagged TCs released at their TAI time; persisted."
    TELEMETRY = (
        Channel("enabled", "bool", description="release function enabled", id=4),
        Channel("activities", "u16", description="TCs waiting in the schedule", id=5),
        Channel("released", "u32", description="TCs released since boot", id=6),
    )
    EVENTS = (
        Event(
            "EXPIRED",
            Severity.LOW,
            "{count} scheduled TCs expired while the software was off; dropped",
            (Arg("count", "u16"),),
            id=1,
        ),
        Event(
            "RELEASED",
            Severity.INFO,
            "released TC {request_id:08X}",
            (Arg("request_id", "u32"),),
            id=2,
        ),
    )
    REPORTS = (
        Report(
            "DETAIL",
            11,
            10,
            (_ACTIVITIES_REPORT,),
            "scheduled activities (answer to (11,16); long schedules span packets)",
        ),
    )
    RATE_GROUPS = (SCHED_RATE_GROUP,)
    HK_INTERVAL_S = 10.0

    def __init__(
        self,
        storage: Persistence,
        execute: Execute,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self._storage = storage
        self._execute = execute
        self._acts: list[Activity] = []
        self._enabled = True
        self._order = 0

    # ------------------------------------------------------------ persistence
    def load_saved(self) -> None:
        """Load the saved schedule (at boot); drop activities already due."""
        doc = self._storage.load_json(STORE_KEY)
        if not isinstance(doc, dict):
            self._publish()
            return
        now = self.clock.now_tai()
        acts: list[Activity] = []
        expired = 0
        for item in doc.get("activities", []):
            try:
                t = float(item["t_tai"])
                tc = bytes.fromhex(item["tc"])
                dict_hash = int(item.get("dict_hash", 0))
            except (KeyError, TypeError, ValueError, AttributeError):
                continue
            if t <= now:
                expired += 1
                continue
            acts.append(Activity(t, self._next_order(), tc, dict_hash))
        self._acts = sorted(acts)
        self._enabled = bool(doc.get("enabled", True))
        if expired:
            self.event("EXPIRED", min(expired, 0xFFFF))
            self._save()
        self._publish()

    def _save(self) -> None:
        self._storage.save_json(
            STORE_KEY,
            {
                "version": 2,
                "enabled": self._enabled,
                "activities": [
                    {"t_tai": a.release_tai, "tc": a.tc.hex(), "dict_hash": a.dict_hash}
                    for a in self._acts
                ],
            },
        )

    def _next_order(self) -> int:
        self._order += 1
        return self._order

    def _publish(self) -> None:
        self.tlm("enabled", self._enabled)
        self.tlm("activities", len(self._acts))

    # ------------------------------------------------------------ API
    def activities(self) -> tuple[Activity, ...]:
        """Scheduled activities in release order."""
        return tuple(self._acts)

    def insert(self, release_tai: float, tc: bytes) -> None:
        """Schedule one TC (same checks as (11,4))."""
        self._insert([(release_tai, tc)])

    def _insert(self, items: list[tuple[float, bytes]]) -> None:
        rt = registry_of(self)
        now = rt.clock.now_tai()
        if len(self._acts) + len(items) > MAX_ACTIVITIES:
            raise CommandFailed(
                FailureCode.BUSY, f"schedule full: {len(self._acts)} of {MAX_ACTIVITIES} used"
            )
        for n, (t, tc) in enumerate(items, start=1):
            check_tc(tc, rt.config.tc_apid, f"activity {n}")
            if t <= now:
                raise CommandFailed(
                    FailureCode.ARG_OUT_OF_RANGE,
                    f"activity {n}: release time {t:.3f} is not after now ({now:.3f} TAI)",
                )
        for t, tc in items:
            bisect.insort(self._acts, Activity(t, self._next_order(), tc, rt.dict_hash))
        self._save()
        self._publish()

    def on_tick(self, rate_group: str) -> None:
        acts = self._acts
        if not (self._enabled and acts):
            return
        now = self.clock.now_tai()
        if acts[0].release_tai > now:
            return
        due: list[Activity] = []
        while acts and acts[0].release_tai <= now:
            due.append(acts.pop(0))
        self._save()
        self._publish()
        for a in due:
            self.tlm_inc("released")
            self.event("RELEASED", a.request_id)
            self._execute(a.tc, "sched", dict_hash=a.dict_hash)

    # ------------------------------------------------------------ commands
    @command(
        "SCHED_ENABLE", service=11, subservice=1, description="Enable the release of scheduled TCs."
    )
    def enable(self) -> None:
        self._enabled = True
        self._save()
        self._publish()

    @command(
        "SCHED_DISABLE",
        service=11,
        subservice=2,
        description="Disable releasing (activities stay; due ones wait).",
    )
    def disable(self) -> None:
        self._enabled = False
        self._save()
        self._publish()

    @command(
        "SCHED_INSERT",
        service=11,
        subservice=4,
        args=(_ACTIVITIES,),
        description="Insert time-tagged TCs (all or nothing).",
    )
    def insert_cmd(self, activities: list[dict[str, Any]]) -> None:
        self._insert([(a["release_time"], a["tc"]) for a in activities])

    @command(
        "SCHED_DELETE",
        service=11,
        subservice=5,
        args=(Array("requests", (Arg("request_id", "u32"),)),),
        description="Delete activities by request id (all named ids must exist).",
    )
    def delete(self, requests: list[dict[str, Any]]) -> None:
        ids = {r["request_id"] for r in requests}
        present = {a.request_id for a in self._acts}
        missing = sorted(ids - present)
        if missing:
            raise CommandFailed(
                FailureCode.NOT_FOUND,
                "no activity with request id " + ", ".join(f"{i:08X}" for i in missing),
            )
        self._acts = [a for a in self._acts if a.request_id not in ids]
        self._save()
        self._publish()

    @command(
        "SCHED_REPORT",
        service=11,
        subservice=16,
        replies=((11, 10),),
        description="Report every activity in (11,10) packets.",
    )
    def report_all(self) -> None:
        chunk: list[dict[str, Any]] = []
        size = 0
        for a in self._acts:
            if chunk and size + 6 + len(a.tc) > MAX_REPORT_BYTES:
                self.send_report("DETAIL", activities=chunk)
                chunk, size = [], 0
            chunk.append({"release_time": a.release_tai, "tc": a.tc})
            size += 6 + len(a.tc)
        self.send_report("DETAIL", activities=chunk)


__all__ = ["STORE_KEY", "Activity", "Execute", "TimeTagSchedule", "check_tc"]
