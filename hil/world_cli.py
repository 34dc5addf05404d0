"""CLI for the simulated world and the scheduler evaluation.

``gnomon world pass-times SCENARIO`` lists eclipses and ground-station passes;
``gnomon sched eval`` runs the policies and the oracle over randomized scenarios.
Heavy imports (numpy, sgp4, matplotlib, highspy) happen inside the commands.

>>> from typer.testing import CliRunner
>>> r = CliRunner().invoke(world_app, ["pass-times", "leo550-sso-6u", "--hours", "2", "--json"])
>>> r.exit_code
0
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

world_app = typer.Typer(
    help="The simulated world: orbit, Sun, eclipses, ground passes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
sched_app = typer.Typer(
    help="Power-aware inference scheduling: evaluate Gnomon against baselines and the oracle.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@world_app.callback()
def _world() -> None:
    """The simulated world: orbit, Sun, eclipses, ground passes."""


@sched_app.callback()
def _sched() -> None:
    """Power-aware inference scheduling: evaluate Gnomon against baselines and the oracle."""


def _fail(msg: str) -> typer.Exit:
    typer.echo(f"error: {msg}", err=True)
    return typer.Exit(code=2)


def _utc(tai: float) -> str:
    from fsw.core.clock import tai_to_datetime

    dt: datetime = tai_to_datetime(tai)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


@world_app.command("pass-times")
def pass_times(
    scenario: Annotated[str, typer.Argument(help="Bundled scenario name or a TOML path.")],
    hours: Annotated[
        float | None, typer.Option(help="Span to list (default: the scenario's duration).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object only.")] = False,
) -> None:
    """List the eclipses and ground-station passes of SCENARIO (times in UTC)."""
    from fsw.power.errors import PowerError
    from hil.sim.errors import WorldError
    from hil.sim.scenario import load_scenario
    from hil.sim.world import World

    try:
        sc = load_scenario(scenario)
        if hours is not None and not 0.0 < hours <= 24.0 * 30:
            raise WorldError(f"--hours must be within (0, 720], got {hours}")
        span = sc.duration_s if hours is None else hours * 3600.0
        world = World(sc, 0, duration_s=span)
    except (WorldError, PowerError) as exc:
        raise _fail(str(exc)) from None
    end = sc.start_tai + span
    eclipses: list[dict[str, Any]] = [
        {
            "start_utc": _utc(e.start_tai),
            "end_utc": _utc(e.end_tai),
            "duration_s": round(e.duration_s, 1),
            "penumbra_s": round(
                (e.start_tai - e.penumbra_start_tai) + (e.penumbra_end_tai - e.end_tai), 1
            ),
            "umbra": e.umbra_start_tai is not None,
        }
        for e in world.eclipses
        if e.start_tai < end
    ]
    passes: list[dict[str, Any]] = [
        {
            "station": p.station,
            "aos_utc": _utc(p.aos_tai),
            "los_utc": _utc(p.los_tai),
            "duration_s": round(p.duration_s, 1),
            "max_elevation_deg": round(p.max_elevation_deg, 1),
        }
        for p in world.passes
        if p.aos_tai < end
    ]
    report: dict[str, Any] = {
        "scenario": sc.name,
        "start_utc": _utc(sc.start_tai),
        "span_s": span,
        "eclipses": eclipses,
        "passes": passes,
    }
    if as_json:
        typer.echo(json.dumps(report))
        return
    from rich.console import Console
    from rich.table import Table

    con = Console()
    t1 = Table(title=f"{sc.name}: eclipses (Sun centre behind the Earth)")
    for col in ("start (UTC)", "end (UTC)", "duration", "penumbra"):
        t1.add_column(col)
    for e in eclipses:
        t1.add_row(
            e["start_utc"],
            e["end_utc"],
            f"{e['duration_s'] / 60:.1f} min",
            f"{e['penumbra_s']:.1f} s",
        )
    t2 = Table(title=f"{sc.name}: passes")
    for col in ("station", "AOS (UTC)", "LOS (UTC)", "duration", "max elevation"):
        t2.add_column(col)
    for p in passes:
        t2.add_row(
            p["station"],
            p["aos_utc"],
            p["los_utc"],
            f"{p['duration_s'] / 60:.1f} min",
            f"{p['max_elevation_deg']:.1f} deg",
        )
    con.print(t1)
    con.print(t2)


@sched_app.command("eval")
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
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from fsw.power.errors import PowerError
    from hil import sched_eval as se
    from hil.sim.errors import WorldError

    if not 1 <= scenarios <= 10_000:
        raise _fail(f"--scenarios must be within 1..10000, got {scenarios}")
    try:
        if scenario is not None:
            ev = se.evaluate_named(scenario, seed)
            metrics = se.scenario_metrics(ev)
            report: dict[str, Any] = {
                "scenario": ev.timeline.scenario.name,
                "seed": seed,
                "policies": metrics,
            }
            if plot is not None:
                report["plot"] = str(
                    se.plot_scenario(ev, plot / f"{ev.timeline.scenario.name}.png")
                )
        else:
            from rich.console import Console

            with Progress(
                TextColumn("scenarios"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeRemainingColumn(),
                console=Console(file=sys.stderr),
                transient=True,
            ) as bar:
                task = bar.add_task("eval", total=scenarios)
                report = se.evaluate(
                    scenarios,
                    seed,
                    plot_dir=plot,
                    progress=lambda done, _total: bar.update(task, completed=done),
                )
            report.pop("per_scenario")
    except (WorldError, PowerError) as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write plots: {exc}") from None
    if as_json:
        typer.echo(json.dumps(report))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"scheduler evaluation ({report.get('scenarios', 1)} scenarios)")
    for col in (
        "policy",
        "value",
        "vs oracle",
        "floor violations",
        "deadline misses",
        "J / inference",
        "frames / orbit",
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
            f"goal >= {g['target_value_vs_oracle']:.0%} of oracle with no floor violations: "
            f"{'met' if g['met'] else 'NOT met'} ({g['gnomon_value_vs_oracle']:.3f}, "
            f"{g['gnomon_floor_violations']} violations) in {report['elapsed_s']} s"
        )
