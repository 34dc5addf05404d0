"""``gnomon campaign run|report|constellation``: Monte Carlo campaigns on Dask.

Heavy imports (dask, matplotlib, the simulator) happen inside the commands.

>>> from typer.testing import CliRunner
>>> r = CliRunner().invoke(campaign_app, ["run", "no-such-spec.toml", "--out", "/tmp/x"])
>>> r.exit_code, "no-such-spec.toml" in r.output
(2, True)
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from gnomon.clikit import emit_json, examples, fail

campaign_app = typer.Typer(
    help="Monte Carlo campaigns on Dask: SITL runs, scheduler evaluations, SEU campaigns, "
    "constellations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@campaign_app.callback()
def _campaign() -> None:
    """Monte Carlo campaigns on Dask (docs/campaigns.md)."""


@campaign_app.command(
    "run",
    epilog=examples(
        "gnomon campaign run hil/campaigns/seeds-200.toml --workers 2 --out out/seeds",
        "gnomon campaign run spec.toml --scheduler tcp://10.0.0.5:8786 --out out/big",
    ),
)
def run_cmd(
    spec: Annotated[Path, typer.Argument(help="Campaign spec (TOML, docs/campaigns.md).")],
    out: Annotated[Path, typer.Option(help="Folder of the results (campaign.sqlite).")],
    workers: Annotated[
        int | None,
        typer.Option(help="Worker processes of the local Dask cluster (default: one a core)."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Run on this Dask cluster instead, e.g. tcp://10.0.0.5:8786."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object only.")] = False,
) -> None:
    """Run SPEC's runs on Dask into OUT; runs already done there are skipped."""
    from hil.eval.campaign.engine import CampaignError, run_campaign

    if workers is not None and scheduler is not None:
        fail("give --workers (a local cluster) or --scheduler (an existing one), not both")
    if workers is not None and not 1 <= workers <= 512:
        fail(f"--workers must be within 1..512, got {workers}")
    if not spec.exists():
        fail(f"no campaign spec at {spec}")
    _quiet_dask()
    try:
        with _progress_bar(enabled=not as_json) as progress:
            outcome = run_campaign(
                spec, out, workers=workers, scheduler=scheduler, progress=progress
            )
    except CampaignError as exc:
        fail(str(exc))
    doc = {"out": str(out), **outcome.to_dict()}
    if as_json:
        emit_json(doc)
    else:
        typer.echo(
            f"{outcome.total} runs: {outcome.skipped} done before, {outcome.ok} ok, "
            f"{outcome.failed} failed, in {outcome.wall_s:.1f} s on {outcome.workers} "
            f"workers ({outcome.cluster or 'no cluster needed'})"
        )
        for f in outcome.failures:
            typer.echo(f"  failed {f['run_id']}: {f['error']}")
        typer.echo(f"results: {out / 'campaign.sqlite'}; report: gnomon campaign report {out}")
    if outcome.failed:
        raise typer.Exit(1)


