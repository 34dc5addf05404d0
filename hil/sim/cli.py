"""The simulation's commands: ``gnomon sitl`` and ``gnomon world``.

``gnomon sitl [SCENARIO] --orbits N --out DIR`` flies the whole satellite in simulation
(mounted with ``app.command("sitl", epilog=SITL_EXAMPLES)(sitl_command)``: one command,
so its options parse as written; a Typer group with a positional argument would take
``--orbits`` for a sub-command; ``sitl_app`` is the same command as a stand-alone app for tests).
``gnomon world pass-times SCENARIO`` lists eclipses and ground-station passes.
Heavy imports (numpy, sgp4, matplotlib) happen inside the commands.

>>> from typer.testing import CliRunner
>>> r = CliRunner().invoke(world_app, ["pass-times", "leo550-sso-6u", "--hours", "2", "--json"])
>>> r.exit_code
0
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from gnomon.clikit import examples, fail

world_app = typer.Typer(
    help="The simulated world: orbit, Sun, eclipses, ground passes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@world_app.callback()
def _world() -> None:
    """The simulated world: orbit, Sun, eclipses, ground passes."""


def _utc(tai: float) -> str:
    from fsw.core.clock import tai_to_datetime

    dt: datetime = tai_to_datetime(tai)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


@world_app.command(
    "pass-times",
    epilog=examples(
        "gnomon world pass-times leo550-sso-6u",
        "gnomon world pass-times long-eclipse-6u --hours 24 --json",
    ),
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
        fail(str(exc))
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
    # the orbit table's last 10 s grid point may lie just past the span's end; a pass cut
    # by the span is listed whole (its real LOS and maximum elevation), so it ends later
    ongoing = {_utc(e.end_tai) for e in world.eclipses if e.end_tai >= world.end_tai - 10.0}
    ongoing |= {_utc(p.los_tai) for p in world.passes if p.los_tai > end}
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


# ------------------------------------------------------------------ gnomon sitl
sitl_app = typer.Typer(
    help="Simulated mission: flight software, world, ground, report.", add_completion=False
)


def sitl_command(
    scenario: Annotated[
        str, typer.Argument(help="Scenario: a bundled name (hil/scenarios/) or a TOML path.")
    ] = "leo550-sso-6u",
    orbits: Annotated[float, typer.Option(help="Orbits to fly.")] = 3.0,
    out: Annotated[
        Path,
        typer.Option(
            help="Output directory (summary.json, report.html, archive.sqlite, PNG plots)."
        ),
    ] = Path("out/sitl"),
    seed: Annotated[int, typer.Option(help="Random seed (world, radiation, channel).")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary JSON only.")] = False,
    seu_acceleration: Annotated[
        float | None,
        typer.Option(help="Override the scenario's \\[sitl] SEU acceleration (0: no upsets)."),
    ] = None,
    realtime: Annotated[
        bool,
        typer.Option(
            "--realtime",
            help="Fly paced to wall time with the radio on --link (for the ground console).",
        ),
    ] = False,
    link: Annotated[
        str | None, typer.Option(help="Radio link for --realtime, e.g. udp://127.0.0.1:10025.")
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="--realtime: wall seconds to run (default: the orbits).")
    ] = None,
    always_in_view: Annotated[
        bool,
        typer.Option(
            "--always-in-view",
            help="--realtime: keep the link up outside passes (an interactive bench).",
        ),
    ] = False,
    clean_link: Annotated[
        bool,
        typer.Option(
            "--clean-link",
            help="--realtime: no bit errors or losses and a fast downlink (a lab bench), "
            "instead of the scenario's RF channel.",
        ),
    ] = False,
) -> None:
    """Fly a simulated mission and write its report.

    The flight software flies against the simulated world and a simulated ground
    station, over the real CCSDS link layers.

    Writes OUT/summary.json, OUT/report.html (with PNG plots), OUT/archive.sqlite and
    OUT/sitl.log (every log line, flight events included).

    Then `gnomon ground console --link udp://127.0.0.1:10025` flies a `--realtime` run.
    """
    if realtime:
        _realtime(
            scenario, orbits, seed, link, duration, always_in_view, clean_link, seu_acceleration
        )
        return
    if link is not None:
        fail("--link needs --realtime")
    if clean_link or always_in_view:
        fail("--clean-link and --always-in-view go with --realtime")
    summary = _fly_batch(scenario, orbits, seed, out, seu_acceleration, as_json)
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        typer.echo(_summary_text(summary, out))


#: The help's examples of ``gnomon sitl`` (mount it with ``epilog=SITL_EXAMPLES``).
SITL_EXAMPLES = examples(
    "gnomon sitl                  (3 orbits of the default 6U into out/sitl/)",
    "gnomon sitl sitl-short --orbits 0.25 --out out/short",
    "gnomon sitl --realtime --always-in-view --clean-link --link udp://127.0.0.1:10025",
)


def _fly_batch(
    scenario: str,
    orbits: float,
    seed: int,
    out: Path,
    seu_acceleration: float | None,
    as_json: bool,
) -> dict[str, Any]:
    """Fly the mission with a progress bar (on a terminal), write the report; the summary."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from hil.sim.errors import ScenarioError, WorldError
    from hil.sim.report import write_report
    from hil.sim.scenario import load_scenario
    from hil.sim.sitl import run_sitl
    from hil.sim.sitl_config import make_config

    # Refuse bad settings before touching OUT: a run that cannot start leaves the
    # previous run's files (sitl.log, summary.json, archive.sqlite) as they were.
    try:
        load_scenario(scenario)
        make_config(scenario, orbits=orbits, seed=seed, seu_acceleration=seu_acceleration)
    except (ScenarioError, WorldError) as exc:
        fail(str(exc))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create {out}: {exc.strerror}")
    handler = _log_to(out / "sitl.log")
    try:
        with Progress(
            TextColumn("[bold]sitl[/] {task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}% of simulated time"),
            TimeRemainingColumn(),
            transient=True,
            disable=as_json or not sys.stderr.isatty(),
        ) as bar:
            task = bar.add_task(scenario, total=1.0)

            def progress(done_s: float, total_s: float) -> None:
                bar.update(task, completed=done_s / total_s if total_s else 1.0)

            result = run_sitl(
                scenario,
                orbits=orbits,
                seed=seed,
                out_dir=out,
                progress=progress,
                seu_acceleration=seu_acceleration,
            )
        write_report(result, out)
    except (ScenarioError, WorldError) as exc:
        fail(str(exc))
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    return result.summary


