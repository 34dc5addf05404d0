"""Space Packet Protocol (CCSDS 133.0-B-2): the 6-byte primary header and its data field.

Header layout (big-endian, 48 bits)::

    version(3)=0 | type(1) | sec_hdr_flag(1) | APID(11)
    seq_flags(2) | seq_count(14)
    data_length(16) = len(data field) - 1

>>> pkt = SpacePacket(apid=0x10, data=b"\\x01\\x02", packet_type=PacketType.TC, seq_count=5)
>>> pkt.encode().hex()
'1010c00500010102'
>>> SpacePacket.decode(pkt.encode()) == pkt
True
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from fsw.ccsds.errors import PacketError

PRIMARY_HEADER_LEN = 6
MAX_APID = 0x7FF
IDLE_APID = 0x7FF
MAX_SEQ_COUNT = 0x3FFF
MAX_DATA_LEN = 65536

_HDR = struct.Struct(">HHH")


class PacketType(IntEnum):
    """Telemetry (0) or telecommand (1)."""

    TM = 0
    TC = 1


class SeqFlags(IntEnum):
    """Segmentation flags of the packet sequence control field."""

    CONTINUATION = 0b00
    FIRST = 0b01
    LAST = 0b10
    UNSEGMENTED = 0b11


@dataclass(slots=True, frozen=True)
class SpacePacket:
    """One space packet. ``data`` is the whole packet data field (secondary header included)."""

    apid: int
    data: bytes
    packet_type: PacketType = PacketType.TM
    seq_flags: SeqFlags = SeqFlags.UNSEGMENTED
    seq_count: int = 0
    sec_header_flag: bool = False

    def __init__(
        self,
        apid: int,
        data: bytes,
        packet_type: PacketType = PacketType.TM,
        seq_flags: SeqFlags = SeqFlags.UNSEGMENTED,
        seq_count: int = 0,
        sec_header_flag: bool = False,
    ) -> None:
        # Hand-written (the dataclass keeps eq/hash/repr/frozen): one chained range test
        # on the hot path, the detailed message only when it fails, and raw slot stores
        # (defined below the class) instead of the frozen dataclass's object.__setattr__.
        if not (
            0 <= apid <= MAX_APID
            and 0 <= seq_count <= MAX_SEQ_COUNT
            and 1 <= len(data) <= MAX_DATA_LEN
        ):
            _raise_field_error(apid, seq_count, len(data))
        _set_apid(self, apid)
        _set_data(self, data)
        _set_type(self, packet_type)
        _set_flags(self, seq_flags)
        _set_count(self, seq_count)
        _set_sec(self, sec_header_flag)

    @property
    def is_idle(self) -> bool:
        """True for an idle packet (APID 0x7FF), which carries no user data."""
        return self.apid == IDLE_APID

    def encode(self) -> bytes:
        """The packet as bytes on the wire."""
        return (
            _HDR.pack(
                (self.packet_type << 12) | (self.sec_header_flag << 11) | self.apid,
                (self.seq_flags << 14) | self.seq_count,
                len(self.data) - 1,
            )
            + self.data
        )

    @classmethod
    def decode(cls, raw: bytes | bytearray | memoryview) -> SpacePacket:
        """Decode exactly one packet; trailing bytes are an error (use :func:`decode_prefix`)."""
        pkt, end = decode_prefix(raw, 0)
        if end != len(raw):
            raise PacketError(f"{len(raw) - end} bytes after the end of the packet", offset=end)
        return pkt

    @staticmethod
    def idle(length: int, seq_count: int = 0) -> SpacePacket:
        """An idle packet of ``length`` bytes in total (header included), data all 0x55."""
        if length < PRIMARY_HEADER_LEN + 1:
            raise PacketError(f"idle packet of {length} bytes is shorter than 7")
        return SpacePacket(
            apid=IDLE_APID, data=b"\x55" * (length - PRIMARY_HEADER_LEN), seq_count=seq_count
        )


def encode_packet(
    apid: int,
    data: bytes,
    packet_type: PacketType = PacketType.TM,
    seq_flags: SeqFlags = SeqFlags.UNSEGMENTED,
    seq_count: int = 0,
    sec_header_flag: bool = False,
) -> bytes:
    """Packet bytes straight from field values, same checks as :class:`SpacePacket`
    (for hot loops that do not need the object).

    >>> encode_packet(0x10, b"\\x01\\x02", PacketType.TC, seq_count=5).hex()
    '1010c00500010102'
    """
    if not (
        0 <= apid <= MAX_APID and 0 <= seq_count <= MAX_SEQ_COUNT and 1 <= len(data) <= MAX_DATA_LEN
    ):
        _raise_field_error(apid, seq_count, len(data))
    return (
        _HDR.pack(
            (packet_type << 12) | (sec_header_flag << 11) | apid,
            (seq_flags << 14) | seq_count,
            len(data) - 1,
        )
        + data
    )


def _raise_field_error(apid: int, seq_count: int, data_len: int) -> None:
    if not 0 <= apid <= MAX_APID:
        raise PacketError(f"APID {apid} outside 0..{MAX_APID}")
    if not 0 <= seq_count <= MAX_SEQ_COUNT:
        raise PacketError(f"sequence count {seq_count} outside 0..{MAX_SEQ_COUNT}")
    raise PacketError(f"packet data field of {data_len} bytes (must be 1..{MAX_DATA_LEN})")


def slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    """The raw slot setter of a (frozen) slotted dataclass field, for decode fast paths."""
    setter: Callable[[Any, Any], None] = vars(cls)[name].__set__
    return setter


_PACKET_TYPES = (PacketType.TM, PacketType.TC)
_SEQ_FLAGS = tuple(SeqFlags(i) for i in range(4))
_new = object.__new__
# Slot setters: __init__ stores checked fields with them, and decode builds packets from
# fields that are valid by construction, skipping __init__'s checks.
_set_apid = slot_setter(SpacePacket, "apid")
_set_data = slot_setter(SpacePacket, "data")
_set_type = slot_setter(SpacePacket, "packet_type")
_set_flags = slot_setter(SpacePacket, "seq_flags")
_set_count = slot_setter(SpacePacket, "seq_count")
_set_sec = slot_setter(SpacePacket, "sec_header_flag")


def _make_packet(
    apid: int, data: bytes, ptype: PacketType, flags: SeqFlags, count: int, sec: bool
) -> SpacePacket:
    pkt: SpacePacket = _new(SpacePacket)
    _set_apid(pkt, apid)
    _set_data(pkt, data)
    _set_type(pkt, ptype)
    _set_flags(pkt, flags)
    _set_count(pkt, count)
    _set_sec(pkt, sec)
    return pkt


def peek_length(raw: bytes | bytearray | memoryview, offset: int = 0) -> int:
    """Total length of the packet whose header starts at ``offset`` (needs 6 bytes)."""
    if len(raw) - offset < PRIMARY_HEADER_LEN:
        raise PacketError(
            f"need {PRIMARY_HEADER_LEN} header bytes, have {max(0, len(raw) - offset)}",
            offset=offset,
        )
    return PRIMARY_HEADER_LEN + ((raw[offset + 4] << 8) | raw[offset + 5]) + 1


def decode_prefix(raw: bytes | bytearray | memoryview, offset: int = 0) -> tuple[SpacePacket, int]:
    """Decode the packet starting at ``offset``; return it and the offset just after it."""
    n = len(raw)
    if n - offset < PRIMARY_HEADER_LEN:
        raise PacketError(
            f"need {PRIMARY_HEADER_LEN} header bytes, have {max(0, n - offset)}", offset=offset
        )
    word0, word1, length = _HDR.unpack_from(raw, offset)
    total = PRIMARY_HEADER_LEN + length + 1
    if n - offset < total:
        raise PacketError(
            f"packet declares {total} bytes but only {n - offset} remain", offset=offset
        )
    if word0 >> 13:
        raise PacketError(f"packet version {word0 >> 13}, expected 0", offset=offset)
    return (
        _make_packet(
            word0 & MAX_APID,
            bytes(raw[offset + PRIMARY_HEADER_LEN : offset + total]),
            _PACKET_TYPES[(word0 >> 12) & 1],
            _SEQ_FLAGS[word1 >> 14],
            word1 & MAX_SEQ_COUNT,
            bool(word0 & 0x800),
        ),
        offset + total,
    )
