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
from pathlib import Path
from typing import Annotated, Any

import typer

from gnomon.clikit import emit_json, examples, fail, fail_needs_extra, missing_third_party

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
    from benchmarks.storage import bench_storage

    return {
        "ccsds": bench_ccsds,
        "runtime": bench_runtime,
        "scrub": bench_scrub,
        "rtl": bench_rtl,
        "ground": bench_ground,
        "sched": bench_sched,
        "linkstate": bench_linkstate,
        "storage": bench_storage,
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


@bench_app.command(
    "runtime",
    epilog=examples("gnomon bench runtime --json", "gnomon bench runtime --kernels int_mm --json"),
)
def bench_runtime_cmd(
    as_json: JsonFlag = False,
    kernels: Annotated[
        str, typer.Option(help="auto (timed per machine) or one kernel for every layer.")
    ] = "auto",
) -> None:
    """int8 runtime latency and accuracy beside fp32 eager and torch's own int8 path."""
    from fsw.ai.kernels import KERNEL_OPTIONS

    if kernels not in KERNEL_OPTIONS:
        fail(f"unknown kernel {kernels!r}: use one of {', '.join(KERNEL_OPTIONS)}")
    if kernels == "auto":
        _run_bench("runtime", as_json)
        return
    from benchmarks.runtime import bench_runtime

    emit_json(bench_runtime(kernels=kernels), indent=None if as_json else 2)


MINILM_DIR = Path("out/models")


@bench_app.command(
    "minilm",
    epilog=examples(
        "gnomon bench minilm --json",
        "gnomon bench minilm --quality 0 --repeats 1 --models-dir /tmp/models",
    ),
)
def bench_minilm_cmd(
    as_json: JsonFlag = False,
    quality: Annotated[
        int, typer.Option(help="Sentences compared with sentence-transformers (0: skip).")
    ] = 1000,
    repeats: Annotated[
        int, typer.Option(help="Timed runs per variant at 32x128 (four times that per query).")
    ] = 5,
    models_dir: Annotated[
        Path, typer.Option(help="Where minilm-l6.gnm is, or is built on first use.")
    ] = MINILM_DIR,
) -> None:
    """all-MiniLM-L6-v2 int8: batch 32x128 latency vs fp32 and torch int8, scrub cost, quality.

    Not part of 'bench all': it needs the 'minilm' extra and builds out/models/minilm-l6.gnm
    on first use.
    """
    if quality < 0:
        fail(f"--quality must be >= 0, got {quality}")
    if repeats < 1:
        fail(f"--repeats must be >= 1, got {repeats}")
    from models.errors import ModelError

    try:
        from benchmarks.minilm import bench_minilm

        res = bench_minilm(out_dir=models_dir, repeats=repeats, quality_sentences=quality)
    except ModelError as e:
        fail(str(e))
    except ModuleNotFoundError as exc:
        missing = missing_third_party(exc)
        if missing is None:
            raise
        fail_needs_extra("bench minilm", "minilm", missing)
    emit_json(res, indent=None if as_json else 2)


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


@bench_app.command("storage", epilog=examples("gnomon bench storage --dir /var/lib/gnomon"))
def bench_storage_cmd(
    as_json: JsonFlag = False,
    directory: Annotated[
        str | None,
        typer.Option("--dir", help="Put the stores in this directory (default: a temp dir)."),
    ] = None,
    cfdp: Annotated[
        bool,
        typer.Option(
            "--cfdp/--no-cfdp",
            help="Also measure CFDP goodput (class 1 clean, class 2 at 5 % loss; about a "
            "minute; the same figures as `gnomon bench cfdp`).",
        ),
    ] = True,
) -> None:
    """Packet store write, routing and playback rates on one core (goal 50,000 packets/s),
    and CFDP goodput as a share of the link rate (goals: class 1 >= 0.90, class 2 at 5 %
    loss >= 0.75)."""
    from benchmarks.storage import bench_storage

    result = bench_storage(directory=directory)
    if cfdp:
        from benchmarks.cfdp import bench_cfdp

        result["cfdp"] = bench_cfdp()
    emit_json(result, indent=None if as_json else 2)


@bench_app.command(
    "all", epilog=examples("gnomon bench all --json > bench.json", "gnomon bench ccsds")
)
def bench_all_cmd(as_json: JsonFlag = False) -> None:
    """Every benchmark, one JSON object keyed by benchmark name."""
    results = {name: _measure(name) for name in _bench_functions()}
    emit_json(results, indent=None if as_json else 2)
