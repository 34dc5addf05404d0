"""One flight-software instance: the core services plus the components you add.

>>> from fsw.ccsds import PusTc
>>> fs = FlightSoftware(SimClock())
>>> fs.uplink_packet(PusTc(apid=100, service=17, subservice=1, seq_count=1).encode())
>>> fs.step(1.0)
10
>>> from fsw.ccsds import PusTm
>>> [(t.service, t.subservice) for t in map(PusTm.decode, fs.downlink_packets())][:4]
[(1, 1), (1, 3), (17, 2), (1, 7)]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from fsw.core.clock import Clock, SimClock
from fsw.core.component import Component
from fsw.core.declarations import Mode
from fsw.core.dispatcher import CommandDispatcher
from fsw.core.errors import CoreError, DeclarationError
from fsw.core.events import EventManager
from fsw.core.executive import Executive
from fsw.core.health import HealthMonitor, SdNotifier
from fsw.core.housekeeping import Housekeeping
from fsw.core.modes import ModeManager, Monitor
from fsw.core.nvstore import MemNvStore, NvStore
from fsw.core.parameters import ParameterManager
from fsw.core.persistence import Persistence
from fsw.core.registry import EventRecord, FlightConfig, Registry, binding_of
from fsw.core.sequencer import Sequencer, StoredSequence
from fsw.core.timetag import TimeTagSchedule

#: Fixed ids of the core components; mission components get 16 and up.
CORE_IDS: dict[str, int] = {
    "exec": 1,
    "cmd": 2,
    "evt": 3,
    "hk": 4,
    "prm": 5,
    "sched": 6,
    "seq": 7,
    "mode": 8,
    "health": 9,
    "persist": 10,
}
FIRST_MISSION_ID = 16
CORE_SID = 1
#: Housekeeping sid of a component's default report: 256 + component id.
COMPONENT_SID_BASE = 0x100
CORE_REPORT_CHANNELS: tuple[str, ...] = (
    "mode.mode",
    "exec.met_s",
    "exec.cycles",
    "cmd.tc_received",
    "cmd.tc_accepted",
    "cmd.tc_rejected",
    "cmd.tc_failed",
    "cmd.tc_malformed",
    "cmd.uplink_dropped",
    "evt.sent",
    "evt.throttled",
    "exec.dl_queued",
    "exec.dl_dropped",
    "sched.activities",
    "seq.running",
    "mode.monitors_tripped",
    "health.restarts",
    "health.isolated",
    "persist.save_failures",
)

C = TypeVar("C", bound=Component)


class FlightSoftware:
    """The flight software: core services, your components, one executive.

    Usually built by :func:`fsw.app.build_flight`. Core services are attributes:
    ``executive``, ``cmd``, ``evt``, ``hk``, ``prm``, ``sched``, ``seq``, ``modes``,
    ``health``, ``storage``.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        store: NvStore | None = None,
        config: FlightConfig | None = None,
        watchdog: SdNotifier | None = None,
    ) -> None:
        self.config = config or FlightConfig()
        self.clock: Clock = clock if clock is not None else SimClock()
        self.registry = Registry(self.clock, self.config)
        self.storage = Persistence(store if store is not None else MemNvStore())
        self.cmd = CommandDispatcher()
        self.evt = EventManager()
        self.health = HealthMonitor(watchdog)
        self.executive = Executive(self.cmd.drain, self.health)
        self.hk = Housekeeping()
        self.prm = ParameterManager(self.storage)
        self.sched = TimeTagSchedule(self.storage, self.cmd.execute)
        self.seq = Sequencer(self.storage, self.cmd.execute)
        self.modes = ModeManager(self.seq)
        self._started = False
        core: list[Component] = [
            self.executive,
            self.cmd,
            self.evt,
            self.hk,
            self.prm,
            self.sched,
            self.seq,
            self.modes,
            self.health,
            self.storage,
        ]
        rt = self.registry
        for comp in core:  # ids, channels, events, parameters
            rt.attach(comp, CORE_IDS[comp.name])
        rt.event_sink = self.evt.sink
        self.executive.setup_groups()
        self.prm.load_saved()  # saved state, reported through events
        self.sched.load_saved()
        self.seq.load_saved()
        for comp in core:  # commands, housekeeping, ticks, init
            self._activate(comp)
        self.hk.define(CORE_SID, "core", 1.0, CORE_REPORT_CHANNELS)

    # ------------------------------------------------------------ topology
    def add_component(self, comp: C, *, component_id: int) -> C:
        """Register a mission component (one line per component in ``fsw/app.py``).

        ``component_id`` is pinned (the high byte of every id the component owns; an
        integrator's components take 16..255, :data:`FIRST_MISSION_ID` on). The component
        gets its saved parameter values, a default housekeeping report (sid 256 + id) and
        ``on_init()``.
        """
        self.registry.attach(comp, component_id)
        self.prm.apply_saved(comp)
        self._activate(comp)
        return comp

    def _activate(self, comp: Component) -> None:
        b = binding_of(comp)
        self.cmd.register(comp)
        self.executive.add_member(comp)
        b.last_beat = self.registry.tick
        interval = type(comp).HK_INTERVAL_S
        if interval > 0:
            self.hk.define(
                COMPONENT_SID_BASE + b.component_id,
                comp.name,
                interval,
                [f"{comp.name}.{ch.name}" for ch in type(comp).channels()],
            )
        try:
            comp.on_init()
        except Exception as exc:
            raise DeclarationError(
                f"component '{comp.name}' failed to initialise: {type(exc).__name__}: {exc}"
            ) from exc

    def add_monitor(self, monitor: Monitor) -> None:
        """Add a limit monitor (see :class:`~fsw.core.modes.Monitor`)."""
        self.modes.add_monitor(monitor)

    def add_sequence(self, sequence: StoredSequence) -> None:
        """Add a stored sequence defined in code."""
        self.seq.add(sequence)

    def start(self, *, dict_hash: int = 0) -> None:
        """Announce the boot (``exec.BOOT``, then ``prm.LOADED`` with every saved parameter
        value restored, core and mission components alike); idempotent.

        ``dict_hash`` is what ``exec.dict_hash`` publishes: the first 32 bits of the
        content hash of this topology's dictionary, which the ground compares with its
        own. ``build_flight`` computes and passes it; a flight started without one (the
        first ``step()`` starts it) publishes 0.
        """
        if self._started:
            return
        if not 0 <= dict_hash <= 0xFFFF_FFFF:
            raise DeclarationError(f"dict_hash {dict_hash} is not a 32-bit value")
        self._started = True
        self.registry.dict_hash = dict_hash
        self.executive.tlm("dict_hash", dict_hash)
        self.executive.event("BOOT", len(self.registry.components), len(self.cmd.entries()))
        self.prm.announce_loaded()  # core and mission components' saved values together

    # ------------------------------------------------------------ running
    def uplink_packet(self, raw: bytes | bytearray | memoryview) -> None:
        """Hand one TC space packet (after the link layer) to the dispatcher.

        Never raises; the TC executes at the start of the next cycle (or ``step(0)``).
        Safe to call from a link thread while the executive runs.
        """
        self.cmd.submit(raw)

    def step(self, dt_s: float) -> int:
        """Advance simulated time by ``dt_s`` seconds; returns executive cycles run."""
        if not self._started:
            self.start()
        return self.executive.step(dt_s)

    def run_realtime(
        self,
        duration_s: float | None = None,
        *,
        stop: Callable[[], bool] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> int:
        """Run paced by a wall clock (on a board) until ``duration_s`` or ``stop()``."""
        if not self._started:
            self.start()
        return self.executive.run_realtime(duration_s, stop=stop, sleep=sleep)

    def downlink_packets(self, max_packets: int | None = None) -> list[bytes]:
        """TM space packets produced so far, most important first (and removed)."""
        return self.registry.downlink.drain(max_packets)

    # ------------------------------------------------------------ inspection
    @property
    def components(self) -> Mapping[str, Component]:
        """Every component by name (read-only view)."""
        return MappingProxyType(self.registry.components)

    @property
    def mode(self) -> Mode:
        """Current spacecraft mode."""
        return self.registry.mode

    def telemetry(self, name: str) -> Any:
        """Current value of a channel by full name, e.g. ``fs.telemetry("cmd.tc_accepted")``."""
        return self.registry.value(name)

    @property
    def recent_events(self) -> list[EventRecord]:
        """The last events raised on board (filtered ones included), oldest first."""
        return list(self.registry.recent_events)

    def component(self, name: str) -> Component:
        """A component by name (``CoreError`` if there is none)."""
        comp = self.registry.components.get(name)
        if comp is None:
            raise CoreError(f"no component named '{name}'")
        return comp


__all__ = [
    "COMPONENT_SID_BASE",
    "CORE_IDS",
    "CORE_REPORT_CHANNELS",
    "CORE_SID",
    "FIRST_MISSION_ID",
    "FlightSoftware",
]
