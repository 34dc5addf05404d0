"""The composed space link: what the spacecraft and the ground each run, wired once.

Uplink, ground → spacecraft::

    packet → (segment) → FOP-1 numbering → SDLS → TC frame + FECF → CLTU (randomize, BCH)
    CLTU search → BCH decode → derandomize → frame checks → SDLS → FARM-1 → packets

Downlink, spacecraft → ground::

    packets → TM frames per VC (FHP, idle fill, CLCW in the OCF, FECF) → randomize → ASM
    ASM sync → derandomize → FECF → CLCW to FOP-1 → packets across frames

Both classes are driven by their callers: bytes in, bytes out, and time (ground side
only, for COP-1 timer T1) passed as ``now_s`` arguments, so SITL can run them on a
simulated clock.

>>> from fsw.ccsds import PusTc, PusTm
>>> cfg = LinkConfig.load(TEST_KEY_FILE)
>>> sc, gnd = SpacecraftLink(cfg), GroundLink(cfg)
>>> tc = PusTc(apid=0x10, service=17, subservice=1).encode()
>>> sc.receive(gnd.send_tc(tc, now_s=0.0)) == [tc]
True
>>> tm = PusTm(apid=0x10, service=17, subservice=2).encode()
>>> gnd.receive(sc.send([tm]), now_s=0.1) == [tm]
True
>>> gnd.fop.outstanding  # the CLCW in that TM frame acknowledged the TC
0
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fsw.ccsds.cltu import CltuExtractor, encode_cltu
from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig
from fsw.ccsds.cop1 import Clcw, Farm1, Fop1, FopState, InitMode
from fsw.ccsds.crc import fecf16
from fsw.ccsds.errors import (
    CcsdsError,
    CrcError,
    FrameError,
    MacError,
    ReplayError,
    UnknownSpiError,
)
from fsw.ccsds.packets import SequenceChecker
from fsw.ccsds.sdls import SecurityAssociation, peek_spi
from fsw.ccsds.spacepacket import PRIMARY_HEADER_LEN, SeqFlags
from fsw.ccsds.sync import FrameSynchronizer, attach_asm
from fsw.ccsds.tcframe import FECF_LEN, TC_HEADER_LEN, TcFrame, tc_header
from fsw.ccsds.tmframe import TmDeframer, TmFramer

log = logging.getLogger(__name__)

_MAX_MAP_BUFFER = 65542 * 4


def _split_packets(data: bytes) -> tuple[list[bytes], bool]:
    """Whole packets laid end to end in ``data``; False when something did not fit."""
    out: list[bytes] = []
    pos = 0
    n = len(data)
    while n - pos >= PRIMARY_HEADER_LEN:
        if data[pos] >> 5:
            return out, False
        total = PRIMARY_HEADER_LEN + ((data[pos + 4] << 8) | data[pos + 5]) + 1
        if n - pos < total:
            return out, False
        out.append(data[pos : pos + total])
        pos += total
    return out, pos == n


def _make_sas(config: LinkConfig) -> dict[int, SecurityAssociation]:
    return {sa.spi: config.make_sa(sa.spi) for sa in config.security_associations}


class SpacecraftLink:
    """The flight end: uplink bytes in, TC packets out; TM packets in, downlink bytes out.

    :attr:`counters` is a flat dict for housekeeping (frames accepted and rejected by
    reason, bits corrected, MAC failures, replays, FARM verdicts, TM frames sent, ...).
    """

    def __init__(self, config: LinkConfig) -> None:
        self.config = config
        self.farm = Farm1(config.tc_vcid, window=config.farm_window)
        self._cltus = CltuExtractor(randomize=config.randomize_tc)
        self._sas = _make_sas(config)
        self._framer = TmFramer(
            config.spacecraft_id, config.tm_frame_len, idle_vcid=config.idle_vcid
        )
        self._maps: dict[tuple[int, bool], bytearray] = {}
        self._counts: dict[str, int] = {}
        self.reset_counters()

    # -- housekeeping -----------------------------------------------------------------

    def reset_counters(self) -> None:
        """Zero the link's own counters (the cFS-style reset command)."""
        self._counts = dict.fromkeys(
            (
                "cltus",
                "cltus_incomplete",
                "bits_corrected",
                "frames_accepted",
                "frames_rejected_fecf",
                "frames_rejected_format",
                "frames_rejected_scid",
                "frames_rejected_vcid",
                "frames_rejected_farm",
                "frames_duplicate",
                "bc_frames",
                "sdls_bad_mac",
                "sdls_unknown_spi",
                "sdls_replays",
                "tc_packets",
                "tc_packets_malformed",
                "tc_segments_dropped",
                "tm_frames",
                "tm_idle_frames",
                "tm_packets",
                "key_rotations",
            ),
            0,
        )
        self._cltu_base = dict(self._cltus.stats)

    @property
    def counters(self) -> dict[str, int]:
        """All link counters since the last reset, plus FARM-1 state."""
        out = dict(self._counts)
        out["cltus"] = self._cltus.stats["cltus"] - self._cltu_base["cltus"]
        out["cltus_incomplete"] = (
            self._cltus.stats["cltus_incomplete"] - self._cltu_base["cltus_incomplete"]
        )
        out["bits_corrected"] = (
            self._cltus.stats["bits_corrected"] - self._cltu_base["bits_corrected"]
        )
        out["farm_vr"] = self.farm.vr
        out["farm_lockout"] = int(self.farm.lockout)
        out["farm_wait"] = int(self.farm.wait)
        out["farm_lockouts"] = self.farm.stats["lockouts"]
        for spi, sa in self._sas.items():
            out[f"sdls_spi{spi}_arsn"] = sa.highest_accepted
        return out

    def clcw(self) -> Clcw:
        """The CLCW now (what the next TM frame's OCF will carry)."""
        return self.farm.clcw()

    def rotate_key(self, spi: int, key_id: int) -> None:
        """Key-rotation command: SA ``spi`` switches to key ``key_id`` of the on-board key
        file; its anti-replay window restarts (the ground must rotate too)."""
        if spi not in self._sas:
            raise UnknownSpiError(f"no security association with SPI {spi} on board")
        self._sas[spi].rekey(self.config.key(key_id))
        self._counts["key_rotations"] += 1
        log.info("SDLS SA %d now uses key %d", spi, key_id)

    def set_busy(self, busy: bool) -> None:
        """Flow control: while busy, FARM-1 refuses AD frames (Wait) and asks for resends."""
        self.farm.set_buffer_available(not busy)

    # -- uplink -------------------------------------------------------------------------

    def receive(self, uplink: bytes | bytearray | memoryview) -> list[bytes]:
        """TC space packets delivered by these uplink bytes (any chunking of the stream)."""
        packets: list[bytes] = []
        for cltu in self._cltus.feed(uplink):
            packets.extend(self._frame(cltu.data))
        return packets

    def _frame(self, raw: bytes) -> list[bytes]:
        frame = self._decode_frame(raw)
        if frame is None:
            return []
        if frame.control:
            self._counts["bc_frames"] += 1
            self.farm.handle(frame)
            return []
        verified = self._verify(frame, raw)
        if verified is None:
            return []
        data, sa, seq = verified
        verdict = self.farm.handle(frame)
        if not verdict.delivers_data:
            self._counts["frames_rejected_farm"] += 1
            return []
        if sa is not None:
            sa.commit(seq)
        self._counts["frames_accepted"] += 1
        return self._packets(frame, data)

    def _decode_frame(self, raw: bytes) -> TcFrame | None:
        """The TC frame in ``raw`` if it is well formed and for us (else counted, None)."""
        cfg = self.config
        counts = self._counts
        try:
            frame = TcFrame.decode(raw, has_segment_header=cfg.tc_segment_header)
        except CrcError:
            counts["frames_rejected_fecf"] += 1
            return None
        except FrameError:
            counts["frames_rejected_format"] += 1
            return None
        if frame.spacecraft_id != cfg.spacecraft_id:
            counts["frames_rejected_scid"] += 1
            return None
        if frame.vcid != cfg.tc_vcid:
            counts["frames_rejected_vcid"] += 1
            return None
        return frame

    def _verify(
        self, frame: TcFrame, raw: bytes
    ) -> tuple[bytes, SecurityAssociation | None, int] | None:
        """SDLS: the frame's data without its security header and trailer, the SA and the
        sequence number to commit once FARM-1 accepts the frame (None: rejected, counted)."""
        if not self.config.sdls_enabled:
            return frame.data, None, 0
        counts = self._counts
        aad = raw[: TC_HEADER_LEN + (frame.map_id is not None)]
        try:
            sa = self._sas.get(peek_spi(frame.data))
            if sa is None:
                raise UnknownSpiError(f"unknown SPI {peek_spi(frame.data)}")
            data, seq = sa.check(frame.data, aad)
        except UnknownSpiError:
            counts["sdls_unknown_spi"] += 1
            return None
        except MacError:
            counts["sdls_bad_mac"] += 1
            return None
        except ReplayError:
            # The MAC verified, so this is an authentic frame seen before. If FARM-1
            # already accepted its number it is COP-1 resending a frame whose CLCW
            # acknowledgement the ground missed: harmless, and no replay alarm.
            if self.farm.is_duplicate(frame):
                counts["frames_duplicate"] += 1
            else:
                counts["sdls_replays"] += 1
            return None
        return data, sa, seq

    def _packets(self, frame: TcFrame, data: bytes) -> list[bytes]:
        if frame.map_id is not None:
            key = (frame.map_id, frame.bypass)
            flags = frame.seg_flags
            if flags is not SeqFlags.UNSEGMENTED:
                if flags is SeqFlags.FIRST:
                    if key in self._maps:
                        self._counts["tc_segments_dropped"] += 1
                    self._maps[key] = bytearray(data)
                    return []
                buf = self._maps.get(key)
                if buf is None or len(buf) + len(data) > _MAX_MAP_BUFFER:
                    self._counts["tc_segments_dropped"] += 1
                    self._maps.pop(key, None)
                    return []
                buf += data
                if flags is SeqFlags.CONTINUATION:
                    return []
                data = bytes(self._maps.pop(key))
            elif key in self._maps:
                self._counts["tc_segments_dropped"] += 1
                del self._maps[key]
        packets, whole = _split_packets(data)
        if not whole:
            self._counts["tc_packets_malformed"] += 1
        self._counts["tc_packets"] += len(packets)
        return packets

    # -- downlink -----------------------------------------------------------------------

    def _ocf(self) -> bytes:
        return self.farm.clcw().encode()

    def send(self, packets: Sequence[bytes], vcid: int | None = None, flush: bool = True) -> bytes:
        """CADUs (ASM + randomized TM frame) carrying ``packets`` on ``vcid``.

        The default VC is the first of ``tm_vcids``. With ``flush`` (the default) the last
        frame is completed with an idle packet so nothing waits; every frame carries the
        current CLCW.
        """
        vc = self.config.tm_vcids[0] if vcid is None else vcid
        if vc not in self.config.tm_vcids:
            raise FrameError(f"TM virtual channel {vc} is not configured (tm_vcids)")
        frames = self._framer.pack(vc, packets, ocf=self._ocf(), flush=flush)
        self._counts["tm_frames"] += len(frames)
        self._counts["tm_packets"] += len(packets)
        return attach_asm(frames, randomize=self.config.randomize_tm)

    def idle_frame(self) -> bytes:
        """One idle CADU: keeps the ground locked and carries the CLCW when there is no TM."""
        self._counts["tm_idle_frames"] += 1
        return attach_asm(
            [self._framer.idle_frame(self._ocf())], randomize=self.config.randomize_tm
        )


