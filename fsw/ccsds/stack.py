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

import hmac
import logging
import secrets
from collections import deque
from collections.abc import Callable, Mapping, Sequence

from fsw.ccsds.cltu import CltuExtractor, encode_cltu
from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig
from fsw.ccsds.cop1 import Clcw, Farm1, Fop1, FopState, InitMode
from fsw.ccsds.crc import fecf16
from fsw.ccsds.errors import (
    CcsdsError,
    ConfigError,
    CrcError,
    FrameError,
    LinkStateError,
    MacError,
    ReplayError,
    SdlsError,
    UnknownSpiError,
)
from fsw.ccsds.linkstate import (
    CHALLENGE_LEN,
    LinkState,
    SaReset,
    SaState,
    StateReport,
    StateStatus,
    StateStore,
)
from fsw.ccsds.packets import SequenceChecker
from fsw.ccsds.sdls import SPI_LEN, SecurityAssociation, peek_spi
from fsw.ccsds.spacepacket import PRIMARY_HEADER_LEN, SeqFlags
from fsw.ccsds.sync import FrameSynchronizer, attach_asm
from fsw.ccsds.tcframe import FECF_LEN, TC_HEADER_LEN, TcFrame, tc_header
from fsw.ccsds.tmframe import TmDeframer, TmFramer

log = logging.getLogger(__name__)

_MAX_MAP_BUFFER = 65542 * 4
#: Playback packets a ground link holds for its caller (:meth:`GroundLink.take_playback`).
_MAX_PLAYBACK_HELD = 200_000


