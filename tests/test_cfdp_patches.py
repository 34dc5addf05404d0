"""The four patches to cfdp-py 0.7.0 / spacepackets 0.32.0 (fsw/ccsds/cfdp_patches.py).

Each test shows the library's own behaviour is still the one the patch answers (so an
upgrade that fixes or changes it fails here and the patch gets revisited), and that the
patched behaviour is the right one.
"""

from __future__ import annotations

import inspect
import random
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path

import cfdppy.handler.dest as cfdp_dest
import cfdppy.handler.source as cfdp_source
import pytest
from spacepackets.cfdp import ConditionCode, CrcFlag, LargeFileFlag, PduConfig, TransmissionMode
from spacepackets.cfdp.pdu import EofPdu
from spacepackets.util import ByteFieldU16

from fsw.ccsds import cfdp_patches
from fsw.ccsds.cfdp import UPLINK_MAX_PDU, CfdpConfig, CfdpEntity
from fsw.ccsds.spacepacket import PacketType


def test_the_pinned_library_versions_are_the_ones_patched() -> None:
    assert version("cfdp-py") == cfdp_patches.CFDP_PY_VERSION
    assert version("spacepackets") == cfdp_patches.SPACEPACKETS_VERSION


def test_handlers_build_their_timers_from_the_countdown_name_the_patch_rebinds() -> None:
    for module in (cfdp_source, cfdp_dest):
        assert "Countdown.from_seconds" in inspect.getsource(module)
        assert module.Countdown is cfdp_patches.ContactCountdown
    with cfdp_patches.stepping_at(10.0):
        timer = cfdp_patches.ContactCountdown.from_seconds(5.0)
    with cfdp_patches.stepping_at(14.9):
        assert not timer.timed_out()  # contact time, not the wall clock
    with cfdp_patches.stepping_at(15.0):
        assert timer.timed_out()
        assert timer.remaining_time() == timedelta(0)


def test_the_library_still_shares_one_lost_segment_tracker_and_the_patch_splits_it() -> None:
    assert (
        cfdp_dest._AckedModeParams().lost_seg_tracker
        is cfdp_dest._AckedModeParams().lost_seg_tracker
    )
    a, b = cfdp_dest._DestFieldWrapper(), cfdp_dest._DestFieldWrapper()
    assert a.acked_params.lost_seg_tracker is not b.acked_params.lost_seg_tracker


def test_the_library_still_unpacks_an_eof_condition_unshifted_and_the_patch_fixes_it() -> None:
    conf = PduConfig(
        transaction_seq_num=ByteFieldU16(1),
        trans_mode=TransmissionMode.ACKNOWLEDGED,
        source_entity_id=ByteFieldU16(1),
        dest_entity_id=ByteFieldU16(2),
        file_flag=LargeFileFlag.NORMAL,
        crc_flag=CrcFlag.NO_CRC,
    )
    raw = EofPdu(
        file_checksum=bytes(4),
        file_size=10,
        pdu_conf=conf,
        condition_code=ConditionCode.CANCEL_REQUEST_RECEIVED,
    ).pack()
    assert int(cfdp_patches.ORIGINAL_EOF_UNPACK(EofPdu, raw).condition_code) == 0xF0
    assert EofPdu.unpack(raw).condition_code == ConditionCode.CANCEL_REQUEST_RECEIVED


def _corrupted_class_2(tmp_path: Path) -> tuple[str, str, bool]:
    """A class-2 transfer where one file-data PDU arrives twice, the second copy damaged
    (no gap at EOF): (sender state, its condition, receiver file == sent file)."""
    (tmp_path / "sat").mkdir()
    (tmp_path / "gnd").mkdir()
    sat = CfdpEntity(CfdpConfig(local_id=42, remote_id=1), tmp_path / "sat")
    gnd = CfdpEntity(
        CfdpConfig(local_id=1, remote_id=42, packet_type=PacketType.TC, max_pdu_len=UPLINK_MAX_PDU),
        tmp_path / "gnd",
    )
    data = random.Random(1).randbytes(5000)
    (tmp_path / "sat" / "f.bin").write_bytes(data)
    tr = sat.put("f.bin", "f.bin", acknowledged=True)
    packets = sat.take(0.0, 100_000)
    bad = bytearray(packets[1])
    bad[6 + 10 + 4 + 100] ^= 0x20  # a bit of file data in the first segment
    for pkt in [*packets[:2], bytes(bad), *packets[2:]]:
        gnd.receive(pkt)
    for t in range(30):
        gnd.poll(float(t))
        for pkt in gnd.take(float(t), 10_000):
            sat.receive(pkt)
        sat.poll(float(t))
        for pkt in sat.take(float(t), 10_000):
            gnd.receive(pkt)
    got = tmp_path / "gnd" / "f.bin"
    return tr.state, tr.condition, got.is_file() and got.read_bytes() == data


def test_the_library_still_skips_the_class_2_checksum_without_a_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        cfdp_dest.DestHandler, "_eof_ack_pdu_done", cfdp_patches.ORIGINAL_EOF_ACK_DONE
    )
    state, condition, _ = _corrupted_class_2(tmp_path)
    assert (state, condition) == ("finished", "NO_ERROR")  # damaged data taken as good


def test_with_the_patch_a_damaged_class_2_file_fails_its_checksum_and_is_not_stored(
    tmp_path: Path,
) -> None:
    state, condition, identical = _corrupted_class_2(tmp_path)
    assert (state, condition) == ("failed", "FILE_CHECKSUM_FAILURE")
    assert not (tmp_path / "gnd" / "f.bin").exists() and not identical
    assert not list((tmp_path / "gnd").rglob("*.part"))  # the partial file is gone too
