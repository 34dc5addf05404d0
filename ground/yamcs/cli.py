"""``gnomon yamcs config`` and ``gnomon yamcs run`` (docs/yamcs.md)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from gnomon.clikit import emit_json, examples, fail

yamcs_app = typer.Typer(
    help="Fly Gnomon from a stock Yamcs 5.12 (AGPL, a separate process).",
    no_args_is_help=True,
    add_completion=False,
)

KeyFile = Annotated[
    Path | None,
    typer.Option(help="Link configuration and key file (default: the public test keys)."),
]
Spi = Annotated[int | None, typer.Option(help="The AES-GCM SA Yamcs uses (default: the first).")]


def _setup(
    out: Path, key_file: Path | None, spi: int | None, http: int, tm: int, tc: int
) -> object:
    from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig
    from fsw.ccsds.errors import ConfigError
    from ground.dictionary import Dictionary, DictionaryError
    from ground.yamcs.config import YamcsConfigError, YamcsPlan, write_config

    path = key_file or TEST_KEY_FILE
    try:
        cfg = LinkConfig.load(path)
        plan = YamcsPlan.make(cfg, http_port=http, tm_port=tm, tc_port=tc, spi=spi)
    except (ConfigError, YamcsConfigError) as exc:
        fail(f"{path}: {exc}")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    try:
        dictionary = Dictionary(_flight_dictionary())
    except DictionaryError as exc:
        fail(str(exc))
    try:
        return write_config(out, cfg, dictionary, plan)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")


def _flight_dictionary() -> dict[str, object]:
    """The dictionary of the default topology, as ``gnomon dict export`` prints it (the
    ground works from the exported dictionary, never from flight code)."""
    out = subprocess.run(
        [sys.executable, "-m", "gnomon.cli", "dict", "export", "--indent", "0"],
        capture_output=True,
        check=False,
        text=True,
    )
    if out.returncode:
        fail(f"gnomon dict export failed: {out.stderr.strip()}")
    doc: dict[str, object] = json.loads(out.stdout)
    return doc


@yamcs_app.command(
    "config",
    epilog=examples(
        "gnomon yamcs config --out out/yamcs",
        "gnomon yamcs config --out out/yamcs --key-file mission.toml --spi 3",
    ),
)
def config_cmd(
    out: Annotated[Path, typer.Option(help="Directory to write (etc/, mdb/, keys/).")],
    key_file: KeyFile = None,
    spi: Spi = None,
    http_port: Annotated[int, typer.Option(help="Yamcs' HTTP port (127.0.0.1).")] = 8090,
    tm_port: Annotated[int, typer.Option(help="UDP port Yamcs takes TM frames on.")] = 10017,
    tc_port: Annotated[int, typer.Option(help="UDP port the spacecraft takes CLTUs on.")] = 10025,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Write a Yamcs configuration (server, instance, processor, MDB, SA key) from the
    link configuration, so frames, VCs, COP-1 and SDLS match the spacecraft's."""
    from ground.yamcs.config import WrittenConfig

    written = _setup(out, key_file, spi, http_port, tm_port, tc_port)
    assert isinstance(written, WrittenConfig)
    summary = {
        "out": str(written.root),
        "etc": str(written.etc),
        "sitl_link": written.plan.sitl_link,
        "web_ui": written.plan.web_ui(),
        "spi": written.plan.spi,
        "mdb": written.xtce.summary(),
    }
    if as_json:
        emit_json(summary)
        return
    typer.echo(f"Yamcs configuration written to {written.root}")
    typer.echo(f"  MDB: {written.xtce.summary()}")
    typer.echo(f"  spacecraft link: --link '{written.plan.sitl_link}'")


@yamcs_app.command(
    "run",
    epilog=examples(
        "gnomon yamcs run --sitl",
        "gnomon yamcs run --sitl --duration 600 --data-dir out/yamcs-data",
    ),
)
def run_cmd(
    sitl: Annotated[bool, typer.Option("--sitl", help="Also fly the SITL satellite.")] = False,
    data_dir: Annotated[
        Path | None, typer.Option(help="Yamcs data dir (default: a temp dir, removed).")
    ] = None,
    key_file: KeyFile = None,
    spi: Spi = None,
    http_port: Annotated[int, typer.Option(help="Yamcs' HTTP port (127.0.0.1).")] = 8090,
    tm_port: Annotated[int, typer.Option(help="UDP port Yamcs takes TM frames on.")] = 10017,
    tc_port: Annotated[int, typer.Option(help="UDP port the spacecraft takes CLTUs on.")] = 10025,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: Ctrl-C).")
    ] = None,
) -> None:
    """Start Yamcs on loopback, wait until it answers, start the SITL satellite, bring
    COP-1 up and print the web UI's address."""
    from ground.yamcs.config import WrittenConfig
    from ground.yamcs.server import YamcsError, YamcsServer, ensure_cop1, yamcs_installed

    problem = yamcs_installed()
    if problem:
        fail(problem)
    work = Path(tempfile.mkdtemp(prefix="gnomon-yamcs-etc-"))
    written = _setup(work, key_file, spi, http_port, tm_port, tc_port)
    assert isinstance(written, WrittenConfig)
    plan = written.plan
    server = YamcsServer(written.etc, plan.url, data_dir=data_dir)
    sat: subprocess.Popen[bytes] | None = None
    try:
        started = server.start()
        typer.echo(f"Yamcs up in {started:.1f} s (log: {server.log_path})", err=True)
        if sitl:
            cmd = [sys.executable, "-m", "gnomon.cli", "sitl", "--realtime", "--always-in-view"]
            cmd += ["--clean-link", "--link", plan.sitl_link]
            if key_file is not None:
                cmd += ["--key-file", str(key_file)]
            sat = subprocess.Popen(cmd)
            from yamcs.client import YamcsClient

            state = ensure_cop1(YamcsClient(plan.url))
            typer.echo(f"SITL satellite on {plan.sitl_link}; COP-1 {state}", err=True)
        typer.echo(f"Yamcs web UI: {plan.web_ui()}")
        t0 = time.monotonic()
        while duration is None or time.monotonic() - t0 < duration:
            if server.proc is not None and server.proc.poll() is not None:
                fail(f"Yamcs stopped:\n{server.log_tail()}")
            time.sleep(0.5)
    except YamcsError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        typer.echo("stopping", err=True)
    finally:
        if sat is not None and sat.poll() is None:
            sat.terminate()
            sat.wait(20)
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


__all__ = ["yamcs_app"]
