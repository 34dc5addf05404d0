"""Command-line apps of the flight software (wired into ``gnomon`` by ``gnomon/cli.py``).

They only parse arguments and call :mod:`fsw.main` (the flight process) or the
dictionary generator; heavy imports happen inside the commands.

- ``dict_app``: ``gnomon dict export --format json`` (``gnomon dict docs``, developer
  tooling, is mounted on it by ``gnomon/cli.py`` from ``gnomon/docgen.py``);
- ``fsw_app``: ``gnomon fsw sim`` (headless simulated run) and ``gnomon fsw run``
  (real time on a board, with the systemd watchdog).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from gnomon.clikit import emit_json, examples, fail

dict_app = typer.Typer(help="The command/telemetry dictionary.", no_args_is_help=True)
fsw_app = typer.Typer(help="Run the flight software.", no_args_is_help=True)


@dict_app.callback()
def dict_group() -> None:
    """The command/telemetry dictionary."""
    # A callback keeps `dict` a group even with one command of its own (``docs`` is
    # mounted from gnomon/cli.py), so ``gnomon dict export`` parses the same either way.


@dict_app.command(
    "export", epilog=examples("gnomon dict export", "gnomon dict export -o out/dict.json")
)
def dict_export(
    fmt: Annotated[str, typer.Option("--format", help="Output format (json).")] = "json",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to a file.")] = None,
    indent: Annotated[int, typer.Option(help="JSON indentation (0: compact).")] = 2,
) -> None:
    """Print the dictionary of the default flight topology (commands, telemetry, events,
    parameters, report layouts, APIDs, time code)."""
    if fmt.lower() != "json":
        fail(f"unsupported format '{fmt}': only json is available")
    from fsw.app import build_flight
    from fsw.core.dictionary import build_dictionary

    d = build_dictionary(build_flight())
    if out is None:
        emit_json(d, indent=indent or None)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(d, indent=indent or None) + "\n", encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror}")
    typer.echo(f"dictionary written to {out} ({d['content_hash']})", err=True)


@dict_app.command(
    "lock",
    epilog=examples("gnomon dict lock --check", "gnomon dict lock"),
)
def dict_lock(
    check: Annotated[
        bool, typer.Option("--check", help="Only compare; exit 1 on any difference.")
    ] = False,
    lock: Annotated[
        Path | None, typer.Option(help="Lock file (default: fsw/dictionary.lock.json).")
    ] = None,
) -> None:
    """Compare the on-board ids of the default topology with the committed lock, and
    record new ones. A changed or removed id is refused until DICTIONARY_VERSION
    (fsw/core/idlock.py) is bumped: stored commands and archives hold the old ids."""
    from fsw.app import build_flight
    from fsw.core import idlock
    from fsw.core.dictionary import build_dictionary

    path = lock or idlock.lock_path()
    try:
        locked = idlock.load_lock(path)
    except (OSError, ValueError) as exc:
        fail(f"cannot read {path}: {exc}")
    table = idlock.id_table(build_dictionary(build_flight()))
    diff = idlock.compare(locked, table)
    old_version = int(locked.get("dictionary_version", 0))
    for line in diff.lines():
        typer.echo(line, err=True)
    if diff.empty and old_version == idlock.DICTIONARY_VERSION:
        typer.echo(f"{path}: up to date (dictionary version {old_version})", err=True)
        return
    if check:
        fail(f"{path} does not match the code: run `gnomon dict lock`", code=1)
    if diff.breaking and old_version >= idlock.DICTIONARY_VERSION and path.exists():
        fail(
            f"{len(diff.changed)} ids changed and {len(diff.removed)} went away: bump "
            f"DICTIONARY_VERSION in fsw/core/idlock.py to {old_version + 1} if that is "
            "deliberate (time-tagged commands, stored sequences, ground scripts and "
            "archives hold the old ids)",
            code=1,
        )
    try:
        path.write_text(idlock.lock_document(table), encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror}")
    typer.echo(
        f"{path}: {len(diff.added)} added, {len(diff.changed)} changed, "
        f"{len(diff.removed)} removed (dictionary version {idlock.DICTIONARY_VERSION})",
        err=True,
    )


@fsw_app.command("sim", epilog=examples("gnomon fsw sim --seconds 3600 --json"))
def fsw_sim(
    seconds: Annotated[float, typer.Option(help="Simulated seconds to run.")] = 600.0,
    storage: Annotated[
        Path | None, typer.Option(help="Storage directory (default: memory).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run the default topology on a simulated clock as fast as possible, no link."""
    from fsw.main import StartupError, simulate

    if as_json or not sys.stderr.isatty():
        try:
            summary = simulate(seconds, storage)
        except StartupError as exc:
            fail(str(exc))
    else:  # click's progress bar on stderr (the base install has no rich)
        with typer.progressbar(length=int(seconds), label="simulating", file=sys.stderr) as bar:
            shown = [0]

            def advance(now_s: float) -> None:
                bar.update(int(now_s) - shown[0])
                shown[0] = int(now_s)

            try:
                summary = simulate(seconds, storage, on_progress=advance)
            except StartupError as exc:
                fail(str(exc))
    if as_json:
        emit_json(summary)
    else:
        for k, v in summary.items():
            typer.echo(f"{k:>18}: {v}")