def _summary_text(s: dict[str, Any], out: Path) -> str:
    """The few lines ``gnomon sitl`` prints: what flew, what was lost, where the report is."""
    import textwrap

    from hil.sim.results import losses_text

    f, seu, c, b, lk = s["frames"], s["seu"], s["commands"], s["battery"], s["link"]
    lines = [
        f"{s['scenario']}: {s['orbits']:g} orbits, {s['sim_seconds'] / 3600:.2f} h simulated "
        f"in {s['wall_seconds']:.1f} s ({s['sim_wall_ratio']}x real time)",
        f"  frames      {f['seen']} seen, {f['processed']} processed, {f['kept']} kept "
        f"({f['small_runs']} small + {f['large_runs']} large inferences, "
        f"{s['inference_energy_j'] / 1000:.1f} kJ)",
        f"  battery     SOC {100 * b['min_soc']:.1f}..{100 * b['max_soc']:.1f} %, "
        f"{b['floor_violations']} floor violations",
        f"  upsets      {seu['injected']} injected (x{seu['acceleration']:g}), "
        f"{seu['detected']} detected, {seu['repaired']} repaired",
        f"  commands    {c.get('sent', 0)} sent, {c.get('completed', 0)} completed, "
        f"{c.get('failed', 0)} failed ({c.get('resent', 0)} resent)",
        f"  link        {_n(s['passes'], 'pass', 'passes')}: {lk['frames_up']} CLTUs up, "
        f"{lk['frames_down']} TM frames down",
        f"              {_n(lk['bits_corrected'], 'bit')} corrected, "
        f"{_n(lk['frames_rejected'], 'frame')} rejected",
        "  TM lost     " + "\n              ".join(textwrap.wrap(losses_text(lk), 66)),
        f"report: {out / 'report.html'}",
        f"next:   gnomon ground events --archive {out / 'archive.sqlite'}",
    ]
    return "\n".join(lines)


