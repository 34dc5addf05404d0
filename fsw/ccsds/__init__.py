"""CCSDS space link: packets, PUS-C, time codes, TC/TM frames, CLTU/BCH, COP-1, SDLS.

Every decode error is a :class:`CcsdsError` with a reason (and an offset where it applies).

>>> crc16(b"123456789") == 0x29B1
True
>>> decode_cltu(encode_cltu(TcFrame(42, 0, b"hi").encode())) == TcFrame(42, 0, b"hi").encode()
True
"""

from fsw.ccsds.bch import BchError, bch_decode, bch_encode
from fsw.ccsds.cltu import CltuExtractor, decode_cltu, encode_cltu
from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig, SaConfig
from fsw.ccsds.cop1 import Clcw, Farm1, FarmState, FarmVerdict, Fop1, FopState, InitMode
from fsw.ccsds.crc import crc16
from fsw.ccsds.errors import (
    CcsdsError,
    CltuError,
    ConfigError,
    CopError,
    CrcError,
    FrameError,
    LinkStateError,
    MacError,
    PacketError,
    ReplayError,
    SdlsError,
    UnknownSpiError,
)
from fsw.ccsds.packets import (
    PacketExtractor,
    Reassembler,
    SequenceChecker,
    SequenceCounter,
    segment,
)
from fsw.ccsds.pus import PusTc, PusTm
from fsw.ccsds.randomizer import tc_randomize, tm_randomize
from fsw.ccsds.sdls import MacAlgorithm, SecurityAssociation
from fsw.ccsds.spacepacket import PacketType, SeqFlags, SpacePacket
from fsw.ccsds.stack import GroundLink, SpacecraftLink
from fsw.ccsds.sync import ASM, FrameSynchronizer, attach_asm
from fsw.ccsds.tcframe import TcFrame, TcFrameType
from fsw.ccsds.timecode import (
    TimeCodeError,
    cds_decode,
    cds_encode,
    cuc_decode,
    cuc_encode,
    datetime_from_tai,
    decode_with_pfield,
    encode_with_pfield,
    tai_from_datetime,
)
from fsw.ccsds.tmframe import TmDeframer, TmFrame, TmFramer

__all__ = [
    "ASM",
    "TEST_KEY_FILE",
    "BchError",
    "CcsdsError",
    "Clcw",
    "CltuError",
    "CltuExtractor",
    "ConfigError",
    "CopError",
    "CrcError",
    "Farm1",
    "FarmState",
    "FarmVerdict",
    "Fop1",
    "FopState",
    "FrameError",
    "FrameSynchronizer",
    "GroundLink",
    "InitMode",
    "LinkConfig",
    "LinkStateError",
    "MacAlgorithm",
    "MacError",
    "PacketError",
    "PacketExtractor",
    "PacketType",
    "PusTc",
    "PusTm",
    "Reassembler",
    "ReplayError",
    "SaConfig",
    "SdlsError",
    "SecurityAssociation",
    "SeqFlags",
    "SequenceChecker",
    "SequenceCounter",
    "SpacePacket",
    "SpacecraftLink",
    "TcFrame",
    "TcFrameType",
    "TimeCodeError",
    "TmDeframer",
    "TmFrame",
    "TmFramer",
    "UnknownSpiError",
    "attach_asm",
    "bch_decode",
    "bch_encode",
    "cds_decode",
    "cds_encode",
    "crc16",
    "cuc_decode",
    "cuc_encode",
    "datetime_from_tai",
    "decode_cltu",
    "decode_with_pfield",
    "encode_cltu",
    "encode_with_pfield",
    "segment",
    "tai_from_datetime",
    "tc_randomize",
    "tm_randomize",
]
