"""Shared run-time state of one flight-software instance: ids, values, downlink queue.

Components never touch this directly; they use the methods of
:class:`~fsw.core.component.Component`, which reach the registry through the
:class:`Binding` it is given at registration (a
:class:`~fsw.core.component.ComponentPort`). Core services (dispatcher, housekeeping,
...) use :func:`registry_of` to find channels, events and parameters by id.

Ids are ``component_id << 8 | local_id``: the local id is pinned in the declaration
(``Channel(..., id=4)``; the counter channels are 1..3), so an id names its component in
its high byte and never moves when a declaration is added.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from fsw.ccsds import PusTm, cuc_encode
from fsw.core.component import Component
from fsw.core.declarations import Channel, Event, Mode, Param, Report, Severity
from fsw.core.errors import CoreError, DeclarationError, FailureCode, WireError
from fsw.core.wire import CUC_COARSE_OCTETS, CUC_FINE_OCTETS, Arg, encode

if TYPE_CHECKING:
    from fsw.core.clock import Clock

log = logging.getLogger("fsw.core")

MAX_COMPONENT_ID = 0xFF


class Priority(IntEnum):
    """Downlink priority: lower goes first; HK is dropped first when the queue is full."""

    REALTIME = 0  # service 1 verification and replies to commands
    EVENT = 1  # service 5
    HK = 2  # periodic service 3


@dataclass(slots=True, frozen=True)
class FlightConfig:
    """Static configuration of a flight-software instance.

    >>> FlightConfig().tc_apid
    100
    """

    tc_apid: int = 100
    #: Verification (1,x) and command replies use ``tc_apid``; events and HK have their own.
    event_apid: int = 101
    hk_apid: int = 102
    downlink_capacity: int = 2048
    uplink_capacity: int = 64
    #: Rate groups: (name, period in seconds). Periods are whole multiples of the first.
    rate_groups: tuple[tuple[str, float], ...] = (("10Hz", 0.1), ("1Hz", 1.0))
    recent_events: int = 256
    #: At most this many events per event id per second reach the downlink.
    event_burst_per_s: int = 10

    def __post_init__(self) -> None:
        for name, apid in (("tc", self.tc_apid), ("event", self.event_apid), ("hk", self.hk_apid)):
            if not 0 <= apid < 0x7FF:
                raise DeclarationError(f"{name} APID {apid} outside 0..0x7FE")
        if not self.rate_groups:
            raise DeclarationError("at least one rate group is needed")
        base = self.rate_groups[0][1]
        if base <= 0:
            raise DeclarationError("rate group periods must be positive")
        for name, period in self.rate_groups:
            ratio = period / base
            if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
                raise DeclarationError(
                    f"rate group {name}: period {period} s is not a whole multiple of {base} s"
                )

    @property
    def base_period_s(self) -> float:
        """Length of one executive cycle (the fastest rate group)."""
        return self.rate_groups[0][1]

    def period_ticks(self, rate_group: str) -> int:
        """Period of a rate group in executive cycles."""
        for name, period in self.rate_groups:
            if name == rate_group:
                return round(period / self.base_period_s)
        known = ", ".join(n for n, _ in self.rate_groups)
        raise DeclarationError(f"unknown rate group '{rate_group}' (known: {known})")


@dataclass(slots=True, frozen=True)
class ChannelInfo:
    id: int
    slot: int
    full_name: str
    component: Component
    channel: Channel


@dataclass(slots=True, frozen=True)
class EventInfo:
    id: int
    full_name: str
    component: Component
    event: Event


@dataclass(slots=True, frozen=True)
class ParamInfo:
    id: int
    full_name: str
    component: Component
    param: Param

    @property
    def value(self) -> Any:
        return self.component.binding.param_values[self.param.name]


@dataclass(slots=True, frozen=True)
class EventRecord:
    """One event as raised on board (kept in ``FlightSoftware.recent_events``)."""

    t_tai: float
    name: str
    severity: Severity
    text: str
    args: tuple[Any, ...]


class Binding:
    """What a registered component is attached to (set by :meth:`Registry.attach`).

    It is the component's :class:`~fsw.core.component.ComponentPort`; the core services
    also keep their per-component run-time state here (heartbeats, restarts, isolation).
    """

    __slots__ = (
        "coercers",
        "component_id",
        "component_name",
        "counter_slots",
        "events",
        "failing",
        "isolated",
        "last_beat",
        "last_restart_tick",
        "param_values",
        "period_ticks",
        "restart_streak",
        "restarts",
        "rt",
        "tlm_slots",
        "values",
    )

    def __init__(self, rt: Registry, component_id: int, component_name: str = "") -> None:
        self.rt = rt
        self.component_id = component_id
        self.component_name = component_name
        self.values = rt.values
        self.coercers = rt.coercers
        self.tlm_slots: dict[str, int] = {}
        self.events: dict[str, EventInfo] = {}
        self.param_values: dict[str, Any] = {}
        self.counter_slots: tuple[int, int, int] = (0, 0, 0)
        self.last_beat = 0
        self.period_ticks = 0
        self.isolated = False
        self.failing = False
        self.restarts = 0
        self.restart_streak = 0
        self.last_restart_tick = 0

    @property
    def clock(self) -> Clock:
        """The flight clock."""
        return self.rt.clock

    @property
    def mode(self) -> Mode:
        """The current spacecraft mode."""
        return self.rt.mode

    def emit_event(self, name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """Raise the component's event ``name`` (``CoreError`` if it declares none)."""
        info = self.events.get(name)
        if info is None:
            raise CoreError(f"{self.component_name} has no event '{name}'")
        self.rt.emit_event(info, args, kwargs)

    def send_report(self, report: Report, values: Mapping[str, Any]) -> None:
        """Encode and queue one of the component's declared reports."""
        self.rt.send_report(report, values)


