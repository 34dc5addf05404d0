"""The flight process: build the topology, open the link, run the executive.

``gnomon fsw run`` and ``gnomon fsw sim`` (``fsw/cli.py``) only parse their arguments
and call these functions; everything a flight process does is here, as plain functions
that return a summary (JSON-able) and raise :class:`StartupError` when the flight
cannot start. Operator messages go to the ``fsw.main`` logger.

- :func:`simulate`: the default topology on a simulated clock, as fast as possible,
  no link (a smoke test of a build).
- :func:`provision_link_state`: once per board, before its first boot: the link state
  (V(R), SDLS sequence numbers, key ids) the radio needs in ``--storage``.
- :func:`run_flight`: real time on this machine (board mode): wall clock, the systemd
  watchdog when ``WATCHDOG_USEC`` is set, the space link on ``options.link``. With
  ``options.sim_bridge`` (a HIL bench) the same cable also carries the simulated EPS,
  camera and time; the board waits for the bench, then flies on the bench's time.

>>> summary = simulate(20.0)
>>> summary["cycles"], summary["mode"], summary["tm_by_type"]["3,25"] >= 20
(200, 'NOMINAL', True)
>>> run_flight(RunOptions(sim_bridge=True))
Traceback (most recent call last):
...
fsw.main.StartupError: --sim-bridge needs --link, e.g. serial:///dev/ttyAMA0?baud=921600
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsw.app import build_flight
from fsw.ccsds import CcsdsError, PusTm
from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig
from fsw.ccsds.linkstate import LinkState, SaState
from fsw.comms.radio import NvLinkStateStore, RadioHost
from fsw.core.clock import WallClock
from fsw.core.errors import CoreError, NvStoreError
from fsw.core.flight import FlightSoftware
from fsw.core.health import SdNotifier
from fsw.core.nvstore import DirNvStore
from fsw.link import LinkError, open_link

if TYPE_CHECKING:
    from fsw.hal.board import BoardBridge, NvpModel
    from fsw.hal.interfaces import ModelFiles

log = logging.getLogger("fsw.main")


class StartupError(Exception):
    """The flight process cannot start: a bad option, an unreadable key file, a link
    that cannot be opened, a topology that does not build, no bench answering.

    The message says what to fix.
    """


@dataclass(slots=True, frozen=True)
class RunOptions:
    """What ``gnomon fsw run`` was asked for (see ``gnomon fsw run --help``).

    ``link``: the radio link URL (None: the downlink is counted and discarded);
    ``key_file``: link configuration and SDLS keys (None: the public test keys);
    ``duration_s``: None runs until stopped. The ``sim_bridge`` options: ``models`` (a
    directory with the two artifacts), ``bench_timeout_s`` (None: wait forever),
    ``nvpmodel`` (power-mode switching on a Jetson, ``'7W=1,15W=0'``).
    """

    link: str | None = None
    key_file: Path | None = None
    duration_s: float | None = None
    storage: Path | None = None
    sim_bridge: bool = False
    models: Path | None = None
    bench_timeout_s: float | None = None
    nvpmodel: str | None = None


# ------------------------------------------------------------------ simulate
#: The longest simulated run ``gnomon fsw sim`` takes: 30 days.
MAX_SIM_SECONDS = 30 * 86400.0


def simulate(
    seconds: float,
    storage: Path | None = None,
    *,
    on_progress: Callable[[float], None] | None = None,
    chunk_s: float = 100.0,
) -> dict[str, Any]:
    """Run the default topology on a simulated clock for ``seconds``; the summary.

    ``on_progress(done_s)`` is called after every ``chunk_s`` simulated seconds.
    """
    if not 0 < seconds <= MAX_SIM_SECONDS:  # refuses inf and nan too
        raise StartupError(
            f"--seconds must be within 0..{MAX_SIM_SECONDS:g} (30 days), got {seconds:g}"
        )
    fs = _build(storage_dir=storage)
    packets: Counter[tuple[int, int]] = Counter()
    nbytes = cycles = 0
    done = 0.0
    t0 = time.process_time()
    while done < seconds:
        dt = min(chunk_s, seconds - done)
        cycles += fs.step(dt)
        done += dt
        for raw in fs.downlink_packets():
            tm = PusTm.decode(raw)
            packets[(tm.service, tm.subservice)] += 1
            nbytes += len(raw)
        if on_progress is not None:
            on_progress(done)
    cpu_s = time.process_time() - t0
    return {
        "met_s": round(fs.clock.met(), 3),
        "cycles": cycles,
        "cpu_s": round(cpu_s, 4),
        "cpu_us_per_s": round(cpu_s / max(fs.clock.met(), 1e-9) * 1e6, 2),
        "mode": fs.mode.name,
        "tm_packets": sum(packets.values()),
        "tm_bytes": nbytes,
        "tm_by_type": {f"{s},{ss}": n for (s, ss), n in sorted(packets.items())},
        "dl_dropped": fs.telemetry("exec.dl_dropped"),
        "events": len(fs.recent_events),
    }


def _build(**kwargs: Any) -> FlightSoftware:
    try:
        return build_flight(**kwargs)
    except CoreError as exc:
        raise StartupError(exc.reason) from exc


# ------------------------------------------------------------------ run
def run_flight(options: RunOptions) -> dict[str, Any]:
    """Fly in real time until ``options.duration_s`` or Ctrl-C; the summary."""
    if options.duration_s is not None and not options.duration_s > 0:
        raise StartupError("--duration must be positive")
    cfg = load_link_config(options.key_file)
    if options.sim_bridge:
        if options.link is None:
            raise StartupError("--sim-bridge needs --link, e.g. serial:///dev/ttyAMA0?baud=921600")
        return fly_on_bridge(options.link, cfg, options)
    fs = _build(
        clock=WallClock(),
        storage_dir=options.storage,
        link_config=cfg,
        watchdog=SdNotifier.from_env(),
    )
    radio = RadioHost(fs)
    _warn_about_link_state(cfg, options.storage)
    t0 = time.process_time()
    cycles = 0
    try:
        cycles = _fly(fs, radio, options.link, options.duration_s)
    except KeyboardInterrupt:
        log.warning("stopped")
    return {
        "met_s": round(fs.clock.met(), 3),
        "cycles": cycles,
        "cpu_s": round(time.process_time() - t0, 4),
        "mode": fs.mode.name,
        "radio": dict(radio.stats),
        "link": radio.link.counters,
        "link_state": radio.link.state_report.status.name,
        "commands": {
            k: fs.telemetry(f"cmd.{k}") for k in ("tc_received", "tc_accepted", "tc_rejected")
        },
    }


def _warn_about_link_state(cfg: LinkConfig, storage: Path | None) -> None:
    if not cfg.sdls_enabled:
        return
    if storage is None:
        log.warning(
            "no --storage: the SDLS anti-replay state lives in memory, so after a restart "
            "recorded commands would be accepted again; fly with --storage DIR "
            "(provisioned once with `gnomon fsw provision --storage DIR`)"
        )
    elif cfg.recovery_key_id is None:
        log.warning(
            "the key file has no recovery key (recovery_spi, recovery_key_id): if the saved "
            "link state is ever lost, authenticated commanding cannot be restored over the air"
        )


def provision_link_state(storage: Path, key_file: Path | None) -> dict[str, Any]:
    """Write a board's first link state (before its first flight boot); the summary.

    V(R) 0 and every SA of the key file on its configured key, at sequence number 0.
    Refuses a storage directory that already holds a link state, even a damaged one:
    provisioning again would make recorded frames acceptable again.
    """
    cfg = load_link_config(key_file)
    try:
        store = DirNvStore(storage)
        found = store.load_mirrored(NvLinkStateStore.KEY)
    except NvStoreError as exc:
        raise StartupError(f"storage {storage}: {exc.reason}") from exc
    if found.existed:
        raise StartupError(
            f"{storage} already holds a link state; a board is provisioned once, or "
            "commands recorded since would be accepted again. In flight, restore a lost "
            "state with the SDLS reset (docs/ccsds.md); on the ground before launch, delete "
            f"{storage}/{NvLinkStateStore.KEY}.gsa and .gsb first"
        )
    state = LinkState(
        farm_vr=0,
        sas=tuple(SaState(sa.spi, sa.key_id, 0) for sa in cfg.security_associations),
    )
    try:
        NvLinkStateStore(store).save(state.encode())
    except CcsdsError as exc:
        raise StartupError(f"storage {storage}: {exc.reason}") from exc
    return {
        "storage": str(storage),
        "link_state": "provisioned",
        "farm_vr": state.farm_vr,
        "sas": [{"spi": s.spi, "key_id": s.key_id, "highest": s.highest} for s in state.sas],
        "recovery_key": cfg.recovery_key_id is not None,
    }


def load_link_config(key_file: Path | None) -> LinkConfig:
    """The link configuration and keys in ``key_file`` (None: the public test keys)."""
    if key_file is None:
        log.warning("flying the public test keys (give --key-file for a real mission)")
    try:
        return LinkConfig.load(key_file or TEST_KEY_FILE)
    except (CcsdsError, OSError) as exc:
        raise StartupError(f"cannot load key file {key_file}: {exc}") from exc


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop`` while inside; the previous handlers come back after."""
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _fly(fs: FlightSoftware, radio: RadioHost, link: str | None, duration_s: float | None) -> int:
    """Executive cycles run on ``link`` (or on no link) for ``duration_s``."""
    if link is None:
        log.warning("no --link: the downlink is counted and discarded")
        cycles = 0
        elapsed = 0.0
        while duration_s is None or elapsed < duration_s:
            step = 1.0 if duration_s is None else min(1.0, duration_s - elapsed)
            cycles += fs.run_realtime(step)
            elapsed += step
            radio.downlink()
        return cycles
    try:
        transport = open_link(link, role="spacecraft", tm_frame_len=radio.link.config.tm_frame_len)
    except LinkError as exc:
        raise StartupError(str(exc)) from exc
    log.info("flying on %s", link)
    # SIGINT (Ctrl-C) and SIGTERM (systemd's stop) end the run at the next cycle, with a
    # summary: a flag the loop reads, not an exception that code on the way may swallow.
    stop = threading.Event()
    try:
        with _stop_on_signals(stop):
            return radio.serve(transport, duration_s, stop=stop.is_set)
    finally:
        transport.close()


