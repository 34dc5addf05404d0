"""``gnomon sched eval``: Gnomon's power scheduler against baselines and the LP oracle.

Heavy imports (numpy, matplotlib, highspy) happen inside the command.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from gnomon.clikit import examples, fail

sched_app = typer.Typer(
    help="Power-aware inference scheduling: evaluate Gnomon against baselines and the oracle.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@sched_app.callback()
def _sched() -> None:
    """Power-aware inference scheduling: evaluate Gnomon against baselines and the oracle."""


@sched_app.command(
    "eval",
    epilog=examples(
        "gnomon sched eval --scenarios 20",
        "gnomon sched eval --scenario degraded-panels-6u --plot /tmp/plots",
    ),
)
def sched_eval(
    scenarios: Annotated[int, typer.Option(help="Number of randomized scenarios.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the scenario generator.")] = 0,
    scenario: Annotated[
        str | None, typer.Option(help="Evaluate this scenario file instead (name or path).")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Write one PNG per scenario into this directory.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object only.")] = False,
) -> None:
    """Compare gnomon, greedy, duty_cycle and sunlit_only against the oracle."""
    from fsw.power.errors import PowerError
    from hil.sim.errors import WorldError

    if not 1 <= scenarios <= 10_000:
        fail(f"--scenarios must be within 1..10000, got {scenarios}")
    try:
        report = (
            _one_scenario(scenario, seed, plot)
            if scenario is not None
            else _random_scenarios(scenarios, seed, plot)
        )
    except (WorldError, PowerError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write plots: {exc}")
    if as_json:
        typer.echo(json.dumps(report))
    else:
        _print_report(report)


def _one_scenario(scenario: str, seed: int, plot: Path | None) -> dict[str, Any]:
    from hil.eval.sched.metrics import evaluate_named, scenario_metrics
    from hil.eval.sched.plot import plot_scenario

    ev = evaluate_named(scenario, seed)
    name = ev.timeline.scenario.name
    report: dict[str, Any] = {"scenario": name, "seed": seed, "policies": scenario_metrics(ev)}
    if plot is not None:
        report["plot"] = str(plot_scenario(ev, plot / f"{name}.png"))
    return report


def _random_scenarios(n: int, seed: int, plot: Path | None) -> dict[str, Any]:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from hil.eval.sched.metrics import evaluate

    with Progress(
        TextColumn("scenarios"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=Console(file=sys.stderr),
        transient=True,
    ) as bar:
        task = bar.add_task("eval", total=n)
        report = evaluate(
            n, seed, plot_dir=plot, progress=lambda done, _total: bar.update(task, completed=done)
        )
    report.pop("per_scenario")
    return report


def _print_report(report: dict[str, Any]) -> None:
    """The policies as a table that fits 80 columns, and whether the goal is met."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"scheduler evaluation ({report.get('scenarios', 1)} scenarios)")
    table.add_column("policy", no_wrap=True)  # names whole, headers on two lines: 80 columns
    for col in (
        "value",
        "vs oracle",
        "floor\nviolations",
        "deadline\nmisses",
        "J /\ninfer.",
        "frames\n/ orbit",
    ):
        table.add_column(col, justify="right")
    for name, m in report["policies"].items():
        table.add_row(
            name,
            f"{m['value']:.1f}",
            f"{m['value_vs_oracle']:.3f}",
            str(int(m["floor_violations"])),
            f"{m['deadline_misses']:.0f}",
            f"{m['energy_per_inference_j']:.1f}",
            f"{m['frames_per_orbit']:.1f}",
        )
    con = Console()
    con.print(table)
    if "goal" in report:
        g = report["goal"]
        con.print(
            f"goal >= {g['target_value_vs_oracle']:.0%} of oracle, no floor violations: "
            f"{'met' if g['met'] else 'NOT met'} ({g['gnomon_value_vs_oracle']:.3f}, "
            f"{g['gnomon_floor_violations']} violations; {report['elapsed_s']} s)",
            soft_wrap=True,
        )
