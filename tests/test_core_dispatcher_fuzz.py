"""The dispatcher never raises: random bytes, random well-formed TCs, mutated TCs."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsw.app import build_flight
from fsw.ccsds import PusTc
from fsw.ccsds.cfdp import CFDP_APID
from fsw.ccsds.pus import ACK_ALL
from fsw.core import FlightSoftware
from fsw.core.testing import CommandEncoder, decode_downlink, request_id_of

_FS = build_flight()
_FS.step(0.0)
_FS.downlink_packets()
_ENC = CommandEncoder(_FS)
_KNOWN = [
    _ENC.encode("PING"),
    _ENC.encode("HK_ONE_SHOT", sids=[{"sid": 1}]),
    _ENC.encode("PARAM_GET", param_ids=[{"param_id": 0x0901}]),
    _ENC.encode("EVT_REPORT_DISABLED"),
    _ENC.encode("SCHED_REPORT"),
    _ENC.encode("MON_REPORT"),
    _ENC.encode("health.RESET_COUNTERS"),
]
_SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def cfdp_counts(fs: FlightSoftware) -> int:
    """Packets the CFDP entity took: PDUs received plus undecodable ones."""
    return int(fs.telemetry("cfdp.pdus_received")) + int(fs.telemetry("cfdp.pdu_errors"))


def counters(fs: FlightSoftware) -> tuple[int, int, int, int]:
    return (
        fs.telemetry("cmd.tc_received"),
        fs.telemetry("cmd.tc_accepted"),
        fs.telemetry("cmd.tc_rejected"),
        fs.telemetry("cmd.tc_malformed"),
    )


@pytest.mark.req("CMD-008")
@_SETTINGS
@given(st.lists(st.binary(max_size=80), min_size=1, max_size=8))
def test_random_bytes_never_raise_and_are_counted(blobs: list[bytes]) -> None:
    """Every packet ends up accepted, rejected or malformed, or (on the CFDP APID, which
    the flight routes past the dispatcher) received or counted as an error by ``cfdp``:
    none is lost silently."""
    cfdp = [b for b in blobs if len(b) >= 2 and ((b[0] & 0x07) << 8 | b[1]) == CFDP_APID]
    before, pdus0 = counters(_FS), cfdp_counts(_FS)
    for b in blobs:
        _FS.uplink_packet(b)
    _FS.step(1.0)
    _FS.downlink_packets()
    after = counters(_FS)
    assert after[0] - before[0] == len(blobs) - len(cfdp)
    handled = sum(a - b for a, b in zip(after[1:], before[1:], strict=True))
    assert handled == len(blobs) - len(cfdp)
    assert cfdp_counts(_FS) - pdus0 == len(cfdp)


@pytest.mark.req("CMD-008")
@_SETTINGS
@given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=40), st.integers(0, 0x3FFF))
def test_random_well_formed_tcs_get_exactly_one_acceptance_verdict(
    service: int, subservice: int, app_data: bytes, seq: int
) -> None:
    tc = PusTc(
        apid=100,
        service=service,
        subservice=subservice,
        app_data=app_data,
        seq_count=seq,
        ack_flags=ACK_ALL,
    ).encode()
    _FS.uplink_packet(tc)
    _FS.step(0.0)
    recs = [r for r in decode_downlink(_FS) if r.service == 1 and r.request_id == request_id_of(tc)]
    verdicts = [r.subservice for r in recs if r.subservice in (1, 2)]
    assert len(verdicts) == 1
    if verdicts == [1]:
        assert [r.subservice for r in recs][-1] in (4, 7, 8)
    if _FS.mode.name == "SAFE":
        _FS.modes.exit_safe("test reset")


@pytest.mark.req("CMD-008")
@_SETTINGS
@given(st.sampled_from(_KNOWN), st.integers(0, 10_000), st.integers(1, 255))
def test_mutated_valid_tcs_never_raise(tc: bytes, pos: int, flip: int) -> None:
    raw = bytearray(tc)
    raw[pos % len(raw)] ^= flip
    before = counters(_FS)
    _FS.uplink_packet(bytes(raw))
    _FS.step(0.0)
    _FS.downlink_packets()
    after = counters(_FS)
    assert after[0] == before[0] + 1
    assert sum(after[1:]) == sum(before[1:]) + 1


@pytest.mark.req("CMD-008")
def test_non_bytes_are_counted_not_raised() -> None:
    fs = build_flight()
    fs.uplink_packet(12345)  # type: ignore[arg-type]
    fs.uplink_packet(b"")
    fs.step(0.0)
    assert fs.telemetry("cmd.tc_received") == 2
    assert fs.telemetry("cmd.tc_malformed") == 2
