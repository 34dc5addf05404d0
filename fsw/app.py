"""The flight topology: which components fly, wired how. Read this file to see the
whole satellite.

The core services (executive, dispatcher, events, housekeeping, parameters, schedule,
sequences, modes, health, storage) are built by :class:`~fsw.core.flight.FlightSoftware`
with fixed ids 1..10. Mission components (HAL, power, payload) are registered below,
one line each; integrators can also pass extra components to :func:`build_flight`.

>>> from fsw.core.clock import SimClock
>>> fs = build_flight(clock=SimClock())
>>> sorted(fs.components)[:3]
['cmd', 'comms', 'evt']
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig
from fsw.ccsds.stack import SpacecraftLink
from fsw.core.clock import Clock, SimClock
from fsw.core.component import Component
from fsw.core.flight import FlightSoftware
from fsw.core.health import SdNotifier
from fsw.core.modes import Monitor, MonitorAction
from fsw.core.runtime import FlightConfig
from fsw.core.sequencer import StoredSequence
from fsw.core.store import DirStore, MemStore, Store
from fsw.radio import Comms

#: The radio is part of every flight build: a fixed id just after the core services'.
COMMS_ID = 11

#: Limit monitors every flight carries (ids 1..99 are reserved for the core).
DEFAULT_MONITORS: tuple[Monitor, ...] = (
    Monitor(1, "component_isolated", "health.isolated", ">=", 1, persistence=1,
            action=MonitorAction.EVENT),
    Monitor(2, "downlink_overflow", "exec.dl_dropped", ">", 0, persistence=1,
            action=MonitorAction.EVENT),
)


def build_flight(
    clock: Clock | None = None,
    storage_dir: str | os.PathLike[str] | None = None,
    *,
    components: Sequence[Component] = (),
    monitors: Sequence[Monitor] = (),
    sequences: Sequence[StoredSequence] = (),
    config: FlightConfig | None = None,
    watchdog: SdNotifier | None = None,
    store: Store | None = None,
    link_config: LinkConfig | None = None,
) -> FlightSoftware:
    """Build and start the full flight topology.

    ``storage_dir=None`` keeps parameters, schedule and sequences in memory (same
    semantics, nothing touches the disk); a path uses :class:`DirStore`. ``store``
    overrides both. ``components``, ``monitors`` and ``sequences`` are added after the
    mission components below. ``link_config`` is the space link's configuration and keys
    (default: the repository's public test keys, fine for SITL, never for flight).
    """
    if store is None:
        store = DirStore(storage_dir) if storage_dir is not None else MemStore()
    fs = FlightSoftware(clock if clock is not None else SimClock(), store=store,
                        config=config, watchdog=watchdog)

    # --- mission components: one line each (HAL, power, payload register here) ---
    fs.add_component(Comms(SpacecraftLink(link_config or LinkConfig.load(TEST_KEY_FILE))),
                     component_id=COMMS_ID)

    for comp in components:
        fs.add_component(comp)
    for seq in sequences:
        fs.add_sequence(seq)
    for mon in (*DEFAULT_MONITORS, *monitors):
        fs.add_monitor(mon)
    fs.start()
    return fs


__all__ = ["DEFAULT_MONITORS", "build_flight"]
