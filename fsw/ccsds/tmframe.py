"""TM transfer frames (CCSDS 132.0-B): the downlink's fixed-length unit of transfer.

Primary header (6 bytes, big-endian)::

    version(2)=0 | spacecraft id(10) | virtual channel id(3) | OCF flag(1)
    master channel frame count(8) | virtual channel frame count(8)
    secondary header flag(1) | sync flag(1)=0 | packet order(1)=0 | segment length id(2)=3
    | first header pointer(11)

then an optional secondary header (1 id byte + up to 63 bytes), the data field, the
optional 4-byte OCF (the CLCW) and the optional 2-byte FECF. The first header pointer
(FHP) gives the offset in the data field where the first packet header starts; 0x7FF
means "no packet starts here" (a long packet continues), 0x7FE "idle data only".

* :class:`TmFrame` encodes and decodes one frame.
* :class:`TmFramer` turns packets into fixed-length frames per virtual channel.
* :class:`TmDeframer` turns frames back into packets, across frame boundaries.

>>> frame = TmFrame(spacecraft_id=0x2A, vcid=1, data=b"\\x55" * 8, fhp=FHP_IDLE)
>>> raw = frame.encode()
>>> raw[:6].hex(), len(raw)
('02a200001ffe', 16)
>>> TmFrame.decode(raw) == frame
True
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from fsw.ccsds.cop1 import CLCW_LEN, Clcw
from fsw.ccsds.crc import fecf16, fecf16_function
from fsw.ccsds.errors import CrcError, FrameError
from fsw.ccsds.spacepacket import IDLE_APID, PRIMARY_HEADER_LEN, SpacePacket, slot_setter

TM_HEADER_LEN = 6
FECF_LEN = 2
OCF_LEN = CLCW_LEN
FHP_NO_PACKET_START = 0x7FF
FHP_IDLE = 0x7FE
MAX_TM_FRAME_LEN = 2048
MAX_SPACECRAFT_ID = 0x3FF
MAX_TM_VCID = 7
IDLE_VCID = 7
IDLE_FILL = 0x55

_HDR = struct.Struct(">HBBH")
_crc_fun = fecf16_function()


@dataclass(slots=True, frozen=True, init=False)
class TmFrame:
    """One TM transfer frame. ``secondary_header`` excludes its identification byte."""

    spacecraft_id: int
    vcid: int
    data: bytes
    mc_count: int = 0
    vc_count: int = 0
    fhp: int = 0
    ocf: bytes | None = None
    secondary_header: bytes = b""
    sync_flag: bool = False
    packet_order: bool = False
    segment_len_id: int = 3
    has_fecf: bool = True

    def __init__(
        self,
        spacecraft_id: int,
        vcid: int,
        data: bytes,
        mc_count: int = 0,
        vc_count: int = 0,
        fhp: int = 0,
        ocf: bytes | None = None,
        secondary_header: bytes = b"",
        sync_flag: bool = False,
        packet_order: bool = False,
        segment_len_id: int = 3,
        has_fecf: bool = True,
    ) -> None:
        # Hand-written (the dataclass keeps eq/hash/repr/frozen): one chained range test on
        # the hot path, raw slot stores instead of the frozen dataclass's object.__setattr__
        # (a third of the cost of building a 1115-byte frame), details only on failure.
        if not (
            0 <= spacecraft_id <= MAX_SPACECRAFT_ID
            and 0 <= vcid <= MAX_TM_VCID
            and 0 <= mc_count <= 0xFF
            and 0 <= vc_count <= 0xFF
            and 0 <= fhp <= 0x7FF
            and 0 <= segment_len_id <= 3
        ):
            for name, value, hi in (
                ("spacecraft id", spacecraft_id, MAX_SPACECRAFT_ID),
                ("virtual channel", vcid, MAX_TM_VCID),
                ("master channel frame count", mc_count, 0xFF),
                ("virtual channel frame count", vc_count, 0xFF),
                ("first header pointer", fhp, 0x7FF),
                ("segment length id", segment_len_id, 3),
            ):
                if not 0 <= value <= hi:
                    raise FrameError(f"TM {name} {value} outside 0..{hi}")
        if ocf is not None and len(ocf) != OCF_LEN:
            raise FrameError(f"the OCF is {OCF_LEN} bytes, not {len(ocf)}")
        if len(secondary_header) > 63:
            raise FrameError("a TM secondary header carries at most 63 bytes after its id")
        _tmf_scid(self, spacecraft_id)
        _tmf_vcid(self, vcid)
        _tmf_data(self, data)
        _tmf_mc(self, mc_count)
        _tmf_vc(self, vc_count)
        _tmf_fhp(self, fhp)
        _tmf_ocf(self, ocf)
        _tmf_sec(self, secondary_header)
        _tmf_sync(self, sync_flag)
        _tmf_order(self, packet_order)
        _tmf_seglen(self, segment_len_id)
        _tmf_fecf(self, has_fecf)
        if self.length > MAX_TM_FRAME_LEN:
            raise FrameError(f"TM frame of {self.length} bytes is longer than {MAX_TM_FRAME_LEN}")

    @property
    def length(self) -> int:
        """Total encoded length in bytes."""
        sec = 1 + len(self.secondary_header) if self.secondary_header else 0
        return (
            TM_HEADER_LEN
            + sec
            + len(self.data)
            + (OCF_LEN if self.ocf is not None else 0)
            + (FECF_LEN if self.has_fecf else 0)
        )

    @property
    def is_idle(self) -> bool:
        """True for an OID (idle) frame."""
        return self.fhp == FHP_IDLE

    @property
    def clcw(self) -> Clcw | None:
        """The CLCW in the OCF, or None when there is no OCF or it holds something else."""
        if self.ocf is None:
            return None
        try:
            return Clcw.decode(self.ocf)
        except FrameError:
            return None

    def encode(self) -> bytes:
        """The frame as bytes."""
        sec = self.secondary_header
        header = _HDR.pack(
            (self.spacecraft_id << 4) | (self.vcid << 1) | (self.ocf is not None),
            self.mc_count,
            self.vc_count,
            (bool(sec) << 15)
            | (self.sync_flag << 14)
            | (self.packet_order << 13)
            | (self.segment_len_id << 11)
            | self.fhp,
        )
        if sec:
            header += bytes((len(sec),)) + sec
        ocf = self.ocf
        out = b"".join((header, self.data, ocf)) if ocf is not None else header + self.data
        if self.has_fecf:
            return out + _crc_fun(out).to_bytes(2, "big")
        return out

    @classmethod
    def decode(cls, raw: bytes | bytearray | memoryview, has_fecf: bool = True) -> TmFrame:
        """Decode exactly one frame (its length is the frame length), checking the FECF."""
        if type(raw) is not bytes:
            raw = bytes(raw)
        n = len(raw)
        trailer = FECF_LEN if has_fecf else 0
        if not TM_HEADER_LEN + trailer < n <= MAX_TM_FRAME_LEN:
            if n > MAX_TM_FRAME_LEN:
                raise FrameError(f"TM frame of {n} bytes is longer than {MAX_TM_FRAME_LEN}")
            raise FrameError(f"TM frame of {n} bytes is too short", offset=0)
        w0, mc, vc, dfs = _HDR.unpack_from(raw, 0)
        if w0 >> 14:
            raise FrameError(f"TM frame version {w0 >> 14}, expected 0", offset=0)
        if has_fecf and _crc_fun(raw):
            raise CrcError(
                f"TM frame FECF 0x{int.from_bytes(raw[-2:], 'big'):04X} does not match "
                f"computed 0x{fecf16(raw[:-2]):04X}",
                offset=n - 2,
            )
        end = n - trailer
        ocf: bytes | None = None
        if w0 & 1:
            end -= OCF_LEN
            ocf = raw[end : end + OCF_LEN]
        start = TM_HEADER_LEN
        secondary = b""
        if dfs & 0x8000:
            sec_len = raw[start] & 0x3F
            if raw[start] >> 6:
                raise FrameError("TM secondary header version is not 0", offset=start)
            secondary = raw[start + 1 : start + 1 + sec_len]
            start += 1 + sec_len
            if not secondary:
                raise FrameError("TM secondary header flag set but it is empty", offset=start)
        if start >= end:
            raise FrameError("TM frame has no room for a data field", offset=start)
        # Every field below is in range by construction: skip the dataclass checks.
        frame: TmFrame = _new(cls)
        _tmf_scid(frame, (w0 >> 4) & MAX_SPACECRAFT_ID)
        _tmf_vcid(frame, (w0 >> 1) & 7)
        _tmf_data(frame, raw[start:end])
        _tmf_mc(frame, mc)
        _tmf_vc(frame, vc)
        _tmf_fhp(frame, dfs & 0x7FF)
        _tmf_ocf(frame, ocf)
        _tmf_sec(frame, secondary)
        _tmf_sync(frame, dfs & 0x4000 != 0)
        _tmf_order(frame, dfs & 0x2000 != 0)
        _tmf_seglen(frame, (dfs >> 11) & 3)
        _tmf_fecf(frame, has_fecf)
        return frame


_new = object.__new__
_tmf_scid = slot_setter(TmFrame, "spacecraft_id")
_tmf_vcid = slot_setter(TmFrame, "vcid")
_tmf_data = slot_setter(TmFrame, "data")
_tmf_mc = slot_setter(TmFrame, "mc_count")
_tmf_vc = slot_setter(TmFrame, "vc_count")
_tmf_fhp = slot_setter(TmFrame, "fhp")
_tmf_ocf = slot_setter(TmFrame, "ocf")
_tmf_sec = slot_setter(TmFrame, "secondary_header")
_tmf_sync = slot_setter(TmFrame, "sync_flag")
_tmf_order = slot_setter(TmFrame, "packet_order")
_tmf_seglen = slot_setter(TmFrame, "segment_len_id")
_tmf_fecf = slot_setter(TmFrame, "has_fecf")


def tm_data_len(frame_len: int, has_ocf: bool = True, has_fecf: bool = True) -> int:
    """Bytes of packet data a frame of ``frame_len`` carries (no secondary header).

    >>> tm_data_len(1115)
    1103
    """
    return frame_len - TM_HEADER_LEN - (OCF_LEN if has_ocf else 0) - (FECF_LEN if has_fecf else 0)


@dataclass(slots=True)
class _VcOut:
    count: int = 0
    buf: bytes = b""
    starts: list[int] = field(default_factory=list)  # packet starts within buf
    idle_prefix: int = 0  # leading bytes of buf that are the tail of an idle packet


class TmFramer:
    """Packs space packets into fixed-length TM frames, one packet stream per VC.

    Packets may span frames; the FHP marks where the first packet header in each frame
    starts. With ``flush=True`` the last frame is completed with an idle packet, so every
    packet handed in leaves in the returned frames. Frames come back encoded (FECF
    included) but not randomized; see :func:`fsw.ccsds.sync.attach_asm`.

    >>> framer = TmFramer(spacecraft_id=0x2A, frame_len=64)
    >>> pkt = SpacePacket(apid=5, data=bytes(100)).encode()
    >>> frames = framer.pack(0, [pkt], ocf=bytes(4))
    >>> [TmFrame.decode(f).fhp for f in frames]
    [0, 2047, 2]
    """

    def __init__(
        self,
        spacecraft_id: int,
        frame_len: int = 1115,
        has_ocf: bool = True,
        has_fecf: bool = True,
        idle_vcid: int = IDLE_VCID,
    ) -> None:
        if not 0 <= spacecraft_id <= MAX_SPACECRAFT_ID:
            raise FrameError(f"spacecraft id {spacecraft_id} outside 0..{MAX_SPACECRAFT_ID}")
        data_len = tm_data_len(frame_len, has_ocf, has_fecf)
        if data_len < PRIMARY_HEADER_LEN + 1 or frame_len > MAX_TM_FRAME_LEN:
            raise FrameError(f"TM frame length {frame_len} leaves {data_len} data bytes")
        if not 0 <= idle_vcid <= MAX_TM_VCID:
            raise FrameError(f"idle virtual channel {idle_vcid} outside 0..7")
        self.spacecraft_id = spacecraft_id
        self.frame_len = frame_len
        self.has_ocf = has_ocf
        self.has_fecf = has_fecf
        self.idle_vcid = idle_vcid
        self.data_len = data_len
        self.mc_count = 0
        self._vcs: dict[int, _VcOut] = {}
        self._idle_data = bytes([IDLE_FILL]) * data_len
        self.stats: dict[str, int] = {"frames": 0, "idle_frames": 0, "packets": 0}

    def _vc(self, vcid: int) -> _VcOut:
        vc = self._vcs.get(vcid)
        if vc is None:
            if not 0 <= vcid <= MAX_TM_VCID:
                raise FrameError(f"TM virtual channel {vcid} outside 0..7")
            vc = self._vcs[vcid] = _VcOut()
        return vc

    def _ocf_bytes(self, ocf: bytes | Callable[[], bytes] | None) -> bytes:
        if not self.has_ocf:
            return b""
        value = ocf() if callable(ocf) else ocf
        if value is None:
            value = bytes(OCF_LEN)
        if len(value) != OCF_LEN:
            raise FrameError(f"the OCF is {OCF_LEN} bytes, not {len(value)}")
        return value

    def _frame(self, vcid: int, vc_count: int, fhp: int, data: bytes, ocf: bytes) -> bytes:
        out = (
            _HDR.pack(
                (self.spacecraft_id << 4) | (vcid << 1) | self.has_ocf,
                self.mc_count,
                vc_count,
                0x1800 | fhp,
            )
            + data
            + ocf
        )
        self.mc_count = (self.mc_count + 1) & 0xFF
        self.stats["frames"] += 1
        if self.has_fecf:
            return out + fecf16(out).to_bytes(2, "big")
        return out

    def pending(self, vcid: int) -> int:
        """Bytes of user packets waiting in ``vcid`` for a frame to fill."""
        vc = self._vcs.get(vcid)
        return len(vc.buf) - vc.idle_prefix if vc is not None else 0

    def pack(
        self,
        vcid: int,
        packets: Iterable[bytes],
        ocf: bytes | Callable[[], bytes] | None = None,
        flush: bool = True,
    ) -> list[bytes]:
        """Frames carrying ``packets`` (encoded space packets) on virtual channel ``vcid``.

        ``ocf`` is the 4-byte OCF (the CLCW) for these frames, or a callable giving it.
        Without ``flush`` a partly filled frame waits for more packets.
        """
        vc = self._vc(vcid)
        buf, padded = self._enqueue(vc, packets, flush)
        size = self.data_len
        n_frames = len(buf) // size
        if n_frames == 0:
            vc.buf = buf
            return []
        frames, s_idx = self._cut(vc, vcid, buf, n_frames, self._ocf_bytes(ocf))
        consumed = n_frames * size
        vc.buf = buf[consumed:]
        vc.starts = [s - consumed for s in vc.starts[s_idx:] if s >= consumed]
        vc.idle_prefix = len(vc.buf) if padded else max(0, vc.idle_prefix - consumed)
        return frames

    def _enqueue(self, vc: _VcOut, packets: Iterable[bytes], flush: bool) -> tuple[bytes, bool]:
        """The VC's bytes with ``packets`` appended (their starts noted) and, with
        ``flush``, an idle packet filling the last frame; and whether it was padded."""
        new = list(packets)
        starts = vc.starts
        offset = len(vc.buf)
        for pkt in new:
            if len(pkt) < PRIMARY_HEADER_LEN + 1:
                raise FrameError(f"a packet of {len(pkt)} bytes is shorter than 7")
            starts.append(offset)
            offset += len(pkt)
        buf = vc.buf + b"".join(new) if new else vc.buf
        self.stats["packets"] += len(new)
        padded = False
        if flush and len(buf) > vc.idle_prefix:
            room = -len(buf) % self.data_len
            if room:
                # An idle packet fills the frame; if fewer than 7 bytes are free, its tail
                # spills into the start of this VC's next frame.
                starts.append(len(buf))
                buf += SpacePacket.idle(max(room, PRIMARY_HEADER_LEN + 1)).encode()
            padded = True
        return buf, padded

    def _cut(
        self, vc: _VcOut, vcid: int, buf: bytes, n_frames: int, ocf_bytes: bytes
    ) -> tuple[list[bytes], int]:
        """The first ``n_frames`` frames of ``buf`` (first header pointers from the
        packet starts), and the index of the first packet start not yet framed."""
        size = self.data_len
        frames: list[bytes] = []
        append = frames.append
        starts = vc.starts
        s_idx = 0
        n_starts = len(starts)
        count = vc.count
        mc = self.mc_count
        word0 = (self.spacecraft_id << 4) | (vcid << 1) | self.has_ocf
        pack_header = _HDR.pack
        crc = _crc_fun if self.has_fecf else None
        for k in range(n_frames):
            lo = k * size
            hi = lo + size
            while s_idx < n_starts and starts[s_idx] < lo:
                s_idx += 1
            if s_idx < n_starts and starts[s_idx] < hi:
                fhp = starts[s_idx] - lo
            else:
                fhp = FHP_NO_PACKET_START
            body = pack_header(word0, mc, count, 0x1800 | fhp) + buf[lo:hi] + ocf_bytes
            append(body + crc(body).to_bytes(2, "big") if crc is not None else body)
            mc = (mc + 1) & 0xFF
            count = (count + 1) & 0xFF
        self.mc_count = mc
        self.stats["frames"] += n_frames
        vc.count = count
        return frames, s_idx

    def idle_frame(self, ocf: bytes | Callable[[], bytes] | None = None) -> bytes:
        """One idle (OID) frame on the idle VC: keeps the link locked, carries the CLCW."""
        vc = self._vc(self.idle_vcid)
        count = vc.count
        vc.count = (count + 1) & 0xFF
        self.stats["idle_frames"] += 1
        return self._frame(self.idle_vcid, count, FHP_IDLE, self._idle_data, self._ocf_bytes(ocf))


@dataclass(slots=True)
class _VcIn:
    expected: int | None = None
    partial: bytes = b""  # start of a packet that continues in the next frame
    synced: bool = False


class TmDeframer:
    """Reassembles space packets from TM frames, per virtual channel.

    A gap in a VC frame count drops the packet that was being reassembled (counted) and
    resynchronises at the next FHP. Idle packets and idle frames are dropped. The CLCW of
    the last frame is in :attr:`frame_clcw`, the last one seen in :attr:`last_clcw`.

    >>> framer = TmFramer(spacecraft_id=0x2A, frame_len=64)
    >>> pkts = [SpacePacket(apid=5, data=bytes(n)).encode() for n in (100, 3, 40)]
    >>> deframer = TmDeframer()
    >>> out = [p for f in framer.pack(0, pkts) for p in deframer.feed(f)]
    >>> out == pkts
    True
    """

    def __init__(
        self,
        spacecraft_id: int | None = None,
        has_fecf: bool = True,
        check_fecf: bool = True,
        keep_idle_packets: bool = False,
    ) -> None:
        self.spacecraft_id = spacecraft_id
        self.has_fecf = has_fecf
        self.check_fecf = check_fecf
        self.keep_idle_packets = keep_idle_packets
        self.last_clcw: Clcw | None = None
        self.frame_clcw: Clcw | None = None  # CLCW of the frame fed last, if it had one
        self._ocf_raw = b""
        self._vcs: dict[int, _VcIn] = {}
        self.stats: dict[str, int] = {
            "frames": 0,
            "idle_frames": 0,
            "frames_rejected": 0,
            "vc_count_gaps": 0,
            "packets": 0,
            "idle_packets": 0,
            "packets_lost": 0,
            "resyncs": 0,
        }

    def reset(self) -> None:
        """Forget all partial packets and frame counts (e.g. at acquisition of signal)."""
        self._vcs.clear()

    def _reject(self, reason: str, offset: int | None = None) -> FrameError:
        self.stats["frames_rejected"] += 1
        return FrameError(reason, offset=offset)

    def feed(self, frame: bytes | bytearray | memoryview) -> list[bytes]:
        """Packets completed by one encoded (derandomized) frame.

        Raises :class:`FrameError`/:class:`CrcError` for a frame that cannot be used (and
        counts it); the deframer's packet state is unchanged by a rejected frame.
        """
        raw = frame if type(frame) is bytes else bytes(frame)
        self.frame_clcw = None
        w0, vc_count, dfs, start, end = self._check(raw)
        self.stats["frames"] += 1
        fhp = dfs & 0x7FF
        if fhp == FHP_IDLE:
            self.stats["idle_frames"] += 1
            return []
        vc = self._vc_in((w0 >> 1) & 7, vc_count)
        out: list[bytes] = []
        if fhp == FHP_NO_PACKET_START:
            if vc.synced:
                vc.partial = self._walk(vc, vc.partial + raw[start:end], 0, out)
            return out
        self._resync(vc, raw, start, start + fhp, end, out)
        return out

    def _check(self, raw: bytes) -> tuple[int, int, int, int, int]:
        """Header word 0, VC frame count, data field status, and the data field's start
        and end, of a frame that can be used (else counted and raised); reads the CLCW."""
        trailer = FECF_LEN if self.has_fecf else 0
        n = len(raw)
        if n < TM_HEADER_LEN + trailer + 1 or n > MAX_TM_FRAME_LEN:
            raise self._reject(f"TM frame of {n} bytes has an impossible length")
        w0, _mc, vc_count, dfs = _HDR.unpack_from(raw, 0)
        if w0 >> 14:
            raise self._reject(f"TM frame version {w0 >> 14}, expected 0", offset=0)
        if self.check_fecf and trailer and _crc_fun(raw) != 0:
            self.stats["frames_rejected"] += 1
            raise CrcError("TM frame FECF does not match", offset=n - 2)
        scid = (w0 >> 4) & MAX_SPACECRAFT_ID
        if self.spacecraft_id is not None and scid != self.spacecraft_id:
            raise self._reject(f"TM frame from spacecraft {scid}, expected {self.spacecraft_id}")
        end = n - trailer
        start = TM_HEADER_LEN
        if dfs & 0x8000:
            start += 1 + (raw[start] & 0x3F)
        if w0 & 1:
            end -= OCF_LEN
            if end > start:
                self._read_ocf(raw[end : end + OCF_LEN])
        if start >= end:
            self.frame_clcw = None
            raise self._reject("TM frame has no room for a data field", offset=start)
        return w0, vc_count, dfs, start, end

    def _read_ocf(self, ocf: bytes) -> None:
        if ocf == self._ocf_raw:
            self.frame_clcw = self.last_clcw  # unchanged CLCW: reuse the object
        elif not ocf[0] & 0x80:
            with contextlib.suppress(FrameError):
                self.frame_clcw = self.last_clcw = Clcw.decode(ocf)
                self._ocf_raw = ocf

    def _vc_in(self, vcid: int, vc_count: int) -> _VcIn:
        """The reassembly state of ``vcid``, lost on a gap in its frame count."""
        vc = self._vcs.get(vcid)
        if vc is None:
            vc = self._vcs[vcid] = _VcIn()
        if vc.expected is not None and vc_count != vc.expected:
            self.stats["vc_count_gaps"] += 1
            self._lose(vc)
        vc.expected = (vc_count + 1) & 0xFF
        return vc

    def _resync(
        self, vc: _VcIn, raw: bytes, start: int, first: int, end: int, out: list[bytes]
    ) -> None:
        """A frame whose first packet starts at ``first``: finish the packet in progress,
        then walk the packets from there."""
        if first >= end:
            self._lose(vc)  # an FHP beyond the data field: nothing here can be trusted
            self.stats["resyncs"] += 1
            return
        if vc.synced:
            head = vc.partial + raw[start:first]
            if head and self._walk(vc, head, 0, out):
                # The packet in progress does not end where this frame's FHP says.
                self.stats["packets_lost"] += 1
                self.stats["resyncs"] += 1
        else:
            self.stats["resyncs"] += 1
        vc.synced = True
        vc.partial = self._walk(vc, raw[:end], first, out)

    def _lose(self, vc: _VcIn) -> None:
        if vc.partial:
            self.stats["packets_lost"] += 1
        vc.partial = b""
        vc.synced = False

    def _walk(self, vc: _VcIn, data: bytes, pos: int, out: list[bytes]) -> bytes:
        """Append whole packets of ``data`` from ``pos``; return the unfinished tail."""
        n = len(data)
        keep_idle = self.keep_idle_packets
        found = 0
        while n - pos >= PRIMARY_HEADER_LEN:
            b0 = data[pos]
            if b0 >> 5:
                # Not a version-0 packet header: the stream is corrupt; resync at next FHP.
                self.stats["packets_lost"] += 1
                vc.synced = False
                self.stats["packets"] += found
                return b""
            end = pos + PRIMARY_HEADER_LEN + ((data[pos + 4] << 8) | data[pos + 5]) + 1
            if end > n:
                break
            if ((b0 & 7) << 8) | data[pos + 1] != IDLE_APID or keep_idle:
                out.append(data[pos:end])
                found += 1
            else:
                self.stats["idle_packets"] += 1
            pos = end
        self.stats["packets"] += found
        return data[pos:] if pos < n else b""


__all__ = [
    "FHP_IDLE",
    "FHP_NO_PACKET_START",
    "IDLE_VCID",
    "MAX_TM_FRAME_LEN",
    "TM_HEADER_LEN",
    "TmDeframer",
    "TmFrame",
    "TmFramer",
    "tm_data_len",
]
