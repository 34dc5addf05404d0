"""COP-1 (CCSDS 232.1-B): reliable, in-order TC delivery over a lossy uplink.

* :class:`Farm1` runs on board. It accepts sequence-controlled (AD) frames only in order
  (N(S) = V(R)), discards duplicates, flags gaps for retransmission, locks out on a frame
  far outside its window, accepts expedited (BD) frames always, and obeys the control
  commands Unlock and Set V(R). Its state goes to the ground in the CLCW.
* :class:`Fop1` runs on the ground. It numbers AD frames, keeps up to ``window`` of them
  unacknowledged, removes them when a CLCW acknowledges them, and retransmits
  (go-back-N) when a CLCW asks for it or when timer T1 expires, up to a limit.
* :class:`Clcw` is the 4-byte Communications Link Control Word (the TM OCF).

>>> farm = Farm1(vcid=0)
>>> farm.handle(TcFrame(0x2A, 0, b"cmd", seq=0))
<FarmVerdict.ACCEPTED_AD: 'accepted AD frame'>
>>> farm.clcw().encode().hex()
'01000001'
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from fsw.ccsds.errors import CopError, FrameError
from fsw.ccsds.tcframe import TcFrame, TcFrameType

log = logging.getLogger(__name__)

CLCW_LEN = 4


@dataclass(slots=True, frozen=True)
class Clcw:
    """Communications Link Control Word (232.0-B §4.2), carried in the TM OCF.

    Bits, MSB first: type(1)=0, version(2)=0, status(3), COP in effect(2)=1, VC id(6),
    spare(2), No RF available, No bit lock, Lockout, Wait, Retransmit, FARM-B counter(2),
    spare(1), report value V(R)(8).

    >>> Clcw(vcid=3, report_value=0x42, lockout=True, farm_b_counter=2).encode().hex()
    '010c2442'
    """

    vcid: int
    report_value: int
    lockout: bool = False
    wait: bool = False
    retransmit: bool = False
    farm_b_counter: int = 0
    no_rf_available: bool = False
    no_bit_lock: bool = False
    status: int = 0
    cop_in_effect: int = 1

    def __post_init__(self) -> None:
        for name, value, hi in (
            ("vcid", self.vcid, 0x3F),
            ("report_value", self.report_value, 0xFF),
            ("farm_b_counter", self.farm_b_counter, 3),
            ("status", self.status, 7),
            ("cop_in_effect", self.cop_in_effect, 3),
        ):
            if not 0 <= value <= hi:
                raise FrameError(f"CLCW {name} {value} outside 0..{hi}")

    def encode(self) -> bytes:
        """The 4 CLCW bytes."""
        word = (
            (self.status << 26)
            | (self.cop_in_effect << 24)
            | (self.vcid << 18)
            | (self.no_rf_available << 15)
            | (self.no_bit_lock << 14)
            | (self.lockout << 13)
            | (self.wait << 12)
            | (self.retransmit << 11)
            | (self.farm_b_counter << 9)
            | self.report_value
        )
        return word.to_bytes(4, "big")

    @classmethod
    def decode(cls, raw: bytes | bytearray | memoryview) -> Clcw:
        """Decode 4 OCF bytes; :class:`FrameError` if they are not a version-1 CLCW."""
        if len(raw) != CLCW_LEN:
            raise FrameError(f"a CLCW is 4 bytes, not {len(raw)}")
        word = int.from_bytes(raw, "big")
        if word >> 31:
            raise FrameError("OCF holds a type-2 report, not a CLCW", offset=0)
        if (word >> 29) & 3:
            raise FrameError(f"CLCW version {(word >> 29) & 3}, expected 0", offset=0)
        return cls(
            vcid=(word >> 18) & 0x3F,
            report_value=word & 0xFF,
            lockout=bool(word & (1 << 13)),
            wait=bool(word & (1 << 12)),
            retransmit=bool(word & (1 << 11)),
            farm_b_counter=(word >> 9) & 3,
            no_rf_available=bool(word & (1 << 15)),
            no_bit_lock=bool(word & (1 << 14)),
            status=(word >> 26) & 7,
            cop_in_effect=(word >> 24) & 3,
        )


# --- FARM-1 ---------------------------------------------------------------------------


class FarmState(Enum):
    """FARM-1 states (232.1-B §6)."""

    OPEN = 1
    WAIT = 2
    LOCKOUT = 3


class FarmVerdict(Enum):
    """What FARM-1 did with a frame. Only the ``ACCEPTED_*`` data verdicts pass data on."""

    ACCEPTED_AD = "accepted AD frame"
    ACCEPTED_BD = "accepted BD frame"
    ACCEPTED_UNLOCK = "accepted Unlock"
    ACCEPTED_SET_VR = "accepted Set V(R)"
    IGNORED_SET_VR_IN_LOCKOUT = "Set V(R) ignored in Lockout"
    DISCARDED_NO_BUFFER = "discarded: no buffer (Wait)"
    DISCARDED_GAP = "discarded: N(S) ahead of V(R), retransmission requested"
    DISCARDED_DUPLICATE = "discarded: N(S) behind V(R) (already accepted)"
    DISCARDED_ENTERED_LOCKOUT = "discarded: N(S) outside the window, entered Lockout"
    DISCARDED_IN_LOCKOUT = "discarded: FARM-1 is in Lockout"
    DISCARDED_BAD_CONTROL = "discarded: unknown control command"

    @property
    def delivers_data(self) -> bool:
        """True when the frame's data goes on to packet extraction."""
        return self in (FarmVerdict.ACCEPTED_AD, FarmVerdict.ACCEPTED_BD)

    @property
    def accepted(self) -> bool:
        """True when FARM-1 accepted the frame (data or control command)."""
        return self.name.startswith("ACCEPTED")


