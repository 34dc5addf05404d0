"""Components: the unit of flight software.

A component declares, in code, what it exposes to the ground: commands (typed, ranged
arguments), telemetry channels (type, units, limits), events (severity, format) and
parameters (type, range, default, optional validator). The dictionary is generated from
these declarations; nothing is written twice. At run time a component gets
``self.tlm(...)``, ``self.event(...)``, ``self.param(...)``, ``self.clock`` and
``self.mode``, and the executive calls ``on_tick(rate_group)`` for the rate groups it
lists in ``RATE_GROUPS``.

>>> class Heater(Component):
...     NAME = "heater"
...     TELEMETRY = (Channel("power_w", "f32", units="W", red=(None, 12.0)),)
...     EVENTS = (Event("SWITCHED", Severity.INFO, "heater on={on}", (Arg("on", "bool"),)),)
...     PARAMETERS = (Param("set_point_c", "f32", default=5.0, min=-20, max=40),)
...     RATE_GROUPS = ("1Hz",)
...
...     def on_init(self) -> None:
...         self.on = False
...
...     @command(args=(Arg("on", "bool"),))
...     def switch(self, on: bool) -> None:
...         self.on = on
...         self.event("SWITCHED", on)
...
...     def on_tick(self, rate_group: str) -> None:
...         self.tlm("power_w", 10.0 if self.on else 0.0)
>>> [c.name for c in Heater.commands()]
['RESET_COUNTERS', 'SWITCH']
"""

from __future__ import annotations

import logging
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from fsw.core.errors import CoreError, DeclarationError
from fsw.core.wire import NUMERIC_TYPES, Arg, Field, check_fields, check_name

if TYPE_CHECKING:
    from fsw.core.clock import Clock
    from fsw.core.registry import Binding

MAX_LOCAL_ITEMS = 255


class Severity(IntEnum):
    """Event severity; the value is the service-5 subservice that carries it."""

    INFO = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4


class Mode(IntEnum):
    """Spacecraft mode. In SAFE the payload is off and payload commands are refused."""

    NOMINAL = 0
    SAFE = 1


def _check_lower(name: str, what: str) -> None:
    check_name(name, what=what)
    if name != name.lower():
        raise DeclarationError(f"{what} name {name!r} must be lower case, like 'soc_pct'")


def _check_upper(name: str, what: str) -> None:
    check_name(name, what=what)
    if name != name.upper():
        raise DeclarationError(f"{what} name {name!r} must be upper case, like 'SET_GAIN'")


@dataclass(slots=True, frozen=True)
class Channel:
    """A telemetry channel: a numeric value the component publishes with ``self.tlm``.

    ``yellow`` and ``red`` are (low, high) limits for displays; ``None`` means no limit.

    >>> Channel("soc_pct", "f32", units="%", red=(10.0, None)).arg.type
    'f32'
    """

    name: str
    type: str
    units: str = ""
    description: str = ""
    labels: tuple[str, ...] = ()
    yellow: tuple[float | None, float | None] = (None, None)
    red: tuple[float | None, float | None] = (None, None)
    arg: Arg = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        _check_lower(self.name, "telemetry channel")
        if self.type not in NUMERIC_TYPES:
            raise DeclarationError(
                f"channel {self.name}: type must be one of {', '.join(NUMERIC_TYPES)}"
            )
        object.__setattr__(
            self,
            "arg",
            Arg(
                self.name,
                self.type,
                units=self.units,
                labels=tuple(self.labels),
                description=self.description,
            ),
        )
        for lim in (self.yellow, self.red):
            if len(lim) != 2:
                raise DeclarationError(f"channel {self.name}: limits are (low, high)")
            lo, hi = lim
            if lo is not None and hi is not None and lo > hi:
                raise DeclarationError(f"channel {self.name}: limit low {lo} > high {hi}")

    def limits_json(self) -> dict[str, float | None]:
        return {
            "red_low": self.red[0],
            "yellow_low": self.yellow[0],
            "yellow_high": self.yellow[1],
            "red_high": self.red[1],
        }


