"""``gnomon ground ...``: the console, one-shot commands for scripts, archive queries.

::

    gnomon ground console --link udp://127.0.0.1:10025 [--archive gnd.sqlite]
    gnomon ground send PING --link udp://127.0.0.1:10025 --wait completed --json
    gnomon ground send PARAM_SET 'params=[{"param_id": "health.max_restarts", "value": 5}]' ...
    gnomon ground tlm 'eps.*' --archive gnd.sqlite --since -10m --json
    gnomon ground events --archive gnd.sqlite --json
    gnomon ground commands --archive gnd.sqlite
    gnomon ground export --archive gnd.sqlite --out tlm.csv [--events]
    gnomon ground replay --archive gnd.sqlite [--into fixed.sqlite]

The dictionary comes from ``--dict FILE`` (or ``$GNOMON_DICT``); without one, the ground
asks this installation's flight software for its dictionary (``gnomon dict export``) in
a subprocess. Archive commands use the dictionary stored in the archive. Exit status:
0 done, 1 the command failed or timed out, 2 bad usage or validation error.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gnomon.clikit import emit_json, examples, fail

if TYPE_CHECKING:
    from ground.station import GroundStation
    from ground.tracker import CommandHandle, Stage

ground_app = typer.Typer(
    help="The ground segment: console, commands, archive.",
    no_args_is_help=True,
    add_completion=False,
)

DictOpt = Annotated[
    Path | None,
    typer.Option(
        "--dict",
        envvar="GNOMON_DICT",
        help="Dictionary JSON (gnomon dict export --format json). Default: ask the installed "
        "flight software.",
    ),
]
KeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        envvar="GNOMON_KEY_FILE",
        help="Link configuration and SDLS keys (TOML/JSON). Default: the public test keys.",
    ),
]
LinkOpt = Annotated[
    str, typer.Option("--link", envvar="GNOMON_LINK", help="Link URL, e.g. udp://127.0.0.1:10025.")
]
ArchiveOpt = Annotated[
    Path, typer.Option("--archive", help="Archive file (SQLite), or a fleet archive's folder.")
]
ScidOpt = Annotated[
    int | None,
    typer.Option("--scid", help="The spacecraft, in a fleet archive (a constellation's)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="TAI seconds, ISO UTC (2026-03-01T12:00:00Z), or -10m/-2h/-30s before the "
        "newest archived packet.",
    ),
]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Like --since.")]


def _load_dictionary(path: Path | None) -> Any:
    from ground.dictionary import Dictionary
    from ground.errors import DictionaryError

    try:
        if path is not None:
            return Dictionary.load(path)
        typer.echo(
            "no --dict: using the dictionary of the installed flight software (gnomon dict export)",
            err=True,
        )
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "gnomon.cli",
                "dict",
                "export",
                "--format",
                "json",
                "--indent",
                "0",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            fail(
                "cannot export the flight dictionary: "
                f"{proc.stderr.strip().splitlines()[-1:] or proc.returncode}; pass --dict"
            )
        return Dictionary.from_json(proc.stdout, source="gnomon dict export")
    except DictionaryError as exc:
        fail(str(exc))
    except (OSError, subprocess.SubprocessError) as exc:
        fail(f"cannot run gnomon dict export: {exc}; pass --dict")


def _load_link_config(path: Path | None) -> Any:
    from fsw.ccsds import TEST_KEY_FILE, CcsdsError, LinkConfig

    if path is None:
        typer.echo(
            "warning: using the public test keys (give --key-file for a real mission)", err=True
        )
    try:
        return LinkConfig.load(path or TEST_KEY_FILE)
    except CcsdsError as exc:
        fail(str(exc))


def _open_archive(path: Path | None, must_exist: bool = False, scid: int | None = None) -> Any:
    """The archive at ``path`` (None: none). ``must_exist`` opens an existing archive
    read-only, for queries: nothing is written into it, and other files are refused. A
    fleet archive's folder (ground.fleet) needs ``scid``: that spacecraft's archive."""
    from ground.archive import Archive
    from ground.errors import ArchiveError
    from ground.fleet import FleetArchive, is_fleet

    if path is None:
        return None
    if must_exist and not path.exists():
        fail(f"no archive at {path}")
    if is_fleet(path):
        try:
            fleet = FleetArchive(path)
            if scid is None:
                held = ", ".join(f"{k} ({v})" for k, v in fleet.spacecraft().items())
                fail(f"{path} is a fleet archive: choose the spacecraft with --scid ({held})")
            return fleet.archive(scid, readonly=must_exist)
        except ArchiveError as exc:
            fail(str(exc))
    if scid is not None:
        fail(f"--scid selects a spacecraft in a fleet archive; {path} holds one spacecraft")
    try:
        return Archive(path, readonly=must_exist)
    except ArchiveError as exc:
        fail(str(exc))


def _channel_units(arch: Any) -> dict[str, str]:
    """Channel name -> units, from the dictionary stored in the archive."""
    d = arch.dictionary()
    return {} if d is None else {n: ch.units for n, ch in d.channels.items() if ch.units}


StateDirOpt = Annotated[
    Path,
    typer.Option(
        "--state-dir",
        envvar="GNOMON_STATE_DIR",
        help="Where ground processes keep their numbering and find each other to share a "
        "link (the first on a link owns it, later ones go through it).",
    ),
]
DEFAULT_STATE_DIR = Path("~/.gnomon")


def _arsn_file(cfg: Any, path: Path | None, enabled: bool, state_dir: Path) -> Path | None:
    """The station's numbering file: SDLS sequence numbers and the TC sequence count."""
    if not enabled:
        return None
    return path or state_dir.expanduser() / f"sdls-arsn-scid{cfg.spacecraft_id}.json"


