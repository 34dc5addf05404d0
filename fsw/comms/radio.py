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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from fsw.ccsds.errors import CcsdsError, ConfigError, LinkStateError, UnknownSpiError
from fsw.ccsds.linkstate import StateStatus, StoredState
from fsw.ccsds.stack import SpacecraftLink, playback_vcid
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
from fsw.core.errors import NvStoreError
from fsw.core.nvstore import NvStore
from fsw.core.persistence import clip
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
    (
        22,
        "sdls_locked_refused",
        "authenticated TC frames refused because the link state is lost (SDLS reset needed)",
    ),
    (23, "sdls_resets", "SDLS resets done under the recovery key"),
    (24, "sdls_resets_refused", "SDLS reset frames refused (bad challenge, bad content)"),
    (25, "state_saves", "link state saves (one per accepted TC frame, before it executes)"),
    (
        26,
        "state_save_failures",
        "link state saves that failed (the frame was refused, not executed)",
    ),
)


_DETAIL = Arg("detail", "str", max_len=200)
_REASON = Arg("reason", "str", max_len=200)


class NvLinkStateStore:
    """The link's receive state (:mod:`fsw.ccsds.linkstate`) in the flight's storage, as a
    mirrored record (``link_state.gsa`` and ``.gsb``, written in turn, each fsynced).

    >>> from fsw.core.nvstore import MemNvStore
    >>> store = NvLinkStateStore(MemNvStore())
    >>> store.save(b"state"); store.load().payload
    b'state'
    """

    KEY = "link_state"

    def __init__(self, store: NvStore, key: str = KEY) -> None:
        self.store = store
        self.key = key
        self._generation = 0

    @property
    def durable(self) -> bool:
        """True when the state survives a reboot (a storage directory)."""
        return self.store.durable

    def load(self) -> StoredState:
        found = self.store.load_mirrored(self.key)
        self._generation = max(self._generation, found.generation)
        return StoredState(found.payload, found.existed, found.problems)

    def save(self, payload: bytes) -> None:
        self._generation += 1
        try:
            self.store.save_mirrored(self.key, payload, self._generation)
        except NvStoreError as exc:
            raise LinkStateError(exc.reason) from None


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
        Channel(
            "sdls_locked",
            "bool",
            description="link state lost: authenticated TCs refused until the SDLS reset",
            red=(None, 0.5),
            id=27,
        ),
        Channel(
            "sdls_challenge_hi",
            "u32",
            description="SDLS reset challenge, first 4 of its 8 bytes (new each boot and reset)",
            id=28,
        ),
        Channel(
            "sdls_challenge_lo", "u32", description="SDLS reset challenge, last 4 bytes", id=29
        ),
        Channel(
            "sdls_highest",
            "u32",
            description="highest SDLS sequence number accepted on the active SPI (low 32 bits)",
            id=30,
        ),
        Channel("sdls_key_id", "u16", description="key id the active SPI uses now", id=31),
        Channel(
            "peer_changes",
            "u32",
            description="times the radio's downlink peer changed (UDP: a datagram from a new "
            "address takes the downlink)",
            id=32,
        ),
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
        Event(
            "LINK_STATE_RESTORED",
            Severity.LOW,
            "link state restored from storage: {detail}",
            (_DETAIL,),
            id=4,
        ),
        Event(
            "LINK_STATE_RECOVERED",
            Severity.MEDIUM,
            "link state: {detail}",
            (_DETAIL,),
            id=5,
        ),
        Event(
            "LINK_STATE_LOST",
            Severity.HIGH,
            "link state lost ({detail}): authenticated TCs are refused until the SDLS reset "
            "(challenge {challenge})",
            (_DETAIL, Arg("challenge", "str", max_len=16)),
            id=6,
        ),
        Event(
            "LINK_STATE_SAVE_FAILED",
            Severity.HIGH,
            "{count} TC frames refused: the link state could not be saved ({reason})",
            (Arg("count", "u32"), _REASON),
            id=7,
        ),
        Event(
            "SDLS_RESET",
            Severity.HIGH,
            "SDLS reset by the recovery key: {detail}",
            (_DETAIL,),
            id=8,
        ),
        Event(
            "SDLS_RESET_REFUSED",
            Severity.MEDIUM,
            "SDLS reset refused: {reason}",
            (_REASON,),
            id=9,
        ),
        Event(
            "LOCKED_REFUSED",
            Severity.MEDIUM,
            "{count} authenticated TC frames refused: the link state is lost (SDLS reset needed)",
            (Arg("count", "u32"),),
            id=10,
        ),
    )
    RATE_GROUPS = ("1Hz",)
    HK_INTERVAL_S = 10.0

    def __init__(self, link: SpacecraftLink, name: str | None = None) -> None:
        super().__init__(name)
        self.link = link
        #: Guards ``link``: the radio's receive thread and the executive both use it.
        self.link_lock = threading.Lock()
        #: The radio transport's counters (set by :meth:`RadioHost.serve`), for
        #: ``peer_changes``.
        self.transport_stats: Mapping[str, int] = {}

    def on_init(self) -> None:
        self._seen_sdls = (0, 0, 0)
        self._seen_lockout = False
        self._seen_state = (0, 0, 0, 0)
        report = self.link.state_report
        status = report.status
        if status is StateStatus.RESTORED:
            self.event("LINK_STATE_RESTORED", clip(report.detail))
        elif status is StateStatus.RECOVERED:
            self.event("LINK_STATE_RECOVERED", clip(report.detail))
        elif status.lost:
            self.event("LINK_STATE_LOST", clip(report.detail), self.link.challenge.hex())

    def on_tick(self, rate_group: str) -> None:
        with self.link_lock:
            counters = self.link.counters
            challenge = self.link.challenge
        for _, channel, _ in _COUNTER_CHANNELS:
            self.tlm(channel, counters.get(channel, 0))
        lockout = bool(counters.get("farm_lockout", 0))
        self.tlm("farm_lockout", lockout)
        active = self.link.config.active_spi
        self.tlm("active_spi", active or 0)
        self.tlm("sdls_locked", bool(counters.get("sdls_locked", 0)))
        self.tlm("sdls_challenge_hi", int.from_bytes(challenge[:4], "big"))
        self.tlm("sdls_challenge_lo", int.from_bytes(challenge[4:8], "big"))
        self.tlm("sdls_highest", counters.get(f"sdls_spi{active}_arsn", 0) & 0xFFFF_FFFF)
        self.tlm("sdls_key_id", counters.get(f"sdls_spi{active}_key_id", 0))
        self.tlm("peer_changes", self.transport_stats.get("peer_changes", 0))
        self._state_events(counters)
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

    def _state_events(self, counters: Mapping[str, int]) -> None:
        """At most one event a second per kind: save failures, resets, locked refusals."""
        now = (
            counters.get("state_save_failures", 0),
            counters.get("sdls_resets", 0),
            counters.get("sdls_resets_refused", 0),
            counters.get("sdls_locked_refused", 0),
        )
        failed, resets, refused, locked = (
            max(0, n - before) for n, before in zip(now, self._seen_state, strict=True)
        )
        if failed:
            self.event("LINK_STATE_SAVE_FAILED", failed, clip(self.link.last_save_error))
        if resets:
            self.event("SDLS_RESET", clip(self.link.last_reset))
        if refused:
            self.event("SDLS_RESET_REFUSED", clip(self.link.last_reset_refusal))
        if locked:
            self.event("LOCKED_REFUSED", locked)
        self._seen_state = now

    @command(
        args=(Arg("spi", "u16", min=1, max=0xFFFE), Arg("key_id", "u16", min=0)),
        description="Switch SDLS security association SPI to key KEY_ID of the on-board "
        "key file (rotate the ground too); its sequence numbers carry on, and the new key "
        "id is saved before it takes effect, so a reboot keeps it.",
        opcode=1,
    )
    def rotate_key(self, spi: int, key_id: int) -> None:
        try:
            with self.link_lock:
                self.link.rotate_key(spi, key_id)
        except (UnknownSpiError, ConfigError) as exc:
            raise CommandFailed(FailureCode.NOT_FOUND, exc.reason) from None
        except LinkStateError as exc:
            raise CommandFailed(FailureCode.EXECUTION_ERROR, exc.reason) from None
        except CcsdsError as exc:  # the recovery key
            raise CommandFailed(FailureCode.VALUE_REJECTED, exc.reason) from None
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
        self._seen_state = (0, 0, 0, 0)