class Farm1:
    """Frame Acceptance and Reporting Mechanism for one TC virtual channel.

    ``window`` is the FARM sliding window width W (even, 2..254): frames up to W/2 - 1
    ahead of V(R) ask for retransmission, up to W/2 behind are duplicates, anything else
    locks the FARM out until an Unlock arrives.
    """

    __slots__ = (
        "_nw",
        "_pw",
        "buffer_available",
        "farm_b_counter",
        "lockout",
        "retransmit",
        "stats",
        "vcid",
        "vr",
        "wait",
        "window",
    )

    def __init__(self, vcid: int, window: int = 20) -> None:
        if window % 2 or not 2 <= window <= 254:
            raise CopError(f"FARM window {window} must be even and within 2..254")
        if not 0 <= vcid <= 0x3F:
            raise CopError(f"TC virtual channel {vcid} outside 0..63")
        self.vcid = vcid
        self.window = window
        self._pw = window // 2
        self._nw = window // 2
        self.vr = 0
        self.farm_b_counter = 0
        self.lockout = False
        self.wait = False
        self.retransmit = False
        self.buffer_available = True
        self.stats: dict[str, int] = {v.name.lower(): 0 for v in FarmVerdict}
        self.stats["lockouts"] = 0

    @property
    def state(self) -> FarmState:
        """Open, Wait or Lockout."""
        if self.lockout:
            return FarmState.LOCKOUT
        return FarmState.WAIT if self.wait else FarmState.OPEN

    def clcw(self, no_rf_available: bool = False, no_bit_lock: bool = False) -> Clcw:
        """The CLCW reporting this FARM's state now."""
        return Clcw(
            vcid=self.vcid,
            report_value=self.vr,
            lockout=self.lockout,
            wait=self.wait,
            retransmit=self.retransmit,
            farm_b_counter=self.farm_b_counter,
            no_rf_available=no_rf_available,
            no_bit_lock=no_bit_lock,
        )

    def set_buffer_available(self, available: bool) -> None:
        """Flow control from the packet consumer; releasing the buffer ends Wait."""
        self.buffer_available = available
        if available:
            self.wait = False

    def snapshot(self) -> tuple[int, int, bool, bool, bool]:
        """The state :meth:`handle` changes, for :meth:`restore` (e.g. when the frame it
        accepted cannot be recorded and must count as never received)."""
        return (self.vr, self.farm_b_counter, self.lockout, self.wait, self.retransmit)

    def restore(self, snapshot: tuple[int, int, bool, bool, bool]) -> None:
        """Go back to a :meth:`snapshot`."""
        self.vr, self.farm_b_counter, self.lockout, self.wait, self.retransmit = snapshot

    def _count(self, verdict: FarmVerdict) -> FarmVerdict:
        self.stats[verdict.name.lower()] += 1
        return verdict

    def is_duplicate(self, frame: TcFrame) -> bool:
        """True for a Type-AD frame whose N(S) FARM-1 has already accepted (a resend).

        >>> farm = Farm1(0)
        >>> farm.vr = 5
        >>> [farm.is_duplicate(TcFrame(42, 0, b"x", seq=n)) for n in (4, 5, 6)]
        [True, False, False]
        """
        if frame.frame_type is not TcFrameType.AD:
            return False
        return ((frame.seq - self.vr) & 0xFF) >= 256 - self._nw

    def handle(self, frame: TcFrame) -> FarmVerdict:
        """Apply FARM-1 to one valid frame of this virtual channel."""
        if frame.vcid != self.vcid:
            raise CopError(f"frame for VC {frame.vcid} given to the FARM of VC {self.vcid}")
        kind = frame.frame_type
        if kind is TcFrameType.BD:
            self.farm_b_counter = (self.farm_b_counter + 1) & 3
            return self._count(FarmVerdict.ACCEPTED_BD)
        if kind is TcFrameType.BC:
            return self._count(self._control(frame))
        return self._count(self._sequence_controlled(frame))

    def _control(self, frame: TcFrame) -> FarmVerdict:
        """A Type-BC frame: Unlock or Set V(R)."""
        try:
            command, value = frame.bc_command()
        except FrameError:
            return FarmVerdict.DISCARDED_BAD_CONTROL
        self.farm_b_counter = (self.farm_b_counter + 1) & 3
        if command == "unlock":
            self.retransmit = self.wait = self.lockout = False
            return FarmVerdict.ACCEPTED_UNLOCK
        if self.lockout:
            return FarmVerdict.IGNORED_SET_VR_IN_LOCKOUT
        assert value is not None
        self.retransmit = self.wait = False
        self.vr = value
        return FarmVerdict.ACCEPTED_SET_VR

    def _sequence_controlled(self, frame: TcFrame) -> FarmVerdict:
        """A Type-AD frame: accept N(S) = V(R), discard the rest (a gap may lock out)."""
        if self.lockout:
            return FarmVerdict.DISCARDED_IN_LOCKOUT
        ahead = (frame.seq - self.vr) & 0xFF
        if ahead == 0:
            if self.wait or not self.buffer_available:
                self.retransmit = True
                self.wait = True
                return FarmVerdict.DISCARDED_NO_BUFFER
            self.vr = (self.vr + 1) & 0xFF
            self.retransmit = False
            return FarmVerdict.ACCEPTED_AD
        if ahead < self._pw:
            if not self.wait:
                self.retransmit = True
            return FarmVerdict.DISCARDED_GAP
        if ahead >= 256 - self._nw:
            return FarmVerdict.DISCARDED_DUPLICATE
        self.lockout = True
        self.stats["lockouts"] += 1
        log.warning("FARM-1 VC %d entered Lockout: N(S)=%d, V(R)=%d", self.vcid, frame.seq, self.vr)
        return FarmVerdict.DISCARDED_ENTERED_LOCKOUT


