"""Benchmarks of the flight core: plain functions returning JSON-able dicts.

Wired to ``gnomon bench NAME --json`` by the CLI. CPU time is measured with
``time.process_time`` (what the SITL budget cares about), wall time with
``time.perf_counter``.

>>> r = bench_core_step(sim_seconds=20)
>>> r["cycles"], r["sim_seconds"]
(200, 20.0)
"""

from __future__ import annotations

import time
from typing import Any


def bench_core_step(sim_seconds: float = 3600.0) -> dict[str, Any]:
    """CPU cost of ``fs.step(1.0)`` with the default topology, idle (HK and events only)."""
    from fsw.app import build_flight

    fs = build_flight()
    fs.step(1.0)
    fs.downlink_packets()
    n = int(sim_seconds)
    packets = 0
    nbytes = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        fs.step(1.0)
        out = fs.downlink_packets()
        packets += len(out)
        nbytes += sum(len(p) for p in out)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "bench": "core_step",
        "sim_seconds": float(n),
        "cycles": n * 10,
        "cpu_s": round(cpu, 4),
        "wall_s": round(wall, 4),
        "cpu_us_per_step_1s": round(cpu / n * 1e6, 2),
        "sim_speedup": round(n / wall, 1) if wall > 0 else None,
        "tm_packets": packets,
        "tm_bytes": nbytes,
    }


def bench_core_dispatch(n_tcs: int = 5000) -> dict[str, Any]:
    """TCs per second through acceptance, execution and verification (PING and PARAM_GET)."""
    from fsw.app import build_flight
    from fsw.core.testing import CommandEncoder

    fs = build_flight()
    enc = CommandEncoder(fs)
    tcs = [
        enc.encode("PING") if i % 2 else enc.encode("PARAM_GET", param_ids=[{"param_id": 0x0901}])
        for i in range(256)
    ]
    done = 0
    packets = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    while done < n_tcs:
        batch = min(fs.config.uplink_capacity, n_tcs - done)
        for i in range(batch):
            fs.uplink_packet(tcs[(done + i) % len(tcs)])
        fs.step(0.0)
        packets += len(fs.downlink_packets())
        done += batch
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "bench": "core_dispatch",
        "tcs": n_tcs,
        "cpu_s": round(cpu, 4),
        "wall_s": round(wall, 4),
        "tcs_per_s": round(n_tcs / wall, 1) if wall > 0 else None,
        "cpu_us_per_tc": round(cpu / n_tcs * 1e6, 2),
        "tm_packets": packets,
        "rejected": fs.telemetry("cmd.tc_rejected"),
    }


BENCHES = {"core_step": bench_core_step, "core_dispatch": bench_core_dispatch}

__all__ = ["BENCHES", "bench_core_dispatch", "bench_core_step"]