_Link = Annotated[
    str | None,
    typer.Option(
        help="Radio link URL, e.g. udp://127.0.0.1:10025 or serial:///dev/ttyAMA0?baud=921600."
    ),
]
_KeyFile = Annotated[
    Path | None,
    typer.Option(
        help="Link configuration and SDLS keys (TOML/JSON). Default: the public test keys."
    ),
]
_SimBridge = Annotated[
    bool,
    typer.Option(
        "--sim-bridge",
        help="HIL bench: EPS, camera and time come from the bench over the "
        "same --link cable (sim-bridge mux); the radio shares it.",
    ),
]
_Models = Annotated[
    Path | None,
    typer.Option(
        help="--sim-bridge: directory with cloudnet-s.gnm and cloudnet-l.gnm "
        "(default: the shipped artifacts)."
    ),
]
_BenchTimeout = Annotated[
    float | None,
    typer.Option(
        help="--sim-bridge: give up if the bench has not answered in this many seconds "
        "(default: wait forever)."
    ),
]
_NvpModel = Annotated[
    str | None,
    typer.Option(
        help="--sim-bridge on a Jetson: switch power modes with `nvpmodel -m ID`, e.g. "
        "'7W=1,15W=0' (scenario mode name=nvpmodel id; off=ID for payload off)."
    ),
]


@fsw_app.command(
    "run",
    epilog=examples(
        "gnomon fsw run --link udp://0.0.0.0:10025 --key-file /etc/gnomon/link.toml",
        "gnomon fsw run --link serial:///dev/ttyAMA0?baud=921600 --sim-bridge",
    ),
)
def fsw_run(
    link: _Link = None,
    key_file: _KeyFile = None,
    duration: Annotated[
        float | None, typer.Option(help="Seconds to run (default: forever).")
    ] = None,
    storage: Annotated[Path | None, typer.Option(help="Storage directory.")] = None,
    sim_bridge: _SimBridge = False,
    models: _Models = None,
    bench_timeout: _BenchTimeout = None,
    nvpmodel: _NvpModel = None,
) -> None:
    """Run the flight software in real time on this machine (board mode): wall clock,
    systemd watchdog when WATCHDOG_USEC is set, the space link on --link. Stop with Ctrl-C.

    With --sim-bridge (a HIL bench) the cable on --link also carries the simulated EPS,
    camera and time from ``gnomon hil run``; the board waits for the bench, then flies
    the same topology as SITL on a wall clock that follows the bench's time."""
    from fsw.main import RunOptions, StartupError, run_flight

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    options = RunOptions(
        link=link,
        key_file=key_file,
        duration_s=duration,
        storage=storage,
        sim_bridge=sim_bridge,
        models=models,
        bench_timeout_s=bench_timeout,
        nvpmodel=nvpmodel,
    )
    try:
        summary = run_flight(options)
    except StartupError as exc:
        fail(str(exc))
    emit_json(summary)


@fsw_app.command(
    "provision",
    epilog=examples(
        "gnomon fsw provision --storage /var/lib/gnomon --key-file /etc/gnomon/link.toml",
    ),
)
def fsw_provision(
    storage: Annotated[Path, typer.Option(help="The board's storage directory.")],
    key_file: _KeyFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Write a new board's first link state (FARM-1 V(R) 0, every SDLS SA at sequence
    number 0 on its configured key) into --storage, once, before the first flight boot.

    A board whose storage holds no link state refuses authenticated commands: the saved
    state is what keeps recorded commands from being accepted after a reboot. This
    refuses a directory that already holds one (docs/ccsds.md says what to do instead)."""
    from fsw.main import StartupError, provision_link_state

    logging.basicConfig(level=logging.WARNING, format="%(name)s %(message)s")
    try:
        summary = provision_link_state(storage, key_file)
    except StartupError as exc:
        fail(str(exc))
    emit_json(summary, indent=None if as_json else 2)


__all__ = ["dict_app", "fsw_app"]
