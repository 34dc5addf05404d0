"""TC transfer frames (CCSDS 232.0-B): the uplink's unit of transfer.

Primary header (5 bytes, big-endian)::

    version(2)=0 | bypass(1) | control(1) | spare(2)=0 | spacecraft id(10)
    virtual channel id(6) | frame length - 1 (10)
    frame sequence number N(S) (8)

then, on data frames of a virtual channel that uses it, the segment header (1 byte:
sequence flags (2) | MAP id (6)), the frame data field, and the 2-byte FECF
(CRC-16/CCITT-FALSE over everything before it). At most 1024 bytes in all.

Frame types: AD (sequence-controlled, bypass=0 control=0), BD (expedited, bypass=1),
BC (COP-1 control commands, bypass=1 control=1): Unlock = ``00``, Set V(R) = ``82 00 vr``.

>>> f = TcFrame(spacecraft_id=0x2A, vcid=1, data=b"\\x01\\x02", seq=7)
>>> f.encode().hex()
'002a0408070102d8e2'
>>> TcFrame.decode(f.encode()) == f
True
>>> TcFrame.unlock(0x2A, 1).bc_command()
('unlock', None)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import Enum

from fsw.ccsds.crc import fecf16
from fsw.ccsds.errors import CrcError, FrameError
from fsw.ccsds.spacepacket import SeqFlags

TC_HEADER_LEN = 5
FECF_LEN = 2
MAX_TC_FRAME_LEN = 1024
MAX_SPACECRAFT_ID = 0x3FF
MAX_TC_VCID = 0x3F
MAX_MAP_ID = 0x3F
BC_UNLOCK = b"\x00"
_BC_SET_VR_PREFIX = b"\x82\x00"

_HDR = struct.Struct(">HHB")
_SEQ_FLAGS = tuple(SeqFlags(i) for i in range(4))


class TcFrameType(Enum):
    """Which COP-1 service a frame belongs to."""

    AD = "AD"  # sequence-controlled data (FARM-1 checks N(S))
    BD = "BD"  # expedited data (bypasses FARM-1 checks)
    BC = "BC"  # COP-1 control command (Unlock, Set V(R))


def tc_header(
    spacecraft_id: int, vcid: int, frame_len: int, seq: int, bypass: bool, control: bool
) -> bytes:
    """The 5-byte primary header of a TC frame of ``frame_len`` bytes in total.

    >>> tc_header(0x2A, 1, 9, 7, False, False).hex()
    '002a040807'
    """
    return _HDR.pack(
        (bypass << 13) | (control << 12) | spacecraft_id,
        (vcid << 10) | (frame_len - 1),
        seq,
    )


@dataclass(slots=True, frozen=True)
class TcFrame:
    """One TC transfer frame. ``data`` is the frame data field after any segment header.

    ``map_id`` set means the frame carries a segment header (MAP id and ``seg_flags``).
    With SDLS, ``data`` holds the security header, the protected data and the MAC.
    """

    spacecraft_id: int
    vcid: int
    data: bytes
    seq: int = 0
    bypass: bool = False
    control: bool = False
    map_id: int | None = None
    seg_flags: SeqFlags = SeqFlags.UNSEGMENTED
    has_fecf: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.spacecraft_id <= MAX_SPACECRAFT_ID:
            raise FrameError(f"spacecraft id {self.spacecraft_id} outside 0..{MAX_SPACECRAFT_ID}")
        if not 0 <= self.vcid <= MAX_TC_VCID:
            raise FrameError(f"TC virtual channel {self.vcid} outside 0..{MAX_TC_VCID}")
        if not 0 <= self.seq <= 0xFF:
            raise FrameError(f"frame sequence number {self.seq} outside 0..255")
        if self.control and not self.bypass:
            raise FrameError("a control command frame must have the bypass flag set")
        if self.map_id is not None:
            if self.control:
                raise FrameError("control command frames have no segment header")
            if not 0 <= self.map_id <= MAX_MAP_ID:
                raise FrameError(f"MAP id {self.map_id} outside 0..{MAX_MAP_ID}")
        if not self.data:
            raise FrameError("a TC frame data field needs at least one byte")
        if self.length > MAX_TC_FRAME_LEN:
            raise FrameError(f"TC frame of {self.length} bytes is longer than {MAX_TC_FRAME_LEN}")

    @property
    def length(self) -> int:
        """Total encoded length in bytes."""
        return (
            TC_HEADER_LEN
            + (self.map_id is not None)
            + len(self.data)
            + (FECF_LEN if self.has_fecf else 0)
        )

    @property
    def frame_type(self) -> TcFrameType:
        """AD, BD or BC."""
        if self.control:
            return TcFrameType.BC
        return TcFrameType.BD if self.bypass else TcFrameType.AD

    def header(self) -> bytes:
        """Primary header plus the segment header when there is one (the SDLS AAD)."""
        hdr = tc_header(
            self.spacecraft_id, self.vcid, self.length, self.seq, self.bypass, self.control
        )
        if self.map_id is not None:
            hdr += bytes([(self.seg_flags << 6) | self.map_id])
        return hdr

    def encode(self) -> bytes:
        """The frame as bytes, FECF included when ``has_fecf``."""
        body = self.header() + self.data
        if self.has_fecf:
            return body + fecf16(body).to_bytes(2, "big")
        return body

    @classmethod
    def decode(
        cls,
        raw: bytes | bytearray | memoryview,
        has_segment_header: bool = False,
        has_fecf: bool = True,
    ) -> TcFrame:
        """Decode exactly one frame; check version, declared length and FECF.

        ``has_segment_header`` says whether data frames on this virtual channel carry a
        segment header (a managed parameter; control frames never do).
        """
        raw = bytes(raw)
        if len(raw) < TC_HEADER_LEN + 1 + (FECF_LEN if has_fecf else 0):
            raise FrameError(f"TC frame of {len(raw)} bytes is too short", offset=0)
        w0, w1, seq = _HDR.unpack_from(raw, 0)
        if w0 >> 14:
            raise FrameError(f"TC frame version {w0 >> 14}, expected 0", offset=0)
        length = (w1 & 0x3FF) + 1
        if length != len(raw):
            raise FrameError(
                f"TC frame header declares {length} bytes but {len(raw)} arrived", offset=2
            )
        bypass = bool(w0 & 0x2000)
        control = bool(w0 & 0x1000)
        if control and not bypass:
            raise FrameError("control command flag set without the bypass flag", offset=0)
        if has_fecf and fecf16(raw) != 0:
            raise CrcError(
                f"TC frame FECF 0x{int.from_bytes(raw[-2:], 'big'):04X} does not match "
                f"computed 0x{fecf16(raw[:-2]):04X}",
                offset=len(raw) - 2,
            )
        end = len(raw) - (FECF_LEN if has_fecf else 0)
        start = TC_HEADER_LEN
        map_id: int | None = None
        seg_flags = SeqFlags.UNSEGMENTED
        if has_segment_header and not control:
            seg = raw[start]
            map_id = seg & MAX_MAP_ID
            seg_flags = _SEQ_FLAGS[seg >> 6]
            start += 1
            if start >= end:
                raise FrameError("TC frame has a segment header but no data", offset=start)
        return cls(
            spacecraft_id=w0 & MAX_SPACECRAFT_ID,
            vcid=w1 >> 10,
            data=raw[start:end],
            seq=seq,
            bypass=bypass,
            control=control,
            map_id=map_id,
            seg_flags=seg_flags,
            has_fecf=has_fecf,
        )

    # --- COP-1 control commands -------------------------------------------------------

    @classmethod
    def unlock(cls, spacecraft_id: int, vcid: int) -> TcFrame:
        """The BC frame that takes FARM-1 out of Lockout."""
        return cls(spacecraft_id, vcid, BC_UNLOCK, bypass=True, control=True)

    @classmethod
    def set_vr(cls, spacecraft_id: int, vcid: int, vr: int) -> TcFrame:
        """The BC frame that sets FARM-1's expected sequence number V(R)."""
        if not 0 <= vr <= 0xFF:
            raise FrameError(f"V(R) {vr} outside 0..255")
        return cls(spacecraft_id, vcid, _BC_SET_VR_PREFIX + bytes([vr]), bypass=True, control=True)

    def bc_command(self) -> tuple[str, int | None]:
        """``("unlock", None)`` or ``("set_vr", value)`` for a BC frame.

        Raises :class:`FrameError` for anything else (including non-BC frames).
        """
        if not self.control:
            raise FrameError("not a control command (BC) frame")
        if self.data == BC_UNLOCK:
            return ("unlock", None)
        if len(self.data) == 3 and self.data[:2] == _BC_SET_VR_PREFIX:
            return ("set_vr", self.data[2])
        raise FrameError(f"unknown control command {self.data[:8].hex()}", offset=TC_HEADER_LEN)


__all__ = [
    "MAX_TC_FRAME_LEN",
    "TC_HEADER_LEN",
    "TcFrame",
    "TcFrameType",
    "tc_header",
]