def parse_time(text: str | None, archive: Any) -> float | None:
    """TAI seconds from ``--since``/``--until`` text (see the option help)."""
    from fsw.ccsds import tai_from_datetime

    if text is None:
        return None
    text = text.strip()
    if text.startswith("-") and text[-1:] in ("s", "m", "h", "d"):
        try:
            amount = float(text[1:-1])
        except ValueError:
            fail(f"'{text}' is not a relative time like -10m")
        scale = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}[text[-1]]
        span = archive.time_range()
        if span is None:
            fail("the archive is empty: a relative time has nothing to count back from")
        return float(span[1] - amount * scale)
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"'{text}' is not a time: give TAI seconds, ISO UTC or -10m")
    if dt.tzinfo is None:
        from datetime import UTC

        dt = dt.replace(tzinfo=UTC)
    return float(tai_from_datetime(dt))


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time, so that inside the console's
    prompt (which patches it) log lines print above the prompt instead of through it."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _setup_logging(verbose: bool) -> None:
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])
    if not verbose:  # the commands print their own stages and timeouts; no second copy
        logging.getLogger("ground.tracker").setLevel(logging.ERROR)


# ------------------------------------------------------------------------- live link


@ground_app.command(
    "console",
    epilog=examples(
        "gnomon ground console --link udp://127.0.0.1:10025",
        "gnomon ground console --link udp://127.0.0.1:10025 < script.txt   (a script)",
    ),
)
def console_cmd(
    link: LinkOpt,
    dictionary: DictOpt = None,
    key_file: KeyOpt = None,
    archive: Annotated[Path | None, typer.Option(help="Archive everything to this file.")] = None,
    history: Annotated[Path, typer.Option(help="Command history file.")] = Path(
        "~/.gnomon/console_history"
    ),
    mode: Annotated[str, typer.Option(help="auto, prompt (terminal) or lines (stdin).")] = "auto",
    accept_timeout: Annotated[float, typer.Option(help="Seconds to wait for acceptance.")] = 10.0,
    complete_timeout: Annotated[float, typer.Option(help="Seconds to wait for completion.")] = 60.0,
    drain: Annotated[
        float, typer.Option(help="At the end, seconds to wait for pending commands.")
    ] = 10.0,
    arsn_file: Annotated[
        Path | None, typer.Option(help="Where the SDLS sequence number is kept between runs.")
    ] = None,
    keep_arsn: Annotated[
        bool,
        typer.Option(help="Keep the SDLS sequence number and TC sequence count between runs."),
    ] = True,
    state_dir: StateDirOpt = DEFAULT_STATE_DIR,
    scid: Annotated[
        int | None,
        typer.Option(
            "--scid",
            min=0,
            max=0x3FF,
            help="Fly this spacecraft of a constellation (its SCID; default: the key "
            "file's), archived under it when --archive is a fleet archive's folder.",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    """Fly the spacecraft interactively: completion, validation, live stages and events.

    A second ground process on the same link (another console, `gnomon ground send`) goes
    through this one: both are served (docs/ground.md, "Several ground processes")."""
    from ground.console import Console
    from ground.errors import GroundError
    from ground.station import GroundStation
    from ground.tracker import CommandTimeouts

    _setup_logging(verbose)
    d = _load_dictionary(dictionary)
    cfg = _load_link_config(key_file)
    if scid is not None:
        import dataclasses

        from ground.fleet import is_fleet

        cfg = dataclasses.replace(cfg, spacecraft_id=scid)
        arch = _open_archive(archive, scid=scid if archive and is_fleet(archive) else None)
    else:
        arch = _open_archive(archive)
    try:
        station = GroundStation(
            d,
            cfg,
            link,
            arch,
            timeouts=CommandTimeouts(accept_timeout, complete_timeout),
            arsn_file=_arsn_file(cfg, arsn_file, keep_arsn, state_dir),
            share_dir=state_dir,
            program="gnomon ground console",
        )
        with station:
            code = Console(
                station, history_file=history.expanduser(), mode=mode, drain_s=drain
            ).run()
    except GroundError as exc:
        fail(str(exc))
    finally:
        if arch is not None:
            arch.close()
    raise typer.Exit(code=code)


@ground_app.command(
    "send",
    epilog=examples(
        "gnomon ground send PING --link udp://127.0.0.1:10025",
        "gnomon ground send SEQ_START seq_id=3 --wait accepted --json",
        "gnomon ground send PING --at +30    (time-tagged: run on board in 30 s)",
    ),
)
def send_cmd(
    command: Annotated[str, typer.Argument(help="Command name, e.g. PING.")],
    args: Annotated[list[str] | None, typer.Argument(help="Arguments as name=value.")] = None,
    link: LinkOpt = "udp://127.0.0.1:10025",
    dictionary: DictOpt = None,
    key_file: KeyOpt = None,
    wait: Annotated[
        str, typer.Option(help="Stage to wait for: sent, accepted, started, completed.")
    ] = "completed",
    timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 30.0,
    at: Annotated[
        str | None,
        typer.Option(help="Run on board later: +SECONDS from now (on-board time) or TAI seconds."),
    ] = None,
    archive: Annotated[Path | None, typer.Option(help="Archive to this file.")] = None,
    arsn_file: Annotated[
        Path | None, typer.Option(help="Where the SDLS sequence number is kept between runs.")
    ] = None,
    keep_arsn: Annotated[
        bool,
        typer.Option(help="Keep the SDLS sequence number and TC sequence count between runs."),
    ] = True,
    state_dir: StateDirOpt = DEFAULT_STATE_DIR,
    as_json: JsonOpt = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    """Send one command and wait for a verification stage (for scripts).

    With --at, the wait is for the (11,4) insert that stores it on board; the command's own
    release is reported separately (and waited for only if it falls within --timeout).
    While a console (or another ground process) has the link open, this goes through it."""
    from ground.console import parse_arguments
    from ground.errors import CommandValidationError, GroundError
    from ground.station import GroundStation
    from ground.tracker import CommandTimeouts, Stage

    _setup_logging(verbose)
    try:
        want = Stage.parse(wait)
    except ValueError as exc:
        fail(str(exc))
    at_s = _at_seconds(at)
    d = _load_dictionary(dictionary)
    cfg = _load_link_config(key_file)
    arch = _open_archive(archive)
    try:
        cmd = d.command(command)
        parsed = parse_arguments(cmd.name, args or [], cmd)
        station = GroundStation(
            d,
            cfg,
            link,
            arch,
            timeouts=CommandTimeouts(timeout, timeout),
            arsn_file=_arsn_file(cfg, arsn_file, keep_arsn, state_dir),
            share_dir=state_dir,
            program="gnomon ground send",
        )
    except CommandValidationError as exc:
        fail(str(exc))
    except GroundError as exc:
        fail(str(exc))
    try:
        with station:
            t0 = time.monotonic()
            insert, handle = _send_now_or_at(station, cmd.name, parsed, at, at_s, timeout)
            waited = insert or handle
            if want is not Stage.SENT:
                station.await_stage(waited, want, timeout)
            released = _await_release(
                station, insert, handle, want, timeout - (time.monotonic() - t0)
            )
            heard = int(station.stats.get("tm_packets") or 0)
    except CommandValidationError as exc:
        fail(str(exc))
    except (GroundError, ValueError) as exc:
        fail(str(exc), 1)
    finally:
        if arch is not None:
            arch.close()
    _print_sent(
        handle,
        want,
        name=cmd.name,
        as_json=as_json,
        heard=heard,
        link=link,
        timeout=timeout,
        insert=insert,
        released=released,
    )


@ground_app.command(
    "sdls-reset",
    epilog=examples(
        "gnomon ground sdls-reset --link udp://127.0.0.1:10025 --key-file link.toml",
        "gnomon ground sdls-reset --sa 1=2    (after losing key 1: SA 1 moves to key 2)",
        "gnomon ground sdls-reset --floor 1=1000000000    (this ground's numbers were lost)",
    ),
)
def sdls_reset_cmd(
    link: LinkOpt = "udp://127.0.0.1:10025",
    dictionary: DictOpt = None,
    key_file: KeyOpt = None,
    sa: Annotated[
        list[str] | None, typer.Option(help="SPI=KEY_ID: give SA SPI another key (repeatable).")
    ] = None,
    floor: Annotated[
        list[str] | None,
        typer.Option(help="SPI=N: refuse every sequence number up to N on SA SPI (repeatable)."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each step.")] = 60.0,
    arsn_file: Annotated[
        Path | None, typer.Option(help="Where the SDLS sequence number is kept between runs.")
    ] = None,
    state_dir: StateDirOpt = DEFAULT_STATE_DIR,
    as_json: JsonOpt = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    """Restore authenticated commanding after the spacecraft lost its link state (or the
    ground lost a key): answer the spacecraft's challenge with an SDLS reset signed by the
    recovery key, naming every SA's key and a floor above every number ever sent."""
    from ground.errors import GroundError
    from ground.station import GroundStation

    _setup_logging(verbose)
    key_ids = _spi_pairs(sa or [], "--sa")
    floors = _spi_pairs(floor or [], "--floor")
    d = _load_dictionary(dictionary)
    cfg = _load_link_config(key_file)
    try:
        arsn = _arsn_file(cfg, arsn_file, True, state_dir)
        station = GroundStation(d, cfg, link, None, arsn_file=arsn)
        with station:
            summary = station.sdls_reset(timeout, key_ids=key_ids, floors=floors)
    except GroundError as exc:
        fail(str(exc), 1)
    if as_json:
        emit_json(summary)
        return
    typer.echo(f"SDLS reset done; FARM-1 V(R)={summary['farm_vr']}")
    for entry in summary["sas"]:
        typer.echo(f"  SPI {entry['spi']}: key {entry['key_id']}, numbers above {entry['floor']}")


def _spi_pairs(items: list[str], option: str) -> dict[int, int]:
    """``["1=2", ...]`` as ``{1: 2}``."""
    out: dict[int, int] = {}
    for item in items:
        left, sep, right = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[int(left)] = int(right)
        except ValueError:
            fail(f"{option} '{item}' is not SPI=NUMBER, e.g. 1=2")
    return out


def _at_seconds(at: str | None) -> float:
    """``--at`` in seconds: ``+SECONDS`` from now (on-board time) or TAI seconds."""
    if at is None:
        return 0.0
    try:
        return float(at[1:] if at.startswith("+") else at)
    except ValueError:
        fail(f"--at '{at}' is not a time: give +SECONDS from now or TAI seconds")


def _send_now_or_at(
    station: GroundStation,
    name: str,
    parsed: dict[str, Any],
    at: str | None,
    at_s: float,
    timeout: float,
) -> tuple[CommandHandle | None, CommandHandle]:
    """Send ``name`` now, or time-tagged for ``--at`` (relative to on-board time):
    (the (11,4) insert's handle or None, the command's handle)."""
    if at is None:
        return None, station.send_args(name, parsed)
    if at.startswith("+"):
        if not station.wait_for(lambda: station.spacecraft_tai() is not None, timeout):
            fail(f"no telemetry within {timeout:g} s: cannot tell on-board time", 1)
        release = float(station.spacecraft_tai() or 0.0) + at_s
    else:
        release = at_s
    return station.send_time_tagged(name, release, **parsed)


def _await_release(
    station: GroundStation,
    insert: CommandHandle | None,
    handle: CommandHandle,
    want: Stage,
    remaining_s: float,
) -> bool:
    """For ``--at``: once the insert got there, also wait for the command's own ``want``
    if its release falls within the time left. True if it was waited for."""
    from ground.tracker import Stage

    if insert is None or want in (Stage.SENT, Stage.SCHEDULED):
        return False
    if not insert.reached(want) or insert.failed or handle.release_tai is None:
        return False
    now_tai = station.spacecraft_tai()
    if now_tai is None or handle.release_tai - now_tai > remaining_s:
        return False
    station.await_stage(handle, want, max(0.0, remaining_s))
    return True


def _print_sent(
    handle: CommandHandle,
    want: Stage,
    *,
    name: str,
    as_json: bool,
    heard: int,
    link: str,
    timeout: float,
    insert: CommandHandle | None = None,
    released: bool = False,
) -> None:
    """Print how far a sent command got; exit 1 if it did not reach ``want``.

    For a time-tagged command, ``want`` is the insert's: the command itself only counts
    when its release was ``released`` (waited for) within the timeout.
    """
    waited = insert or handle
    ok = waited.reached(want) and not waited.failed
    if ok and released:  # the insert got there; judge the released command too
        waited = handle
        ok = handle.reached(want) and not handle.failed
    if as_json:
        doc = {**handle.to_dict(), "waited_for": want.value, "ok": ok}
        if insert is not None:
            doc["insert"] = insert.to_dict()
            doc["release_waited"] = released
        emit_json(doc)
    else:
        if insert is not None:
            typer.echo(insert.summary())
            typer.echo(stage_timeline(insert.to_dict()))
        typer.echo(handle.summary() if insert is None or released else _release_line(handle))
        if insert is None or released:
            typer.echo(stage_timeline(handle.to_dict()))
    if not ok:
        if not as_json and not waited.failed:
            hint = (
                ""
                if heard
                else f"; nothing at all was received on {link}: is the "
                "spacecraft running there, and in a pass?"
            )
            what = f"the insert of {name}" if waited is insert else name
            typer.echo(
                f"error: {what} did not reach {want.value} within {timeout:g} s{hint}",
                err=True,
            )
        raise typer.Exit(code=1)


def _release_line(handle: CommandHandle) -> str:
    """What the ground knows of a time-tagged command it did not wait for."""
    from ground.archive import utc_text

    release = handle.release_tai or 0.0
    return (
        f"{handle.name} #{handle.seq_count} (request id {handle.request_id:#010x}) "
        f"{handle.status.value}: to be released on board at TAI {release:.3f} "
        f"({utc_text(release)}), after this wait; follow it in the console or with "
        "`gnomon ground commands --archive ...`"
    )


def stage_timeline(doc: dict[str, Any]) -> str:
    """The stages of a command handle's ``to_dict()`` with their times after sending.

    >>> stage_timeline({"t_sent_s": 10.0, "stages": [{"stage": "sent", "t_ground_s": 10.0},
    ...                 {"stage": "accepted", "t_ground_s": 11.5}]})
    '  sent +0.00 s -> accepted +1.50 s'
    """
    t0 = doc.get("t_sent_s") or 0.0
    return "  " + " -> ".join(
        f"{s['stage']} +{s['t_ground_s'] - t0:.2f} s" for s in doc.get("stages", [])
    )


# ------------------------------------------------------------------------- archive


@ground_app.command(
    "tlm",
    epilog=examples(
        "gnomon ground tlm eps.soc_pct --archive out/sitl/archive.sqlite",
        "gnomon ground tlm 'eps.*' --archive gnd.sqlite --since -10m --json",
    ),
)
def tlm_cmd(
    name: Annotated[
        str,
        typer.Argument(help="Channel name, component (eps: all its channels) or glob (eps.soc*)."),
    ],
    archive: ArchiveOpt,
    scid: ScidOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="At most this many newest samples per channel.")
    ] = None,
    flagged: Annotated[
        bool,
        typer.Option(
            "--flagged",
            help="List the values kept out of the samples instead (NaN, outside the "
            "channel's valid range, raw values its type cannot hold), with the reason.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Archived samples of channels in a time range."""
    from ground.archive import utc_text
    from ground.errors import ArchiveError

    arch = _open_archive(archive, must_exist=True, scid=scid)
    if flagged:
        _flagged_values(arch, name, since, until, as_json)
        return
    try:
        t0, t1 = parse_time(since, arch), parse_time(until, arch)
        set_aside = len(arch.flagged(_channel_glob(arch, name), t0, t1))
        names = arch.channel_names(name) if any(c in name for c in "*?[") else [name]
        if names == [name] and not arch.channel_names(name):  # a component: eps -> eps.*
            names = arch.channel_names(name.rstrip(".") + ".*") or names
        if not names:
            fail(f"no archived channel matches '{name}'")
        rows = []
        for n in names:
            samples = arch.telemetry(n, t0, t1, limit=limit, newest_first=limit is not None)
            rows += sorted(samples, key=lambda s: s.t_tai)
        units = _channel_units(arch)
        span = None
        if not rows:  # say what the channels do hold
            firsts = [x for n in names for x in arch.telemetry(n, limit=1)]
            lasts = [x for n in names for x in arch.telemetry(n, limit=1, newest_first=True)]
            if firsts:
                span = (min(x.t_tai for x in firsts), max(x.t_tai for x in lasts))
    except ArchiveError as exc:
        fail(str(exc))
    finally:
        arch.close()
    if as_json:  # full values, as archived
        emit_json(
            [
                {
                    "name": s.name,
                    "t_tai": s.t_tai,
                    "utc": utc_text(s.t_tai),
                    "value": s.value,
                    "units": units.get(s.name, ""),
                }
                for s in rows
            ]
        )
        return
    if set_aside:
        typer.echo(
            f"note: {set_aside} value(s) of {name} in this range were flagged and kept out of "
            f"the samples; list them with: gnomon ground tlm '{name}' --archive {archive} "
            "--flagged",
            err=True,
        )
    if not rows:
        _say_nothing_in_range(
            f"no samples of {name}",
            t0,
            t1,
            span,
            "its samples span" if len(names) == 1 else "their samples span",
        )
        return
    for line in sample_lines(rows, units):
        typer.echo(line)


def _channel_glob(arch: Any, name: str) -> str:
    """The glob ``tlm NAME`` selects: a glob as given, a component (eps) its channels."""
    if any(c in name for c in "*?["):
        return name
    if arch.channel_names(name) or not arch.channel_names(name.rstrip(".") + ".*"):
        return name
    return name.rstrip(".") + ".*"


def _flagged_values(
    arch: Any, name: str, since: str | None, until: str | None, as_json: bool
) -> None:
    """``tlm NAME --flagged``: the values kept out of the samples, with the reason."""
    from ground.archive import utc_text
    from ground.errors import ArchiveError

    try:
        t0, t1 = parse_time(since, arch), parse_time(until, arch)
        glob = _channel_glob(arch, name)
        rows = arch.flagged(glob, t0, t1)
    except ArchiveError as exc:
        fail(str(exc))
    finally:
        arch.close()
    if as_json:
        emit_json([r.to_dict() for r in rows])
        return
    if not rows:
        typer.echo(f"no flagged values of {name}", err=True)
        return
    width = max(len(r.name) for r in rows)
    for r in rows:
        typer.echo(f"{utc_text(r.t_tai)}  {r.name:<{width}}  {r.value}  FLAGGED: {r.reason}")


def sample_lines(rows: list[Any], units: dict[str, str]) -> list[str]:
    """Samples as aligned text lines: UTC, channel, value (6 significant digits), units.

    >>> from ground.records import Sample
    >>> sample_lines([Sample("eps.soc_pct", 2.0e9, 90.06070709228516)], {"eps.soc_pct": "%"})
    ['2021-05-18T03:32:43.000Z  eps.soc_pct  90.0607 %']
    """
    from ground.archive import utc_text
    from ground.records import format_value

    width = max((len(s.name) for s in rows), default=0)
    texts = [format_value(s.value) for s in rows]
    vwidth = max((len(t) for t in texts), default=0)
    out = []
    for s, text in zip(rows, texts, strict=True):
        numeric = isinstance(s.value, int | float) and not isinstance(s.value, bool)
        value = text.rjust(vwidth) if numeric else text.ljust(vwidth)  # numbers align right
        out.append(
            f"{utc_text(s.t_tai)}  {s.name:<{width}}  {value} {units.get(s.name, '')}".rstrip()
        )
    return out


def _say_nothing_in_range(
    what: str,
    t0: float | None,
    t1: float | None,
    span: tuple[float, float] | None,
    held_by: str = "the archive spans",
) -> None:
    """Tell a person (on stderr) why nothing printed, and what the archive does hold."""
    from ground.archive import utc_text

    where = ""
    if t0 is not None or t1 is not None:
        where = f" from {utc_text(t0) or 'the start'} to {utc_text(t1) or 'the end'}"
    held = (
        f"; {held_by} {utc_text(span[0])} to {utc_text(span[1])}"
        if span
        else "; the archive holds none"
    )
    typer.echo(f"{what}{where}{held}", err=True)


#: Event severities, lowest first (PUS service 5 subservices 1..4).
SEVERITIES = ("INFO", "LOW", "MEDIUM", "HIGH")


@ground_app.command(
    "events",
    epilog=examples(
        "gnomon ground events --archive out/sitl/archive.sqlite",
        "gnomon ground events --archive gnd.sqlite --severity HIGH --since -1h --json",
    ),
)
def events_cmd(
    archive: ArchiveOpt,
    scid: ScidOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    name: Annotated[str | None, typer.Option(help="Event name or glob.")] = None,
    severity: Annotated[str | None, typer.Option(help="INFO, LOW, MEDIUM or HIGH.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the newest N.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Archived events."""
    from ground.archive import utc_text
    from ground.errors import ArchiveError

    if severity is not None and severity.upper() not in SEVERITIES:
        fail(f"--severity '{severity}' is not one of {', '.join(SEVERITIES)}")
    arch = _open_archive(archive, must_exist=True, scid=scid)
    try:
        t0, t1 = parse_time(since, arch), parse_time(until, arch)
        events = arch.events(t0, t1, name=name, severity=severity, limit=limit)
        span = arch.time_range()
    except ArchiveError as exc:
        fail(str(exc))
    finally:
        arch.close()
    if as_json:
        emit_json(
            [
                {
                    "t_tai": e.t_tai,
                    "utc": utc_text(e.t_tai),
                    "name": e.name,
                    "severity": e.severity,
                    "message": e.message,
                    "args": e.args,
                }
                for e in events
            ],
            default=str,
        )
        return
    if not events:
        which = " ".join(w for w in (severity and severity.upper(), name) if w)
        _say_nothing_in_range(f"no {which + ' ' if which else ''}events", t0, t1, span)
        return
    for e in events:
        typer.echo(f"{utc_text(e.t_tai)}  {e.severity:<6} {e.name}: {e.message}")


@ground_app.command(
    "commands",
    epilog=examples("gnomon ground commands --archive out/sitl/archive.sqlite --name 'PARAM_*'"),
)
def commands_cmd(
    archive: ArchiveOpt,
    scid: ScidOpt = None,
    name: Annotated[str | None, typer.Option(help="Command name or glob.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the newest N.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Archived command history: sent time (UTC), verification stages, time to the last."""
    from ground.errors import ArchiveError

    arch = _open_archive(archive, must_exist=True, scid=scid)
    try:
        records = arch.commands(name=name, limit=limit)
    except ArchiveError as exc:
        fail(str(exc))
    finally:
        arch.close()
    if as_json:
        emit_json([r.to_dict() for r in records])
        return
    for r in records:
        stages = " -> ".join(s.stage.value for s in r.stages)
        failure = f"  {r.failure_code}: {r.reason}" if r.failure_code else ""
        took = ""
        if len(r.stages) > 1:
            took = f" ({r.stages[-1].t_ground_s - r.t_sent_s:.1f} s)"
        typer.echo(
            f"#{r.seq_count:<5} {r.sent_utc or '?':<24} {r.name:<24} {r.status:<10} "
            f"{stages}{took}{failure}"
        )


@ground_app.command(
    "export",
    epilog=examples(
        "gnomon ground export --archive gnd.sqlite --out tlm.csv --pattern 'eps.*'",
        "gnomon ground export --archive gnd.sqlite --out events.csv --events",
    ),
)
def export_cmd(
    archive: ArchiveOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV file to write.")],
    scid: ScidOpt = None,
    pattern: Annotated[str | None, typer.Option(help="Channel glob (default: all).")] = None,
    events: Annotated[bool, typer.Option("--events", help="Export events instead.")] = False,
    since: SinceOpt = None,
    until: UntilOpt = None,
) -> None:
    """Export samples (or events) to CSV."""
    from ground.errors import ArchiveError

    arch = _open_archive(archive, must_exist=True, scid=scid)
    try:
        t0, t1 = parse_time(since, arch), parse_time(until, arch)
        n = arch.export_events_csv(out, t0, t1) if events else arch.export_csv(out, pattern, t0, t1)
    except ArchiveError as exc:
        fail(str(exc))
    finally:
        arch.close()
    typer.echo(f"{n} rows written to {out}", err=True)


@ground_app.command(
    "replay",
    epilog=examples(
        "gnomon ground replay --archive gnd.sqlite --dict fixed.json --into new.sqlite"
    ),
)
def replay_cmd(
    archive: ArchiveOpt,
    dictionary: Annotated[
        Path | None,
        typer.Option("--dict", help="Decode with this dictionary instead of the stored one."),
    ] = None,
    into: Annotated[
        Path | None, typer.Option(help="Write the decoded data to this new archive.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Decode every archived packet again (e.g. with a corrected dictionary)."""
    from collections import Counter

    from ground.dictionary import Dictionary
    from ground.errors import GroundError
    from ground.session import replay_archive

    if into is not None and _same_file(archive, into):
        fail(
            f"--into {into} is the archive being replayed: replaying an archive into itself "
            "would read back what it writes without end; give a new file"
        )
    arch = _open_archive(archive, must_exist=True)
    target = _open_archive(into)
    kinds: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    try:
        d = Dictionary.load(dictionary) if dictionary else None
        for dec in replay_archive(arch, d, into=target):
            kinds[dec.kind] += 1
            if dec.error:
                errors[dec.error] += 1
    except GroundError as exc:
        fail(str(exc))
    finally:
        arch.close()
        if target is not None:
            target.close()
    result = {
        "packets": sum(kinds.values()),
        "by_kind": dict(kinds),
        "decode_errors": sum(errors.values()),
        "errors": dict(errors.most_common(10)),
    }
    emit_json(result, indent=None if as_json else 2)


def _same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name one file (also through links or other spellings).

    >>> _same_file(Path("x.sqlite"), Path("./x.sqlite"))
    True
    """
    try:
        if a.exists() and b.exists():
            return a.samefile(b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _mount_files() -> None:
    from ground.files_cli import files_app

    ground_app.add_typer(files_app, name="files")


_mount_files()

__all__ = ["SEVERITIES", "ground_app", "parse_time"]

if __name__ == "__main__":
    ground_app()
