"""The flight topology: which components fly, wired how. Read this file to see the
whole satellite.

The core services (executive, dispatcher, events, housekeeping, parameters, schedule,
sequences, modes, health, storage) are built by :class:`~fsw.core.flight.FlightSoftware`
with fixed ids 1..10. Mission components (HAL, power, payload) are registered below,
one line each; integrators can also pass extra components to :func:`build_flight`.

>>> from fsw.core.clock import SimClock
>>> fs = build_flight(clock=SimClock())
>>> sorted(fs.components)[:4]
['cfdp', 'cmd', 'comms', 'eps']
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from fsw.ai.payload import Payload, load_models
from fsw.ai.scrubber import Scrubber
from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig
from fsw.ccsds.stack import SpacecraftLink
from fsw.comms.cfdp import CFDP_APID, Cfdp
from fsw.comms.radio import Comms, NvLinkStateStore
from fsw.core.clock import Clock, SimClock
from fsw.core.component import Component
from fsw.core.dictionary import build_dictionary, dictionary_hash32
from fsw.core.flight import FlightSoftware
from fsw.core.health import SdNotifier
from fsw.core.modes import Monitor, MonitorAction
from fsw.core.nvstore import DirNvStore, MemNvStore, NvStore
from fsw.core.registry import FlightConfig
from fsw.core.sequencer import StoredSequence
from fsw.hal.eps import Eps
from fsw.hal.interfaces import Hal
from fsw.power.component import Power
from fsw.storage.files import FileStore
from fsw.storage.stores import PacketStores

#: The radio is part of every flight build: a fixed id just after the core services'.
COMMS_ID = 11
#: The mission components every build carries: fixed ids between the radio's and 16, the
#: first id given to components an integrator adds (so theirs do not move either).
EPS_ID, POWER_ID, SCRUBBER_ID, PAYLOAD_ID = 12, 13, 14, 15
#: On-board storage: the PUS-15 packet stores and the file store. Every build carries
#: them; their ids sit in the integrators' range, clear of the low ids examples and tests
#: give their own components (16..29 stay free), so an integrator must not use 30, 31.
STORES_ID, FILES_ID = 30, 31
#: The on-board CFDP entity (file delivery, uploads, model activation), its files under
#: ``files_dir`` (or ``storage_dir``/files).
CFDP_ID = 21

#: Limit monitors every flight carries (ids 1..99 are reserved for the core).
DEFAULT_MONITORS: tuple[Monitor, ...] = (
    Monitor(
        1,
        "component_isolated",
        "health.isolated",
        ">=",
        1,
        persistence=1,
        action=MonitorAction.EVENT,
    ),
    Monitor(
        2, "downlink_overflow", "exec.dl_dropped", ">", 0, persistence=1, action=MonitorAction.EVENT
    ),
)


def build_flight(
    clock: Clock | None = None,
    storage_dir: str | os.PathLike[str] | None = None,
    *,
    components: Mapping[int, Component] | None = None,
    monitors: Sequence[Monitor] = (),
    sequences: Sequence[StoredSequence] = (),
    config: FlightConfig | None = None,
    watchdog: SdNotifier | None = None,
    store: NvStore | None = None,
    link_config: LinkConfig | None = None,
    hal: Hal | None = None,
    stores_dir: str | os.PathLike[str] | None = None,
    files_dir: str | os.PathLike[str] | None = None,
) -> FlightSoftware:
    """Build and start the full flight topology.

    ``storage_dir=None`` keeps parameters, schedule, sequences and the link's
    anti-replay state in memory (same semantics, nothing touches the disk); a path uses
    :class:`DirNvStore`. ``store`` overrides both. A durable store must hold a link state
    (written by :func:`fsw.main.provision_link_state` before the first boot), or the
    radio refuses authenticated TCs until the SDLS reset (docs/ccsds.md).
    ``components`` maps pinned component ids (16..255, see
    :data:`~fsw.core.flight.FIRST_MISSION_ID`) to an integrator's components; they,
    ``monitors`` and ``sequences`` are added after the mission components below.
    ``link_config`` is the space link's configuration and keys (default: the
    repository's public test keys, fine for SITL, never for flight). ``hal`` is the
    hardware back-end (:class:`~fsw.hal.interfaces.Hal`): the simulated world in SITL, the
    board's devices in flight; without one every mission component is registered against
    absent hardware (no sensor, no camera, no models) and idles. ``stores_dir`` is where
    the packet stores keep their files (default: ``<storage_dir>/stores``; without a
    storage directory, a temporary directory removed when the flight is dropped);
    ``files_dir`` is the on-board file store's root, where data products are written and
    CFDP sends from and receives into (default ``<storage_dir>/files``, likewise).
    """
    if store is None:
        store = DirNvStore(storage_dir) if storage_dir is not None else MemNvStore()
    fs = FlightSoftware(
        clock if clock is not None else SimClock(), store=store, config=config, watchdog=watchdog
    )

    # --- mission components: one line each (HAL, power, payload register here) ---
    link = SpacecraftLink(
        link_config or LinkConfig.load(TEST_KEY_FILE),
        NvLinkStateStore(store),
        challenge=_simulated_challenges() if isinstance(fs.clock, SimClock) else None,
    )
    fs.add_component(Comms(link), component_id=COMMS_ID)
    if isinstance(store, DirNvStore):
        stores_dir = stores_dir if stores_dir is not None else store.root / "stores"
        files_dir = files_dir if files_dir is not None else store.root / "files"
    fs.add_component(
        PacketStores(None if stores_dir is None else Path(stores_dir), fs.storage),
        component_id=STORES_ID,
    )
    hal = hal if hal is not None else Hal.none()
    fs.add_component(Eps(hal.eps), component_id=EPS_ID)
    power = fs.add_component(Power(hal.platform, hal.eps), component_id=POWER_ID)
    models = load_models(hal.models)
    scrubber = fs.add_component(Scrubber(models.loaded), component_id=SCRUBBER_ID)
    files = fs.add_component(
        FileStore(None if files_dir is None else Path(files_dir)), component_id=FILES_ID
    )
    payload = fs.add_component(
        Payload(
            power,
            hal.camera,
            hal.payload_power,
            small=models.small,
            large=models.large,
            load_errors=models.errors,
            latency_model=hal.latency_model,
        ),
        component_id=PAYLOAD_ID,
    )
    payload.product_sinks.append(files.on_kept_frame)  # every kept frame becomes files
    cfdp = fs.add_component(
        Cfdp(files.root, payload=payload, scrubber=scrubber, products=files),
        component_id=CFDP_ID,
    )
    fs.route_apid(CFDP_APID, cfdp.receive_packet)
    fs.add_downlink_source(cfdp.downlink)

    for component_id, comp in (components or {}).items():
        fs.add_component(comp, component_id=component_id)
    for seq in sequences:
        fs.add_sequence(seq)
    for mon in (*DEFAULT_MONITORS, *monitors):
        fs.add_monitor(mon)
    fs.start(dict_hash=dictionary_hash32(build_dictionary(fs)))
    return fs


def close_storage(fs: FlightSoftware) -> None:
    """Close the packet stores and the file store of a flight built by
    :func:`build_flight` (save playback positions; remove their temporary directories when
    the flight had no storage directory). For a flight built only for its dictionary, or
    at the end of a run."""
    for name in ("stores", "files"):
        comp = fs.components.get(name)
        if isinstance(comp, PacketStores | FileStore):
            comp.close()


def _simulated_challenges() -> Callable[[], bytes]:
    """SDLS reset challenges for a simulated flight: fixed-seed, so a SITL run repeats
    byte for byte (a flight on a real clock draws them from the OS's random source)."""
    rng = random.Random(0x5D15)
    return lambda: rng.randbytes(8)


__all__ = ["DEFAULT_MONITORS", "build_flight", "close_storage"]