def binding_of(comp: Component) -> Binding:
    """The registry binding of a registered component (``CoreError`` if it has none).

    Core services use it for the per-component state the registry keeps.
    """
    b = comp.binding
    if not isinstance(b, Binding):
        raise CoreError(f"component '{comp.name}' is not registered with a flight registry")
    return b


def registry_of(comp: Component) -> Registry:
    """The registry a component is registered with (core services reach theirs so)."""
    return binding_of(comp).rt


def _coercer(arg: Arg) -> Callable[[Any], Any]:
    """A fast converter to the stored form of a channel value (ints saturate)."""
    t = arg.type
    if t == "bool":
        return bool
    if t == "enum":
        return lambda v: arg.value_of(v)
    if t in ("f32", "f64"):
        big = 3.4e38 if t == "f32" else math.inf

        def to_float(v: Any) -> float:
            f = float(v)
            return f if -big <= f <= big or f != f else math.copysign(math.inf, f)

        return to_float
    lo, hi = int(arg.effective_min or 0), int(arg.effective_max or 0)

    def to_int(v: Any) -> int:
        i = int(v)
        return lo if i < lo else hi if i > hi else i

    return to_int


def initial_value(arg: Arg) -> Any:
    if arg.type == "bool":
        return False
    if arg.type in ("f32", "f64"):
        return 0.0
    if arg.type == "enum":
        return arg.label_values[0]
    return 0


class DownlinkQueue:
    """Bounded priority queue of encoded TM packets; counts what it drops.

    When full, the oldest packet of the least important non-empty class not more
    important than the newcomer is dropped; otherwise the newcomer is dropped.

    >>> q = DownlinkQueue(capacity=2)
    >>> q.put(Priority.HK, b"h1"); q.put(Priority.HK, b"h2"); q.put(Priority.REALTIME, b"v")
    >>> q.drain(), q.dropped[Priority.HK]
    ([b'v', b'h2'], 1)
    """

    __slots__ = ("_n", "_queues", "capacity", "dropped")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise DeclarationError("downlink capacity must be at least 1")
        self.capacity = capacity
        self._queues: tuple[deque[bytes], ...] = tuple(deque() for _ in Priority)
        self.dropped = [0] * len(Priority)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def put(self, prio: Priority, raw: bytes) -> None:
        if self._n >= self.capacity:
            for p in range(len(self._queues) - 1, prio - 1, -1):
                if self._queues[p]:
                    self._queues[p].popleft()
                    self.dropped[p] += 1
                    self._n -= 1
                    break
            else:
                self.dropped[prio] += 1
                return
        self._queues[prio].append(raw)
        self._n += 1

    def drain(self, max_packets: int | None = None) -> list[bytes]:
        out: list[bytes] = []
        limit = self._n if max_packets is None else min(max_packets, self._n)
        for q in self._queues:
            while q and len(out) < limit:
                out.append(q.popleft())
        self._n -= len(out)
        return out

    def drain_bytes(self, max_bytes: int) -> list[bytes]:
        """The most important packets that fit in about ``max_bytes`` (at least one).

        >>> q = DownlinkQueue(capacity=8)
        >>> q.put(Priority.HK, b"hk" * 10); q.put(Priority.EVENT, b"e" * 10)
        >>> q.drain_bytes(15), len(q)
        ([b'eeeeeeeeee'], 1)
        """
        out: list[bytes] = []
        size = 0
        for q in self._queues:
            while q and (not out or size + len(q[0]) <= max_bytes):
                raw = q.popleft()
                out.append(raw)
                size += len(raw)
            if q:
                break
        self._n -= len(out)
        return out

    @property
    def total_dropped(self) -> int:
        return sum(self.dropped)


