"""The flight radio: the CCSDS space link joined to the flight software.

:class:`Comms` is the flight component that owns the spacecraft end of the link
(:class:`~fsw.ccsds.stack.SpacecraftLink`): it publishes the link counters in
housekeeping, reports SDLS rejections and FARM-1 lockouts as events, and takes the
key-rotation command. :class:`RadioHost` moves bytes: uplink bytes in (CLTUs) become TC
packets for the dispatcher; TM packets the flight produced become CADUs (ASM + frames).

>>> from fsw.app import build_flight
>>> from fsw.ccsds import GroundLink, PusTc, PusTm
>>> from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig
>>> cfg = LinkConfig.load(TEST_KEY_FILE)
>>> fs = build_flight(link_config=cfg)
>>> radio, ground = RadioHost(fs), GroundLink(cfg)
>>> radio.uplink(ground.send_tc(PusTc(apid=100, service=17, subservice=1).encode(), now_s=0))
1
>>> _ = fs.step(0)
>>> tms = [PusTm.decode(p) for p in ground.receive(radio.downlink(), now_s=0)]
>>> [(t.service, t.subservice) for t in tms]  # verification, the reply, then the BOOT event
[(1, 1), (1, 3), (17, 2), (1, 7), (5, 1)]
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from fsw.ccsds.errors import CcsdsError
from fsw.ccsds.stack import SpacecraftLink
from fsw.core import (
    Arg,
    Channel,
    CommandFailed,
    Component,
    Event,
    FailureCode,
    Severity,
    command,
)
from fsw.link.errors import LinkError

if TYPE_CHECKING:
    from fsw.core.flight import FlightSoftware
    from fsw.link.base import Transport

log = logging.getLogger(__name__)

#: Link counters published as telemetry: (pinned channel id, name = SpacecraftLink counter
#: key, description).
_COUNTER_CHANNELS: tuple[tuple[int, str, str], ...] = (
    (4, "cltus", "CLTUs found in the uplink stream"),
    (5, "bits_corrected", "bits corrected by BCH(63,56)"),
    (6, "frames_accepted", "TC frames accepted (FARM-1 and SDLS passed)"),
    (7, "frames_rejected_fecf", "TC frames with a bad FECF"),
    (8, "frames_rejected_format", "TC frames that do not parse"),
    (9, "frames_rejected_scid", "TC frames for another spacecraft"),
    (10, "frames_rejected_farm", "TC frames refused by FARM-1"),
    (
        11,
        "frames_duplicate",
        "authentic TC frames received again (COP-1 resends of frames already accepted)",
    ),
    (12, "sdls_bad_mac", "TC frames with a MAC that does not verify"),
    (13, "sdls_unknown_spi", "TC frames naming an unknown SPI"),
    (14, "sdls_replays", "TC frames replayed (sequence number too old)"),
    (15, "tc_packets", "TC packets delivered to the dispatcher"),
    (16, "tm_frames", "TM frames sent"),
    (17, "tm_idle_frames", "idle TM frames sent"),
    (18, "farm_vr", "FARM-1 V(R): next expected TC frame number"),
    (19, "key_rotations", "SDLS key rotations done"),
)


class Comms(Component):
    """The spacecraft end of the space link: counters, SDLS and FARM-1 alarms, key rotation."""

    NAME = "comms"
    DESCRIPTION = "Space link (CLTU/BCH, TC frames, FARM-1, SDLS, TM frames) and its counters."
    TELEMETRY = (
        *(Channel(name, "u32", description=text, id=cid) for cid, name, text in _COUNTER_CHANNELS),
        Channel(
            "farm_lockout",
            "bool",
            description="FARM-1 in lockout (ground must Unlock)",
            yellow=(None, 0.5),
            id=20,
        ),
        Channel("active_spi", "u16", description="SDLS SPI the ground must use", id=21),
    )
    EVENTS = (
        Event(
            "SDLS_REJECTED",
            Severity.MEDIUM,
            "{count} TC frames rejected by SDLS (bad MAC {bad_mac}, unknown SPI "
            "{unknown_spi}, replay {replays})",
            (
                Arg("count", "u32"),
                Arg("bad_mac", "u32"),
                Arg("unknown_spi", "u32"),
                Arg("replays", "u32"),
            ),
            id=1,
        ),
        Event(
            "FARM_LOCKOUT",
            Severity.HIGH,
            "FARM-1 lockout at V(R)={vr}: the ground must send Unlock",
            (Arg("vr", "u8"),),
            id=2,
        ),
        Event(
            "KEY_ROTATED",
            Severity.LOW,
            "SDLS SA {spi} now uses key {key_id}",
            (Arg("spi", "u16"), Arg("key_id", "u16")),
            id=3,
        ),
    )
    RATE_GROUPS = ("1Hz",)
    HK_INTERVAL_S = 10.0

    def __init__(self, link: SpacecraftLink, name: str | None = None) -> None:
        super().__init__(name)
        self.link = link
        #: Guards ``link``: the radio's receive thread and the executive both use it.
        self.link_lock = threading.Lock()

    def on_init(self) -> None:
        self._seen_sdls = (0, 0, 0)
        self._seen_lockout = False

    def on_tick(self, rate_group: str) -> None:
        with self.link_lock:
            counters = self.link.counters
        for _, channel, _ in _COUNTER_CHANNELS:
            self.tlm(channel, counters.get(channel, 0))
        lockout = bool(counters.get("farm_lockout", 0))
        self.tlm("farm_lockout", lockout)
        self.tlm("active_spi", self.link.config.active_spi or 0)
        sdls = (
            counters.get("sdls_bad_mac", 0),
            counters.get("sdls_unknown_spi", 0),
            counters.get("sdls_replays", 0),
        )
        new = [max(0, now - before) for now, before in zip(sdls, self._seen_sdls, strict=True)]
        if any(new):
            self.event("SDLS_REJECTED", sum(new), *new)
        self._seen_sdls = sdls
        if lockout and not self._seen_lockout:
            self.event("FARM_LOCKOUT", int(counters.get("farm_vr") or 0) & 0xFF)
        self._seen_lockout = lockout

    @command(
        args=(Arg("spi", "u16", min=1, max=0xFFFE), Arg("key_id", "u16", min=0)),
        description="Switch SDLS security association SPI to key KEY_ID of the on-board "
        "key file; its anti-replay counter restarts (rotate the ground too).",
        opcode=1,
    )
    def rotate_key(self, spi: int, key_id: int) -> None:
        try:
            with self.link_lock:
                self.link.rotate_key(spi, key_id)
        except CcsdsError as exc:
            raise CommandFailed(FailureCode.NOT_FOUND, exc.reason) from None
        self.event("KEY_ROTATED", spi, key_id)

    @command(
        "RESET_COUNTERS",
        opcode=0,
        description="Zero the component's command counters and the link counters.",
    )
    def reset_counters(self) -> None:
        super().reset_counters()
        with self.link_lock:
            self.link.reset_counters()
        self._seen_sdls = (0, 0, 0)


class RadioHost:
    """Moves bytes between a transport and the flight software through :class:`Comms`.

    SITL calls :meth:`uplink` and :meth:`downlink` itself on its simulated clock; a board
    (or ``gnomon fsw run --link URL``) calls :meth:`serve`, which paces the flight software
    by the wall clock and runs the transport's receive side in a thread.
    """

    def __init__(self, fs: FlightSoftware, comms_name: str = "comms") -> None:
        comp = fs.component(comms_name)
        if not isinstance(comp, Comms):
            raise TypeError(f"component {comms_name!r} is not a Comms component")
        self.fs = fs
        self.comms = comp
        self.stats = {"uplink_bytes": 0, "downlink_bytes": 0, "tc_packets": 0, "cadus": 0}

    @property
    def link(self) -> SpacecraftLink:
        return self.comms.link

    def uplink(self, data: bytes) -> int:
        """Feed received uplink bytes (any chunking); returns TC packets handed on."""
        with self.comms.link_lock:
            packets = self.link.receive(data)
        for pkt in packets:
            self.fs.uplink_packet(pkt)
        self.stats["uplink_bytes"] += len(data)
        self.stats["tc_packets"] += len(packets)
        return len(packets)

    def downlink(self, max_packets: int | None = None, *, idle: bool = False) -> bytes:
        """CADUs carrying the TM packets queued on board (at most ``max_packets``).

        With nothing queued it returns one idle CADU when ``idle`` is set (so the ground
        keeps getting the CLCW), else ``b""``.
        """
        packets = self.fs.downlink_packets(max_packets)
        with self.comms.link_lock:
            if packets:
                out = self.link.send(packets)
            elif idle:
                out = self.link.idle_frame()
            else:
                return b""
        frame_len = 4 + self.link.config.tm_frame_len
        self.stats["cadus"] += len(out) // frame_len
        self.stats["downlink_bytes"] += len(out)
        return out

    def serve(
        self,
        transport: Transport,
        duration_s: float | None = None,
        *,
        stop: Callable[[], bool] | None = None,
        idle_interval_s: float = 1.0,
        on_cycle: Callable[[], None] | None = None,
    ) -> int:
        """Fly in real time over ``transport`` until ``duration_s`` or ``stop()``.

        Returns the executive cycles run. Transport errors are logged and counted by the
        transport; they never stop the flight software.
        """
        done = threading.Event()
        receiver = threading.Thread(
            target=self._receive_loop, args=(transport, done), name="radio-rx", daemon=True
        )
        receiver.start()
        period = self.fs.config.base_period_s
        start = time.monotonic()
        last_tx = start
        cycles = 0
        try:
            while not (stop is not None and stop()):
                elapsed = time.monotonic() - start
                if duration_s is not None and elapsed >= duration_s:
                    break
                cycles += self.fs.run_realtime(period)
                now = time.monotonic()
                data = self.downlink(idle=now - last_tx >= idle_interval_s)
                if data:
                    self._send(transport, data)
                    last_tx = now
                if on_cycle is not None:
                    on_cycle()
        finally:
            done.set()
            receiver.join(timeout=2.0)
        return cycles

    def _send(self, transport: Transport, data: bytes) -> None:
        try:
            transport.send(data)
        except (LinkError, OSError) as exc:  # counted by the transport; keep flying
            log.warning("downlink send failed: %s", exc)

    def _receive_loop(self, transport: Transport, done: threading.Event) -> None:
        while not done.is_set():
            try:
                data = transport.recv(0.05)
            except (LinkError, OSError) as exc:  # a serial port unplugged, a peer gone
                log.warning("uplink receive failed: %s", exc)
                done.wait(0.5)
                continue
            if data:
                self.uplink(data)
