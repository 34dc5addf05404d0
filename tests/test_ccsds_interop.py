"""Interoperability with spacepackets (a test dependency only), over randomized fields:
its packets, PUS TCs/TMs, TM frames and CDS times decode in Gnomon, and Gnomon's decode
in it, byte for byte."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.ccsds import PacketType, PusTc, PusTm, SeqFlags, SpacePacket, TmFrame
from fsw.ccsds.cop1 import Clcw
from fsw.ccsds.timecode import cds_encode, cds_pfield, decode_with_pfield

sp = pytest.importorskip("spacepackets")
from spacepackets.ccsds.spacepacket import PacketType as SpType  # noqa: E402
from spacepackets.ccsds.spacepacket import SequenceFlags as SpFlags  # noqa: E402
from spacepackets.ccsds.spacepacket import SpacePacket as SpPacket  # noqa: E402
from spacepackets.ccsds.spacepacket import SpacePacketHeader  # noqa: E402
from spacepackets.ccsds.time.cds import CdsShortTimestamp  # noqa: E402
from spacepackets.ccsds.tm_frame import (  # noqa: E402
    MasterChannelId,
    TmFramePrimaryHeader,
    TmTransferFrame,
    TransferFrameDataFieldStatus,
)
from spacepackets.ecss.tc import PusTc as SpTc  # noqa: E402
from spacepackets.ecss.tm import MiscParams  # noqa: E402
from spacepackets.ecss.tm import PusTm as SpTm  # noqa: E402

warnings.filterwarnings("ignore", category=DeprecationWarning, module="spacepackets")

apids = st.integers(0, 0x7FF)
counts = st.integers(0, 0x3FFF)


@settings(max_examples=150)
@given(
    apids,
    counts,
    st.sampled_from(SeqFlags),
    st.sampled_from(PacketType),
    st.booleans(),
    st.binary(min_size=1, max_size=200),
)
def test_space_packets_both_ways(
    apid: int, count: int, flags: SeqFlags, ptype: PacketType, sec: bool, data: bytes
) -> None:
    header = SpacePacketHeader(
        packet_type=SpType(int(ptype)),
        apid=apid,
        seq_count=count,
        data_len=len(data) - 1,
        sec_header_flag=sec,
        seq_flags=SpFlags(int(flags)),
    )
    theirs = bytes(SpPacket(header, b"" if sec else None, data).pack())
    ours = SpacePacket(
        apid=apid,
        data=data,
        packet_type=ptype,
        seq_flags=flags,
        seq_count=count,
        sec_header_flag=sec,
    )
    assert ours.encode() == theirs
    assert SpacePacket.decode(theirs) == ours
    back = SpacePacketHeader.unpack(ours.encode())
    assert (back.apid, back.seq_count, back.packet_len, back.sec_header_flag) == (
        apid,
        count,
        6 + len(data),
        sec,
    )
    assert int(back.seq_flags) == int(flags) and int(back.packet_type) == int(ptype)


@settings(max_examples=150)
@given(
    apids,
    counts,
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 0xFFFF),
    st.integers(0, 15),
    st.binary(max_size=120),
)
def test_pus_tc_both_ways(
    apid: int, count: int, service: int, sub: int, source: int, ack: int, app: bytes
) -> None:
    theirs = SpTc(
        service=service,
        message_subtype=sub,
        apid=apid,
        seq_count=count,
        source_id=source,
        ack_flags=ack,
        app_data=app,
    )
    ours = PusTc(
        apid=apid,
        service=service,
        subservice=sub,
        app_data=app,
        seq_count=count,
        source_id=source,
        ack_flags=ack,
    )
    assert ours.encode() == bytes(theirs.pack())
    assert PusTc.decode(bytes(theirs.pack())) == ours
    back = SpTc.unpack(ours.encode())
    assert (back.apid, back.seq_count, back.service, back.message_subtype, back.source_id) == (
        apid,
        count,
        service,
        sub,
        source,
    )
    assert bytes(back.app_data) == app


@settings(max_examples=150)
@given(
    apids,
    counts,
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 15),
    st.binary(min_size=6, max_size=6),
    st.binary(max_size=120),
)
def test_pus_tm_both_ways(
    apid: int,
    count: int,
    service: int,
    sub: int,
    counter: int,
    dest: int,
    ref: int,
    stamp: bytes,
    source: bytes,
) -> None:
    theirs = SpTm(
        service=service,
        message_subtype=sub,
        timestamp=stamp,
        source_data=source,
        apid=apid,
        seq_count=count,
        message_counter=counter,
        destination_id=dest,
        misc_params=MiscParams(spacecraft_time_ref=ref),
    )
    ours = PusTm(
        apid=apid,
        service=service,
        subservice=sub,
        app_data=source,
        time=stamp,
        seq_count=count,
        msg_counter=counter,
        dest_id=dest,
        time_ref_status=ref,
    )
    assert ours.encode() == bytes(theirs.pack())
    assert PusTm.decode(bytes(theirs.pack())) == ours
    back = SpTm.unpack(ours.encode(), timestamp_len=6)
    assert (back.apid, back.seq_count, back.service, back.message_subtype) == (
        apid,
        count,
        service,
        sub,
    )
    assert bytes(back.source_data) == source and bytes(back.timestamp) == stamp


@settings(max_examples=150)
@given(
    st.integers(0, 0x3FF),
    st.integers(0, 7),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 0x7FF),
    st.booleans(),
    st.integers(20, 300),
    st.data(),
)
def test_tm_frames_both_ways(
    scid: int,
    vcid: int,
    mc: int,
    vc: int,
    fhp: int,
    with_ocf: bool,
    data_len: int,
    draw: st.DataObject,
) -> None:
    data = draw.draw(st.binary(min_size=data_len, max_size=data_len))
    ocf = Clcw(vcid=draw.draw(st.integers(0, 63)), report_value=mc).encode() if with_ocf else None
    ours = TmFrame(
        spacecraft_id=scid, vcid=vcid, data=data, mc_count=mc, vc_count=vc, fhp=fhp, ocf=ocf
    )
    raw = ours.encode()
    header = TmFramePrimaryHeader(
        master_channel_id=MasterChannelId(0, scid),
        vc_id=vcid,
        ocf_flag=with_ocf,
        master_ch_frame_count=mc,
        vc_frame_count=vc,
        frame_datafield_status=TransferFrameDataFieldStatus(False, False, False, 3, fhp),
    )
    theirs = TmTransferFrame(
        length=len(raw),
        primary_header=header,
        secondary_header=None,
        data_field=data,
        op_ctrl_field=ocf,
        frame_error_control=raw[-2:],
    )
    assert bytes(theirs.pack()) == raw
    back = TmTransferFrame.unpack(raw, len(raw), has_error_control_field=True)
    assert bytes(back.data_field) == data
    assert back.primary_header.frame_datafield_status.first_header_pointer == fhp
    assert (back.op_ctrl_field is not None) == with_ocf
    assert TmFrame.decode(bytes(theirs.pack())) == ours


@given(st.integers(0, 0xFFFF), st.integers(0, 86_399_999))
def test_cds_short_both_ways(days: int, ms: int) -> None:
    theirs = CdsShortTimestamp(ccsds_days=days, ms_of_day=ms).pack()
    seconds = days * 86400 + ms / 1000
    assert cds_pfield(2, 0) + cds_encode(seconds) == theirs
    assert decode_with_pfield(theirs) == pytest.approx(seconds, abs=1e-6)
    back = CdsShortTimestamp.unpack(cds_pfield(2, 0) + cds_encode(seconds))
    assert (back.ccsds_days, back.ms_of_day) == (days, ms)
