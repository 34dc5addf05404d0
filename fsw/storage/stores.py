"""The ``stores`` component: PUS-C service 15, on-board storage and retrieval.

Every TM packet the flight makes passes through :meth:`PacketStores.route` (the
registry's TM tap): routing rules, checked in order, name the store a packet goes to by
APID, service and subservice (first match wins; no match: not stored, counted
``unrouted``). The default rules keep housekeeping in ``hk``, the payload's results in
``sci`` and everything else (events, verification, replies) in ``evt``.

Out of contact, housekeeping goes only to its store (a realtime copy would be stale by
AOS); events and verification are queued for realtime too, so they go first at AOS. In
contact every packet is stored and sent. When the data of a store not yet played back
nears its capacity (``decimate_at``), housekeeping is *decimated*: one report in
``decimate_keep`` of each kind is kept, the others are counted, never silently lost.

Retrieval. An *open retrieval* (15,14) plays a store back from where the last one
stopped; the default AOS sequence starts it for every store, the radio carries it on the
playback virtual channel after everything else, and an LOS simply stops the radio pulling
(the position is kept, and saved, so the next pass resumes). A *by-time-range retrieval*
(15,9) plays back one span (a ground asking for a gap); it goes before the open ones.
(15,17) aborts it, (15,16) suspends an open one, (15,11) deletes up to a time, (15,12)
asks for the (15,13) status report, (15,1)/(15,2) enable and disable storing.

>>> from fsw.app import build_flight
>>> fs = build_flight()
>>> _ = fs.step(5.0)
>>> stores = fs.component("stores")
>>> [(s.spec.name, s.store.record_count > 0) for s in stores.stores.values()]
[('evt', True), ('sci', False), ('hk', True)]
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsw.core import (
    Arg,
    Channel,
    CommandFailed,
    Component,
    Event,
    FailureCode,
    Param,
    Report,
    Severity,
    command,
)
from fsw.core.persistence import Persistence
from fsw.core.registry import Priority, registry_of
from fsw.core.wire import Array
from fsw.storage.errors import StorageError
from fsw.storage.packetstore import KIND_PACKET, KIND_SENT, Cursor, PacketStore

#: PUS-C TM: 6-byte primary header + 7 fixed secondary header bytes + 6-byte CUC time.
_TM_APP_DATA = 19
_HK_SERVICE = 3
_STATE_KEY = "stores"
_SAVE_EVERY_S = 60.0


@dataclass(slots=True, frozen=True)
class StoreSpec:
    """One packet store's configuration.

    ``decimate_at``: share of the capacity held by data not yet played back at which
    housekeeping decimation starts (1.0: never); ``decimate_keep``: keep one HK report of
    each kind in this many while decimating.
    """

    store_id: int
    name: str
    capacity_bytes: int
    circular: bool = True
    segment_bytes: int = 1 << 20
    decimate_at: float = 0.8
    decimate_keep: int = 4

    def __post_init__(self) -> None:
        if not 1 <= self.store_id <= 255:
            raise StorageError(f"store {self.name}: id {self.store_id} outside 1..255")
        if not 0.0 < self.decimate_at <= 1.0 or self.decimate_keep < 2:
            raise StorageError(f"store {self.name}: decimate_at in (0, 1], decimate_keep >= 2")


@dataclass(slots=True, frozen=True)
class Route:
    """A routing rule: packets matching every given field go to ``store``."""

    store: str
    apid: int | None = None
    service: int | None = None
    subservice: int | None = None

    def matches(self, apid: int, service: int, subservice: int) -> bool:
        return (
            (self.apid is None or self.apid == apid)
            and (self.service is None or self.service == service)
            and (self.subservice is None or self.subservice == subservice)
        )


MIB = 1 << 20
#: The default stores (sizes are design choices: a 1-orbit default SITL run stored 14,159
#: HK packets in 1.29 MB, so ``hk`` holds about 50 orbits; docs/components/stores.md).
DEFAULT_STORES: tuple[StoreSpec, ...] = (
    StoreSpec(1, "evt", 16 * MIB, circular=False, decimate_at=1.0),
    StoreSpec(2, "sci", 16 * MIB, circular=False, decimate_at=1.0),
    StoreSpec(3, "hk", 64 * MIB, circular=True, decimate_at=0.8, decimate_keep=4),
)
DEFAULT_ROUTES: tuple[Route, ...] = (
    Route("hk", service=3, subservice=25),
    Route("sci", service=140),
    Route("evt"),
)


@dataclass(slots=True)
class Retrieval:
    """A playback in progress: from ``cursor`` up to ``t_to``."""

    cursor: Cursor
    t_to: float = math.inf
    packets: int = 0
    t_from: float = -math.inf


class _Store:
    """A store, its counters and its retrievals."""

    def __init__(self, spec: StoreSpec, store: PacketStore) -> None:
        self.spec = spec
        self.store = store
        self.enabled = True
        self.decimating = False
        self.decimate_counts: dict[tuple[int, bytes], int] = {}
        self.open: Retrieval | None = None
        #: Where the open retrieval stands, also when suspended (None: never played back).
        self.open_cursor: Cursor | None = None
        self.by_time: Retrieval | None = None
        self.counts = dict.fromkeys(("decimated", "dumped", "disabled_skips"), 0)
        self.full_reported = False
        self.write_errors_seen = 0

    def backlog_bytes(self) -> int:
        """Bytes not yet played back by the open retrieval."""
        cur = self.open_cursor
        total = 0
        for seg in self.store.segments:
            if cur is None or seg.number > cur.segment:
                total += seg.size
            elif seg.number == cur.segment:
                total += max(0, seg.size - cur.offset)
        return total


_STORE_ID = Arg("store_id", "u8", description="packet store id (0: every store)")
_T = Arg("t_tai", "cuc")
_STATUS = Array(
    "stores",
    (
        Arg("store_id", "u8"),
        Arg("fill_pct", "f32", units="%"),
        Arg("backlog_pct", "f32", units="%", description="not yet played back"),
        Arg("packets", "u32"),
        Arg("oldest", "cuc"),
        Arg("newest", "cuc"),
        Arg("stored", "u32"),
        Arg("dumped", "u32"),
        Arg("overwritten", "u32"),
        Arg("decimated", "u32"),
        Arg("refused", "u32"),
        Arg("enabled", "bool"),
        Arg("open_retrieval", "bool"),
        Arg("time_retrieval", "bool"),
    ),
    count="u8",
    max_count=255,
)


class PacketStores(Component):
    """Packet stores, routing, decimation and playback (PUS-C service 15)."""

    NAME = "stores"
    DESCRIPTION = "PUS-C service 15: packet stores in files, routing, decimation, playback."
    TELEMETRY = (
        Channel("stored", "u32", description="packets stored (every store)", id=4),
        Channel("dumped", "u32", description="packets played back", id=5),
        Channel(
            "overwritten",
            "u32",
            description="packets overwritten by circular stores before being played back",
            id=6,
        ),
        Channel("decimated", "u32", description="HK reports not stored by decimation", id=7),
        Channel("refused", "u32", description="packets refused (a full store, I/O)", id=8),
        Channel("unrouted", "u32", description="packets no routing rule stores", id=9),
        Channel(
            "fill_max_pct",
            "f32",
            units="%",
            description="fill of the fullest store",
            yellow=(None, 80.0),
            red=(None, 95.0),
            valid=(0.0, 100.0),
            id=10,
        ),
        Channel("retrievals", "u8", description="playbacks in progress", id=11),
        Channel("contact", "bool", description="the radio reports a ground contact", id=12),
        Channel("torn_records", "u32", description="records cut by a reset, found at boot", id=13),
    )
    EVENTS = (
        Event(
            "STORE_FULL",
            Severity.MEDIUM,
            "store {name} is full: new packets are refused until it is dumped and deleted",
            (Arg("name", "str", max_len=16),),
            id=1,
        ),
        Event(
            "DECIMATING",
            Severity.LOW,
            "store {name} backlog {backlog_pct:.0f} %: housekeeping kept 1 in {keep}",
            (Arg("name", "str", max_len=16), Arg("backlog_pct", "f32"), Arg("keep", "u8")),
            id=2,
        ),
        Event(
            "DECIMATION_ENDED",
            Severity.INFO,
            "store {name}: decimation ended, {decimated} HK reports not stored so far",
            (Arg("name", "str", max_len=16), Arg("decimated", "u32")),
            id=3,
        ),
        Event(
            "DUMP_DONE",
            Severity.INFO,
            "store {name}: time-range playback done, {packets} packets",
            (Arg("name", "str", max_len=16), Arg("packets", "u32")),
            id=4,
        ),
        Event(
            "STORE_REPAIRED",
            Severity.MEDIUM,
            "store {name} at boot: {torn} torn records cut, {corrupt_bytes} damaged bytes skipped",
            (Arg("name", "str", max_len=16), Arg("torn", "u32"), Arg("corrupt_bytes", "u32")),
            id=5,
        ),
        Event(
            "STORE_ERROR",
            Severity.HIGH,
            "store {name}: {reason}",
            (Arg("name", "str", max_len=16), Arg("reason", "str", max_len=120)),
            id=6,
        ),
    )
    REPORTS = (
        Report(
            "STATUS",
            15,
            13,
            (_STATUS,),
            "packet store status (answer to (15,12))",
        ),
    )
    PARAMETERS = (
        Param(
            "aos_dump",
            "bool",
            default=True,
            description="the default AOS sequence: at every AOS start (or resume) the open "
            "playback of every store; at LOS it stops where it stands",
            id=1,
        ),
    )
    RATE_GROUPS = ("1Hz",)
    HK_INTERVAL_S = 10.0

    def __init__(
        self,
        root: Path | None,
        persistence: Persistence,
        specs: Sequence[StoreSpec] = DEFAULT_STORES,
        routes: Sequence[Route] = DEFAULT_ROUTES,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        #: Without a root the stores live in a temporary directory removed with the
        #: component (a flight built without storage, as tests and doctests do).
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="gnomon-stores-")
            root = Path(self._tmp.name)
        self.root = root
        self._persist = persistence
        self.routes = tuple(routes)
        names = [s.name for s in specs]
        if len(set(names)) != len(names) or len({s.store_id for s in specs}) != len(specs):
            raise StorageError("store names and ids must be unique")
        for r in self.routes:
            if r.store not in names:
                raise StorageError(f"routing rule names an unknown store {r.store!r}")
        self.stores: dict[int, _Store] = {}
        for spec in sorted(specs, key=lambda s: s.store_id):
            st = PacketStore(
                root / spec.name,
                capacity_bytes=spec.capacity_bytes,
                segment_bytes=min(spec.segment_bytes, spec.capacity_bytes),
                circular=spec.circular,
            )
            self.stores[spec.store_id] = _Store(spec, st)
        self._by_name = {s.spec.name: s for s in self.stores.values()}
        self._route_cache: dict[tuple[int, int, int], _Store | None] = {}
        self.in_contact = True
        self._last_save = -math.inf
        self._dirty = False
        self._restore()

    # ------------------------------------------------------------------ lifecycle
    def _restore(self) -> None:
        """Enable flags and playback positions saved before the last reset."""
        doc = self._persist.load_json(_STATE_KEY)
        if not isinstance(doc, dict):
            return
        for key, item in (doc.get("stores") or {}).items():
            st = self._by_name.get(key)
            if st is None or not isinstance(item, dict):
                continue
            st.enabled = bool(item.get("enabled", True))
            cur = item.get("open_cursor")
            if isinstance(cur, list) and len(cur) == 2:
                st.open_cursor = Cursor(int(cur[0]), int(cur[1]))

    def _save(self) -> None:
        doc = {
            "version": 1,
            "stores": {
                st.spec.name: {
                    "enabled": st.enabled,
                    "open_cursor": (
                        None
                        if st.open_cursor is None
                        else [st.open_cursor.segment, st.open_cursor.offset]
                    ),
                }
                for st in self.stores.values()
            },
        }
        self._persist.save_json(_STATE_KEY, doc)
        self._dirty = False

    def on_init(self) -> None:
        registry_of(self).tm_tap = self.route
        torn = 0
        for st in self.stores.values():
            rep = st.store.opened
            torn += rep.torn_records
            if rep.torn_records or rep.corrupt_bytes or rep.dropped_segments:
                self.event(
                    "STORE_REPAIRED",
                    st.spec.name,
                    rep.torn_records,
                    min(rep.corrupt_bytes, 0xFFFF_FFFF),
                )
        self.tlm("torn_records", torn)
        self._publish()

    def close(self) -> None:
        """Save positions and close every store (a clean shutdown)."""
        self._save_quietly()
        for st in self.stores.values():
            st.store.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # ------------------------------------------------------------------ storing
    def _store_for(self, apid: int, service: int, subservice: int) -> _Store | None:
        key = (apid, service, subservice)
        try:
            return self._route_cache[key]
        except KeyError:
            pass
        found = next((r for r in self.routes if r.matches(apid, service, subservice)), None)
        st = None if found is None else self._by_name[found.store]
        self._route_cache[key] = st
        return st

    def route(self, priority: Priority, raw: bytes, t_tai: float) -> bool:
        """Store one TM packet by the routing rules; True when it should also be queued
        for realtime downlink (the registry's TM tap)."""
        apid = ((raw[0] & 7) << 8) | raw[1]
        service, subservice = raw[7], raw[8]
        st = self._store_for(apid, service, subservice)
        hk = priority == Priority.HK
        if st is None:
            self.tlm_inc("unrouted")
            return True
        if not st.enabled:
            st.counts["disabled_skips"] += 1
            return self.in_contact or not hk
        if st.decimating and service == _HK_SERVICE and self._decimate(st, apid, raw):
            return self.in_contact
        # In contact, housekeeping also goes realtime: an open playback need not send it
        # again (a time-range playback still does, for what the air lost).
        kind = KIND_SENT if hk and self.in_contact else KIND_PACKET
        if st.store.append(raw, t_tai, kind):
            self.tlm_inc("stored")
        else:
            self.tlm_inc("refused")
            if st.store.full and not st.full_reported:
                st.full_reported = True
                self.event("STORE_FULL", st.spec.name)
        return self.in_contact or not hk

    def _decimate(self, st: _Store, apid: int, raw: bytes) -> bool:
        """True when this HK report is one decimation leaves out (counted)."""
        key = (apid, raw[_TM_APP_DATA : _TM_APP_DATA + 2])
        n = st.decimate_counts.get(key, 0)
        st.decimate_counts[key] = n + 1
        if n % st.spec.decimate_keep == 0:
            return False
        st.counts["decimated"] += 1
        self.tlm_inc("decimated")
        return True

    def set_contact(self, up: bool) -> None:
        """The radio's contact state (AOS: True, LOS: False).

        At AOS the default sequence (parameter ``aos_dump``) starts the open playback of
        every store from where the last one stopped; at LOS the radio stops pulling
        (positions are kept and saved, so the next pass resumes).
        """
        was = self.in_contact
        self.in_contact = up
        if self.is_bound:
            self.tlm("contact", up)
            if up and not was and self.param("aos_dump"):
                self.dump_open(0)
        if was and not up:
            self._save_quietly()

    def _save_quietly(self) -> None:
        """Save positions; a failed save is counted and evented by persistence, and
        retried at the next save (playback positions are never worth a crash)."""
        try:
            self._save()
        except CommandFailed:
            self._dirty = True

    # ------------------------------------------------------------------ the tick
    def on_tick(self, rate_group: str) -> None:
        now = self.clock.now_tai()
        for st in self.stores.values():
            st.store.sync()
            self._check_decimation(st)
            if st.full_reported and not st.store.full:
                st.full_reported = False
            errors = st.store.counts["write_errors"]
            if errors > st.write_errors_seen:
                self.event(
                    "STORE_ERROR",
                    st.spec.name,
                    f"{errors - st.write_errors_seen} writes failed (disk full or I/O error)",
                )
                st.write_errors_seen = errors
        if self._dirty and now - self._last_save >= _SAVE_EVERY_S:
            self._last_save = now
            self._save_quietly()
        self._publish()

    def _check_decimation(self, st: _Store) -> None:
        spec = st.spec
        if spec.decimate_at >= 1.0:
            return
        share = st.backlog_bytes() / spec.capacity_bytes
        if not st.decimating and share >= spec.decimate_at:
            st.decimating = True
            self.event("DECIMATING", spec.name, share * 100.0, spec.decimate_keep)
        elif st.decimating and share < spec.decimate_at - 0.1:
            st.decimating = False
            st.decimate_counts.clear()
            self.event("DECIMATION_ENDED", spec.name, st.counts["decimated"] & 0xFFFF_FFFF)

    def _publish(self) -> None:
        fills = [st.store.fill for st in self.stores.values()]
        self.tlm("fill_max_pct", 100.0 * max(fills, default=0.0))
        self.tlm("overwritten", sum(st.store.counts["overwritten"] for st in self.stores.values()))
        self.tlm(
            "retrievals",
            sum((st.open is not None) + (st.by_time is not None) for st in self.stores.values()),
        )
        self.tlm("contact", self.in_contact)

    # ------------------------------------------------------------------ playback
    def take(self, max_bytes: int) -> list[bytes]:
        """Packets to play back now, about ``max_bytes`` of them: time-range retrievals
        first, then open ones, stores in id order (the radio's playback source)."""
        out: list[bytes] = []
        if not self.in_contact:
            return out
        left = max_bytes
        for which in ("by_time", "open"):
            for st in self.stores.values():
                if left <= 0:
                    return out
                ret: Retrieval | None = getattr(st, which)
                if ret is None:
                    continue
                recs, ret.cursor, done = st.store.read_from(
                    ret.cursor, left, ret.t_to, skip_sent=which == "open"
                )
                for _t, data in recs:
                    out.append(data)
                    left -= len(data)
                n = len(recs)
                ret.packets += n
                st.counts["dumped"] += n
                if n:
                    self.tlm_inc("dumped", n)
                if which == "open":
                    st.open_cursor = ret.cursor
                    self._dirty = True
                elif done:
                    st.by_time = None
                    self.event("DUMP_DONE", st.spec.name, ret.packets & 0xFFFF_FFFF)
        return out

    @property
    def playback_pending(self) -> bool:
        """True when a retrieval has packets left to play back."""
        for st in self.stores.values():
            if st.by_time is not None:
                return True
            if st.open is not None:
                end = st.store.end_cursor()
                cur = st.open.cursor
                if (cur.segment, cur.offset) < (end.segment, end.offset):
                    return True
        return False

    # ------------------------------------------------------------------ commands
    def _select(self, store_id: int) -> list[_Store]:
        if store_id == 0:
            return list(self.stores.values())
        st = self.stores.get(store_id)
        if st is None:
            known = ", ".join(f"{k} ({s.spec.name})" for k, s in self.stores.items())
            raise CommandFailed(
                FailureCode.NOT_FOUND, f"no packet store {store_id} (known: {known})"
            )
        return [st]

    @command(
        "STORE_ENABLE",
        service=15,
        subservice=1,
        args=(_STORE_ID,),
        description="Start storing packets in a store (0: every store).",
    )
    def enable(self, store_id: int) -> None:
        for st in self._select(store_id):
            st.enabled = True
        self._save()

    @command(
        "STORE_DISABLE",
        service=15,
        subservice=2,
        args=(_STORE_ID,),
        description="Stop storing packets in a store (0: every store); they are counted, "
        "and out of contact housekeeping for it is then lost.",
    )
    def disable(self, store_id: int) -> None:
        for st in self._select(store_id):
            st.enabled = False
        self._save()

    @command(
        "STORE_DUMP_RANGE",
        service=15,
        subservice=9,
        args=(Arg("store_id", "u8", min=1), Arg("t_from", "cuc"), Arg("t_to", "cuc")),
        description="Play back the packets a store holds from T_FROM to T_TO (TAI) on the "
        "playback channel, before any open retrieval.",
    )
    def dump_range(self, store_id: int, t_from: float, t_to: float) -> None:
        if t_to < t_from:
            raise CommandFailed(FailureCode.VALUE_REJECTED, "t_to is before t_from")
        st = self._select(store_id)[0]
        if st.by_time is not None:
            raise CommandFailed(
                FailureCode.BUSY,
                f"store {st.spec.name} is already playing back a time range (abort it first)",
            )
        st.by_time = Retrieval(st.store.cursor_at(t_from), t_to, t_from=t_from)

    @command(
        "STORE_DUMP_ABORT",
        service=15,
        subservice=17,
        args=(_STORE_ID,),
        description="Abort the time-range playback of a store (0: every store).",
    )
    def dump_abort(self, store_id: int) -> None:
        for st in self._select(store_id):
            st.by_time = None

    @command(
        "STORE_DUMP_OPEN",
        service=15,
        subservice=14,
        args=(_STORE_ID,),
        description="Play a store back from where its last open playback stopped (0: every "
        "store); already running: carries on.",
    )
    def dump_open(self, store_id: int) -> None:
        for st in self._select(store_id):
            if st.open is None:
                cur = st.open_cursor or Cursor(
                    st.store.segments[0].number if st.store.segments else 1
                )
                st.open = Retrieval(cur)

    @command(
        "STORE_DUMP_SUSPEND",
        service=15,
        subservice=16,
        args=(_STORE_ID,),
        description="Suspend the open playback of a store (0: every store); the position is kept.",
    )
    def dump_suspend(self, store_id: int) -> None:
        for st in self._select(store_id):
            st.open = None
        self._save()

    @command(
        "STORE_DELETE",
        service=15,
        subservice=11,
        args=(_STORE_ID, _T),
        description="Delete the packets a store holds up to T_TAI (0: every store).",
    )
    def delete(self, store_id: int, t_tai: float) -> None:
        for st in self._select(store_id):
            st.store.delete_up_to(t_tai)

    @command(
        "STORE_STATUS",
        service=15,
        subservice=12,
        replies=((15, 13),),
        description="Report every store's fill, span and counters in a (15,13).",
    )
    def status(self) -> None:
        self.send_report("STATUS", stores=[self._status(st) for st in self.stores.values()])

    def _status(self, st: _Store) -> dict[str, Any]:
        s = st.store
        cap = st.spec.capacity_bytes
        return {
            "store_id": st.spec.store_id,
            "fill_pct": 100.0 * s.fill,
            "backlog_pct": 100.0 * min(1.0, st.backlog_bytes() / cap),
            "packets": s.record_count,
            "oldest": max(0.0, s.oldest_t or 0.0),
            "newest": max(0.0, s.newest_t or 0.0),
            "stored": s.counts["stored"] & 0xFFFF_FFFF,
            "dumped": st.counts["dumped"] & 0xFFFF_FFFF,
            "overwritten": s.counts["overwritten"] & 0xFFFF_FFFF,
            "decimated": st.counts["decimated"] & 0xFFFF_FFFF,
            "refused": s.counts["refused"] & 0xFFFF_FFFF,
            "enabled": st.enabled,
            "open_retrieval": st.open is not None,
            "time_retrieval": st.by_time is not None,
        }

    def summary(self) -> dict[str, dict[str, int | float]]:
        """Per store: what a run's summary reports (docs/sitl.md, ``storage``)."""
        out: dict[str, dict[str, int | float]] = {}
        for st in self.stores.values():
            s = st.store
            out[st.spec.name] = {
                "stored": s.counts["stored"],
                "dumped": st.counts["dumped"],
                "overwritten": s.counts["overwritten"],
                "decimated": st.counts["decimated"],
                "refused": s.counts["refused"],
                "held": s.record_count,
                "fill": round(s.fill, 5),
                "backlog_bytes": st.backlog_bytes(),
            }
        return out


__all__ = ["DEFAULT_ROUTES", "DEFAULT_STORES", "PacketStores", "Route", "StoreSpec"]
