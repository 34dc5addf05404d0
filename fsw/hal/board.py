"""The board back-end of the HAL: EPS, camera and time from a HIL bench over the sim-bridge.

On a hardware-in-the-loop bench the flight board's sensors are simulated by the bench
PC at the other end of the serial cable. :class:`BoardBridge` is the board's end of the
sim-bridge (:mod:`fsw.hal.simbridge`, over the :mod:`fsw.link.mux` mux): the radio
channel becomes a transport for :class:`~fsw.comms.radio.RadioHost`, and the bridge
channel drives the devices here:

* :class:`BridgeClock`: the monotonic wall clock, anchored to the bench's simulated
  time and running at its speed-up (1x: exactly :class:`~fsw.core.clock.WallClock`);
  never goes backwards within a bench session;
* :class:`BoardEps`: the latest EPS sample (invalid once it is ``stale_s`` old);
* :class:`BoardCamera`: frames the bench sent since the last poll;
* :class:`BoardPayloadPower`: the power mode the flight chose, reported to the bench
  (which integrates the payload's energy in its EPS model).

The flight topology is the same as SITL's: ``build_flight(clock, hal=bridge.hal(...))``.

>>> from fsw.link import memory_pair
>>> from fsw.hal.simbridge import BridgePort, TimeSync
>>> board_end, bench_end = memory_pair()
>>> bridge = BoardBridge(board_end)
>>> bench = BridgePort(bench_end)
>>> bench.send_message(TimeSync(2.1e9, 1.0, session=1))
>>> bridge.wait_synced(2.0, require_platform=False), round(bridge.clock.now_tai() - 2.1e9) == 0
(True, True)
>>> bridge.close(); bench.close()
"""

from __future__ import annotations

import logging
import os
import platform as _host
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fsw.ai import shipped_dir
from fsw.core import Channel, Component
from fsw.core.clock import WallClock
from fsw.hal.interfaces import (
    NO_EPS_READING,
    CameraFrame,
    EpsReading,
    Hal,
    ModelFiles,
    Platform,
)
from fsw.hal.simbridge import (
    BoardHello,
    BridgePort,
    BulkRequest,
    EpsSample,
    FrameMsg,
    Message,
    PlatformMsg,
    PowerModeMsg,
    TimeSync,
)
from fsw.link.base import Transport
from fsw.link.mux import MAX_PAYLOAD, ChannelTransport

log = logging.getLogger(__name__)

#: The shipped model artifacts: package data of ``fsw.ai`` (the flight never imports ``models``).
DEFAULT_MODELS_DIR = shipped_dir()


class BridgeClock:
    """A wall clock that follows the bench: TAI and speed-up come from :class:`TimeSync`.

    Before the first sync it is :class:`~fsw.core.clock.WallClock` (system UTC, 1x).
    ``met()`` is always wall time since start, so the executive keeps its real 10 Hz
    cadence and the board's real load; with a speed-up X, mission time (``now_tai``)
    runs X times faster, so a 1 Hz component sees X simulated seconds per tick. Within
    one bench session ``now_tai`` never decreases: if the bench falls behind, board time
    holds until it catches up. A new session re-anchors outright.

    >>> c = BridgeClock()
    >>> c.sync(TimeSync(1000.0, 10.0, 1))
    >>> 1000.0 <= c.now_tai() < 1001.0, c.speed
    (True, 10.0)
    """

    def __init__(self) -> None:
        mono = time.monotonic()
        tai = WallClock().now_tai()
        self._start_mono = mono
        # (tai at anchor, monotonic at anchor, speed), swapped atomically
        self._anchor: tuple[float, float, float] = (tai, mono, 1.0)
        self._last_tai = tai
        self.session: int | None = None
        self._lock = threading.Lock()

    @property
    def speed(self) -> float:
        """Simulated seconds per wall second."""
        return self._anchor[2]

    def sync(self, msg: TimeSync) -> None:
        """Re-anchor on the bench's time (the bridge's reader calls this)."""
        with self._lock:
            self._anchor = (msg.tai, time.monotonic(), msg.speed)
            if msg.session != self.session:
                self.session = msg.session
                self._last_tai = msg.tai  # a new bench run: jump to its time

    def now_tai(self) -> float:
        tai0, mono0, speed = self._anchor
        t = tai0 + (time.monotonic() - mono0) * speed
        with self._lock:
            if t < self._last_tai:
                return self._last_tai
            self._last_tai = t
            return t

    def met(self) -> float:
        return time.monotonic() - self._start_mono