class GroundLink:
    """The ground end: TC packets in, CLTUs out (through FOP-1); downlink bytes in, TM
    packets out. Time is ``now_s`` (monotonic seconds) passed to each call.

    The AD service starts without waiting for a CLCW (both ends start at frame 0); use
    :meth:`initiate` to start it with Unlock or Set V(R) when joining a running link.
    """

    def __init__(self, config: LinkConfig, now_s: float = 0.0) -> None:
        self.config = config
        self._now_s = now_s
        self._sas = _make_sas(config)
        self.fop = Fop1(
            config.spacecraft_id,
            config.tc_vcid,
            build_ad=self._build_ad,
            build_bc=self._build_bc,
            window=config.fop_window,
            t1_s=config.fop_t1_s,
            transmission_limit=config.fop_transmission_limit,
        )
        self.fop.initiate_ad(now_s, InitMode.WITHOUT_CLCW)
        self._sync = FrameSynchronizer(config.tm_frame_len, randomized=config.randomize_tm)
        self._deframer = TmDeframer(spacecraft_id=config.spacecraft_id, check_fecf=False)
        self._seq_check = SequenceChecker()
        self.last_clcw: Clcw | None = None
        self.stats: dict[str, int] = dict.fromkeys(
            (
                "tc_packets",
                "tc_frames_bd",
                "cltus_sent",
                "tm_frames",
                "tm_frames_rejected",
                "tm_packets",
                "tm_packets_missing",
                "fop_alerts",
            ),
            0,
        )

    # -- security -----------------------------------------------------------------------

    def _active_sa(self) -> SecurityAssociation | None:
        spi = self.config.active_spi
        return self._sas[spi] if spi is not None else None

    def rotate_key(self, spi: int, key_id: int) -> None:
        """Switch SA ``spi`` to key ``key_id`` (after the spacecraft executed the same)."""
        if spi not in self._sas:
            raise UnknownSpiError(f"no security association with SPI {spi}")
        self._sas[spi].rekey(self.config.key(key_id))

    def arsns(self) -> dict[int, int]:
        """The last SDLS sequence number sent per SPI: persist it so that a restarted ground
        does not reuse numbers the spacecraft already saw (it would refuse them as replays)."""
        return {spi: sa.arsn for spi, sa in self._sas.items()}

    def resume_arsns(self, arsns: dict[int, int]) -> None:
        """Continue SDLS numbering from saved values (never goes backwards)."""
        for spi, arsn in arsns.items():
            sa = self._sas.get(spi)
            if sa is not None and arsn > sa.arsn:
                sa.arsn = arsn

    @property
    def max_tc_data(self) -> int:
        """Packet bytes one TC frame carries (more are segmented across frames)."""
        sa = self._active_sa()
        return (
            self.config.tc_max_frame_len
            - TC_HEADER_LEN
            - self.config.tc_segment_header
            - (sa.overhead if sa else 0)
            - FECF_LEN
        )

    # -- framing ------------------------------------------------------------------------

    def _frame_bytes(self, unit: bytes, seq: int, bypass: bool) -> bytes:
        """TC frame for one data unit (segment header byte first, when configured)."""
        cfg = self.config
        n_seg = 1 if cfg.tc_segment_header else 0
        sa = self._active_sa()
        body_len = len(unit) + (sa.overhead if sa else 0)
        length = TC_HEADER_LEN + body_len + FECF_LEN
        header = tc_header(cfg.spacecraft_id, cfg.tc_vcid, length, seq, bypass, False)
        aad = header + unit[:n_seg]
        payload = unit[n_seg:]
        body = aad + (sa.protect(payload, aad) if sa else payload)
        return body + fecf16(body).to_bytes(2, "big")

    def _build_ad(self, seq: int, unit: bytes) -> bytes:
        return self._frame_bytes(unit, seq, bypass=False)

    def _build_bc(self, frame: TcFrame) -> bytes:
        return frame.encode()

    def _units(self, packet: bytes) -> list[bytes]:
        cfg = self.config
        room = self.max_tc_data
        if not cfg.tc_segment_header:
            if len(packet) > room:
                raise FrameError(
                    f"a {len(packet)}-byte packet does not fit in one TC frame ({room} bytes) "
                    "and segment headers are off"
                )
            return [packet]
        pieces = [packet[i : i + room] for i in range(0, len(packet), room)] or [b""]
        if len(pieces) == 1:
            flags = [SeqFlags.UNSEGMENTED]
        else:
            flags = [SeqFlags.FIRST] + [SeqFlags.CONTINUATION] * (len(pieces) - 2)
            flags.append(SeqFlags.LAST)
        return [bytes([(f << 6) | cfg.map_id]) + p for f, p in zip(flags, pieces, strict=True)]

    def _cltu(self, frame: bytes) -> bytes:
        self.stats["cltus_sent"] += 1
        return encode_cltu(frame, randomize=self.config.randomize_tc)

    # -- uplink -------------------------------------------------------------------------

    def send_tc(self, packet: bytes, bypass: bool = False, now_s: float | None = None) -> bytes:
        """CLTU bytes to transmit now for one TC packet.

        Sequence-controlled (default): the frame(s) go through FOP-1 and come back here
        when the window has room, otherwise later from :meth:`poll`. ``bypass=True`` sends
        an expedited BD frame at once, outside COP-1 (no retransmission).
        """
        if now_s is not None:
            self._now_s = now_s
        if len(packet) < PRIMARY_HEADER_LEN + 1:
            raise FrameError(f"a TC packet of {len(packet)} bytes is shorter than 7")
        units = self._units(packet)
        self.stats["tc_packets"] += 1
        if bypass:
            self.stats["tc_frames_bd"] += len(units)
            return b"".join(self._cltu(self._frame_bytes(u, 0, bypass=True)) for u in units)
        for unit in units:
            self.fop.request(unit)
        return b"".join(self._cltu(f) for f in self.fop.poll(self._now_s))

    def poll(self, now_s: float) -> list[bytes]:
        """CLTUs due now: retransmissions (timer T1 or CLCW), frames the window released,
        and COP-1 control frames."""
        self._now_s = now_s
        return [self._cltu(f) for f in self.fop.poll(now_s)]

    def initiate(self, now_s: float, mode: InitMode, vr: int | None = None) -> list[bytes]:
        """(Re)start the AD service, e.g. ``InitMode.WITH_UNLOCK`` after a FARM Lockout.

        Returns the CLTUs to send now (the Unlock or Set V(R) frame, if any). Frames that
        were waiting or unacknowledged are purged, as COP-1 prescribes.
        """
        self._now_s = now_s
        self.fop.initiate_ad(now_s, mode, vr)
        return self.poll(now_s)

    @property
    def fop_state(self) -> FopState:
        """FOP-1 state (ACTIVE when commanding normally, INITIAL after an alert)."""
        return self.fop.state

    # -- downlink -----------------------------------------------------------------------

    def receive(
        self, downlink: bytes | bytearray | memoryview, now_s: float | None = None
    ) -> list[bytes]:
        """TM space packets completed by these downlink bytes (any chunking)."""
        if now_s is not None:
            self._now_s = now_s
        out: list[bytes] = []
        deframer = self._deframer
        alerts_before = self.fop.stats["alerts"]
        for frame in self._sync.feed(downlink):
            try:
                packets = deframer.feed(frame)
            except CcsdsError:
                self.stats["tm_frames_rejected"] += 1
                continue
            self.stats["tm_frames"] += 1
            clcw = deframer.frame_clcw
            if clcw is not None:
                self.last_clcw = clcw
                self.fop.on_clcw(clcw, self._now_s)
            out.extend(packets)
        check = self._seq_check.check
        missing = 0
        for pkt in out:
            missing += check(((pkt[0] & 7) << 8) | pkt[1], ((pkt[2] & 0x3F) << 8) | pkt[3])
        self.stats["tm_packets"] += len(out)
        self.stats["tm_packets_missing"] += missing
        self.stats["fop_alerts"] += self.fop.stats["alerts"] - alerts_before
        return out

    @property
    def link_stats(self) -> dict[str, int]:
        """Everything counted on this link: own, synchroniser, deframer and FOP-1."""
        out = dict(self.stats)
        out.update({f"sync_{k}": v for k, v in self._sync.stats.items()})
        out.update({f"deframer_{k}": v for k, v in self._deframer.stats.items()})
        out.update({f"fop_{k}": v for k, v in self.fop.stats.items()})
        out["fop_outstanding"] = self.fop.outstanding
        out["fop_queued"] = self.fop.queued
        return out


__all__ = [
    "TEST_KEY_FILE",
    "GroundLink",
    "LinkConfig",
    "SpacecraftLink",
]
