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


@world_app.command(
    "pass-times",
    epilog="Examples:\n\n  gnomon world pass-times leo550-sso-6u"
    "\n\n  gnomon world pass-times long-eclipse-6u --hours 24 --json",
)
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

    con = Console()
    # the orbit table's last 10 s grid point may lie just past the span's end
    ongoing = {
        _utc(t)
        for t in [*(e.end_tai for e in world.eclipses), *(p.los_tai for p in world.passes)]
        if t >= world.end_tai - 10.0
    }
    t1, t2 = pass_tables(report, ongoing)
    con.print(t1)
    con.print(t2)


def _day_and_clock(iso: str) -> tuple[str, str]:
    """('2026-11-21', '06:22:22') from '2026-11-21T06:22:22Z'."""
    return iso[:10], iso[11:19]


def pass_tables(report: dict[str, Any], ongoing: set[str] | None = None) -> tuple[Any, Any]:
    """The eclipse and pass tables of a ``pass-times`` report, narrow enough for 80 columns.

    Times are HH:MM:SS UTC; the date goes in the title when the span is one UTC day, else
    in a column of its own. An eclipse or pass still going on at the end of the span
    (its end time in ``ongoing``) is marked with ``+``.
    """
    from rich.table import Table
    from rich.text import Text

    days = sorted(
        {_day_and_clock(e[k])[0] for e in report["eclipses"] for k in ("start_utc", "end_utc")}
        | {_day_and_clock(p[k])[0] for p in report["passes"] for k in ("aos_utc", "los_utc")}
        | {report["start_utc"][:10]}
    )
    one_day = len(days) == 1
    when = f"{days[0]} UTC" if one_day else f"{days[0]} to {days[-1]} UTC"
    name = report["scenario"]
    cut = "+ still going on when the span ends"
    ongoing = ongoing or set()

    def end_text(iso: str) -> str:
        return _day_and_clock(iso)[1] + ("+" if iso in ongoing else "")

    t1 = Table(title=f"{name}: eclipses, {when}")
    if not one_day:
        t1.add_column("date")
    t1.add_column("start")
    t1.add_column("end")
    t1.add_column("duration", justify="right")
    t1.add_column("penumbra", justify="right")
    marked = False
    for e in report["eclipses"]:
        day, start = _day_and_clock(e["start_utc"])
        marked |= e["end_utc"] in ongoing
        row = [
            start,
            end_text(e["end_utc"]),
            f"{e['duration_s'] / 60:.1f} min",
            f"{e['penumbra_s']:.1f} s",
        ]
        t1.add_row(*([day] if not one_day else []), *row)
    if marked:
        t1.caption = cut
    t2 = Table(title=f"{name}: ground-station passes, {when}")
    if not one_day:
        t2.add_column("date")
    t2.add_column("station")
    t2.add_column("AOS")
    t2.add_column("LOS")
    t2.add_column("duration", justify="right")
    t2.add_column("max elev.", justify="right")
    marked = False
    for p in report["passes"]:
        day, aos = _day_and_clock(p["aos_utc"])
        marked |= p["los_utc"] in ongoing
        row = [
            p["station"],
            aos,
            end_text(p["los_utc"]),
            f"{p['duration_s'] / 60:.1f} min",
            f"{p['max_elevation_deg']:.1f}°",
        ]
        t2.add_row(*([day] if not one_day else []), *row)
    if marked:
        t2.caption = cut
    hours = f"{round(report['span_s'] / 3600, 2):g} h from {report['start_utc']}"
    return (
        t1 if report["eclipses"] else Text(f"{name}: no eclipses in {hours}"),
        t2 if report["passes"] else Text(f"{name}: no passes in {hours}"),
    )


@sched_app.command(
    "eval",
    epilog="Examples:\n\n  gnomon sched eval --scenarios 20"
    "\n\n  gnomon sched eval --scenario degraded-panels-6u --plot /tmp/plots",
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