class BoardEps:
    """The EPS sensor: the bench's latest sample; invalid when none arrived for ``stale_s``
    seconds of mission time (cable pulled, bench stopped)."""

    def __init__(self, clock: BridgeClock, stale_s: float = 10.0) -> None:
        self.clock = clock
        self.stale_s = stale_s
        self._last: EpsReading = NO_EPS_READING

    def update(self, reading: EpsReading) -> None:
        self._last = reading

    def read(self) -> EpsReading:
        r = self._last
        if not r.valid or self.clock.now_tai() - r.t_tai > self.stale_s:
            return NO_EPS_READING
        return r


class BoardCamera:
    """The imager: frames the bench sent, delivered on the next :meth:`poll`
    (at most ``max_pending`` are held; older ones are dropped and counted)."""

    def __init__(self, max_pending: int = 64) -> None:
        self._frames: deque[CameraFrame] = deque(maxlen=max_pending)
        self._lock = threading.Lock()
        self.received = 0
        self.dropped = 0

    @property
    def available(self) -> bool:
        return True

    def push(self, frame: CameraFrame) -> None:
        with self._lock:
            if len(self._frames) == self._frames.maxlen:
                self.dropped += 1
            self._frames.append(frame)
            self.received += 1

    def poll(self) -> list[CameraFrame]:
        with self._lock:
            out = list(self._frames)
            self._frames.clear()
        return out


class BoardPayloadPower:
    """The payload power switch: the mode is applied (``apply``, e.g. :class:`NvpModel`),
    remembered and reported to the bench. A failed switch is logged and counted; the
    flight carries on in the mode it asked for (the scheduler's energy accounting is
    what the bench's EPS integrates)."""

    def __init__(
        self,
        port: BridgePort,
        clock: BridgeClock,
        apply: Callable[[str | None], None] | None = None,
    ) -> None:
        self.port = port
        self.clock = clock
        self.apply = apply
        self._mode: str | None = None
        self.switches = 0
        self.failures = 0

    @property
    def available(self) -> bool:
        return True

    @property
    def mode(self) -> str | None:
        return self._mode

    def set_mode(self, mode: str | None) -> None:
        if mode == self._mode:
            return
        if self.apply is not None:
            try:
                self.apply(mode)
            except (OSError, subprocess.SubprocessError, ValueError) as exc:
                self.failures += 1
                log.warning("cannot switch the payload to power mode %s: %s", mode, exc)
        self.port.send_message(PowerModeMsg(mode, self.clock.now_tai()))
        self._mode = mode
        self.switches += 1


class NvpModel:
    """Switch a Jetson's power mode with ``nvpmodel -m ID`` for each platform mode name.

    ``modes`` maps the scenario's mode names to nvpmodel ids; ``off`` is the id used
    when the payload is off (None: leave the mode alone).

    >>> NvpModel.parse("7W=1,15W=0").modes
    {'7W': 1, '15W': 0}
    """

    def __init__(
        self,
        modes: dict[str, int],
        off: int | None = None,
        command: str = "nvpmodel",
        timeout_s: float = 10.0,
    ) -> None:
        self.modes = dict(modes)
        self.off = off
        self.command = command
        self.timeout_s = timeout_s

    @classmethod
    def parse(cls, text: str, **kwargs: Any) -> NvpModel:
        """``"7W=1,15W=0"`` (name=id pairs; ``off=ID`` sets the id when off)."""
        modes: dict[str, int] = {}
        off = None
        for item in filter(None, (p.strip() for p in text.split(","))):
            name, sep, value = item.partition("=")
            if not sep or not value.strip().isdigit():
                raise ValueError(f"nvpmodel mapping {item!r}: write NAME=ID, e.g. 7W=1")
            if name.strip() == "off":
                off = int(value)
            else:
                modes[name.strip()] = int(value)
        return cls(modes, off, **kwargs)

    def __call__(self, mode: str | None) -> None:
        ident = self.off if mode is None else self.modes.get(mode)
        if ident is None:
            if mode is not None:
                raise ValueError(f"no nvpmodel id for power mode {mode!r}")
            return
        subprocess.run(
            [self.command, "-m", str(ident)],
            check=True,
            capture_output=True,
            timeout=self.timeout_s,
        )