#: Playback bytes asked of the stores when the caller sets no byte budget (one call).
PLAYBACK_CHUNK_BYTES = 8192


class PlaybackSource(Protocol):
    """What the radio plays back after the realtime queue: the packet stores
    (:class:`fsw.storage.stores.PacketStores`; the radio does not import them)."""

    def take(self, max_bytes: int) -> list[bytes]: ...


@dataclass(slots=True)
class DownlinkSource:
    """Packets the radio sends after the realtime queue, in the order of
    :attr:`RadioHost.sources` (the downlink planned by value: file deliveries by value,
    then store dumps): ``take(max_bytes)`` gives about that many bytes of whole packets,
    sent on ``vcid``."""

    name: str
    take: Callable[[int], list[bytes]]
    vcid: int
    packets: int = 0


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
        self.stats = {
            "uplink_bytes": 0,
            "downlink_bytes": 0,
            "tc_packets": 0,
            "cadus": 0,
            "playback_packets": 0,
            "playback_bytes": 0,
            "idle_cadus": 0,
        }
        pb_vc = playback_vcid(self.link.config)
        self.playback_vcid = self.link.config.tm_vcids[0] if pb_vc is None else pb_vc
        #: What goes down after the realtime queue (events, verification, realtime HK),
        #: in order; the store playback last. A file delivery inserts itself before it
        #: (``sources.insert(0, DownlinkSource("cfdp", ..., vcid=...))``).
        self.sources: list[DownlinkSource] = []
        stores = fs.components.get("stores")
        if stores is not None and hasattr(stores, "take"):
            playback: PlaybackSource = stores
            self.sources.append(DownlinkSource("playback", playback.take, self.playback_vcid))

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

    def downlink(
        self,
        max_packets: int | None = None,
        *,
        idle: bool = False,
        max_bytes: int | None = None,
    ) -> bytes:
        """CADUs carrying the TM packets queued on board (at most ``max_packets``).

        When the realtime queue has no more to give, the :attr:`sources` fill the rest in
        their order (about ``max_bytes`` of packets, default :data:`PLAYBACK_CHUNK_BYTES`),
        each on its VC (store playback on the playback VC). With nothing to send it
        returns one idle CADU when ``idle`` is set (so the ground keeps getting the CLCW),
        else ``b""``.
        """
        packets = self.fs.downlink_packets(max_packets)
        extra: list[tuple[DownlinkSource, list[bytes]]] = []
        if self.sources and (max_packets is None or len(packets) < max_packets):
            room = (PLAYBACK_CHUNK_BYTES if max_bytes is None else max_bytes) - sum(
                len(p) for p in packets
            )
            for src in self.sources:
                if room <= 0:
                    break
                got = src.take(room)
                if got:
                    extra.append((src, got))
                    room -= sum(len(p) for p in got)
        with self.comms.link_lock:
            if packets or extra:
                out = self.link.send(packets) if packets else b""
                for src, got in extra:
                    out += self.link.send(got, vcid=src.vcid)
                    src.packets += len(got)
                    if src.name == "playback":
                        self.stats["playback_packets"] += len(got)
                        self.stats["playback_bytes"] += sum(len(p) for p in got)
            elif idle:
                out = self.link.idle_frame()
                self.stats["idle_cadus"] += 1
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
        self.comms.transport_stats = transport.stats
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
