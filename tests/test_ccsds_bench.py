"""`gnomon bench ccsds` compares like with like and reports every figure the issue asks
for (the speeds themselves are bench output, never asserted here)."""

from __future__ import annotations

import json

import pytest

from benchmarks.ccsds import _pair, bench_ccsds

SHARED = (
    "packet_encode_fields",
    "packet_encode",
    "packet_decode",
    "pus_tm_encode",
    "pus_tm_decode",
    "pus_tc_encode",
    "pus_tc_decode",
    "tm_frame_encode",
    "tm_frame_decode",
)


def test_quick_bench_reports_each_shared_operation_beside_spacepackets() -> None:
    pytest.importorskip("spacepackets")
    result = bench_ccsds(quick=True)
    json.dumps(result)  # the CLI prints it as JSON
    ops = result["operations"]
    for name in SHARED:
        op = ops[name]
        assert op["gnomon"]["per_s"] > 0 and op["spacepackets"]["per_s"] > 0
        assert op["speedup"] == pytest.approx(
            op["gnomon"]["per_s"] / op["spacepackets"]["per_s"], rel=0.01
        )
    goals = result["goals"]
    assert goals["min_speedup"] == min(ops[name]["speedup"] for name in SHARED)
    assert goals["below_goal"] == sorted(n for n in SHARED if ops[n]["speedup"] < 2.0)
    assert goals["speedup_met"] == (not goals["below_goal"])
    # the informational row does not count towards the goal
    assert ops["packet_object_build_and_encode"]["informational"] is True
    assert result["crc16_c_extension"] is True
    down = result["downlink_chain"]
    assert down["packets_per_s"] > 0 and down["frames"] > 0
    assert goals["downlink_met"] == (down["mb_per_s"] >= 50.0)
    assert result["uplink_chain"]["tc_per_s"] > 0


def test_pair_runs_both_sides_the_same_number_of_rounds_and_for_the_minimum_time() -> None:
    calls = {"ours": 0, "theirs": 0}

    def ours() -> None:
        calls["ours"] += 1

    def theirs() -> None:
        calls["theirs"] += 1

    out = _pair(ours, theirs, 10, n=50, repeats=3, min_seconds=0.05)
    assert calls["ours"] == calls["theirs"] >= 150
    assert calls["ours"] % 50 == 0
    assert out["bytes_per_item"] == 10 and out["speedup"] > 0
