"""PUS service 1: acceptance, start and completion reports, failure codes and reasons."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from fsw.app import build_flight
from fsw.ccsds import PusTc, SeqFlags
from fsw.ccsds.pus import ACK_ACCEPTANCE, ACK_ALL, ACK_COMPLETION
from fsw.core import Arg, CommandFailed, Component, FailureCode, FlightSoftware, command
from fsw.core.testing import CommandEncoder, decode_downlink, request_id_of, verification


class Camera(Component):
    NAME = "camera"

    def on_init(self) -> None:
        self.capturing = False
        self.exposures: list[int] = []

    @command(
        args=(Arg("exposure_ms", "u16", min=1, max=1000, units="ms"),),
        allowed_in_safe=False,
        opcode=1,
    )
    def capture(self, exposure_ms: int) -> None:
        if exposure_ms == 13:
            raise CommandFailed(FailureCode.EXECUTION_ERROR, "sensor did not answer")
        if exposure_ms == 666:
            raise RuntimeError("driver bug")
        self.exposures.append(exposure_ms)

    @command(opcode=2)
    def start_video(self) -> None:
        self.capturing = True

    def busy_reason(self, command: str, args: Mapping[str, Any]) -> str | None:
        if command == "CAPTURE" and self.capturing:
            return "video recording in progress"
        return None


@pytest.fixture
def fs() -> FlightSoftware:
    fs = build_flight(components={16: Camera()})
    fs.step(0.0)
    fs.downlink_packets()
    return fs


def run(fs: FlightSoftware, tc: bytes) -> list[tuple[int, str | None]]:
    fs.uplink_packet(tc)
    fs.step(0.0)
    return verification(decode_downlink(fs), request_id_of(tc))


@pytest.mark.req("CMD-001")
def test_success_reports_follow_the_ack_flags(fs: FlightSoftware) -> None:
    enc = CommandEncoder(fs)
    assert run(fs, enc.encode("camera.CAPTURE", exposure_ms=5)) == [(1, None), (3, None), (7, None)]
    assert run(fs, enc.encode("camera.CAPTURE", exposure_ms=5, ack=0)) == []
    assert run(
        fs, enc.encode("camera.CAPTURE", exposure_ms=5, ack=ACK_ACCEPTANCE | ACK_COMPLETION)
    ) == [(1, None), (7, None)]
    assert fs.components["camera"].exposures == [5, 5, 5]  # type: ignore[attr-defined]


@pytest.mark.req("CMD-002")
def test_reports_carry_the_request_id(fs: FlightSoftware) -> None:
    tc = CommandEncoder(fs).encode("PING", seq_count=0x1234)
    fs.uplink_packet(tc)
    fs.step(0.0)
    recs = [r for r in decode_downlink(fs) if r.service == 1]
    assert {r.request_id for r in recs} == {0x1864_C000 | 0x1234}
    assert all(r.fields == {"request_id": 0x1864_D234} for r in recs)


@pytest.mark.req("CMD-004")
def test_argument_out_of_range_is_an_acceptance_failure(fs: FlightSoftware) -> None:
    enc = CommandEncoder(fs)
    fid = next(e.function_id for e in fs.cmd.entries() if e.full_name == "camera.CAPTURE")
    assert fid is not None
    tc = PusTc(
        apid=100,
        service=8,
        subservice=1,
        app_data=fid.to_bytes(2, "big") + (2000).to_bytes(2, "big"),
        seq_count=9,
    ).encode()
    fs.uplink_packet(tc)
    fs.step(0.0)
    recs = decode_downlink(fs)
    fail = [r for r in recs if (r.service, r.subservice) == (1, 2)]
    assert len(fail) == 1
    assert fail[0].fields is not None
    assert fail[0].fields["failure_code"] == "ARG_OUT_OF_RANGE"
    assert "exposure_ms=2000 is above the maximum 1000" in fail[0].fields["reason"]
    assert fs.telemetry("camera.cmds_rejected") == 1
    assert fs.telemetry("cmd.tc_rejected") == 1
    assert any(e.name == "cmd.TC_REJECTED" for e in fs.recent_events)
    assert run(fs, enc.encode("camera.CAPTURE", exposure_ms=1)) == [(1, None), (3, None), (7, None)]


@pytest.mark.req("CMD-003")
@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda tc: tc[:-1] + bytes([tc[-1] ^ 0xFF]), "BAD_CHECKSUM"),
        (lambda tc: PusTc(apid=101, service=17, subservice=1).encode(), "ILLEGAL_APID"),
        (lambda tc: PusTc(apid=100, service=99, subservice=9).encode(), "UNKNOWN_COMMAND"),
        (
            lambda tc: PusTc(apid=100, service=8, subservice=1, app_data=b"\xee\x01").encode(),
            "UNKNOWN_COMMAND",
        ),
        (
            lambda tc: PusTc(apid=100, service=8, subservice=1, app_data=b"\x01").encode(),
            "BAD_LENGTH",
        ),
        (
            lambda tc: PusTc(apid=100, service=17, subservice=1, app_data=b"\x00").encode(),
            "BAD_LENGTH",
        ),
        (
            lambda tc: PusTc(apid=100, service=17, subservice=1, seq_flags=SeqFlags.FIRST).encode(),
            "MALFORMED",
        ),
        (lambda tc: tc[:5] + bytes([tc[5] + 3]) + tc[6:], "BAD_LENGTH"),
    ],
)
def test_acceptance_failure_codes(fs: FlightSoftware, mutate: Any, code: str) -> None:
    ping = PusTc(apid=100, service=17, subservice=1).encode()
    bad = mutate(ping)
    fs.uplink_packet(bad)
    fs.step(0.0)
    recs = decode_downlink(fs)
    fails = [r for r in recs if (r.service, r.subservice) == (1, 2)]
    assert [f.fields["failure_code"] for f in fails if f.fields] == [code]
    assert fails[0].request_id == request_id_of(bad)
    assert not any(r.service == 17 for r in recs)


@pytest.mark.req("CMD-006")
def test_execution_failures_are_completion_failures(fs: FlightSoftware) -> None:
    enc = CommandEncoder(fs)
    tc = enc.encode("camera.CAPTURE", exposure_ms=13)
    assert run(fs, tc) == [(1, None), (3, None), (8, "EXECUTION_ERROR")]
    tc = enc.encode("camera.CAPTURE", exposure_ms=666)
    fs.uplink_packet(tc)
    fs.step(0.0)
    recs = decode_downlink(fs)
    done = [r for r in recs if (r.service, r.subservice) == (1, 8)]
    assert done[0].fields is not None
    assert "internal error in camera: RuntimeError: driver bug" in done[0].fields["reason"]
    assert fs.telemetry("camera.errors") == 2
    assert fs.telemetry("camera.cmds_accepted") == 2
    assert fs.telemetry("cmd.tc_failed") == 2


@pytest.mark.req("CMD-005")
def test_busy_is_a_start_failure(fs: FlightSoftware) -> None:
    enc = CommandEncoder(fs)
    assert run(fs, enc.encode("camera.START_VIDEO")) == [(1, None), (3, None), (7, None)]
    assert run(fs, enc.encode("camera.CAPTURE", exposure_ms=5)) == [(1, None), (4, "BUSY")]
    assert fs.components["camera"].exposures == []  # type: ignore[attr-defined]


@pytest.mark.req("MODE-003")
def test_payload_command_not_authorised_in_safe(fs: FlightSoftware) -> None:
    enc = CommandEncoder(fs)
    assert run(fs, enc.encode("MODE_SAFE_ENTER")) == [(1, None), (3, None), (7, None)]
    tc = enc.encode("camera.CAPTURE", exposure_ms=5)
    fs.uplink_packet(tc)
    fs.step(0.0)
    recs = decode_downlink(fs)
    fail = next(r for r in recs if (r.service, r.subservice) == (1, 2))
    assert fail.fields is not None and fail.fields["failure_code"] == "NOT_AUTHORISED"
    assert "not allowed in SAFE" in fail.fields["reason"]
    assert run(fs, enc.encode("camera.START_VIDEO")) == [(1, None), (3, None), (7, None)]


@pytest.mark.req("CMD-007")
def test_failure_reports_always_sent_even_without_ack(fs: FlightSoftware) -> None:
    tc = PusTc(apid=100, service=99, subservice=1, ack_flags=0).encode()
    assert run(fs, tc) == [(2, "UNKNOWN_COMMAND")]


def test_verification_before_events_and_hk(fs: FlightSoftware) -> None:
    fs.step(5.0)  # queue housekeeping and events first
    tc = CommandEncoder(fs).encode("PING", ack=ACK_ALL)
    fs.uplink_packet(tc)
    fs.step(0.0)
    recs = decode_downlink(fs)
    kinds = [(r.service, r.subservice) for r in recs]
    assert kinds[:4] == [(1, 1), (1, 3), (17, 2), (1, 7)]
    assert (3, 25) in kinds[4:]