@dataclass(slots=True, frozen=True)
class Event:
    """An event: a severity, a ``str.format`` text and typed arguments.

    >>> Event("BATTERY_LOW", Severity.HIGH, "soc {soc_pct:.1f} %", (Arg("soc_pct", "f32"),)).name
    'BATTERY_LOW'
    """

    name: str
    severity: Severity
    format: str
    args: tuple[Arg, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        _check_upper(self.name, "event")
        object.__setattr__(self, "args", tuple(self.args))
        object.__setattr__(self, "severity", Severity(self.severity))
        check_fields(self.args, f"event {self.name}")
        for a in self.args:
            if a.type in ("packet", "cuc"):
                raise DeclarationError(f"event {self.name}: argument type {a.type} not allowed")
        names = {a.name for a in self.args}
        try:
            used = {f for _, f, _, _ in string.Formatter().parse(self.format) if f}
        except ValueError as exc:
            raise DeclarationError(f"event {self.name}: bad format string ({exc})") from None
        unknown = {u.split(".")[0].split("[")[0] for u in used} - names
        if unknown:
            raise DeclarationError(f"event {self.name}: format uses unknown args {sorted(unknown)}")


@dataclass(slots=True, frozen=True)
class Param:
    """A parameter: a typed, ranged value the ground can get, set and save.

    ``validator(value) -> reason | None`` may refuse a value that is in range (the
    component's :meth:`Component.validate_param` is asked too).

    >>> Param("gain", "f32", default=1.0, min=0, max=10).default
    1.0
    """

    name: str
    type: str
    default: Any
    min: float | None = None
    max: float | None = None
    units: str = ""
    description: str = ""
    labels: tuple[str, ...] = ()
    validator: Callable[[Any], str | None] | None = field(default=None, compare=False)
    arg: Arg = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        _check_lower(self.name, "parameter")
        if self.type not in NUMERIC_TYPES:
            raise DeclarationError(
                f"parameter {self.name}: type must be one of {', '.join(NUMERIC_TYPES)}"
            )
        arg = Arg(
            self.name,
            self.type,
            min=self.min,
            max=self.max,
            units=self.units,
            labels=tuple(self.labels),
            description=self.description,
        )
        object.__setattr__(self, "arg", arg)
        try:
            object.__setattr__(self, "default", arg.check(self.default))
        except CoreError as exc:
            raise DeclarationError(f"parameter {self.name}: bad default ({exc.reason})") from None


#: Where a report goes: its APID role in the dictionary (``apids.tm``).
REPORT_ROLES: tuple[str, ...] = ("verification", "reply", "event", "hk")


@dataclass(slots=True, frozen=True)
class Report:
    """A TM packet type a component sends: PUS (service, subservice) and its fields.

    Declared for the dictionary so the ground can decode it; payload components send
    their own with :meth:`Component.send_report`.

    >>> Report("DETECTIONS", 140, 1, (Arg("count", "u16"),)).apid
    'reply'
    """

    name: str
    service: int
    subservice: int
    fields: tuple[Field, ...] = ()
    description: str = ""
    apid: str = "reply"

    def __post_init__(self) -> None:
        _check_upper(self.name, "report")
        object.__setattr__(self, "fields", check_fields(tuple(self.fields), f"report {self.name}"))
        if not (0 <= self.service <= 0xFF and 0 <= self.subservice <= 0xFF):
            raise DeclarationError(f"report {self.name}: service/subservice outside 0..255")
        if self.apid not in REPORT_ROLES:
            raise DeclarationError(f"report {self.name}: apid role must be one of {REPORT_ROLES}")


@dataclass(slots=True, frozen=True)
class CommandSpec:
    """What ``@command`` records about a handler (see :func:`command`)."""

    name: str
    fields: tuple[Field, ...]
    description: str
    method: str
    opcode: int | None = None
    service: int | None = None
    subservice: int | None = None
    allowed_in_safe: bool = True
    replies: tuple[tuple[int, int], ...] = ()

    @property
    def is_function(self) -> bool:
        """True for a service-8 function (named ``<component>.<NAME>``)."""
        return self.service is None


F = TypeVar("F", bound=Callable[..., Any])


def command(
    name: str | None = None,
    *,
    args: Sequence[Field] = (),
    opcode: int | None = None,
    service: int | None = None,
    subservice: int | None = None,
    allowed_in_safe: bool = True,
    description: str | None = None,
    replies: Sequence[tuple[int, int]] = (),
) -> Callable[[F], F]:
    """Declare a method as a command handler.

    Without ``service`` it is a service-8 function ``<component>.<NAME>`` whose function
    id is ``component_id << 8 | opcode`` (opcodes are numbered in declaration order unless
    given). Core services pass ``service``/``subservice`` and a global ``name``.
    The handler receives the decoded arguments as keyword arguments; it fails the command
    by raising :class:`~fsw.core.errors.CommandFailed`.
    ``allowed_in_safe=False`` refuses the command in SAFE mode (NOT_AUTHORISED).
    """

    def deco(fn: F) -> F:
        cname = (name or fn.__name__).upper()
        _check_upper(cname, "command")
        if (service is None) != (subservice is None):
            raise DeclarationError(f"command {cname}: give both service and subservice")
        if opcode is not None and not 0 <= opcode <= 0xFF:
            raise DeclarationError(f"command {cname}: opcode {opcode} outside 0..255")
        if service is not None and opcode is not None:
            raise DeclarationError(f"command {cname}: opcodes are for service-8 functions")
        doc = description if description is not None else (fn.__doc__ or "").strip()
        spec = CommandSpec(
            name=cname,
            fields=check_fields(tuple(args), f"command {cname}"),
            description=doc.splitlines()[0] if doc else "",
            method=fn.__name__,
            opcode=opcode,
            service=service,
            subservice=subservice,
            allowed_in_safe=allowed_in_safe,
            replies=tuple(replies),
        )
        fn.__gnomon_command__ = spec  # type: ignore[attr-defined]
        return fn

    return deco


#: Channels every component has (local ids 1..3): cFS-style command and error counters.
COUNTER_CHANNELS: tuple[Channel, ...] = (
    Channel("cmds_accepted", "u32", description="commands accepted since the last reset"),
    Channel("cmds_rejected", "u32", description="commands refused at acceptance"),
    Channel("errors", "u32", description="command execution failures and tick errors"),
)


class Component:
    """Base class of every flight component. Subclass it and declare:

    - ``NAME``: instance name used in the dictionary (``eps`` -> channels ``eps.*``);
    - ``TELEMETRY``, ``EVENTS``, ``PARAMETERS``, ``REPORTS``: tuples of :class:`Channel`,
      :class:`Event`, :class:`Param`, :class:`Report`;
    - ``RATE_GROUPS``: the rate groups whose ticks call :meth:`on_tick` (e.g. ``("1Hz",)``);
    - ``HK_INTERVAL_S``: period of the component's default housekeeping report (0: none);
    - commands with :func:`command`.

    Override :meth:`on_init` (start and restart), :meth:`on_tick`, :meth:`on_mode`,
    :meth:`on_param_changed`, :meth:`validate_param`, :meth:`busy_reason` as needed.
    """

    NAME: ClassVar[str] = ""
    DESCRIPTION: ClassVar[str] = ""
    TELEMETRY: ClassVar[tuple[Channel, ...]] = ()
    EVENTS: ClassVar[tuple[Event, ...]] = ()
    PARAMETERS: ClassVar[tuple[Param, ...]] = ()
    REPORTS: ClassVar[tuple[Report, ...]] = ()
    RATE_GROUPS: ClassVar[tuple[str, ...]] = ()
    #: 0: producers (default). 1: collectors that must see this cycle's values from every
    #: producer (housekeeping, limit monitors, health); they tick after all producers.
    TICK_PHASE: ClassVar[int] = 0
    HK_INTERVAL_S: ClassVar[float] = 10.0
    _COMMANDS: ClassVar[tuple[CommandSpec, ...]] = ()
    _b: Binding | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._COMMANDS = _collect_commands(cls)
        _check_declarations(cls)

    def __init__(self, name: str | None = None) -> None:
        self.name = name or self.NAME or type(self).__name__.lower()
        _check_lower(self.name, "component")
        self._b: Binding | None = None
        self.log = logging.getLogger(f"fsw.{self.name}")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    # ----------------------------------------------------------- declarations
    @classmethod
    def commands(cls) -> tuple[CommandSpec, ...]:
        """The commands this class declares (inherited ones included)."""
        return cls._COMMANDS

    @classmethod
    def channels(cls) -> tuple[Channel, ...]:
        """All telemetry channels, the counter channels first."""
        return COUNTER_CHANNELS + tuple(cls.TELEMETRY)

    # ----------------------------------------------------------- run-time API
    def _bound(self) -> Binding:
        b = self._b
        if b is None:
            raise CoreError(
                f"component '{self.name}' is not registered: add it with fs.add_component()"
            )
        return b

    @property
    def component_id(self) -> int:
        """Numeric id given at registration (high byte of its channel/event ids)."""
        return self._bound().component_id

    @property
    def clock(self) -> Clock:
        """The flight clock (``now_tai()``, ``met()``); never call ``time.time()``."""
        return self._bound().rt.clock

    @property
    def mode(self) -> Mode:
        """Current spacecraft mode."""
        return self._bound().rt.mode

    def tlm(self, name: str, value: float | int | bool | str) -> None:
        """Publish a telemetry value (enum channels take a label or a number)."""
        b = self._b
        if b is None:
            self._bound()
            return
        slot = b.tlm_slots.get(name)
        if slot is None:
            raise CoreError(f"{self.name} has no telemetry channel '{name}'")
        try:
            b.values[slot] = b.coercers[slot](value)
        except (TypeError, ValueError, CoreError):
            raise CoreError(
                f"telemetry {self.name}.{name}: {value!r} does not fit its type"
            ) from None

    def tlm_value(self, name: str) -> Any:
        """Last value published on one of this component's channels."""
        b = self._bound()
        slot = b.tlm_slots.get(name)
        if slot is None:
            raise CoreError(f"{self.name} has no telemetry channel '{name}'")
        return b.values[slot]

    def tlm_inc(self, name: str, delta: int = 1) -> None:
        """Add ``delta`` to an integer channel (a counter); saturates at the type's range."""
        b = self._bound()
        slot = b.tlm_slots.get(name)
        if slot is None:
            raise CoreError(f"{self.name} has no telemetry channel '{name}'")
        b.values[slot] = b.coercers[slot](b.values[slot] + delta)

    def event(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Raise an event; arguments by position (declaration order) or by name."""
        b = self._bound()
        info = b.events.get(name)
        if info is None:
            raise CoreError(f"{self.name} has no event '{name}'")
        b.rt.emit_event(info, args, kwargs)

    def send_report(self, name: str, **values: Any) -> None:
        """Encode and downlink one of this component's declared ``REPORTS``."""
        b = self._bound()
        for rep in type(self).REPORTS:
            if rep.name == name:
                b.rt.send_report(rep, values)
                return
        raise CoreError(f"{self.name} declares no report '{name}'")

    def param(self, name: str) -> Any:
        """Current value of one of this component's parameters."""
        b = self._bound()
        try:
            return b.param_values[name]
        except KeyError:
            raise CoreError(f"{self.name} has no parameter '{name}'") from None

    # ----------------------------------------------------------- hooks
    def on_init(self) -> None:
        """(Re-)initialise run-time state. Called at registration and on restart."""

    def on_tick(self, rate_group: str) -> None:
        """Periodic work for one of ``RATE_GROUPS``. Must return quickly."""

    def on_mode(self, mode: Mode) -> None:
        """The spacecraft mode changed (payloads switch off in SAFE)."""

    def on_param_changed(self, name: str, value: Any) -> None:
        """A parameter was set by command or loaded from storage."""

    def validate_param(self, name: str, value: Any) -> str | None:
        """Return a reason to refuse a new parameter value, or None to accept it."""
        return None

    def busy_reason(self, command: str, args: Mapping[str, Any]) -> str | None:
        """Return why ``command`` (short name, decoded args) cannot start now, or None.

        A reason fails the command at start with (1,4) BUSY.
        """
        return None

    # ----------------------------------------------------------- common commands
    @command(
        "RESET_COUNTERS", opcode=0, description="Zero this component's command and error counters."
    )
    def reset_counters(self) -> None:
        b = self._bound()
        for slot in b.counter_slots:
            b.values[slot] = 0


def _collect_commands(cls: type) -> tuple[CommandSpec, ...]:
    specs: dict[str, CommandSpec] = {}
    for klass in reversed(cls.__mro__):
        for attr, val in vars(klass).items():
            spec = getattr(val, "__gnomon_command__", None)
            if isinstance(spec, CommandSpec):
                specs[attr] = spec
    ordered = list(specs.values())
    used = {s.opcode for s in ordered if s.is_function and s.opcode is not None}
    nxt = 1
    out: list[CommandSpec] = []
    for s in ordered:
        if s.is_function and s.opcode is None:
            while nxt in used:
                nxt += 1
            if nxt > 0xFF:
                raise DeclarationError(f"{cls.__name__}: more than 255 commands")
            s = replace(s, opcode=nxt)
            used.add(nxt)
        out.append(s)
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise DeclarationError(f"{cls.__name__}: duplicate command names")
    ops = [s.opcode for s in out if s.is_function and s.opcode is not None]
    if len(set(ops)) != len(ops):
        raise DeclarationError(f"{cls.__name__}: duplicate command opcodes {sorted(ops)}")
    return tuple(out)


def _check_declarations(cls: type[Component]) -> None:
    where = cls.__name__
    for title, items in (
        ("telemetry channels", cls.channels()),
        ("events", tuple(cls.EVENTS)),
        ("parameters", tuple(cls.PARAMETERS)),
        ("reports", tuple(cls.REPORTS)),
    ):
        names = [i.name for i in items]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise DeclarationError(f"{where}: duplicate {title} {dup}")
        if len(items) > MAX_LOCAL_ITEMS:
            raise DeclarationError(f"{where}: more than {MAX_LOCAL_ITEMS} {title}")
    if not all(isinstance(c, Channel) for c in cls.TELEMETRY):
        raise DeclarationError(f"{where}: TELEMETRY must hold Channel(...) declarations")
    if not all(isinstance(e, Event) for e in cls.EVENTS):
        raise DeclarationError(f"{where}: EVENTS must hold Event(...) declarations")
    if not all(isinstance(p, Param) for p in cls.PARAMETERS):
        raise DeclarationError(f"{where}: PARAMETERS must hold Param(...) declarations")
    if not all(isinstance(r, Report) for r in cls.REPORTS):
        raise DeclarationError(f"{where}: REPORTS must hold Report(...) declarations")
    if isinstance(cls.RATE_GROUPS, str) or not all(isinstance(r, str) for r in cls.RATE_GROUPS):
        raise DeclarationError(f"{where}: RATE_GROUPS is a tuple of names like ('1Hz',)")
    if cls.TICK_PHASE not in (0, 1):
        raise DeclarationError(f"{where}: TICK_PHASE is 0 (producer) or 1 (collector)")
    if cls.HK_INTERVAL_S < 0:
        raise DeclarationError(f"{where}: HK_INTERVAL_S must be >= 0")


Component._COMMANDS = _collect_commands(Component)

__all__ = [
    "COUNTER_CHANNELS",
    "Channel",
    "CommandSpec",
    "Component",
    "Event",
    "Mode",
    "Param",
    "Report",
    "Severity",
    "command",
]
