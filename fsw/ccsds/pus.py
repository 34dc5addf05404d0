"""PUS-C (ECSS-E-ST-70-41C) telecommand and telemetry packets.

A PUS packet is a space packet whose data field starts with a PUS secondary header and
ends with the 16-bit packet error control (CRC-16/CCITT-FALSE over the whole packet).

TC secondary header (5 bytes)::

    pus_version(4)=2 | ack_flags(4) | service(8) | subservice(8) | source_id(16)

TM secondary header (7 bytes + time)::

    pus_version(4)=2 | time_ref_status(4) | service(8) | subservice(8)
    | msg_type_counter(16) | destination_id(16) | time (CUC, no P-field)

>>> tc = PusTc(apid=0x65, service=17, subservice=1, seq_count=1)
>>> PusTc.decode(tc.encode()) == tc
True
>>> tm = PusTm(apid=0x65, service=17, subservice=2, time=bytes(6))
>>> PusTm.decode(tm.encode()).subservice
2
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from fsw.ccsds.crc import crc16
from fsw.ccsds.errors import CrcError, PacketError
from fsw.ccsds.spacepacket import (
    PRIMARY_HEADER_LEN,
    PacketType,
    SeqFlags,
    SpacePacket,
    decode_prefix,
)
from fsw.ccsds.timecode import DEFAULT_COARSE_OCTETS, DEFAULT_FINE_OCTETS

PUS_VERSION = 2
TC_SEC_HEADER_LEN = 5
TM_SEC_HEADER_FIXED_LEN = 7
PEC_LEN = 2
DEFAULT_TIME_LEN = DEFAULT_COARSE_OCTETS + DEFAULT_FINE_OCTETS

#: Acknowledgement flags of a TC (bit 3 = acceptance ... bit 0 = completion).
ACK_ACCEPTANCE = 0b0001
ACK_START = 0b0010
ACK_PROGRESS = 0b0100
ACK_COMPLETION = 0b1000
ACK_ALL = 0b1111

_TC_SEC = struct.Struct(">BBBH")
_TM_SEC = struct.Struct(">BBBHH")


def _check_pec(raw: bytes, offset: int = 0) -> None:
    if len(raw) < PEC_LEN + PRIMARY_HEADER_LEN:
        raise PacketError("too short to hold a packet error control field", offset=offset)
    if crc16(raw) != 0:
        got = int.from_bytes(raw[-2:], "big")
        want = crc16(raw[:-2])
        raise CrcError(
            f"packet error control 0x{got:04X} does not match computed 0x{want:04X}",
            offset=offset + len(raw) - 2,
        )


@dataclass(slots=True, frozen=True)
class PusTc:
    """A PUS-C telecommand."""

    apid: int
    service: int
    subservice: int
    app_data: bytes = b""
    seq_count: int = 0
    source_id: int = 0
    ack_flags: int = ACK_ALL
    seq_flags: SeqFlags = SeqFlags.UNSEGMENTED

    def __post_init__(self) -> None:
        for name, value, hi in (
            ("service", self.service, 0xFF),
            ("subservice", self.subservice, 0xFF),
            ("source_id", self.source_id, 0xFFFF),
            ("ack_flags", self.ack_flags, 0xF),
        ):
            if not 0 <= value <= hi:
                raise PacketError(f"TC {name} {value} outside 0..{hi}")

    @property
    def request_id(self) -> tuple[int, int]:
        """(APID, sequence count): how verification reports name this TC."""
        return (self.apid, self.seq_count)

    def encode(self) -> bytes:
        """The TC as a space packet, packet error control included."""
        sec = _TC_SEC.pack(
            (PUS_VERSION << 4) | self.ack_flags, self.service, self.subservice, self.source_id
        )
        body = SpacePacket(
            apid=self.apid,
            data=sec + self.app_data + b"\0\0",
            packet_type=PacketType.TC,
            seq_flags=self.seq_flags,
            seq_count=self.seq_count,
            sec_header_flag=True,
        ).encode()[:-2]
        return body + crc16(body).to_bytes(2, "big")

    @classmethod
    def decode(cls, raw: bytes | bytearray | memoryview) -> PusTc:
        """Decode one PUS-C TC packet (exact length), checking its PEC."""
        raw = bytes(raw)
        pkt = SpacePacket.decode(raw)
        return cls.from_packet(pkt, raw)

    @classmethod
    def from_packet(cls, pkt: SpacePacket, raw: bytes | None = None) -> PusTc:
        """Interpret an already decoded space packet as a PUS-C TC."""
        if pkt.packet_type != PacketType.TC:
            raise PacketError("packet type is TM, expected a telecommand", offset=0)
        if not pkt.sec_header_flag:
            raise PacketError("TC has no secondary header flag set", offset=0)
        if len(pkt.data) < TC_SEC_HEADER_LEN + PEC_LEN:
            raise PacketError(
                f"TC data field of {len(pkt.data)} bytes cannot hold a PUS header and PEC",
                offset=PRIMARY_HEADER_LEN,
            )
        _check_pec(raw if raw is not None else pkt.encode())
        b0, service, subservice, source_id = _TC_SEC.unpack_from(pkt.data, 0)
        if b0 >> 4 != PUS_VERSION:
            raise PacketError(
                f"PUS version {b0 >> 4}, expected {PUS_VERSION}", offset=PRIMARY_HEADER_LEN
            )
        return cls(
            apid=pkt.apid,
            service=service,
            subservice=subservice,
            app_data=pkt.data[TC_SEC_HEADER_LEN:-PEC_LEN],
            seq_count=pkt.seq_count,
            source_id=source_id,
            ack_flags=b0 & 0xF,
            seq_flags=pkt.seq_flags,
        )


@dataclass(slots=True, frozen=True)
class PusTm:
    """A PUS-C telemetry packet. ``time`` is the encoded time field (CUC T-field)."""

    apid: int
    service: int
    subservice: int
    app_data: bytes = b""
    time: bytes = bytes(DEFAULT_TIME_LEN)
    seq_count: int = 0
    msg_counter: int = 0
    dest_id: int = 0
    time_ref_status: int = 0

    def __post_init__(self) -> None:
        for name, value, hi in (
            ("service", self.service, 0xFF),
            ("subservice", self.subservice, 0xFF),
            ("msg_counter", self.msg_counter, 0xFFFF),
            ("dest_id", self.dest_id, 0xFFFF),
            ("time_ref_status", self.time_ref_status, 0xF),
        ):
            if not 0 <= value <= hi:
                raise PacketError(f"TM {name} {value} outside 0..{hi}")

    def encode(self) -> bytes:
        """The TM as a space packet, packet error control included."""
        sec = (
            _TM_SEC.pack(
                (PUS_VERSION << 4) | self.time_ref_status,
                self.service,
                self.subservice,
                self.msg_counter,
                self.dest_id,
            )
            + self.time
        )
        body = SpacePacket(
            apid=self.apid,
            data=sec + self.app_data + b"\0\0",
            packet_type=PacketType.TM,
            seq_count=self.seq_count,
            sec_header_flag=True,
        ).encode()[:-2]
        return body + crc16(body).to_bytes(2, "big")

    @classmethod
    def decode(cls, raw: bytes | bytearray | memoryview, time_len: int = DEFAULT_TIME_LEN) -> PusTm:
        """Decode one PUS-C TM packet (exact length) whose time field is ``time_len`` bytes."""
        raw = bytes(raw)
        pkt = SpacePacket.decode(raw)
        return cls.from_packet(pkt, raw, time_len=time_len)

    @classmethod
    def from_packet(
        cls, pkt: SpacePacket, raw: bytes | None = None, time_len: int = DEFAULT_TIME_LEN
    ) -> PusTm:
        """Interpret an already decoded space packet as a PUS-C TM."""
        if pkt.packet_type != PacketType.TM:
            raise PacketError("packet type is TC, expected telemetry", offset=0)
        if not pkt.sec_header_flag:
            raise PacketError("TM has no secondary header flag set", offset=0)
        hdr_len = TM_SEC_HEADER_FIXED_LEN + time_len
        if len(pkt.data) < hdr_len + PEC_LEN:
            raise PacketError(
                f"TM data field of {len(pkt.data)} bytes cannot hold a {hdr_len}-byte "
                "PUS header and PEC",
                offset=PRIMARY_HEADER_LEN,
            )
        _check_pec(raw if raw is not None else pkt.encode())
        b0, service, subservice, counter, dest = _TM_SEC.unpack_from(pkt.data, 0)
        if b0 >> 4 != PUS_VERSION:
            raise PacketError(
                f"PUS version {b0 >> 4}, expected {PUS_VERSION}", offset=PRIMARY_HEADER_LEN
            )
        return cls(
            apid=pkt.apid,
            service=service,
            subservice=subservice,
            app_data=pkt.data[hdr_len:-PEC_LEN],
            time=pkt.data[TM_SEC_HEADER_FIXED_LEN:hdr_len],
            seq_count=pkt.seq_count,
            msg_counter=counter,
            dest_id=dest,
            time_ref_status=b0 & 0xF,
        )


__all__ = [
    "ACK_ACCEPTANCE",
    "ACK_ALL",
    "ACK_COMPLETION",
    "ACK_PROGRESS",
    "ACK_START",
    "DEFAULT_TIME_LEN",
    "PusTc",
    "PusTm",
    "decode_prefix",
]
