"""`gnomon`: one command for the flight software, the ground, the bench and the models.

Each package owns its subcommands; this module only mounts them, so that
`gnomon --help` stays fast (heavy imports happen inside the commands).

>>> from typer.testing import CliRunner
>>> "dict" in CliRunner().invoke(app, ["--help"]).output
True
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import typer

from fsw.cli import dict_app, fsw_app
from ground.cli import ground_app
from hil.cli import sitl_command
from hil.hil_cli import hil_app
from hil.world_cli import sched_app, world_app
from models.cli import model_app, seu_app

app = typer.Typer(
    name="gnomon",
    help="Gnomon: flight software for edge-AI satellites (SITL, HIL, ground, models).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(dict_app, name="dict", help="The flight dictionary (commands, telemetry, events).")
app.add_typer(fsw_app, name="fsw", help="Run the flight software (simulated or on a board).")
app.command("sitl")(sitl_command)
app.add_typer(ground_app, name="ground", help="Ground segment: console, commands, archive.")
app.add_typer(hil_app, name="hil", help="Hardware-in-the-loop bench over a serial cable.")
app.add_typer(model_app, name="model", help="Train, verify, inspect .gnm model artifacts.")
app.add_typer(seu_app, name="seu", help="Radiation fault-injection campaigns on a model.")
app.add_typer(world_app, name="world", help="The simulated world: eclipses and passes.")
app.add_typer(sched_app, name="sched", help="Evaluate power-aware inference scheduling.")

bench_app = typer.Typer(
    help="Benchmarks: each prints one JSON object with its measured figures.",
    no_args_is_help=True,
)
app.add_typer(bench_app, name="bench")


def _bench_functions() -> dict[str, Callable[[], dict[str, Any]]]:
    """Name -> benchmark function, imported only when a benchmark runs."""
    from fsw.ccsds.bench import bench_ccsds
    from ground.bench import bench_ground
    from hil.rtl.bench import bench_rtl
    from hil.sched_eval import bench_sched
    from models.bench import bench_runtime, bench_scrub

    return {
        "ccsds": bench_ccsds,
        "runtime": bench_runtime,
        "scrub": bench_scrub,
        "rtl": bench_rtl,
        "ground": bench_ground,
        "sched": bench_sched,
    }


JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON only (default: JSON too).")]


def _run_bench(name: str, as_json: bool) -> None:
    result = _bench_functions()[name]()
    typer.echo(json.dumps(result, indent=None if as_json else 2, sort_keys=False))


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


@bench_app.command("all")
def bench_all_cmd(as_json: JsonFlag = False) -> None:
    """Every benchmark, one JSON object keyed by benchmark name."""
    results = {name: fn() for name, fn in _bench_functions().items()}
    typer.echo(json.dumps(results, indent=None if as_json else 2))


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
