"""The bench functions return the figures ``gnomon bench`` prints (not timed tests)."""

from __future__ import annotations

import json

from benchmarks.runtime import bench_runtime, bench_scrub


def test_bench_runtime_reports_accuracy_and_latency_for_each_path() -> None:
    r = bench_runtime(("cloudnet-s",), holdout_tiles=64, batches=(1, 4), repeats=3)
    json.dumps(r)
    m = r["models"]["cloudnet-s"]
    assert set(m["accuracy"]) == {"gnomon_int8", "fp32", "torch_int8"}
    assert all(0.8 <= v <= 1.0 for v in m["accuracy"].values())
    for key in ("batch1", "batch4"):
        row = m["latency"][key]
        assert row["gnomon_int8_ms"] > 0 and row["fp32_eager_ms"] > 0 and row["torch_int8_ms"] > 0
    assert isinstance(m["goals"]["int8_within_1pt_of_fp32"], bool)


def test_bench_scrub_reports_throughput_and_policy_overhead() -> None:
    r = bench_scrub(synthetic_mib=1, repeats=3)
    json.dumps(r)
    assert r["crc_check"] == "0xe3069283"
    assert r["synthetic"]["blocks"] == 256 and r["synthetic"]["scrub_full_gbps"] > 0
    s = r["models"]["cloudnet-s"]
    assert s["policy_budget_bytes"] == 4096 and s["policy_overhead_pct"] > 0
    assert set(r["goals"]) == {"scrub_ge_3_gbps", "policy_overhead_lt_1pct"}