def measure_models(files: ModelFiles, runs: int = 20) -> dict[str, dict[str, float]]:
    """Inference latency of each model on this CPU: one tile at a time, ``runs`` times.

    Returns ``{model name: {"p50_ms", "p99_ms", "mean_ms", "runs"}}``; a model that does
    not load is reported as ``{"error": reason}``.
    """
    from fsw.ai.errors import AiError
    from fsw.ai.runtime import Runtime

    rng = np.random.default_rng(0)
    tile = rng.random((1, 4, 64, 64), dtype=np.float32)
    out: dict[str, dict[str, Any]] = {}
    for path in (files.small, files.large):
        try:
            rt = Runtime.load(path)
        except (AiError, OSError) as exc:
            out[path.stem] = {"error": str(exc)[:120]}
            continue
        rt.classify(tile)  # warm-up
        ms = []
        for _ in range(runs):
            t0 = time.perf_counter()
            rt.classify(tile)
            ms.append((time.perf_counter() - t0) * 1e3)
        a = np.array(ms)
        out[rt.name] = {
            "p50_ms": round(float(np.percentile(a, 50)), 3),
            "p99_ms": round(float(np.percentile(a, 99)), 3),
            "mean_ms": round(float(a.mean()), 3),
            "runs": runs,
        }
    return out


def board_info(models: ModelFiles | None = None, runs: int = 20) -> dict[str, Any]:
    """What the board tells the bench in its hello: host, CPU, models' measured latency."""
    info: dict[str, Any] = {
        "host": _host.node(),
        "machine": _host.machine(),
        "python": _host.python_version(),
        "cpus": os.cpu_count(),
        "pid": os.getpid(),
    }
    if models is not None:
        info["inference_ms"] = measure_models(models, runs)
    return info


class BoardBridge:
    """The board's end of the sim-bridge: devices, clock and the radio channel.

    ``transport`` is the cable (``open_link("serial:///dev/ttyAMA0?baud=921600")``).
    :meth:`wait_synced` blocks until the bench has sent its time and platform;
    :meth:`hal` is the :class:`~fsw.hal.interfaces.Hal` for ``build_flight``;
    :attr:`radio` the transport for ``RadioHost.serve``.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        info: dict[str, Any] | None = None,
        eps_stale_s: float = 10.0,
        apply_power_mode: Callable[[str | None], None] | None = None,
    ) -> None:
        self.info = dict(info or {})
        self.clock = BridgeClock()
        self.eps = BoardEps(self.clock, eps_stale_s)
        self.camera = BoardCamera()
        self.port = BridgePort(transport, on_message=self._on_message)
        self.payload_power = BoardPayloadPower(self.port, self.clock, apply_power_mode)
        self.platform: Platform | None = None
        self.stats = {
            "time_syncs": 0,
            "eps_samples": 0,
            "frames": 0,
            "platforms": 0,
            "bulk_requests": 0,
            "sessions": 0,
            "hellos": 0,
        }
        self._timed = threading.Event()
        self._platformed = threading.Event()
        self._news = threading.Event()
        self._hello_due = threading.Event()

    @property
    def radio(self) -> ChannelTransport:
        """The radio channel of the cable, as a transport."""
        return self.port.radio

    def _on_message(self, msg: Message) -> None:
        if isinstance(msg, TimeSync):
            if msg.session != self.clock.session:
                self.stats["sessions"] += 1
                self._hello_due.set()
                log.info("bench session %d at TAI %.1f, speed %gx", msg.session, msg.tai, msg.speed)
            self.clock.sync(msg)
            self.stats["time_syncs"] += 1
            self._timed.set()
            self._news.set()
        elif isinstance(msg, EpsSample):
            self.eps.update(msg.reading)
            self.stats["eps_samples"] += 1
        elif isinstance(msg, FrameMsg):
            self.camera.push(
                CameraFrame(
                    msg.frame_id, msg.t_tai, msg.lat_deg, msg.lon_deg, msg.priority, msg.pixels
                )
            )
            self.stats["frames"] += 1
        elif isinstance(msg, PlatformMsg):
            self.platform = msg.platform
            self.stats["platforms"] += 1
            self._platformed.set()
            self._news.set()
        elif isinstance(msg, BulkRequest):
            self.stats["bulk_requests"] += 1
            threading.Thread(
                target=self._send_bulk, args=(msg.nbytes,), name="bulk", daemon=True
            ).start()

    def _send_bulk(self, nbytes: int) -> None:
        filler = bytes(range(256)) * (MAX_PAYLOAD // 256 + 1)
        chunk = 4096
        sent = 0
        while sent < nbytes:
            n = min(chunk, nbytes - sent)
            self.port.send_bulk(filler[:n])
            sent += n

    def send_hello(self) -> None:
        """Introduce the board to the bench (again after a new bench session)."""
        self.port.send_message(BoardHello(self.info))
        self.stats["hellos"] += 1
        self._hello_due.clear()

    def service(self) -> None:
        """Per-cycle housekeeping of the bridge (say hello to a new bench session)."""
        if self._hello_due.is_set():
            self.send_hello()

    def wait_synced(
        self,
        timeout_s: float | None = None,
        *,
        require_platform: bool = True,
        hello_every_s: float = 1.0,
    ) -> bool:
        """Say hello every ``hello_every_s`` until the bench has sent its time (and its
        platform, with ``require_platform``); False after ``timeout_s`` (None: forever)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            self.send_hello()
            stop = time.monotonic() + hello_every_s
            if deadline is not None:
                stop = min(stop, deadline)
            while True:
                self._news.clear()
                if self._timed.is_set() and (self._platformed.is_set() or not require_platform):
                    return True
                left = stop - time.monotonic()
                if left <= 0:
                    break
                self._news.wait(left)
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def hal(self, models: ModelFiles | None = None) -> Hal:
        """The board's HAL: these devices, the bench's platform, ``models`` by path."""
        return Hal(
            eps=self.eps,
            camera=self.camera,
            payload_power=self.payload_power,
            platform=self.platform,
            models=models,
            latency_model="measured",
            name="board",
        )

    def close(self) -> None:
        """Stop the bridge and close the cable."""
        self.port.close()


