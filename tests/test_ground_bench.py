"""`gnomon bench ground` measures what it claims: every synthetic sample is decoded and
archived with its value (speed itself is a bench figure, not a test)."""

from __future__ import annotations

import struct

from benchmarks.ground import bench_ground, synthetic_dictionary, synthetic_stream
from ground import Archive, Dictionary, GroundSession


def test_bench_reports_its_figures() -> None:
    result = bench_ground(n_channels=200, n_reports=40, per_structure=100)
    assert result["decoded_samples"] == result["archived_samples"] == 200 * 40 // 2
    assert result["link_samples"] == result["decoded_samples"]
    for key in (
        "decoded_samples_per_s",
        "archived_samples_per_s",
        "session_samples_per_s",
        "link_samples_per_s",
        "archive_insert_samples_per_s",
    ):
        assert isinstance(result[key], int) and result[key] > 0
    assert result["goal_decoded_samples_per_s"] == 500_000


def test_synthetic_stream_values_survive_decode_and_archive() -> None:
    doc = synthetic_dictionary(n_channels=40, per_structure=20)
    d = Dictionary(doc)
    packets = synthetic_stream(doc, n_reports=6)
    archive = Archive(":memory:")
    session = GroundSession(d, None, archive=archive)
    decoded = session.receive_packets(packets, 0.0)
    archive.flush()
    assert [x.fields["sid"] for x in decoded] == [1, 2, 1, 2, 1, 2]
    first = decoded[0].fields["values"]
    # f32 channel 0 of sid 1 is the first value after the sid in the first packet
    (raw_value,) = struct.unpack_from(">f", packets[0], 6 + 13 + 2)
    assert first["syn.ch0000"] == raw_value
    assert first["syn.ch0018"] in ("OFF", "IDLE", "BUSY", "FAULT")  # enum channel
    stored = archive.telemetry("syn.ch0000")
    assert [s.value for s in stored] == [
        x.fields["values"]["syn.ch0000"] for x in decoded if x.fields["sid"] == 1
    ]
    assert archive.counts()["samples"] == 6 * 20