def _quiet_dask() -> None:
    """Dask logs every worker start and stop at INFO: keep its errors only (here and in
    the local cluster's worker processes, which read the environment)."""
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    for noisy in ("distributed", "tornado", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


class _progress_bar:  # noqa: N801 (a context manager used like a function)
    """A rich progress bar on stderr (runs recorded / runs to do), or nothing."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._bar: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("[bold]campaign[/]"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} runs, {task.fields[failed]} failed"),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr),
            transient=False,
        )
        self._bar.__enter__()
        task = self._bar.add_task("runs", total=None, failed=0)
        failed = 0

        def progress(done: int, total: int, record: dict[str, Any] | None) -> None:
            nonlocal failed
            if record is not None and record.get("status") != "ok":
                failed += 1
            self._bar.update(task, completed=done, total=total, failed=failed)

        return progress

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


@campaign_app.command(
    "report",
    epilog=examples("gnomon campaign report out/seeds", "gnomon campaign report out/seeds --json"),
)
def report_cmd(
    out: Annotated[Path, typer.Argument(help="A campaign's folder (holds campaign.sqlite).")],
    worst: Annotated[int, typer.Option(help="Worst runs listed per figure.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object only.")] = False,
) -> None:
    """Write OUT/report.html: distributions of the headline figures, the worst runs with
    the command that replays each, failures, and the constellation value-per-day curve."""
    from hil.eval.campaign.report import write_campaign_report
    from hil.eval.campaign.store import CampaignStoreError

    if not 1 <= worst <= 100:
        fail(f"--worst must be within 1..100, got {worst}")
    try:
        doc = write_campaign_report(out, worst=worst)
    except CampaignStoreError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write the report into {out}: {exc}")
    if as_json:
        emit_json(doc)
    else:
        typer.echo(f"{doc['runs']} runs ({doc['ok']} ok, {doc['failed']} failed): {doc['report']}")


@campaign_app.command(
    "constellation",
    epilog=examples(
        "gnomon campaign constellation constellation-12 --days 1 --workers 2 --out out/c12",
        "gnomon campaign constellation constellation-12 --satellites 6 --days 0.25",
    ),
)
def constellation_cmd(
    scenario: Annotated[str, typer.Argument(help="A constellation scenario (name or TOML).")],
    out: Annotated[Path, typer.Option(help="Output folder (summary.json, fleet archive).")] = Path(
        "out/constellation"
    ),
    satellites: Annotated[
        int | None, typer.Option(help="Satellites (default: the scenario's).")
    ] = None,
    stations: Annotated[
        int | None, typer.Option(help="Use the first N stations (default: all).")
    ] = None,
    days: Annotated[float, typer.Option(help="Simulated days.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
    workers: Annotated[
        int | None,
        typer.Option(help="Spread the satellites over this many local Dask workers."),
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Spread them over this Dask cluster instead.")
    ] = None,
    window: Annotated[float, typer.Option(help="Lock-step window, simulated seconds.")] = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary JSON only.")] = False,
) -> None:
    """Fly N satellites sharing the ground stations for DAYS (one process, or spread over
    Dask workers in lock-step windows); writes OUT/summary.json and OUT/archive/."""
    from fsw.power.errors import PowerError
    from hil.eval.campaign.engine import CampaignError, dask_client
    from hil.sim.constellation import run_constellation
    from hil.sim.errors import ScenarioError, WorldError

    if workers is not None and scheduler is not None:
        fail("give --workers or --scheduler, not both")
    if not 0.0 < days <= 30.0:
        fail(f"--days must be within (0, 30], got {days}")
    if not 1.0 <= window <= 3600.0:
        fail(f"--window must be within 1..3600 s, got {window}")
    _quiet_dask()
    try:
        if workers is None and scheduler is None:
            result = run_constellation(
                scenario,
                satellites=satellites,
                stations=stations,
                days=days,
                seed=seed,
                out_dir=out,
                window_s=window,
            )
        else:
            with dask_client(workers, scheduler) as client:
                result = run_constellation(
                    scenario,
                    satellites=satellites,
                    stations=stations,
                    days=days,
                    seed=seed,
                    out_dir=out,
                    window_s=window,
                    client=client,
                )
    except (ScenarioError, WorldError, PowerError, CampaignError) as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(result.summary))
        return
    s = result.summary
    st = s["stations"]
    typer.echo(
        f"{s['satellites']} satellites, {s['days']:g} day(s): value delivered "
        f"{s['value_delivered']:.1f} ({s['value_per_day']:.1f} per day); stations: "
        f"{st['served']} of {st['candidates']} candidate passes served, "
        f"{st['conflicts']} conflicts resolved by value ({st['denied_s']:.0f} s in view "
        f"denied, {st['handovers']} handovers); {s['wall_seconds']:.0f} s wall"
    )
    typer.echo(f"summary: {out / 'summary.json'}; archive: {out / 'archive'}")


__all__ = ["campaign_app"]
