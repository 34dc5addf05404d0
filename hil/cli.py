"""``gnomon sitl``: fly the whole satellite in simulation (mounted by ``gnomon/cli.py``).

Mount it with ``app.command("sitl")(sitl_command)``: one command, so
``gnomon sitl [SCENARIO] --orbits N --out DIR`` parses as written (a Typer group with a
positional argument would take ``--orbits`` for a sub-command). ``sitl_app`` is the same
command as a stand-alone single-command Typer app (``python -m`` style use, tests).

>>> from typer.testing import CliRunner
>>> "--orbits" in CliRunner().invoke(sitl_app, ["--help"]).output
True
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

sitl_app = typer.Typer(
    help="Simulated mission: flight software, world, ground, report.", add_completion=False
)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


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

    Examples: `gnomon sitl` (3 orbits of the default 6U into out/sitl/);
    `gnomon sitl sitl-short --orbits 0.25 --out out/short`;
    `gnomon sitl --realtime --always-in-view --clean-link --link udp://127.0.0.1:10025`
    (then `gnomon ground console --link udp://127.0.0.1:10025`).
    """
    from hil.sim.errors import ScenarioError, WorldError

    if realtime:
        _realtime(
            scenario, orbits, seed, link, duration, always_in_view, clean_link, seu_acceleration
        )
        return
    if link is not None:
        _fail("--link needs --realtime")
    if clean_link or always_in_view:
        _fail("--clean-link and --always-in-view go with --realtime")
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from hil.sim.sitl import run_sitl

    show = not as_json and sys.stderr.isatty()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail(f"cannot create {out}: {exc.strerror}")
    handler = _log_to(out / "sitl.log")
    try:
        with Progress(
            TextColumn("[bold]sitl[/] {task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}% of simulated time"),
            TimeRemainingColumn(),
            transient=True,
            disable=not show,
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
    except (ScenarioError, WorldError) as exc:
        _fail(str(exc))
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    s = result.summary
    if as_json:
        typer.echo(json.dumps(s))
        return
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
        f"{_n(lk['frames_rejected'], 'frame')} rejected, {_n(lk['packets_lost'], 'packet')} "
        "lost",
        f"report: {out / 'report.html'}",
        f"next:   gnomon ground events --archive {out / 'archive.sqlite'}",
    ]
    typer.echo("\n".join(lines))


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
    from hil.sim.sitl import Sitl, make_config

    if link is None:
        _fail("--realtime needs --link, e.g. --link udp://127.0.0.1:10025")
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
        _fail(str(exc))
    try:
        transport = open_link(link, role="spacecraft")
    except LinkError as exc:
        _fail(str(exc))
    passes = ", ".join(
        f"{p.station} +{(p.aos_tai - sitl.world.start_tai) / 60:.0f} min"
        for p in sitl.world.passes[:4]
    )
    typer.echo(
        f"flying {scenario} in real time on {link}; "
        f"{'link always up' if always_in_view else 'passes: ' + passes}",
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
            }
        )
    )


sitl_app.command()(sitl_command)

__all__ = ["sitl_app", "sitl_command"]
