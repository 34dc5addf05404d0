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

from fsw.ccsds.crc import crc16, crc16_function
from fsw.ccsds.errors import CrcError, PacketError
from fsw.ccsds.spacepacket import (
    MAX_APID,
    MAX_DATA_LEN,
    MAX_SEQ_COUNT,
    PRIMARY_HEADER_LEN,
    PacketType,
    SeqFlags,
    SpacePacket,
    decode_prefix,
    slot_setter,
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
_TC_HDR = struct.Struct(">HHHBBBH")  # primary header + TC secondary header
_TM_HDR = struct.Struct(">HHHBBBHH")  # primary header + fixed part of the TM one
_TC_MIN_LEN = PRIMARY_HEADER_LEN + TC_SEC_HEADER_LEN + PEC_LEN
_TM_FIXED_END = PRIMARY_HEADER_LEN + TM_SEC_HEADER_FIXED_LEN
_MAX_TC_APP_DATA = MAX_DATA_LEN - TC_SEC_HEADER_LEN - PEC_LEN
_MAX_TM_VARIABLE = MAX_DATA_LEN - TM_SEC_HEADER_FIXED_LEN - PEC_LEN
_SEQ_FLAGS = tuple(SeqFlags(i) for i in range(4))
_new = object.__new__
_crc_fun = crc16_function()
_DEFAULT_TIME = bytes(DEFAULT_TIME_LEN)


def _range_error(kind: str, fields: tuple[tuple[str, int, int], ...]) -> None:
    for name, value, hi in fields:
        if not 0 <= value <= hi:
            raise PacketError(f"{kind} {name} {value} outside 0..{hi}")


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

    def __init__(
        self,
        apid: int,
        service: int,
        subservice: int,
        app_data: bytes = b"",
        seq_count: int = 0,
        source_id: int = 0,
        ack_flags: int = ACK_ALL,
        seq_flags: SeqFlags = SeqFlags.UNSEGMENTED,
    ) -> None:
        if not (
            0 <= service <= 0xFF
            and 0 <= subservice <= 0xFF
            and 0 <= source_id <= 0xFFFF
            and 0 <= ack_flags <= 0xF
            and 0 <= apid <= MAX_APID
            and 0 <= seq_count <= MAX_SEQ_COUNT
            and len(app_data) <= _MAX_TC_APP_DATA
        ):
            _range_error(
                "TC",
                (
                    ("APID", apid, MAX_APID),
                    ("sequence count", seq_count, MAX_SEQ_COUNT),
                    ("service", service, 0xFF),
                    ("subservice", subservice, 0xFF),
                    ("source_id", source_id, 0xFFFF),
                    ("ack_flags", ack_flags, 0xF),
                    ("app data length", len(app_data), _MAX_TC_APP_DATA),
                ),
            )
        _tc_set_apid(self, apid)
        _tc_set_service(self, service)
        _tc_set_subservice(self, subservice)
        _tc_set_app_data(self, app_data)
        _tc_set_seq_count(self, seq_count)
        _tc_set_source_id(self, source_id)
        _tc_set_ack_flags(self, ack_flags)
        _tc_set_seq_flags(self, seq_flags)

    @property
    def request_id(self) -> tuple[int, int]:
        """(APID, sequence count): how verification reports name this TC."""
        return (self.apid, self.seq_count)

    def encode(self) -> bytes:
        """The TC as a space packet, packet error control included."""
        body = (
            _TC_HDR.pack(
                0x1800 | self.apid,
                (self.seq_flags << 14) | self.seq_count,
                TC_SEC_HEADER_LEN + len(self.app_data) + PEC_LEN - 1,
                (PUS_VERSION << 4) | self.ack_flags,
                self.service,
                self.subservice,
                self.source_id,
            )
            + self.app_data
        )
        return body + _crc_fun(body).to_bytes(2, "big")

    @classmethod
    def decode(cls, raw: bytes | bytearray | memoryview) -> PusTc:
        """Decode one PUS-C TC packet (exact length), checking its PEC."""
        if not isinstance(raw, bytes):
            raw = bytes(raw)
        n = len(raw)
        if n < _TC_MIN_LEN:
            return cls.from_packet(SpacePacket.decode(raw), raw)  # precise error
        w0, w1, length, b0, service, subservice, source_id = _TC_HDR.unpack_from(raw, 0)
        if w0 & 0xF800 != 0x1800 or length + PRIMARY_HEADER_LEN + 1 != n or b0 >> 4 != PUS_VERSION:
            return cls.from_packet(SpacePacket.decode(raw), raw)  # precise error
        if _crc_fun(raw):
            _check_pec(raw)
        tc: PusTc = _new(PusTc)
        _tc_set_apid(tc, w0 & MAX_APID)
        _tc_set_service(tc, service)
        _tc_set_subservice(tc, subservice)
        _tc_set_app_data(tc, raw[_TC_MIN_LEN - PEC_LEN : -PEC_LEN])
        _tc_set_seq_count(tc, w1 & MAX_SEQ_COUNT)
        _tc_set_source_id(tc, source_id)
        _tc_set_ack_flags(tc, b0 & 0xF)
        _tc_set_seq_flags(tc, _SEQ_FLAGS[w1 >> 14])
        return tc

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

    def __init__(
        self,
        apid: int,
        service: int,
        subservice: int,
        app_data: bytes = b"",
        time: bytes = _DEFAULT_TIME,
        seq_count: int = 0,
        msg_counter: int = 0,
        dest_id: int = 0,
        time_ref_status: int = 0,
    ) -> None:
        if not (
            0 <= service <= 0xFF
            and 0 <= subservice <= 0xFF
            and 0 <= msg_counter <= 0xFFFF
            and 0 <= dest_id <= 0xFFFF
            and 0 <= time_ref_status <= 0xF
            and 0 <= apid <= MAX_APID
            and 0 <= seq_count <= MAX_SEQ_COUNT
            and len(time) + len(app_data) <= _MAX_TM_VARIABLE
        ):
            _range_error(
                "TM",
                (
                    ("APID", apid, MAX_APID),
                    ("sequence count", seq_count, MAX_SEQ_COUNT),
                    ("service", service, 0xFF),
                    ("subservice", subservice, 0xFF),
                    ("msg_counter", msg_counter, 0xFFFF),
                    ("dest_id", dest_id, 0xFFFF),
                    ("time_ref_status", time_ref_status, 0xF),
                    ("time + app data length", len(time) + len(app_data), _MAX_TM_VARIABLE),
                ),
            )
        _tm_set_apid(self, apid)
        _tm_set_service(self, service)
        _tm_set_subservice(self, subservice)
        _tm_set_app_data(self, app_data)
        _tm_set_time(self, time)
        _tm_set_seq_count(self, seq_count)
        _tm_set_msg_counter(self, msg_counter)
        _tm_set_dest_id(self, dest_id)
        _tm_set_time_ref_status(self, time_ref_status)

    def encode(self) -> bytes:
        """The TM as a space packet, packet error control included."""
        body = (
            _TM_HDR.pack(
                0x0800 | self.apid,
                0xC000 | self.seq_count,
                TM_SEC_HEADER_FIXED_LEN + len(self.time) + len(self.app_data) + PEC_LEN - 1,
                (PUS_VERSION << 4) | self.time_ref_status,
                self.service,
                self.subservice,
                self.msg_counter,
                self.dest_id,
            )
            + self.time
            + self.app_data
        )
        return body + _crc_fun(body).to_bytes(2, "big")

    @classmethod
    def decode(cls, raw: bytes | bytearray | memoryview, time_len: int = DEFAULT_TIME_LEN) -> PusTm:
        """Decode one PUS-C TM packet (exact length) whose time field is ``time_len`` bytes."""
        if not isinstance(raw, bytes):
            raw = bytes(raw)
        n = len(raw)
        hdr_end = _TM_FIXED_END + time_len
        if time_len < 0 or n < hdr_end + PEC_LEN:
            return cls.from_packet(SpacePacket.decode(raw), raw, time_len=time_len)
        w0, w1, length, b0, service, subservice, counter, dest = _TM_HDR.unpack_from(raw, 0)
        if w0 & 0xF800 != 0x0800 or length + PRIMARY_HEADER_LEN + 1 != n or b0 >> 4 != PUS_VERSION:
            return cls.from_packet(SpacePacket.decode(raw), raw, time_len=time_len)
        if _crc_fun(raw):
            _check_pec(raw)
        tm: PusTm = _new(PusTm)
        _tm_set_apid(tm, w0 & MAX_APID)
        _tm_set_service(tm, service)
        _tm_set_subservice(tm, subservice)
        _tm_set_app_data(tm, raw[hdr_end:-PEC_LEN])
        _tm_set_time(tm, raw[_TM_FIXED_END:hdr_end])
        _tm_set_seq_count(tm, w1 & MAX_SEQ_COUNT)
        _tm_set_msg_counter(tm, counter)
        _tm_set_dest_id(tm, dest)
        _tm_set_time_ref_status(tm, b0 & 0xF)
        return tm

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


# Slot setters for the decode fast path (fields valid by construction; see spacepacket.py).
_tc_set_apid = slot_setter(PusTc, "apid")
_tc_set_service = slot_setter(PusTc, "service")
_tc_set_subservice = slot_setter(PusTc, "subservice")
_tc_set_app_data = slot_setter(PusTc, "app_data")
_tc_set_seq_count = slot_setter(PusTc, "seq_count")
_tc_set_source_id = slot_setter(PusTc, "source_id")
_tc_set_ack_flags = slot_setter(PusTc, "ack_flags")
_tc_set_seq_flags = slot_setter(PusTc, "seq_flags")
_tm_set_apid = slot_setter(PusTm, "apid")
_tm_set_service = slot_setter(PusTm, "service")
_tm_set_subservice = slot_setter(PusTm, "subservice")
_tm_set_app_data = slot_setter(PusTm, "app_data")
_tm_set_time = slot_setter(PusTm, "time")
_tm_set_seq_count = slot_setter(PusTm, "seq_count")
_tm_set_msg_counter = slot_setter(PusTm, "msg_counter")
_tm_set_dest_id = slot_setter(PusTm, "dest_id")
_tm_set_time_ref_status = slot_setter(PusTm, "time_ref_status")


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
