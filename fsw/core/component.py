"""Components: the unit of flight software.

A component declares, in its class body, what it exposes to the ground (the records of
:mod:`fsw.core.declarations`): commands, telemetry channels, events, parameters,
reports. At run time it gets ``self.tlm(...)``, ``self.event(...)``, ``self.param(...)``,
``self.clock`` and ``self.mode``, and the executive calls ``on_tick(rate_group)`` for the
rate groups it lists in ``RATE_GROUPS``.

A component talks to the flight software it is registered with through a
:class:`ComponentPort` (the registry's binding implements it); it knows nothing else of
the registry, so this module imports only the declarations.

>>> from fsw.core import Arg, Channel, Event, Param, Severity, command
>>> class Heater(Component):
...     NAME = "heater"
...     TELEMETRY = (Channel("power_w", "f32", units="W", red=(None, 12.0), id=4),)
...     EVENTS = (Event("SWITCHED", Severity.INFO, "on={on}", (Arg("on", "bool"),), id=1),)
...     PARAMETERS = (Param("set_point_c", "f32", default=5.0, min=-20, max=40, id=1),)
...     RATE_GROUPS = ("1Hz",)
...
...     def on_init(self) -> None:
...         self.on = False
...
...     @command(args=(Arg("on", "bool"),), opcode=1)
...     def switch(self, on: bool) -> None:
...         self.on = on
...         self.event("SWITCHED", on)
...
...     def on_tick(self, rate_group: str) -> None:
...         self.tlm("power_w", 10.0 if self.on else 0.0)
>>> [c.name for c in Heater.commands()]
['RESET_COUNTERS', 'SWITCH']
>>> heater = Heater()
>>> heater.is_bound
False
>>> from fsw.core.flight import FlightSoftware
>>> fs = FlightSoftware()
>>> _ = fs.add_component(heater, component_id=16)
>>> heater.is_bound, heater.component_id, heater.param("set_point_c")
(True, 16, 5.0)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from fsw.core.declarations import (
    COUNTER_CHANNELS,
    FIRST_CHANNEL_ID,
    Channel,
    CommandSpec,
    Event,
    Mode,
    Param,
    Report,
    check_lower,
    command,
)
from fsw.core.errors import CoreError, DeclarationError

if TYPE_CHECKING:
    from fsw.core.clock import Clock

#: At most this many channels, events, parameters or reports per component (local ids
#: are one byte).
MAX_LOCAL_ITEMS = 255


class ComponentPort(Protocol):
    """What a registered component is attached to: its ids, value slots and services.

    :meth:`fsw.core.registry.Registry.attach` hands every component one (a
    :class:`~fsw.core.registry.Binding`); components reach it through their own methods
    (``tlm``, ``event``, ``param``, ...) and rarely need it directly.
    """

    @property
    def component_id(self) -> int:
        """The component's id (high byte of its channel, event and parameter ids)."""
        ...

    @property
    def clock(self) -> Clock:
        """The flight clock."""
        ...

    @property
    def mode(self) -> Mode:
        """The current spacecraft mode."""
        ...

    @property
    def values(self) -> list[Any]:
        """Every telemetry value of the flight software, by slot."""
        ...

    @property
    def coercers(self) -> list[Callable[[Any], Any]]:
        """Per slot: converts a published value to its stored form."""
        ...

    @property
    def tlm_slots(self) -> dict[str, int]:
        """The component's channel names and their slots in :attr:`values`."""
        ...

    @property
    def counter_slots(self) -> tuple[int, int, int]:
        """Slots of ``cmds_accepted``, ``cmds_rejected`` and ``errors``."""
        ...

    @property
    def param_values(self) -> dict[str, Any]:
        """The component's current parameter values by name."""
        ...

    def emit_event(self, name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """Raise the component's event ``name`` (``CoreError`` if it has none)."""
        ...

    def send_report(self, report: Report, values: Mapping[str, Any]) -> None:
        """Encode and queue one of the component's declared reports."""
        ...


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
    _b: ComponentPort | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._COMMANDS = _collect_commands(cls)
        _check_declarations(cls)

    def __init__(self, name: str | None = None) -> None:
        self.name = name or self.NAME or type(self).__name__.lower()
        check_lower(self.name, "component")
        self._b: ComponentPort | None = None
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

    # ----------------------------------------------------------- binding
    @property
    def is_bound(self) -> bool:
        """True once the component is registered with a flight software instance."""
        return self._b is not None

    @property
    def binding(self) -> ComponentPort:
        """What the component is registered with (``CoreError`` if it is not yet)."""
        b = self._b
        if b is None:
            raise CoreError(
                f"component '{self.name}' is not registered: add it with fs.add_component()"
            )
        return b

    def bind(self, port: ComponentPort) -> None:
        """Attach the component to ``port``; the registry calls this once, at registration."""
        if self._b is not None:
            raise DeclarationError(f"component '{self.name}' is already registered")
        self._b = port

    # ----------------------------------------------------------- run-time API

    @property
    def component_id(self) -> int:
        """Numeric id given at registration (high byte of its channel/event ids)."""
        return self.binding.component_id

    @property
    def clock(self) -> Clock:
        """The flight clock (``now_tai()``, ``met()``); never call ``time.time()``."""
        return self.binding.clock

    @property
    def mode(self) -> Mode:
        """Current spacecraft mode."""
        return self.binding.mode

    def tlm(self, name: str, value: float | int | bool | str) -> None:
        """Publish a telemetry value (enum channels take a label or a number)."""
        b = self._b
        if b is None:
            raise CoreError(
                f"component '{self.name}' is not registered: add it with fs.add_component()"
            )
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
        b = self.binding
        slot = b.tlm_slots.get(name)
        if slot is None:
            raise CoreError(f"{self.name} has no telemetry channel '{name}'")
        return b.values[slot]

    def tlm_inc(self, name: str, delta: int = 1) -> None:
        """Add ``delta`` to an integer channel (a counter); saturates at the type's range."""
        b = self.binding
        slot = b.tlm_slots.get(name)
        if slot is None:
            raise CoreError(f"{self.name} has no telemetry channel '{name}'")
        b.values[slot] = b.coercers[slot](b.values[slot] + delta)

    def event(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Raise an event; arguments by position (declaration order) or by name."""
        self.binding.emit_event(name, args, kwargs)

    def send_report(self, name: str, **values: Any) -> None:
        """Encode and downlink one of this component's declared ``REPORTS``."""
        b = self.binding
        for rep in type(self).REPORTS:
            if rep.name == name:
                b.send_report(rep, values)
                return
        raise CoreError(f"{self.name} declares no report '{name}'")

    def param(self, name: str) -> Any:
        """Current value of one of this component's parameters."""
        b = self.binding
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
        b = self.binding
        for slot in b.counter_slots:
            b.values[slot] = 0


def _collect_commands(cls: type) -> tuple[CommandSpec, ...]:
    """The commands of ``cls`` and its bases; every service-8 function has its pinned
    opcode (never counted from declaration order: raw opcodes outlive a release)."""
    specs: dict[str, CommandSpec] = {}
    for klass in reversed(cls.__mro__):
        for attr, val in vars(klass).items():
            spec = getattr(val, "__gnomon_command__", None)
            if isinstance(spec, CommandSpec):
                specs[attr] = spec
    out = tuple(specs.values())
    for s in out:
        if s.is_function and s.opcode is None:
            raise DeclarationError(
                f"{cls.__name__}: command {s.name}: give its pinned opcode, e.g. "
                "@command(opcode=1) (opcodes are never counted from declaration order; "
                "docs/dictionary.md)"
            )
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise DeclarationError(f"{cls.__name__}: duplicate command names")
    ops = [s.opcode for s in out if s.is_function]
    if len(set(ops)) != len(ops):
        dup = sorted({o for o in ops if ops.count(o) > 1 and o is not None})
        raise DeclarationError(f"{cls.__name__}: duplicate command opcodes {dup}")
    return out


def _check_ids(cls: type[Component]) -> None:
    """Pinned local ids: unique per kind; a component's own channels start at 4."""
    where = cls.__name__
    for ch in cls.TELEMETRY:
        if ch.id < FIRST_CHANNEL_ID:
            raise DeclarationError(
                f"{where}: channel {ch.name}: id {ch.id} is a counter channel's "
                f"(1..3); a component's own channels start at id={FIRST_CHANNEL_ID}"
            )
    for title, items in (
        ("channel", cls.channels()),
        ("event", tuple(cls.EVENTS)),
        ("parameter", tuple(cls.PARAMETERS)),
    ):
        seen: dict[int, str] = {}
        for item in items:
            other = seen.setdefault(item.id, item.name)
            if other != item.name:
                raise DeclarationError(
                    f"{where}: {title}s {other} and {item.name} both have id={item.id}"
                )


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
    _check_ids(cls)


Component._COMMANDS = _collect_commands(Component)

__all__ = ["MAX_LOCAL_ITEMS", "Component", "ComponentPort"]