# --- FOP-1 ----------------------------------------------------------------------------


class FopState(Enum):
    """FOP-1 states (232.1-B §5)."""

    ACTIVE = 1
    RETRANSMIT_WITHOUT_WAIT = 2
    RETRANSMIT_WITH_WAIT = 3
    INITIALISING_WITHOUT_BC = 4
    INITIALISING_WITH_BC = 5
    INITIAL = 6


class InitMode(Enum):
    """How :meth:`Fop1.initiate_ad` starts the AD service."""

    WITHOUT_CLCW = "without CLCW"
    WITH_CLCW = "with CLCW"
    WITH_UNLOCK = "with Unlock"
    WITH_SET_VR = "with Set V(R)"


@dataclass(slots=True)
class _Sent:
    seq: int
    frame: bytes
    to_send: bool = False


class Fop1:
    """Frame Operation Procedure for one TC virtual channel (ground side).

    Frames are built by callbacks so the caller decides framing and security:
    ``build_ad(ns, data) -> frame bytes``, ``build_bc(frame) -> frame bytes`` (given the
    BC :class:`TcFrame`). Time comes in as ``now_s`` arguments (any monotonic seconds).

    >>> fop = Fop1(0x2A, 0, build_ad=lambda ns, d: TcFrame(0x2A, 0, d, seq=ns).encode())
    >>> fop.initiate_ad(now_s=0.0)
    >>> fop.request(b"ping")
    >>> [TcFrame.decode(f).seq for f in fop.poll(now_s=0.0)]
    [0]
    >>> fop.on_clcw(Clcw(vcid=0, report_value=1), now_s=0.5)
    >>> fop.outstanding
    0
    """

    def __init__(
        self,
        spacecraft_id: int,
        vcid: int,
        build_ad: Callable[[int, bytes], bytes],
        build_bc: Callable[[TcFrame], bytes] | None = None,
        window: int = 8,
        t1_s: float = 2.0,
        transmission_limit: int = 5,
    ) -> None:
        if not 1 <= window <= 255:
            raise CopError(f"FOP sliding window {window} outside 1..255")
        if transmission_limit < 1:
            raise CopError("FOP transmission limit must be at least 1")
        if t1_s <= 0:
            raise CopError("FOP timer T1 must be positive")
        self.spacecraft_id = spacecraft_id
        self.vcid = vcid
        self._build_ad = build_ad
        self._build_bc: Callable[[TcFrame], bytes] = build_bc or (lambda f: f.encode())
        self.window = window
        self.t1_s = t1_s
        self.transmission_limit = transmission_limit
        self.state = FopState.INITIAL
        self.vs = 0
        self.nnr = 0
        self.transmission_count = 0
        self._sent: deque[_Sent] = deque()
        self._waiting: deque[bytes] = deque()
        self._deadline: float | None = None
        self._bc_frame: bytes | None = None
        self._bc_to_send = False
        self._bc_mode: InitMode | None = None
        self.alert: str | None = None
        # Every change of state bumps the epoch; a CLCW identical to the last one processed
        # in the same epoch cannot change anything, so it is skipped cheaply.
        self._epoch = 0
        self._clcw_seen: tuple[Clcw, int] | None = None
        self.stats: dict[str, int] = {
            "ad_frames_sent": 0,
            "ad_retransmissions": 0,
            "bc_frames_sent": 0,
            "acknowledged": 0,
            "alerts": 0,
            "data_purged": 0,
            "clcws": 0,
        }

    # -- directives ---------------------------------------------------------------------

    def initiate_ad(
        self, now_s: float, mode: InitMode = InitMode.WITHOUT_CLCW, vr: int | None = None
    ) -> None:
        """Start the AD service (terminating any current one first, purging its queues)."""
        self.terminate_ad()
        self._epoch += 1
        self.alert = None
        self.transmission_count = 1
        if mode is InitMode.WITHOUT_CLCW:
            self.state = FopState.ACTIVE
            return
        if mode is InitMode.WITH_CLCW:
            self.state = FopState.INITIALISING_WITHOUT_BC
            self._deadline = now_s + self.t1_s
            return
        if mode is InitMode.WITH_SET_VR:
            if vr is None or not 0 <= vr <= 0xFF:
                raise CopError("initiating with Set V(R) needs a V(R) in 0..255")
            self.vs = self.nnr = vr
            bc = TcFrame.set_vr(self.spacecraft_id, self.vcid, vr)
        else:
            bc = TcFrame.unlock(self.spacecraft_id, self.vcid)
        self._bc_frame = self._build_bc(bc)
        self._bc_to_send = True
        self._bc_mode = mode
        self.state = FopState.INITIALISING_WITH_BC
        self._deadline = now_s + self.t1_s

    def terminate_ad(self) -> None:
        """Stop the AD service: purge both queues, cancel T1, go to Initial."""
        self._epoch += 1
        lost = len(self._sent) + len(self._waiting)
        self._sent.clear()
        self._waiting.clear()
        self._deadline = None
        self._bc_frame = None
        self._bc_to_send = False
        self.nnr = self.vs
        self.state = FopState.INITIAL
        if lost:
            self.stats["data_purged"] += lost

    def set_vs(self, vs: int) -> None:
        """Set V(S) (only in Initial, before initiating without a BC frame)."""
        if self.state is not FopState.INITIAL:
            raise CopError(f"Set V(S) is only allowed in state Initial, not {self.state.name}")
        if not 0 <= vs <= 0xFF:
            raise CopError(f"V(S) {vs} outside 0..255")
        self._epoch += 1
        self.vs = self.nnr = vs

    # -- user requests ------------------------------------------------------------------

    def request(self, data: bytes) -> None:
        """Queue one frame's data for sequence-controlled (AD) transfer."""
        if self.state is FopState.INITIAL:
            raise CopError(
                "the AD service is not running"
                + (f" (last alert: {self.alert})" if self.alert else "")
                + "; initiate it first"
            )
        self._waiting.append(data)

    @property
    def outstanding(self) -> int:
        """Frames sent and not yet acknowledged."""
        return len(self._sent)

    @property
    def queued(self) -> int:
        """Frame data waiting for room in the sliding window."""
        return len(self._waiting)

    # -- events -------------------------------------------------------------------------

    def _raise_alert(self, reason: str) -> None:
        log.warning("FOP-1 VC %d alert: %s", self.vcid, reason)
        self.terminate_ad()
        self.alert = reason
        self.stats["alerts"] += 1

    def _initiate_retransmission(self, now_s: float) -> None:
        self.transmission_count += 1
        for entry in self._sent:
            entry.to_send = True
        self._deadline = now_s + self.t1_s

    def on_clcw(self, clcw: Clcw, now_s: float) -> None:
        """Process one CLCW received on the downlink."""
        if clcw.vcid != self.vcid or clcw.cop_in_effect != 1:
            return
        self.stats["clcws"] += 1
        seen = self._clcw_seen
        if seen is not None and seen[1] == self._epoch and (seen[0] is clcw or seen[0] == clcw):
            return
        self._process_clcw(clcw, now_s)
        self._epoch += 1
        self._clcw_seen = (clcw, self._epoch)

    def _process_clcw(self, clcw: Clcw, now_s: float) -> None:
        state = self.state
        if state is FopState.INITIAL:
            return
        if state in (FopState.INITIALISING_WITHOUT_BC, FopState.INITIALISING_WITH_BC):
            self._clcw_initialising(clcw, state)
            return
        if clcw.lockout:
            self._raise_alert(f"FARM-1 is in Lockout (V(R)={clcw.report_value})")
            return
        acked = self._acknowledge(clcw.report_value, now_s)
        if acked is None:
            return
        if not clcw.retransmit:
            self.state = FopState.ACTIVE if not clcw.wait else FopState.RETRANSMIT_WITH_WAIT
            return
        if not self._sent:
            return
        if clcw.wait:
            self.state = FopState.RETRANSMIT_WITH_WAIT
            return
        if state is FopState.RETRANSMIT_WITHOUT_WAIT and not acked:
            return  # the retransmission asked for is already under way
        if self.transmission_count >= self.transmission_limit:
            self._raise_alert(
                f"retransmission limit ({self.transmission_limit}) reached at N(S)={self.nnr}"
            )
            return
        self._initiate_retransmission(now_s)
        self.state = FopState.RETRANSMIT_WITHOUT_WAIT

    def _clcw_initialising(self, clcw: Clcw, state: FopState) -> None:
        """A CLCW while the AD service starts: it goes ACTIVE once FARM-1 agrees."""
        if clcw.lockout or clcw.wait or clcw.retransmit:
            return
        if state is FopState.INITIALISING_WITHOUT_BC:
            if clcw.report_value == self.vs:
                self.state = FopState.ACTIVE
                self._deadline = None
            return
        if self._bc_mode is InitMode.WITH_UNLOCK:
            self.vs = self.nnr = clcw.report_value
        elif clcw.report_value != self.vs:
            return
        self.state = FopState.ACTIVE
        self._deadline = None
        self._bc_frame = None
        self._bc_to_send = False

    def _acknowledge(self, nr: int, now_s: float) -> int | None:
        """Release the frames N(R) acknowledges; how many (None: N(R) is impossible)."""
        if (nr - self.nnr) & 0xFF > (self.vs - self.nnr) & 0xFF:
            self._raise_alert(
                f"CLCW reports N(R)={nr}, outside the frames sent ({self.nnr}..{self.vs})"
            )
            return None
        acked = (nr - self.nnr) & 0xFF
        if acked:
            for _ in range(acked):
                self._sent.popleft()
            self.nnr = nr
            self.stats["acknowledged"] += acked
            self.transmission_count = 1
            self._deadline = now_s + self.t1_s if self._sent else None
        return acked

    def _timer(self, now_s: float) -> None:
        if self._deadline is None or now_s < self._deadline:
            return
        self._epoch += 1
        state = self.state
        if state in (FopState.INITIALISING_WITHOUT_BC, FopState.INITIALISING_WITH_BC) or (
            self._sent
        ):
            if self.transmission_count >= self.transmission_limit:
                self._raise_alert(
                    f"timer T1 expired {self.transmission_count} times in state {state.name}"
                )
                return
            if state is FopState.INITIALISING_WITH_BC:
                self.transmission_count += 1
                self._bc_to_send = True
                self._deadline = now_s + self.t1_s
            elif state in (FopState.INITIALISING_WITHOUT_BC, FopState.RETRANSMIT_WITH_WAIT):
                self.transmission_count += 1  # nothing to send: wait for a CLCW
                self._deadline = now_s + self.t1_s
            else:
                self._initiate_retransmission(now_s)
                self.state = FopState.RETRANSMIT_WITHOUT_WAIT
        else:
            self._deadline = None

    def poll(self, now_s: float) -> list[bytes]:
        """Run timer T1 and return every frame that should be transmitted now, in order."""
        self._timer(now_s)
        out: list[bytes] = []
        if self.state is FopState.INITIALISING_WITH_BC:
            if self._bc_to_send and self._bc_frame is not None:
                self._bc_to_send = False
                self._epoch += 1
                self.stats["bc_frames_sent"] += 1
                out.append(self._bc_frame)
            return out
        if self.state not in (FopState.ACTIVE, FopState.RETRANSMIT_WITHOUT_WAIT):
            return out
        for entry in self._sent:
            if entry.to_send:
                entry.to_send = False
                self.stats["ad_retransmissions"] += 1
                out.append(entry.frame)
        while self._waiting and len(self._sent) < self.window:
            data = self._waiting.popleft()
            if not self._sent:
                self.transmission_count = 1
            frame = self._build_ad(self.vs, data)
            self._sent.append(_Sent(self.vs, frame))
            self.vs = (self.vs + 1) & 0xFF
            self.stats["ad_frames_sent"] += 1
            out.append(frame)
        if out:
            self._epoch += 1
            self._deadline = now_s + self.t1_s
        return out


__all__ = [
    "CLCW_LEN",
    "Clcw",
    "Farm1",
    "FarmState",
    "FarmVerdict",
    "Fop1",
    "FopState",
    "InitMode",
]
