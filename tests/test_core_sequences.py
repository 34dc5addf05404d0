"""Stored sequences (service 21): load, start with delays, abort, busy, unload, persistence."""

from __future__ import annotations

import pytest

from fsw.app import build_flight
from fsw.ccsds import PusTc
from fsw.core import DeclarationError, FlightSoftware, MemNvStore, SeqStep, SimClock, StoredSequence
from fsw.core.clock import DEFAULT_START_TAI
from fsw.core.testing import CommandEncoder, decode_downlink, request_id_of, verification

T0 = DEFAULT_START_TAI


def ping(seq: int) -> bytes:
    return PusTc(apid=100, service=17, subservice=1, seq_count=seq).encode()


def boot(store: MemNvStore | None = None, **kw: object) -> FlightSoftware:
    fs = build_flight(clock=SimClock(T0), store=store, **kw)  # type: ignore[arg-type]
    fs.step(0.0)
    fs.downlink_packets()
    return fs


def send(fs: FlightSoftware, tc: bytes) -> list[tuple[int, str | None]]:
    fs.uplink_packet(tc)
    fs.step(0.0)
    return verification(decode_downlink(fs), request_id_of(tc))


def pong_times(fs: FlightSoftware) -> list[float]:
    return [round(r.t_tai - T0, 3) for r in decode_downlink(fs) if r.service == 17]


@pytest.mark.req("SEQ-001")
def test_load_start_and_relative_delays() -> None:
    fs = boot()
    enc = CommandEncoder(fs)
    v = send(
        fs,
        enc.encode(
            "SEQ_LOAD",
            seq_id=3,
            name="pings",
            steps=[
                {"delay_ms": 0, "tc": ping(1)},
                {"delay_ms": 2000, "tc": ping(2)},
                {"delay_ms": 500, "tc": ping(3)},
            ],
        ),
    )
    assert v == [(1, None), (3, None), (7, None)]
    assert fs.telemetry("seq.loaded") == 1
    fs.step(1.0)
    fs.downlink_packets()
    send(fs, enc.encode("SEQ_START", seq_id=3))  # starts at t = 1.0
    assert fs.telemetry("seq.running") == 1
    fs.step(5.0)
    assert pong_times(fs) == [3.0, 3.5]
    names = [e.name for e in fs.recent_events]
    assert "seq.STARTED" in names and "seq.COMPLETED" in names
    assert fs.telemetry("seq.running") == 0
    assert fs.telemetry("seq.steps_released") == 3


@pytest.mark.req("SEQ-002", "SEQ-003", "SEQ-004")
def test_start_twice_is_busy_and_abort_stops_it() -> None:
    fs = boot(sequences=[StoredSequence(5, "slow", (SeqStep(10.0, ping(1)),))])
    enc = CommandEncoder(fs)
    assert send(fs, enc.encode("SEQ_START", seq_id=5))[-1] == (7, None)
    assert send(fs, enc.encode("SEQ_START", seq_id=5)) == [(1, None), (4, "BUSY")]
    assert send(fs, enc.encode("SEQ_UNLOAD", seq_id=5)) == [(1, None), (4, "BUSY")]
    assert send(fs, enc.encode("SEQ_ABORT", seq_id=5))[-1] == (7, None)
    fs.step(20.0)
    assert pong_times(fs) == []
    assert send(fs, enc.encode("SEQ_ABORT", seq_id=5))[-1] == (8, "NOT_FOUND")
    assert send(fs, enc.encode("SEQ_START", seq_id=99))[-1] == (8, "NOT_FOUND")


@pytest.mark.req("SEQ-005")
def test_load_rejects_bad_steps() -> None:
    fs = boot()
    tc = CommandEncoder(fs).encode(
        "SEQ_LOAD", seq_id=4, name="bad", steps=[{"delay_ms": 0, "tc": ping(1)[:-2] + b"\x00\x00"}]
    )
    assert send(fs, tc)[-1] == (8, "BAD_CHECKSUM")
    assert fs.telemetry("seq.loaded") == 0


@pytest.mark.req("SEQ-006")
def test_uploaded_sequences_and_unloads_persist() -> None:
    store = MemNvStore()
    fs = boot(store, sequences=[StoredSequence(1, "code_seq", (SeqStep(0.0, ping(9)),))])
    enc = CommandEncoder(fs)
    send(
        fs,
        enc.encode("SEQ_LOAD", seq_id=2, name="uplinked", steps=[{"delay_ms": 100, "tc": ping(4)}]),
    )
    send(fs, enc.encode("SEQ_UNLOAD", seq_id=1))
    fs2 = boot(store, sequences=[StoredSequence(1, "code_seq", (SeqStep(0.0, ping(9)),))])
    assert sorted(fs2.seq.sequences()) == [2]
    assert fs2.seq.sequences()[2].steps == (SeqStep(0.1, ping(4)),)
    send(fs2, CommandEncoder(fs2).encode("SEQ_START", seq_id=2))
    fs2.step(1.0)
    assert pong_times(fs2) == [0.1]


@pytest.mark.req("SEQ-005")
def test_code_sequences_are_checked() -> None:
    with pytest.raises(DeclarationError, match="APID 5 is not served here"):
        boot(
            sequences=[
                StoredSequence(
                    1, "x", (SeqStep(0.0, PusTc(apid=5, service=17, subservice=1).encode()),)
                )
            ]
        )
    with pytest.raises(DeclarationError, match=r"outside 1\.\.65535"):
        StoredSequence(0, "x", ())


@pytest.mark.req("SEQ-007")
def test_a_failing_step_does_not_stop_the_sequence() -> None:
    unknown = PusTc(apid=100, service=99, subservice=1, seq_count=7).encode()
    fs = boot(
        sequences=[StoredSequence(6, "mixed", (SeqStep(0.0, unknown), SeqStep(1.0, ping(8))))]
    )
    start = CommandEncoder(fs).encode("SEQ_START", seq_id=6)
    fs.uplink_packet(start)
    fs.step(2.0)
    recs = decode_downlink(fs)
    assert verification(recs, request_id_of(start))[-1] == (7, None)
    assert verification(recs, request_id_of(unknown)) == [(2, "UNKNOWN_COMMAND")]
    assert verification(recs, request_id_of(ping(8)))[-1] == (7, None)
    assert "seq.COMPLETED" in [e.name for e in fs.recent_events]