#: The pinned component id of the HIL board's sim-bridge component (the first one an
#: integrator may use: the flight's own components take 1..15).
BRIDGE_ID = 16


class Bridge(Component):
    """The sim-bridge seen from the flight: what the bench sends, the cable's health and
    the payload power mode in force (so the ground sees the Jetson's nvpmodel mode).

    Register it with ``build_flight(components={BRIDGE_ID: Bridge(bridge)})``; ``Bridge(None)``
    (no bridge) declares the same dictionary and publishes zeros.
    """

    NAME = "bridge"
    DESCRIPTION = "HIL sim-bridge: bench messages, cable errors, payload power mode."
    TELEMETRY = (
        Channel("time_syncs", "u32", description="bench time messages received", id=4),
        Channel("eps_samples", "u32", description="EPS samples received from the bench", id=5),
        Channel("frames", "u32", description="camera frames received from the bench", id=6),
        Channel("sessions", "u16", description="bench sessions seen since boot", id=7),
        Channel("speed", "f32", description="bench speed-up (simulated s per wall s)", id=8),
        Channel("crc_errors", "u32", description="mux frames that failed a CRC", id=9),
        Channel("garbage_bytes", "u32", description="bytes skipped hunting for a sync word", id=10),
        Channel("bad_messages", "u32", description="bridge messages that did not decode", id=11),
        Channel(
            "payload_mode_w",
            "f32",
            units="W",
            description="power of the payload power mode in force (0: off)",
            id=12,
        ),
        Channel("mode_switches", "u32", description="payload power mode switches", id=13),
        Channel(
            "mode_switch_failures",
            "u32",
            description="power mode switches the hardware refused (nvpmodel)",
            yellow=(None, 0.5),
            id=14,
        ),
    )
    RATE_GROUPS = ("1Hz",)
    HK_INTERVAL_S = 10.0

    def __init__(self, bridge: BoardBridge | None, name: str | None = None) -> None:
        super().__init__(name)
        self.bridge = bridge

    def on_tick(self, rate_group: str) -> None:
        b = self.bridge
        if b is None:
            return
        for key in ("time_syncs", "eps_samples", "frames", "sessions"):
            self.tlm(key, b.stats[key])
        self.tlm("speed", b.clock.speed)
        demux = b.port.demux.stats
        self.tlm("crc_errors", demux["crc_errors"])
        self.tlm("garbage_bytes", demux["garbage_bytes"])
        self.tlm("bad_messages", b.port.stats["bad_messages"])
        pp = b.payload_power
        watts = 0.0
        if pp.mode is not None and b.platform is not None:
            watts = next((m.power_w for m in b.platform.scheduler.modes if m.name == pp.mode), 0.0)
        self.tlm("payload_mode_w", watts)
        self.tlm("mode_switches", pp.switches)
        self.tlm("mode_switch_failures", pp.failures)


def shipped_model_files(directory: Path = DEFAULT_MODELS_DIR) -> ModelFiles:
    """The cloudnet-s/-l artifacts in ``directory`` (each its own golden copy)."""
    return ModelFiles(directory / "cloudnet-s.gnm", directory / "cloudnet-l.gnm")


__all__ = [
    "DEFAULT_MODELS_DIR",
    "BoardBridge",
    "BoardCamera",
    "BoardEps",
    "BoardPayloadPower",
    "Bridge",
    "BridgeClock",
    "NvpModel",
    "board_info",
    "measure_models",
    "shipped_model_files",
]