# ------------------------------------------------------------------ the HIL bench
def fly_on_bridge(link: str, cfg: LinkConfig, options: RunOptions) -> dict[str, Any]:
    """``fsw run --sim-bridge``: wait for the bench, then fly on its world and radio.

    SIGINT and SIGTERM (systemd's stop) end the run cleanly, with a summary.
    """
    import torch

    from fsw.hal.board import DEFAULT_MODELS_DIR, BoardBridge, board_info, shipped_model_files

    # One tile at a time, the int8 kernels are fastest single-threaded (and a second
    # thread fighting the executive for a small board's cores costs 50x in latency).
    torch.set_num_threads(1)
    switch = _power_mode_switch(options.nvpmodel)
    files = shipped_model_files(options.models or DEFAULT_MODELS_DIR)
    if options.storage is not None:  # a second golden copy of each model on storage
        from fsw.ai.payload import with_golden_copies

        files = with_golden_copies(files, options.storage / "golden")
    info = board_info(files)
    if switch is not None:
        info["nvpmodel"] = switch.modes
    log.info("board inference latency: %s", info.get("inference_ms"))
    try:
        transport = open_link(link, role="spacecraft")
    except LinkError as exc:
        raise StartupError(str(exc)) from exc
    bridge = BoardBridge(transport, info=info, apply_power_mode=switch)
    stop = threading.Event()
    try:
        _wait_for_bench(bridge, link, options.bench_timeout_s)
        fs, radio, cycles = _serve_bench(bridge, cfg, files, options, stop)
    finally:
        bridge.close()
    return {
        "met_s": round(fs.clock.met(), 3),
        "cycles": cycles,
        "stopped_by_signal": stop.is_set(),
        "mode": fs.mode.name,
        "radio": dict(radio.stats),
        "bridge": dict(bridge.stats),
        "mux": {**bridge.port.stats, **bridge.port.demux.stats},
        "cable": dict(transport.stats),
        "payload": {
            k: fs.telemetry(f"payload.{k}")
            for k in ("frames_seen", "frames_processed", "small_runs", "large_runs")
        },
    }