def playback_vcid(config: LinkConfig) -> int | None:
    """The TM virtual channel that carries store playback (PUS-15 dumps): the last of
    ``tm_vcids`` when there are several, else None (playback shares the one VC).

    >>> playback_vcid(LinkConfig.load(TEST_KEY_FILE))
    1
    """
    vcs = config.tm_vcids
    return vcs[-1] if len(vcs) > 1 else None


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

    ``state_store`` keeps the receive state across reboots (:mod:`fsw.ccsds.linkstate`):
    FARM-1's V(R) and each SA's key id and anti-replay numbers, saved before a frame's
    packets are handed on. None keeps it in memory only. A durable store that holds no
    usable state (never provisioned, wiped, or both copies corrupt) *locks* the link:
    with SDLS on, every authenticated frame is refused until the ground runs the SDLS
    reset (:meth:`GroundLink.sa_reset`) under the recovery key. ``challenge`` draws the
    reset's 8-byte challenge (default: the OS's random source).
    """

    def __init__(
        self,
        config: LinkConfig,
        state_store: StateStore | None = None,
        *,
        challenge: Callable[[], bytes] | None = None,
    ) -> None:
        self.config = config
        self.farm = Farm1(config.tc_vcid, window=config.farm_window)
        self._cltus = CltuExtractor(randomize=config.randomize_tc)
        self._sas = _make_sas(config)
        self._key_ids = {sa.spi: sa.key_id for sa in config.security_associations}
        self._recovery = config.make_recovery_sa()
        self._new_challenge = challenge or (lambda: secrets.token_bytes(CHALLENGE_LEN))
        #: The challenge an SDLS reset must carry now (new at each boot and each reset).
        self.challenge = self._new_challenge()
        # Authentic AD and BC frames accepted lately, as (bypass, control, N(S), SPI,
        # sequence number): a copy of one is COP-1 resending it, not an attack. (Nobody
        # resends a BD frame: a copy of one is always a replay.)
        self._recent: deque[tuple[bool, bool, int, int, int]] = deque(
            maxlen=max(1, config.farm_window // 2)
        )
        self._framer = TmFramer(
            config.spacecraft_id, config.tm_frame_len, idle_vcid=config.idle_vcid
        )
        self._maps: dict[tuple[int, bool], bytearray] = {}
        self._counts: dict[str, int] = {}
        self._store = state_store
        #: True while the anti-replay state is unknown: authenticated frames are refused.
        self.locked = False
        #: Words for the events: the last reset done, refused, and the last save failure.
        self.last_reset = ""
        self.last_reset_refusal = ""
        self.last_save_error = ""
        self.reset_counters()
        #: What was found in ``state_store`` at boot.
        self.state_report = self._load_state()

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
                "sdls_locked_refused",
                "sdls_resets",
                "sdls_resets_refused",
                "state_saves",
                "state_save_failures",
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
        out["sdls_locked"] = int(self.locked)
        for spi, sa in self._sas.items():
            out[f"sdls_spi{spi}_arsn"] = sa.highest_accepted
            out[f"sdls_spi{spi}_key_id"] = self._key_ids[spi]
        return out

    def clcw(self) -> Clcw:
        """The CLCW now (what the next TM frame's OCF will carry)."""
        return self.farm.clcw()

    def rotate_key(self, spi: int, key_id: int) -> None:
        """Key-rotation command: SA ``spi`` switches to key ``key_id`` of the on-board key
        file (the ground must rotate too). Its sequence numbers carry on, so nothing sent
        under any earlier key is accepted again. The new key id is saved before it takes
        effect: a reboot keeps it. Raises :class:`UnknownSpiError`, :class:`ConfigError`
        (no such key), :class:`SdlsError` (the recovery key) or :class:`LinkStateError`
        (the link state is lost, or the new key id could not be saved: the old key stays).
        """
        if spi not in self._sas:
            raise UnknownSpiError(f"no security association with SPI {spi} on board")
        if key_id == self.config.recovery_key_id:
            raise SdlsError(f"key {key_id} is the recovery key; it never serves an SA")
        key = self.config.key(key_id)
        if self.locked:
            raise LinkStateError("the link state is lost: run the SDLS reset first")
        if not self._save(self._state(key_ids={spi: key_id})):
            raise LinkStateError(
                f"the new key id could not be saved ({self.last_save_error}); "
                f"SA {spi} keeps key {self._key_ids[spi]}"
            )
        self._sas[spi].rekey(key)
        self._key_ids[spi] = key_id
        self._counts["key_rotations"] += 1
        log.info("SDLS SA %d now uses key %d", spi, key_id)

    # -- the state kept across reboots --------------------------------------------------

    def key_id(self, spi: int) -> int:
        """The key id SA ``spi`` uses now."""
        return self._key_ids[spi]

    def _state(
        self,
        commit: tuple[SecurityAssociation, int] | None = None,
        key_ids: Mapping[int, int] | None = None,
    ) -> LinkState:
        """The state as it will be once ``commit`` (SA, sequence number) is accepted and
        ``key_ids`` are in use."""
        sas = []
        for spi, sa in self._sas.items():
            highest, bitmap = sa.highest_accepted, sa.replay_bitmap
            if commit is not None and commit[0] is sa:
                highest, bitmap = sa.state_after(commit[1])
            key_id = (key_ids or {}).get(spi, self._key_ids[spi])
            sas.append(SaState(spi, key_id, highest, bitmap))
        return LinkState(farm_vr=self.farm.vr, sas=tuple(sas))

    def _save(self, state: LinkState) -> bool:
        """Make ``state`` durable; False (counted, reason kept) when it cannot be."""
        if self._store is None:
            return True
        try:
            self._store.save(state.encode())
        except LinkStateError as exc:
            self._counts["state_save_failures"] += 1
            self.last_save_error = exc.reason
            log.error("link state not saved: %s", exc.reason)
            return False
        self._counts["state_saves"] += 1
        return True

    def _load_state(self) -> StateReport:
        """Restore the saved state at boot; lock the link when it is lost."""
        store = self._store
        if store is None:
            return StateReport(StateStatus.VOLATILE)
        found = store.load()
        problems = "; ".join(found.problems)
        guarded = store.durable and self.config.sdls_enabled
        if found.payload is None:
            if not guarded:
                return StateReport(StateStatus.FRESH, problems)
            status = StateStatus.CORRUPT if found.existed else StateStatus.MISSING
            return self._lock(status, problems or status.value)
        try:
            state = LinkState.decode(found.payload)
            self._apply(state)
        except (LinkStateError, ConfigError, SdlsError) as exc:
            if not guarded:
                return StateReport(StateStatus.FRESH, exc.reason)
            return self._lock(StateStatus.CORRUPT, exc.reason)
        summary = self._summary()
        if found.problems:
            self._save(self._state())  # both copies good again
            return StateReport(StateStatus.RECOVERED, f"{problems}; {summary}")
        return StateReport(StateStatus.RESTORED, summary)

    def _lock(self, status: StateStatus, detail: str) -> StateReport:
        self.locked = True
        log.error(
            "link state %s (%s): authenticated TC frames are refused until the ground runs "
            "the SDLS reset under the recovery key (docs/ccsds.md)",
            status.name,
            detail,
        )
        return StateReport(status, detail)

    def _apply(self, state: LinkState) -> None:
        """Take over a saved or reset state (checked completely before anything changes).

        Every sequence number at or below an SA's highest counts as used from now on,
        whatever the saved window says: a frame that had not arrived before a reboot is
        refused after it, like a replay (the ground sends a new one). An SA saved as
        having accepted nothing yet (highest 0, bit 0 clear) stays fresh, so a standard
        ground's first IV, 0, is still accepted.
        """
        keys: dict[int, bytes] = {}
        for saved in state.sas:
            if saved.spi not in self._sas:
                log.warning("saved state names SPI %d, which the key file dropped", saved.spi)
                continue
            if saved.key_id == self.config.recovery_key_id:
                raise LinkStateError(f"SA {saved.spi} is saved as using the recovery key")
            try:
                keys[saved.spi] = self.config.key(saved.key_id)
            except ConfigError:
                raise LinkStateError(
                    f"SA {saved.spi} was using key {saved.key_id}, which the key file "
                    "no longer holds"
                ) from None
        for saved in state.sas:
            if saved.spi in keys:
                sa = self._sas[saved.spi]
                if saved.key_id != self._key_ids[saved.spi]:
                    sa.rekey(keys[saved.spi])
                    self._key_ids[saved.spi] = saved.key_id
                if saved.highest or saved.bitmap & 1:
                    sa.restore(saved.highest)
        self.farm.vr = state.farm_vr

    def _summary(self) -> str:
        sas = ", ".join(
            f"SPI {spi} key {self._key_ids[spi]} above {sa.highest_accepted}"
            for spi, sa in self._sas.items()
        )
        return f"V(R)={self.farm.vr}" + (f"; {sas}" if sas else "")

    # -- the SDLS reset (after a lost state or a lost key) -------------------------------

    def _is_reset(self, frame: TcFrame) -> bool:
        rec = self._recovery
        return (
            rec is not None
            and frame.bypass
            and not frame.control
            and len(frame.data) >= 2
            and peek_spi(frame.data) == rec.spi
        )

    def _sa_reset(self, frame: TcFrame, raw: bytes) -> None:
        """An SDLS reset frame: check MAC and challenge, save the new state, apply it."""
        assert self._recovery is not None
        aad = raw[: TC_HEADER_LEN + (frame.map_id is not None)]
        try:
            body, _ = self._recovery.authenticate(frame.data, aad)
        except SdlsError:
            self._counts["sdls_bad_mac"] += 1
            return
        try:
            reset = SaReset.decode(body)
        except LinkStateError as exc:
            self._refuse_reset(exc.reason)
            return
        if not hmac.compare_digest(reset.challenge, self.challenge):
            self._refuse_reset("its challenge is not the current one (a recorded or stale reset)")
            return
        try:
            state = self._reset_state(reset)
        except (LinkStateError, ConfigError) as exc:
            self._refuse_reset(exc.reason)
            return
        if not self._save(state):
            self._refuse_reset(f"the new state could not be saved ({self.last_save_error})")
            return
        self._apply(state)
        if reset.farm_vr is not None:
            self.farm.retransmit = self.farm.wait = self.farm.lockout = False
        self.locked = False
        self._recent.clear()
        self.challenge = self._new_challenge()
        self._counts["sdls_resets"] += 1
        self.last_reset = self._summary()
        log.warning("SDLS reset by the recovery key: %s", self.last_reset)

    def _reset_state(self, reset: SaReset) -> LinkState:
        """The state a reset asks for; :class:`LinkStateError` when it cannot be granted."""
        named: dict[int, SaState] = {}
        for spi, key_id, floor in reset.entries:
            sa = self._sas.get(spi)
            if sa is None:
                raise LinkStateError(f"it names SPI {spi}, which is not on board")
            if key_id == self.config.recovery_key_id:
                raise LinkStateError(f"it gives SA {spi} the recovery key")
            self.config.key(key_id)  # ConfigError: not on board
            if floor >= 1 << (8 * sa.algorithm.seq_len):
                raise LinkStateError(f"floor {floor} is beyond SA {spi}'s sequence numbers")
            if not self.locked:  # a known floor never goes down
                floor = max(floor, sa.highest_accepted)
            named[spi] = SaState(spi, key_id, floor, (1 << sa.window) - 1)
        missing = sorted(set(self._sas) - set(named))
        if self.locked and missing:
            raise LinkStateError(
                "the state is lost, so the reset must name every SA (missing SPI "
                + ", ".join(map(str, missing))
                + ")"
            )
        current = self._state()
        return LinkState(
            farm_vr=self.farm.vr if reset.farm_vr is None else reset.farm_vr,
            sas=tuple(named.get(s.spi, s) for s in current.sas),
        )

    def _refuse_reset(self, reason: str) -> None:
        self._counts["sdls_resets_refused"] += 1
        self.last_reset_refusal = reason
        log.warning("SDLS reset refused: %s", reason)

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
        if not self.config.sdls_enabled:
            return self._accept(frame, frame, frame.data, None, 0)
        if self._is_reset(frame):
            self._sa_reset(frame, raw)
            return []
        if self.locked:
            self._counts["sdls_locked_refused"] += 1
            return []
        verified = self._verify(frame, raw)
        if verified is None:
            return []
        plain, data, sa, seq = verified
        return self._accept(frame, plain, data, sa, seq)

    def _accept(
        self,
        frame: TcFrame,
        plain: TcFrame,
        data: bytes,
        sa: SecurityAssociation | None,
        seq: int,
    ) -> list[bytes]:
        """FARM-1, then save what changed, then (and only then) the packets."""
        farm = self.farm
        before = farm.snapshot()
        verdict = farm.handle(plain)
        if not verdict.accepted:
            if not frame.control:
                self._counts["frames_rejected_farm"] += 1
            return []
        changed = sa is not None or farm.vr != before[0]
        if changed and not self._save(self._state((sa, seq) if sa is not None else None)):
            farm.restore(before)  # as if never received: COP-1 sends it again
            return []
        if sa is not None:
            sa.commit(seq)
            if not frame.bypass or frame.control:
                self._recent.append((frame.bypass, frame.control, frame.seq, sa.spi, seq))
        if frame.control:
            return []
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
    ) -> tuple[TcFrame, bytes, SecurityAssociation, int] | None:
        """SDLS on a data or control frame: the frame as FARM-1 must see it, its data
        without the security header and trailer, the SA and the sequence number to
        commit once FARM-1 accepts it (None: rejected, counted)."""
        counts = self._counts
        aad = raw[: TC_HEADER_LEN + (frame.map_id is not None)]
        sa = self._sas.get(peek_spi(frame.data)) if len(frame.data) >= SPI_LEN else None
        if sa is None:
            counts["sdls_unknown_spi"] += 1
            return None
        try:
            data, seq = sa.check(frame.data, aad)
        except UnknownSpiError:
            counts["sdls_unknown_spi"] += 1
            return None
        except MacError:
            counts["sdls_bad_mac"] += 1
            return None
        except ReplayError:
            # The MAC verified, so this is an authentic frame seen before. If it is a
            # copy of an AD or BC frame accepted lately it is COP-1 resending a frame
            # whose CLCW acknowledgement the ground missed: harmless, no replay alarm.
            seq = int.from_bytes(frame.data[SPI_LEN : SPI_LEN + sa.algorithm.seq_len], "big")
            if (frame.bypass, frame.control, frame.seq, sa.spi, seq) in self._recent:
                counts["frames_duplicate"] += 1
            else:
                counts["sdls_replays"] += 1
            return None
        if not frame.control:
            return frame, data, sa, seq
        try:
            plain = TcFrame(frame.spacecraft_id, frame.vcid, data, bypass=True, control=True)
        except FrameError:
            counts["frames_rejected_format"] += 1
            return None
        return plain, data, sa, seq

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
        self._key_ids = {sa.spi: sa.key_id for sa in config.security_associations}
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
        self.playback_vcid = playback_vcid(config)
        #: Playback packets received and not yet taken (:meth:`take_playback`).
        self._playback: deque[bytes] = deque()
        self.stats: dict[str, int] = dict.fromkeys(
            (
                "tm_playback_packets",
                "tm_playback_overflow",
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
        """Switch SA ``spi`` to key ``key_id`` (after the spacecraft executed the same);
        its sequence numbers carry on, as on board."""
        if spi not in self._sas:
            raise UnknownSpiError(f"no security association with SPI {spi}")
        self._sas[spi].rekey(self.config.key(key_id))
        self._key_ids[spi] = key_id

    def key_ids(self) -> dict[int, int]:
        """The key id each SPI uses now."""
        return dict(self._key_ids)

    def sa_reset(
        self,
        challenge: bytes,
        now_s: float,
        *,
        key_ids: Mapping[int, int] | None = None,
        floors: Mapping[int, int] | None = None,
    ) -> bytes:
        """The CLTU of an SDLS reset, signed with the recovery key (docs/ccsds.md).

        ``challenge``: the spacecraft's current one (``comms.sdls_challenge_hi/_lo``).
        Every SA is named, with its key id (``key_ids`` changes some: e.g. after the
        ground lost a key) and its floor: the highest of the last sequence number this
        ground sent and ``floors`` (give a floor above anything ever sent when the
        ground's own numbers were lost too). FARM-1's V(R) is set to this ground's V(S).
        The ground takes the new keys and floors at once and restarts its AD service
        (frames not yet acknowledged are purged: their numbers are now below the floor).
        """
        recovery = self.config.make_recovery_sa()
        if recovery is None:
            raise ConfigError("the key file has no recovery key (recovery_spi, recovery_key_id)")
        entries = []
        for spi, sa in self._sas.items():
            key_id = (key_ids or {}).get(spi, self._key_ids[spi])
            floor = max(sa.arsn, (floors or {}).get(spi, 0))
            entries.append((spi, key_id, floor))
        directive = SaReset(bytes(challenge), tuple(entries), farm_vr=self.fop.vs).encode()
        cfg = self.config
        seg = bytes([(SeqFlags.UNSEGMENTED << 6) | cfg.map_id]) if cfg.tc_segment_header else b""
        length = TC_HEADER_LEN + len(seg) + recovery.overhead + len(directive) + FECF_LEN
        aad = tc_header(cfg.spacecraft_id, cfg.tc_vcid, length, 0, True, False) + seg
        body = aad + recovery.protect(directive, aad)
        for spi, key_id, floor in entries:
            if key_id != self._key_ids[spi]:
                self.rotate_key(spi, key_id)
            self._sas[spi].arsn = floor
        self._now_s = now_s
        self.fop.initiate_ad(now_s, InitMode.WITHOUT_CLCW)
        return self._cltu(body + fecf16(body).to_bytes(2, "big"))

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
        """A COP-1 control frame; under SDLS it carries the security header and MAC like
        a data frame, so a forged Unlock or Set V(R) is refused on board."""
        sa = self._active_sa()
        if sa is None:
            return frame.encode()
        length = TC_HEADER_LEN + sa.overhead + len(frame.data) + FECF_LEN
        header = tc_header(frame.spacecraft_id, frame.vcid, length, 0, True, True)
        body = header + sa.protect(frame.data, header)
        return body + fecf16(body).to_bytes(2, "big")

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
        """TM space packets completed by these downlink bytes (any chunking).

        Packets on the playback VC (:func:`playback_vcid`) are not returned: they are old
        packets replayed from an on-board store, held for :meth:`take_playback` and left
        out of the sequence-count check (their counts belong to the past).
        """
        if now_s is not None:
            self._now_s = now_s
        out: list[bytes] = []
        deframer = self._deframer
        alerts_before = self.fop.stats["alerts"]
        pb_vc = self.playback_vcid
        for frame in self._sync.feed(downlink):
            if pb_vc is not None and len(frame) > 1 and (frame[1] >> 1) & 7 == pb_vc:
                try:
                    played = deframer.feed(frame)
                except CcsdsError:
                    self.stats["tm_frames_rejected"] += 1
                    continue
                self.stats["tm_frames"] += 1
                self._hold_playback(played)
                clcw = deframer.frame_clcw
                if clcw is not None:
                    self.last_clcw = clcw
                    self.fop.on_clcw(clcw, self._now_s)
                continue
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

    def _hold_playback(self, packets: list[bytes]) -> None:
        held = self._playback
        for pkt in packets:
            if len(held) >= _MAX_PLAYBACK_HELD:
                held.popleft()
                self.stats["tm_playback_overflow"] += 1
            held.append(pkt)
        self.stats["tm_playback_packets"] += len(packets)

    def take_playback(self) -> list[bytes]:
        """The playback packets received since the last call, oldest first (a caller
        that never takes them loses the oldest beyond 200,000, counted in
        ``tm_playback_overflow``)."""
        out = list(self._playback)
        self._playback.clear()
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
    "playback_vcid",
]
