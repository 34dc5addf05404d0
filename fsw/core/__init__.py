"""Flight-software core: components, PUS-C services, executive, modes, persistence.

Start with :func:`fsw.app.build_flight` and :class:`Component`; ``docs/core.md`` shows
how to write a component.
"""

from fsw.core.clock import Clock, SimClock, WallClock
from fsw.core.component import Component, ComponentPort
from fsw.core.declarations import (
    Channel,
    CommandSpec,
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
    NvStoreError,
    WireError,
)
from fsw.core.flight import FlightSoftware
from fsw.core.health import SdNotifier
from fsw.core.modes import Monitor, MonitorAction
from fsw.core.nvstore import DirNvStore, MemNvStore, NvStore
from fsw.core.registry import EventRecord, FlightConfig, Priority
from fsw.core.sequencer import SeqStep, StoredSequence
from fsw.core.wire import Arg, Array, Dynamic

__all__ = [
    "Arg",
    "Array",
    "Channel",
    "Clock",
    "CommandFailed",
    "CommandSpec",
    "Component",
    "ComponentPort",
    "CoreError",
    "DeclarationError",
    "DirNvStore",
    "Dynamic",
    "Event",
    "EventRecord",
    "FailureCode",
    "FlightConfig",
    "FlightSoftware",
    "MemNvStore",
    "Mode",
    "Monitor",
    "MonitorAction",
    "NvStore",
    "NvStoreError",
    "Param",
    "Priority",
    "Report",
    "SdNotifier",
    "SeqStep",
    "Severity",
    "SimClock",
    "StoredSequence",
    "WallClock",
    "WireError",
    "command",
]
