"""Declarations: what a component exposes to the ground, written in code.

Commands (typed, ranged arguments), telemetry channels (type, units, limits), events
(severity, format), parameters (type, range, default, optional validator) and the TM
reports a component sends. A :class:`~fsw.core.component.Component` lists them in its
class body; the dictionary is generated from them, so nothing is written twice. These
are plain records: they know nothing of the running flight software.

Every channel, event and parameter carries its **pinned local id** (``id=``, 1..255; the
global id on board is ``component_id << 8 | id``), and every service-8 command its
``opcode``, written in the declaration the way F Prime writes ``id 1``/``opcode 0``. Ids are
never counted from declaration order: time-tagged commands, stored sequences, ground
scripts and archives hold raw ids, so inserting a channel must not move the others.
``fsw/dictionary.lock.json`` records every id; a test fails when one changes without the
lock (docs/dictionary.md, "Pinned ids").

>>> ch = Channel("power_w", "f32", units="W", red=(None, 12.0), id=4)
>>> ch.arg.type, ch.limits_json()["red_high"]
('f32', 12.0)
>>> Event("SWITCHED", Severity.INFO, "heater on={on}", (Arg("on", "bool"),), id=1).severity.name
'INFO'
>>> Channel("power_w", "f32")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
fsw.core.errors.DeclarationError: channel power_w: give its pinned local id, e.g. id=4 ...
>>> @command(args=(Arg("on", "bool"),), opcode=1)
... def switch(self, on: bool) -> None:
...     "Switch the heater."
>>> switch.__gnomon_command__.name, switch.__gnomon_command__.description
('SWITCH', 'Switch the heater.')
>>> check_upper("set_gain", "command")
Traceback (most recent call last):
...
fsw.core.errors.DeclarationError: command name 'set_gain' must be upper case, like 'SET_GAIN'
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, TypeVar

from fsw.core.errors import CoreError, DeclarationError
from fsw.core.wire import NUMERIC_TYPES, Arg, Field, check_fields, check_name


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


def check_lower(name: str, what: str) -> None:
    """A component, channel or parameter name: a valid name, in lower case."""
    check_name(name, what=what)
    if name != name.lower():
        raise DeclarationError(f"{what} name {name!r} must be lower case, like 'soc_pct'")


def check_upper(name: str, what: str) -> None:
    """A command, event or report name: a valid name, in upper case."""
    check_name(name, what=what)
    if name != name.upper():
        raise DeclarationError(f"{what} name {name!r} must be upper case, like 'SET_GAIN'")


#: Local channel ids 1..3 belong to the counters every component has (COUNTER_CHANNELS).
FIRST_CHANNEL_ID = 4


#: The largest local id (the low byte of a global id).
MAX_LOCAL_ID = 0xFF


def check_local_id(local_id: int, what: str) -> None:
    """A pinned local id: given, and within 1..255."""
    if local_id == 0:
        example = FIRST_CHANNEL_ID if what.startswith("channel") else 1
        raise DeclarationError(
            f"{what}: give its pinned local id, e.g. id={example} (ids are never counted "
            "from declaration order; docs/dictionary.md)"
        )
    if not 1 <= local_id <= MAX_LOCAL_ID:
        raise DeclarationError(f"{what}: id {local_id} outside 1..{MAX_LOCAL_ID}")


@dataclass(slots=True, frozen=True)
class Channel:
    """A telemetry channel: a numeric value the component publishes with ``self.tlm``.

    ``yellow`` and ``red`` are (low, high) limits for displays; ``None`` means no limit.
    ``valid`` is the (low, high) range a real value can take (a percentage 0..100): the
    dictionary carries it as ``min``/``max``, and the ground flags values outside it (or
    NaN) instead of archiving them as data.

    >>> Channel("soc_pct", "f32", units="%", red=(10.0, None), id=4).arg.type
    'f32'
    """

    name: str
    type: str
    units: str = ""
    description: str = ""
    labels: tuple[str, ...] = ()
    yellow: tuple[float | None, float | None] = (None, None)
    red: tuple[float | None, float | None] = (None, None)
    valid: tuple[float | None, float | None] = (None, None)
    #: Pinned local id: 4..255 in a component's TELEMETRY (1..3 are its counter channels).
    id: int = field(default=0, kw_only=True)
    arg: Arg = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        check_lower(self.name, "telemetry channel")
        check_local_id(self.id, f"channel {self.name}")
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
        for lim in (self.yellow, self.red, self.valid):
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

    >>> soc = Arg("soc_pct", "f32")
    >>> ev = Event("BATTERY_LOW", Severity.HIGH, "soc {soc_pct:.1f} %", (soc,), id=1)
    >>> ev.name, ev.id
    ('BATTERY_LOW', 1)
    """

    name: str
    severity: Severity
    format: str
    args: tuple[Arg, ...] = ()
    description: str = ""
    #: Pinned local id: 1..255.
    id: int = field(default=0, kw_only=True)

    def __post_init__(self) -> None:
        check_upper(self.name, "event")
        check_local_id(self.id, f"event {self.name}")
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
    component's :meth:`~fsw.core.component.Component.validate_param` is asked too).

    >>> Param("gain", "f32", default=1.0, min=0, max=10, id=1).default
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
    #: Pinned local id: 1..255.
    id: int = field(default=0, kw_only=True)
    arg: Arg = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        check_lower(self.name, "parameter")
        check_local_id(self.id, f"parameter {self.name}")
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
    their own with :meth:`~fsw.core.component.Component.send_report`.

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
        check_upper(self.name, "report")
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
        check_upper(cname, "command")
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
    Channel("cmds_accepted", "u32", description="commands accepted since the last reset", id=1),
    Channel("cmds_rejected", "u32", description="commands refused at acceptance", id=2),
    Channel("errors", "u32", description="command execution failures and tick errors", id=3),
)

__all__ = [
    "COUNTER_CHANNELS",
    "FIRST_CHANNEL_ID",
    "MAX_LOCAL_ID",
    "REPORT_ROLES",
    "Channel",
    "CommandSpec",
    "Event",
    "Mode",
    "Param",
    "Report",
    "Severity",
    "check_local_id",
    "check_lower",
    "check_upper",
    "command",
]