def _power_mode_switch(nvpmodel: str | None) -> NvpModel | None:
    from fsw.hal.board import NvpModel

    try:
        return NvpModel.parse(nvpmodel) if nvpmodel else None
    except ValueError as exc:
        raise StartupError(str(exc)) from exc


def _wait_for_bench(bridge: BoardBridge, link: str, timeout_s: float | None) -> None:
    log.info("waiting for the bench on %s", link)
    try:
        synced = bridge.wait_synced(timeout_s)
    except KeyboardInterrupt:
        raise StartupError("stopped while waiting for the bench") from None
    if not synced:
        raise StartupError(f"no bench answered on {link} in {timeout_s} s")
    log.info("bench session %s, speed %gx; flying", bridge.clock.session, bridge.clock.speed)


def _serve_bench(
    bridge: BoardBridge,
    cfg: LinkConfig,
    files: ModelFiles,
    options: RunOptions,
    stop: threading.Event,
) -> tuple[FlightSoftware, RadioHost, int]:
    """Build the board's topology on the bench's clock and world; serve until the end."""
    from fsw.hal.board import BRIDGE_ID, Bridge

    fs = _build(
        clock=bridge.clock,
        storage_dir=options.storage,
        link_config=cfg,
        watchdog=SdNotifier.from_env(),
        hal=bridge.hal(files),
        components={BRIDGE_ID: Bridge(bridge)},
    )
    radio = RadioHost(fs)
    with _stop_on_signals(stop):
        cycles = radio.serve(
            bridge.radio, options.duration_s, stop=stop.is_set, on_cycle=bridge.service
        )
    return fs, radio, cycles


__all__ = [
    "RunOptions",
    "StartupError",
    "fly_on_bridge",
    "load_link_config",
    "provision_link_state",
    "run_flight",
    "simulate",
]
