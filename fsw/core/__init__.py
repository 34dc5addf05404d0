"""Flight-software core: components, PUS-C services, executive, modes, persistence.

Start with :func:`fsw.app.build_flight` and :class:`Component`; ``docs/core.md`` shows
how to write a component.
"""

from fsw.core.clock import Clock, SimClock, WallClock
from fsw.core.component import (
    Channel,
    CommandSpec,
    Component,
    Event,
    Mode,
    Param,
    Report,
    Severity,
    command,
)
from fsw.core.errors import (
    CommandFailed,
    CoreError,
    DeclarationError,
    FailureCode,
    StoreError,
    WireError,
)
from fsw.core.flight import FlightSoftware
from fsw.core.health import SdNotifier
from fsw.core.modes import Monitor, MonitorAction
from fsw.core.runtime import EventRecord, FlightConfig, Priority
from fsw.core.sequencer import SeqStep, StoredSequence
from fsw.core.store import DirStore, MemStore, Store
from fsw.core.wire import Arg, Array, Dynamic

__all__ = [
    "Arg",
    "Array",
    "Channel",
    "Clock",
    "CommandFailed",
    "CommandSpec",
    "Component",
    "CoreError",
    "DeclarationError",
    "DirStore",
    "Dynamic",
    "Event",
    "EventRecord",
    "FailureCode",
    "FlightConfig",
    "FlightSoftware",
    "MemStore",
    "Mode",
    "Monitor",
    "MonitorAction",
    "Param",
    "Priority",
    "Report",
    "SdNotifier",
    "SeqStep",
    "Severity",
    "SimClock",
    "Store",
    "StoreError",
    "StoredSequence",
    "WallClock",
    "WireError",
    "command",
]
