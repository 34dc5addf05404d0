"""Benchmark of the Verilog blocks: runs the cocotb suites and reports what they measured.

Throughput is in bytes per clock, counted in simulated clocks, so it is exact and the
same on any machine; ``wall_s`` is how long Icarus took here.

>>> result = bench_rtl(suites=("bch",))  # doctest: +SKIP
>>> result["blocks"]["bch"]["bytes_per_clock"]  # doctest: +SKIP
1.0
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from hil.rtl.runner import SUITES, run_suite, simulator_missing_reason


def bench_rtl(
    suites: Sequence[str] = tuple(SUITES), build_dir: Path | None = None
) -> dict[str, object]:
    """Run the RTL suites; returns pass/fail per suite and the measured figures.

    Without Icarus Verilog the result is ``{"skipped": reason}``.
    """
    reason = simulator_missing_reason()
    if reason is not None:
        return {"skipped": reason}
    with tempfile.TemporaryDirectory(prefix="gnomon-rtl-") as scratch:
        root = build_dir if build_dir is not None else Path(scratch)
        report: dict[str, object] = {}
        blocks: dict[str, dict[str, object]] = {}
        for name in suites:
            began = time.perf_counter()
            result = run_suite(name, root)
            wall_s = time.perf_counter() - began
            report[name] = {
                "passed": result.passed,
                "tests": len(result.cases),
                "failures": [f"{c.name}: {c.message}" for c in result.failures],
                "seed": result.seed,
                "wall_s": round(wall_s, 2),
            }
            for metric in result.metrics:
                key = str(metric.get("name", name))
                if "block_size" in metric:
                    key = f"{key}_{metric['block_size']}"
                blocks[key] = {k: v for k, v in metric.items() if k != "name"}
        return {"suites": report, "blocks": blocks}


def bench_rtl_resources(target: str = "xilinx") -> dict[str, object]:
    """FPGA resources of every block for ``target`` (Yosys); ``{"skipped": reason}``
    when Yosys is not installed."""
    from hil.rtl.synth import BLOCKS, synthesize, yosys_missing_reason

    reason = yosys_missing_reason()
    if reason is not None:
        return {"skipped": reason}
    with tempfile.TemporaryDirectory(prefix="gnomon-synth-") as scratch:
        return {name: synthesize(name, target, workdir=Path(scratch)).summary() for name in BLOCKS}