class Registry:
    """Registries, telemetry values, the downlink queue and the current mode."""

    def __init__(self, clock: Clock, config: FlightConfig) -> None:
        self.clock = clock
        self.config = config
        self.mode = Mode.NOMINAL
        #: First 32 bits of the flying dictionary's content hash (0: not known); stored and
        #: time-tagged TCs carry the one they were checked under.
        self.dict_hash = 0
        self.tick = 0
        self.values: list[Any] = []
        self.coercers: list[Callable[[Any], Any]] = []
        self.channels: list[ChannelInfo] = []
        self.channel_by_id: dict[int, ChannelInfo] = {}
        self.channel_by_name: dict[str, ChannelInfo] = {}
        self.event_by_id: dict[int, EventInfo] = {}
        self.event_by_name: dict[str, EventInfo] = {}
        self.param_by_id: dict[int, ParamInfo] = {}
        self.param_by_name: dict[str, ParamInfo] = {}
        self.components: dict[str, Component] = {}
        self.component_by_id: dict[int, Component] = {}
        self.downlink = DownlinkQueue(config.downlink_capacity)
        self.recent_events: deque[EventRecord] = deque(maxlen=config.recent_events)
        #: Set by the event manager: receives (info, checked args) of every event.
        self.event_sink: Callable[[EventInfo, tuple[Any, ...]], None] | None = None
        #: Set by on-board storage (PUS-15): sees every TM packet made (priority, bytes,
        #: time) and says whether it also goes to the realtime downlink queue.
        self.tm_tap: Callable[[Priority, bytes, float], bool] | None = None
        self._seq: dict[int, int] = {}
        self._msg: dict[tuple[int, int, int], int] = {}

    # ------------------------------------------------------------ registration
    def attach(self, comp: Component, component_id: int) -> Binding:
        """Give ``comp`` its ids, telemetry slots and parameter values."""
        if not hasattr(comp, "log"):
            raise DeclarationError(
                f"{type(comp).__name__}.__init__ must call super().__init__(name)"
            )
        if comp.is_bound:
            raise DeclarationError(f"component '{comp.name}' is already registered")
        if comp.name in self.components:
            raise DeclarationError(f"a component named '{comp.name}' already exists")
        if not 1 <= component_id <= MAX_COMPONENT_ID:
            raise DeclarationError(f"component id {component_id} outside 1..{MAX_COMPONENT_ID}")
        if component_id in self.component_by_id:
            other = self.component_by_id[component_id].name
            raise DeclarationError(f"component id {component_id} is already used by '{other}'")
        period = 0
        for rg in type(comp).RATE_GROUPS:
            p = self.config.period_ticks(rg)
            period = p if period == 0 else min(period, p)
        b = Binding(self, component_id, comp.name)
        b.period_ticks = period
        base = component_id << 8
        for ch in type(comp).channels():
            info = ChannelInfo(base | ch.id, len(self.values), f"{comp.name}.{ch.name}", comp, ch)
            self.values.append(initial_value(ch.arg))
            self.coercers.append(_coercer(ch.arg))
            self.channels.append(info)
            self.channel_by_id[info.id] = info
            self.channel_by_name[info.full_name] = info
            b.tlm_slots[ch.name] = info.slot
        b.counter_slots = (
            b.tlm_slots["cmds_accepted"],
            b.tlm_slots["cmds_rejected"],
            b.tlm_slots["errors"],
        )
        for ev in type(comp).EVENTS:
            einfo = EventInfo(base | ev.id, f"{comp.name}.{ev.name}", comp, ev)
            self.event_by_id[einfo.id] = einfo
            self.event_by_name[einfo.full_name] = einfo
            b.events[ev.name] = einfo
        for prm in type(comp).PARAMETERS:
            pinfo = ParamInfo(base | prm.id, f"{comp.name}.{prm.name}", comp, prm)
            self.param_by_id[pinfo.id] = pinfo
            self.param_by_name[pinfo.full_name] = pinfo
            b.param_values[prm.name] = prm.default
        self.components[comp.name] = comp
        self.component_by_id[component_id] = comp
        comp.bind(b)
        return b

    # ------------------------------------------------------------ counters
    def count(self, comp: Component, which: int) -> None:
        """Increment counter ``which`` (0 accepted, 1 rejected, 2 errors) of ``comp``."""
        if comp.is_bound:
            slot = comp.binding.counter_slots[which]
            self.values[slot] = (self.values[slot] + 1) & 0xFFFF_FFFF

    # ------------------------------------------------------------ telemetry
    def value(self, full_name: str) -> Any:
        """Current value of a channel by its full name (enums as labels)."""
        info = self.channel_by_name.get(full_name)
        if info is None:
            raise CoreError(f"no telemetry channel '{full_name}'")
        v = self.values[info.slot]
        return info.channel.arg.label_of(v) if info.channel.type == "enum" else v

    # ------------------------------------------------------------ events
    def emit_event(self, info: EventInfo, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """Check an event's arguments, record it, log it and hand it to the event sink."""
        ev = info.event
        if kwargs:
            if args:
                raise CoreError(f"event {info.full_name}: give arguments by position or name")
            try:
                args = [kwargs[a.name] for a in ev.args]
            except KeyError as exc:
                raise CoreError(f"event {info.full_name}: missing argument {exc}") from None
        if len(args) != len(ev.args):
            raise CoreError(
                f"event {info.full_name} takes {len(ev.args)} arguments, got {len(args)}"
            )
        try:
            checked = tuple(a.check(v) for a, v in zip(ev.args, args, strict=True))
        except CoreError as exc:
            raise CoreError(f"event {info.full_name}: {exc.reason}") from None
        text = format_event(ev, checked)
        self.recent_events.append(
            EventRecord(self.clock.now_tai(), info.full_name, ev.severity, text, checked)
        )
        log.log(_LOG_LEVEL[ev.severity], "%s: %s", info.full_name, text)
        if self.event_sink is not None:
            self.event_sink(info, checked)

    # ------------------------------------------------------------ downlink
    def send_tm(
        self, service: int, subservice: int, app_data: bytes, *, apid: int, priority: Priority
    ) -> None:
        """Build a PUS-C TM packet stamped with the current time and queue it."""
        seq = self._seq.get(apid, 0)
        self._seq[apid] = (seq + 1) & 0x3FFF
        key = (apid, service, subservice)
        msg = self._msg.get(key, 0)
        self._msg[key] = (msg + 1) & 0xFFFF
        t = max(0.0, self.clock.now_tai())
        tm = PusTm(
            apid=apid,
            service=service,
            subservice=subservice,
            app_data=app_data,
            time=cuc_encode(t, CUC_COARSE_OCTETS, CUC_FINE_OCTETS),
            seq_count=seq,
            msg_counter=msg,
        )
        raw = tm.encode()
        tap = self.tm_tap
        if tap is None or tap(priority, raw, t):
            self.downlink.put(priority, raw)

    def apid_of(self, role: str) -> int:
        """APID of a TM role: verification, reply, event or hk."""
        if role == "event":
            return self.config.event_apid
        if role == "hk":
            return self.config.hk_apid
        return self.config.tc_apid

    def send_report(self, rep: Report, values: Mapping[str, Any]) -> None:
        """Encode a declared report and queue it (priority from its APID role)."""
        data = encode(rep.fields, values, self.resolve)
        prio = {"event": Priority.EVENT, "hk": Priority.HK}.get(rep.apid, Priority.REALTIME)
        self.send_tm(rep.service, rep.subservice, data, apid=self.apid_of(rep.apid), priority=prio)

    def resolve(self, kind: str, key: int) -> tuple[Arg, ...]:
        """Field types of a dynamic value (parameter value or event arguments)."""
        if kind == "param_value":
            pinfo = self.param_by_id.get(key)
            if pinfo is None:
                raise WireError(FailureCode.NOT_FOUND, f"no parameter with id {key} (0x{key:04X})")
            return (pinfo.param.arg,)
        if kind == "event_args":
            einfo = self.event_by_id.get(key)
            if einfo is None:
                raise WireError(FailureCode.NOT_FOUND, f"no event with id {key} (0x{key:04X})")
            return einfo.event.args
        raise WireError(FailureCode.NOT_FOUND, f"{kind} values are not resolved on board")

    def send_reply(self, service: int, subservice: int, app_data: bytes) -> None:
        """A reply to a command (e.g. (17,2), (20,2)) on the TC APID, real-time priority."""
        self.send_tm(
            service, subservice, app_data, apid=self.config.tc_apid, priority=Priority.REALTIME
        )


_LOG_LEVEL = {
    Severity.INFO: logging.INFO,
    Severity.LOW: logging.INFO,
    Severity.MEDIUM: logging.WARNING,
    Severity.HIGH: logging.ERROR,
}


def format_event(ev: Event, args: Sequence[Any]) -> str:
    """The event's text with its arguments filled in (never raises)."""
    try:
        return ev.format.format(**{a.name: v for a, v in zip(ev.args, args, strict=True)})
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return f"{ev.format} {tuple(args)!r}"


__all__ = [
    "Binding",
    "ChannelInfo",
    "DownlinkQueue",
    "EventInfo",
    "EventRecord",
    "FlightConfig",
    "ParamInfo",
    "Priority",
    "Registry",
    "binding_of",
    "format_event",
    "initial_value",
    "registry_of",
]