def _n(count: int, one: str, many: str | None = None) -> str:
    """``1 pass``, ``2 passes``.

    >>> _n(1, "pass", "passes"), _n(0, "frame")
    ('1 pass', '0 frames')
    """
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _log_to(path: Path) -> logging.Handler:
    """Send every log record (flight events included) to ``path``, not the terminal."""
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return handler


#: Downlink rate of ``--clean-link``: a lab bench's cable, not a 9,600 bit/s radio.
CLEAN_LINK_BPS = 1_000_000.0


def _realtime(
    scenario: str,
    orbits: float,
    seed: int,
    link: str | None,
    duration: float | None,
    always_in_view: bool,
    clean_link: bool,
    seu_acceleration: float | None,
) -> None:
    import dataclasses

    from fsw.link import LinkError, open_link
    from hil.sim.errors import ScenarioError, WorldError
    from hil.sim.sitl import Sitl
    from hil.sim.sitl_config import make_config

    if link is None:
        fail("--realtime needs --link, e.g. --link udp://127.0.0.1:10025")
    assert link is not None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        cfg = make_config(scenario, orbits=orbits, seed=seed, seu_acceleration=seu_acceleration)
        if always_in_view:
            cfg = dataclasses.replace(
                cfg, channel=dataclasses.replace(cfg.channel, passes_only=False)
            )
        if clean_link:
            cfg = dataclasses.replace(
                cfg,
                channel=dataclasses.replace(
                    cfg.channel,
                    uplink_ber=0.0,
                    downlink_ber=0.0,
                    uplink_drop=0.0,
                    downlink_drop=0.0,
                    downlink_bps=CLEAN_LINK_BPS,
                ),
            )
        sitl = Sitl(scenario, cfg, with_ground=False)
    except (ScenarioError, WorldError) as exc:
        fail(str(exc))
    try:
        transport = open_link(link, role="spacecraft")
    except LinkError as exc:
        fail(str(exc))
    passes = ", ".join(
        f"{p.station} at +{_mmss(p.aos_tai - sitl.world.start_tai)} "
        f"for {_mmss(p.los_tai - p.aos_tai)}"
        for p in sitl.world.passes[:4]
    )
    typer.echo(
        f"flying {scenario} in real time on {link}; "
        f"{'link always up' if always_in_view else 'link up only in passes: ' + passes}",
        err=True,
    )
    try:
        flown = sitl.serve(transport, duration)
    except KeyboardInterrupt:
        flown = sitl.t_s
        typer.echo("stopped", err=True)
    finally:
        transport.close()
    typer.echo(
        json.dumps(
            {
                "sim_seconds": round(flown, 3),
                "radio": dict(sitl.radio.stats),
                "channel": dict(sitl.channel.stats),
                "transport": dict(transport.stats),
                "uplink_backlog_steps": sitl.uplink_backlog_steps,
            }
        )
    )


def _mmss(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) of a duration, as the pass list prints it.

    >>> _mmss(22.6), _mmss(348.5), _mmss(5733.8)
    ('0:23', '5:48', '1:35:34')
    """
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


sitl_app.command(epilog=SITL_EXAMPLES)(sitl_command)

__all__ = ["SITL_EXAMPLES", "sitl_app", "sitl_command"]
