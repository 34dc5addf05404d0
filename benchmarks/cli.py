"""``gnomon bench ...``: every benchmark prints one JSON object with its measured figures.

Each figure sits beside its anchor (spacepackets, fp32 eager, torch's own int8, ...) and
the CPU it was measured on. Benchmarks are commands, never timed tests: a slow, noisy
machine fails no test.

>>> from typer.testing import CliRunner
>>> "runtime" in CliRunner().invoke(bench_app, ["--help"]).output
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from gnomon.clikit import emit_json, examples, fail_needs_extra, missing_third_party

bench_app = typer.Typer(
    help="Benchmarks: each prints one JSON object with its measured figures.",
    no_args_is_help=True,
)


def _bench_functions() -> dict[str, Callable[[], dict[str, Any]]]:
    """Name -> benchmark function, imported only when a benchmark runs."""
    from benchmarks.ccsds import bench_ccsds
    from benchmarks.cfdp import bench_cfdp
    from benchmarks.ground import bench_ground
    from benchmarks.linkstate import bench_linkstate
    from benchmarks.rtl import bench_rtl
    from benchmarks.runtime import bench_runtime, bench_scrub
    from benchmarks.sched import bench_sched

    return {
        "ccsds": bench_ccsds,
        "runtime": bench_runtime,
        "scrub": bench_scrub,
        "rtl": bench_rtl,
        "ground": bench_ground,
        "sched": bench_sched,
        "linkstate": bench_linkstate,
        "cfdp": bench_cfdp,
    }


JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON only (default: JSON too).")]


def _measure(name: str) -> dict[str, Any]:
    """Run benchmark ``name``; a module it needs from the 'bench' extra is named if missing."""
    try:
        return _bench_functions()[name]()
    except ModuleNotFoundError as exc:
        missing = missing_third_party(exc)
        if missing is None:
            raise
        fail_needs_extra(f"bench {name}", "bench", missing)


def _run_bench(name: str, as_json: bool) -> None:
    emit_json(_measure(name), indent=None if as_json else 2)


@bench_app.command("ccsds")
def bench_ccsds_cmd(as_json: JsonFlag = False) -> None:
    """Space-link throughput: packets, PUS, the uplink and downlink chains vs spacepackets."""
    _run_bench("ccsds", as_json)


@bench_app.command("runtime")
def bench_runtime_cmd(as_json: JsonFlag = False) -> None:
    """int8 runtime latency and accuracy beside fp32 eager and torch's own int8 path."""
    _run_bench("runtime", as_json)


@bench_app.command("scrub")
def bench_scrub_cmd(as_json: JsonFlag = False) -> None:
    """Weight-arena scrub throughput (GB/s) and the default policy's cost per inference."""
    _run_bench("scrub", as_json)


@bench_app.command("rtl")
def bench_rtl_cmd(as_json: JsonFlag = False) -> None:
    """Run the Verilog blocks' cocotb suites; bytes per clock and vectors checked."""
    _run_bench("rtl", as_json)


@bench_app.command("sched")
def bench_sched_cmd(as_json: JsonFlag = False) -> None:
    """Scheduler value vs the LP oracle over 100 randomized scenarios, and its run time."""
    _run_bench("sched", as_json)


@bench_app.command("ground")
def bench_ground_cmd(as_json: JsonFlag = False) -> None:
    """Ground decode and archive rates on a synthetic 1,000-channel stream."""
    _run_bench("ground", as_json)


@bench_app.command("cfdp")
def bench_cfdp_cmd(as_json: JsonFlag = False) -> None:
    """CFDP goodput vs link rate: class 1 clean, class 2 at 5 % loss (with and without LOS)."""
    _run_bench("cfdp", as_json)


@bench_app.command("linkstate", epilog=examples("gnomon bench linkstate --dir /var/lib/gnomon"))
def bench_linkstate_cmd(
    as_json: JsonFlag = False,
    directory: Annotated[
        str | None,
        typer.Option("--dir", help="Measure saves in this directory (default: a temp dir)."),
    ] = None,
) -> None:
    """What saving the link state (V(R), SDLS numbers) costs per accepted TC frame."""
    from benchmarks.linkstate import bench_linkstate

    emit_json(bench_linkstate(directory=directory), indent=None if as_json else 2)


@bench_app.command(
    "all", epilog=examples("gnomon bench all --json > bench.json", "gnomon bench ccsds")
)
def bench_all_cmd(as_json: JsonFlag = False) -> None:
    """Every benchmark, one JSON object keyed by benchmark name."""
    results = {name: _measure(name) for name in _bench_functions()}
    emit_json(results, indent=None if as_json else 2)
