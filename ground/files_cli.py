"""``gnomon ground files list|get|put``: the files delivered by CFDP, and transfers by hand.

``list`` reads the ``files`` table of an archive. ``get`` asks the flight to send an
on-board file (``cfdp.FILE_SEND``) and waits until it lands in ``--dir``; ``put`` sends a
local file up (class 2) and waits until the flight has it (a model goes to
``uplink/models/``, then ``cfdp.MODEL_ACTIVATE``).

>>> from typer.testing import CliRunner
>>> "get" in CliRunner().invoke(files_app, ["--help"]).output
True
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from gnomon.clikit import emit_json, examples, fail

files_app = typer.Typer(
    help="Files delivered by CFDP: list them, fetch one from board, send one up.",
    no_args_is_help=True,
    add_completion=False,
)

_Archive = Annotated[Path, typer.Option("--archive", help="Archive file (SQLite).")]
_Dir = Annotated[Path, typer.Option("--dir", help="Where files land (the station's directory).")]
_Link = Annotated[
    str, typer.Option("--link", envvar="GNOMON_LINK", help="Link URL, e.g. udp://127.0.0.1:10025.")
]
_Json = Annotated[bool, typer.Option("--json", help="Print JSON only.")]
_Timeout = Annotated[float, typer.Option(help="Seconds to wait for the transfer.")]


@files_app.command(
    "list", epilog=examples("gnomon ground files list --archive out/sitl/archive.sqlite")
)
def list_cmd(archive: _Archive, as_json: _Json = False) -> None:
    """Every file transfer the archive recorded: name, size, checksum, transaction, state."""
    from ground.files import list_files

    if not archive.exists():
        fail(f"no archive at {archive}")
    rows = [r.to_dict() for r in list_files(archive)]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        typer.echo("no file transfers recorded")
    for r in rows:
        typer.echo(
            f"{r['direction']:>3} {r['state']:<9} {r['name']}  {r['size']} B  "
            f"sha256 {r['sha256'][:16] or '-'}  tx {r['transaction_id']}  {r['condition']}"
        )


def _station(link: str, directory: Path, archive: Path | None) -> tuple[Any, Any]:
    from ground.cli import _load_dictionary, _load_link_config
    from ground.errors import GroundError
    from ground.files import GroundFiles
    from ground.station import GroundStation

    try:
        station = GroundStation(
            _load_dictionary(None), _load_link_config(None), link, None, program="gnomon files"
        )
    except GroundError as exc:
        fail(str(exc))
    if station.session.link is None:
        fail("files need the link itself: close the console that holds it, then retry")
    files = GroundFiles(directory, archive)
    station.session.files = files
    return station, files


def _wait(station: Any, done: Any, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if done():
            return True
        station.wait_for(done, min(1.0, end - time.monotonic()))
    return bool(done())


@files_app.command(
    "get", epilog=examples("gnomon ground files get logs/seu.log --link udp://127.0.0.1:10025")
)
def get_cmd(
    path: Annotated[str, typer.Argument(help="On-board path under the file store.")],
    link: _Link = "udp://127.0.0.1:10025",
    directory: _Dir = Path("files"),
    archive: Annotated[Path | None, typer.Option("--archive", help="Record it here.")] = None,
    class1: Annotated[bool, typer.Option("--class1", help="Unacknowledged (class 1).")] = False,
    timeout: _Timeout = 300.0,
    as_json: _Json = False,
) -> None:
    """Ask the flight to send an on-board file, and wait until it lands in --dir."""
    station, files = _station(link, directory, archive)
    with station:
        station.send("cfdp.FILE_SEND", path=path, dest=path, acknowledged=not class1)
        ok = _wait(station, lambda: any(r.name == path for r in files.records()), timeout)
    rec = next((r for r in files.records() if r.name == path), None)
    files.close()
    if not ok or rec is None:
        fail(f"{path} did not arrive within {timeout:.0f} s", 1)
    if as_json:
        emit_json(rec.to_dict())
    else:
        typer.echo(f"{rec.state}: {directory / path} ({rec.size} B, sha256 {rec.sha256})")
    if rec.state != "finished":
        raise typer.Exit(1)


@files_app.command(
    "put",
    epilog=examples("gnomon ground files put cloudnet-s-v2.gnm uplink/models/cloudnet-s-v2.gnm"),
)
def put_cmd(
    local: Annotated[Path, typer.Argument(help="Local file to send.")],
    dest: Annotated[str, typer.Argument(help="On-board path (under uplink/).")],
    link: _Link = "udp://127.0.0.1:10025",
    directory: _Dir = Path("files"),
    timeout: _Timeout = 600.0,
    as_json: _Json = False,
) -> None:
    """Send a local file up by CFDP class 2 and wait until the flight has verified it."""
    from ground.errors import GroundError

    station, files = _station(link, directory, None)
    with station:
        try:
            tr = files.put(local, dest)
        except GroundError as exc:
            fail(str(exc))
        _wait(station, lambda: tr.done, timeout)
    files.close()
    if not tr.done:
        fail(f"{dest}: not verified on board within {timeout:.0f} s ({tr.state})", 1)
    result = {"dest": dest, "state": tr.state, "condition": tr.condition, "size": tr.size}
    if as_json:
        emit_json(result)
    else:
        typer.echo(f"{dest}: {tr.state} {tr.condition}")
    if tr.state != "finished":
        raise typer.Exit(1)


__all__ = ["files_app"]
