"""``gnomon hil``: the hardware-in-the-loop bench (mount ``hil_app`` in ``gnomon/cli.py``).

- ``gnomon hil run --port /dev/ttyUSB0 --scenario S --orbits N --speed X``: fly the world
  against a real board running ``gnomon fsw run --link serial://... --sim-bridge``;
- ``gnomon hil selftest --json``: the board as a subprocess on one end of a pty cable,
  the bench on the other, unplug/replug included; exits 1 when a check fails.

>>> from typer.testing import CliRunner
>>> "--speed" in CliRunner().invoke(hil_app, ["run", "--help"]).output
True
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from gnomon.clikit import examples, fail

hil_app = typer.Typer(
    help="Hardware-in-the-loop bench over a serial cable.",
    no_args_is_help=True,
    add_completion=False,
)


def _port_url(port: str, baud: int) -> str:
    """``/dev/ttyUSB0`` -> ``serial:///dev/ttyUSB0?baud=921600``; URLs pass unchanged.

    >>> _port_url("/dev/ttyUSB0", 921600)
    'serial:///dev/ttyUSB0?baud=921600'
    """
    return port if "://" in port else f"serial://{port}?baud={baud}"


@hil_app.command(
    "run",
    epilog=examples(
        "gnomon hil run --port /dev/ttyUSB0 --scenario leo550-sso-6u --orbits 1",
        "gnomon hil run --port serial:///dev/ttyAMA0?baud=115200 --speed 5 --json",
    ),
)
def run_cmd(
    port: Annotated[
        str,
        typer.Option(
            help="The bench's end of the cable: a device (/dev/ttyUSB0) or a serial:// URL."
        ),
    ],
    scenario: Annotated[
        str, typer.Option(help="Scenario: a bundled name (hil/scenarios/) or a TOML path.")
    ] = "leo550-sso-6u",
    orbits: Annotated[float, typer.Option(help="Orbits to fly.")] = 1.0,
    speed: Annotated[
        float,
        typer.Option(
            help="Simulated seconds per wall second (1: real time). The board must keep up."
        ),
    ] = 1.0,
    baud: Annotated[int, typer.Option(help="Line rate when --port is a device.")] = 921600,
    seed: Annotated[int, typer.Option(help="Random seed (world, channel).")] = 1,
    out: Annotated[
        Path, typer.Option(help="Output directory (summary.json, report.html, archive.sqlite).")
    ] = Path("out/hil"),
    board_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the board's hello.")
    ] = 120.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary JSON only.")] = False,
) -> None:
    """Run the world in (sped-up) real time against a board, play the ground station over
    the radio channel, archive everything; write the SITL's summary and report plus link
    and timing statistics."""
    from hil.bench.bench import Bench
    from hil.bench.errors import HilError

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    url = _port_url(port, baud)
    try:
        bench = Bench(url, scenario, orbits=orbits, speed=speed, seed=seed, out_dir=out)
    except HilError as exc:
        fail(str(exc))
    if not as_json:
        typer.echo(f"waiting for the board on {url} ...", err=True)
    try:
        summary = bench.run(board_timeout_s=board_timeout)
    except HilError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("stopped")
    finally:
        bench.close()
    if as_json:
        typer.echo(json.dumps(summary))
        return
    t, c, lk = summary["timing"], summary["commands"], summary["link"]
    typer.echo(
        "\n".join(
            [
                f"{summary['scenario']}: {summary['sim_seconds']:.0f} s simulated in "
                f"{summary['wall_seconds']:.1f} s ({summary['speed']:g}x)",
                f"  commands   {c.get('completed', 0)}/{c.get('sent', 0)} completed, round trip "
                f"p50 {t['rtt_ms']['p50']} ms, p99 {t['rtt_ms']['p99']} ms",
                f"  cable      {lk['rx_bytes_per_s']} B/s down, {lk['tx_bytes_per_s']} B/s up "
                f"(line rate {lk['baud']} baud)",
                f"  board      inference {json.dumps(t['board_inference_ms'])}",
                f"report: {out / 'report.html'}",
            ]
        )
    )


@hil_app.command(
    "selftest",
    epilog=examples(
        "gnomon hil selftest",
        "gnomon hil selftest --json --workdir /tmp/hil",
        "gnomon hil selftest --profile-out out/hil/board.toml --power-w 6.1",
    ),
)
def selftest_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print the result JSON only.")] = False,
    baud: Annotated[int, typer.Option(help="Line rate the pty cable is paced at.")] = 921600,
    speed: Annotated[float, typer.Option(help="World speed-up during the test.")] = 10.0,
    workdir: Annotated[
        Path | None,
        typer.Option(
            help="Keep the ptys' symlinks and the board's log here (default: a temp dir)."
        ),
    ] = None,
    profile_out: Annotated[
        Path | None,
        typer.Option(
            help="Write the board's measured per-tile latency as a board profile file here "
            "(a scenario names it: [payload] board = FILE)."
        ),
    ] = None,
    power_w: Annotated[
        float | None,
        typer.Option(help="The board's power while inferring, from a meter (W), for the profile."),
    ] = None,
) -> None:
    """Board subprocess and bench over a pty pair: commands, telemetry, link efficiency,
    round trips, board inference latency, and an unplug/replug mid-run."""
    from hil.bench.errors import HilError
    from hil.bench.selftest import selftest

    logging.basicConfig(level=logging.ERROR)
    if power_w is not None and not 0.0 < power_w < 1000.0:
        fail(f"--power-w must be within (0, 1000) W, got {power_w}")
    try:
        result = selftest(
            baud=baud, speed=speed, workdir=workdir, profile_out=profile_out, power_w=power_w
        )
    except HilError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(result))
    else:
        for name, ok in result["checks"].items():
            typer.echo(f"  {'PASS' if ok else 'FAIL'}  {name}")
        typer.echo(
            f"link efficiency {result.get('link_efficiency')}, round trip "
            f"{json.dumps(result.get('rtt_ms'))}, board inference "
            f"{json.dumps(result.get('board_inference_ms'))}"
        )
    if not result["ok"]:
        raise typer.Exit(code=1)


__all__ = ["hil_app"]
