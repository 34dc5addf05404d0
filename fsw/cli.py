"""Command-line apps of the flight core (wired into ``gnomon`` by ``gnomon/cli.py``).

- ``dict_app``: ``gnomon dict export --format json`` (``gnomon dict docs``, developer
  tooling, is mounted on it by ``gnomon/cli.py`` from ``gnomon/docgen.py``);
- ``fsw_app``: ``gnomon fsw sim`` (headless simulated run) and ``gnomon fsw run``
  (real time on a board, with the systemd watchdog).
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

dict_app = typer.Typer(help="The command/telemetry dictionary.", no_args_is_help=True)
fsw_app = typer.Typer(help="Run the flight software.", no_args_is_help=True)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


@dict_app.command("export")
def dict_export(
    fmt: Annotated[str, typer.Option("--format", help="Output format (json).")] = "json",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to a file.")] = None,
    indent: Annotated[int, typer.Option(help="JSON indentation (0: compact).")] = 2,
) -> None:
    """Print the dictionary of the default flight topology (commands, telemetry, events,
    parameters, report layouts, APIDs, time code)."""
    if fmt.lower() != "json":
        _fail(f"unsupported format '{fmt}': only json is available")
    from fsw.app import build_flight
    from fsw.core.dictionary import build_dictionary

    d = build_dictionary(build_flight())
    text = json.dumps(d, indent=indent or None, sort_keys=False)
    if out is None:
        typer.echo(text)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {out}: {exc.strerror}")
    typer.echo(f"dictionary written to {out} ({d['content_hash']})", err=True)


def _summary(
    fs: Any, packets: Counter[tuple[int, int]], nbytes: int, cpu_s: float, cycles: int
) -> dict[str, Any]:
    return {
        "met_s": round(fs.clock.met(), 3),
        "cycles": cycles,
        "cpu_s": round(cpu_s, 4),
        "cpu_us_per_s": round(cpu_s / max(fs.clock.met(), 1e-9) * 1e6, 2),
        "mode": fs.mode.name,
        "tm_packets": sum(packets.values()),
        "tm_bytes": nbytes,
        "tm_by_type": {f"{s},{ss}": n for (s, ss), n in sorted(packets.items())},
        "dl_dropped": fs.telemetry("exec.dl_dropped"),
        "events": len(fs.recent_events),
    }


@fsw_app.command("sim")
def fsw_sim(
    seconds: Annotated[float, typer.Option(help="Simulated seconds to run.")] = 600.0,
    storage: Annotated[
        Path | None, typer.Option(help="Storage directory (default: memory).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run the default topology on a simulated clock as fast as possible, no link."""
    from rich.progress import Progress

    from fsw.app import build_flight
    from fsw.ccsds import PusTm
    from fsw.core.errors import CoreError

    if not seconds > 0:
        _fail("--seconds must be positive")
    try:
        fs = build_flight(storage_dir=storage)
    except CoreError as exc:
        _fail(exc.reason)
    packets: Counter[tuple[int, int]] = Counter()
    nbytes = 0
    cycles = 0
    chunk = 100.0
    t0 = time.process_time()
    done = 0.0
    with Progress(transient=True, console=None, disable=as_json or not sys.stderr.isatty()) as bar:
        task = bar.add_task("simulating", total=seconds)
        while done < seconds:
            dt = min(chunk, seconds - done)
            cycles += fs.step(dt)
            done += dt
            for raw in fs.downlink_packets():
                tm = PusTm.decode(raw)
                packets[(tm.service, tm.subservice)] += 1
                nbytes += len(raw)
            bar.update(task, completed=done)
    summary = _summary(fs, packets, nbytes, time.process_time() - t0, cycles)
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        for k, v in summary.items():
            typer.echo(f"{k:>18}: {v}")


@fsw_app.command("run")
def fsw_run(
    link: Annotated[
        str | None,
        typer.Option(
            help="Radio link URL, e.g. udp://127.0.0.1:10025 or serial:///dev/ttyAMA0?baud=921600."
        ),
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option(
            help="Link configuration and SDLS keys (TOML/JSON). Default: the public test keys."
        ),
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="Seconds to run (default: forever).")
    ] = None,
    storage: Annotated[Path | None, typer.Option(help="Storage directory.")] = None,
    sim_bridge: Annotated[
        bool,
        typer.Option(
            "--sim-bridge",
            help="HIL bench: EPS, camera and time come from the bench over the "
            "same --link cable (sim-bridge mux); the radio shares it.",
        ),
    ] = False,
    models: Annotated[
        Path | None,
        typer.Option(
            help="--sim-bridge: directory with cloudnet-s.gnm and cloudnet-l.gnm "
            "(default: the shipped artifacts)."
        ),
    ] = None,
    bench_timeout: Annotated[
        float | None,
        typer.Option(
            help="--sim-bridge: give up if the bench has not answered in this many seconds "
            "(default: wait forever)."
        ),
    ] = None,
    nvpmodel: Annotated[
        str | None,
        typer.Option(
            help="--sim-bridge on a Jetson: switch power modes with `nvpmodel -m ID`, e.g. "
            "'7W=1,15W=0' (scenario mode name=nvpmodel id; off=ID for payload off)."
        ),
    ] = None,
) -> None:
    """Run the flight software in real time on this machine (board mode): wall clock,
    systemd watchdog when WATCHDOG_USEC is set, the space link on --link. Stop with Ctrl-C.

    With --sim-bridge (a HIL bench) the cable on --link also carries the simulated EPS,
    camera and time from ``gnomon hil run``; the board waits for the bench, then flies
    the same topology as SITL on a wall clock that follows the bench's time."""
    import logging

    from fsw.app import build_flight
    from fsw.ccsds import CcsdsError
    from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig
    from fsw.comms.radio import RadioHost
    from fsw.core.clock import WallClock
    from fsw.core.errors import CoreError
    from fsw.core.health import SdNotifier
    from fsw.link import LinkError, open_link

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if duration is not None and not duration > 0:
        _fail("--duration must be positive")
    if key_file is None:
        typer.echo(
            "warning: flying the public test keys (give --key-file for a real mission)", err=True
        )
    try:
        cfg = LinkConfig.load(key_file or TEST_KEY_FILE)
    except (CcsdsError, OSError) as exc:
        _fail(f"cannot load key file {key_file}: {exc}")
    if sim_bridge:
        if link is None:
            _fail("--sim-bridge needs --link, e.g. serial:///dev/ttyAMA0?baud=921600")
        assert link is not None
        _fly_on_bridge(link, cfg, storage, models, bench_timeout, duration, nvpmodel)
        return
    try:
        fs = build_flight(
            clock=WallClock(), storage_dir=storage, link_config=cfg, watchdog=SdNotifier.from_env()
        )
    except CoreError as exc:
        _fail(exc.reason)
    radio = RadioHost(fs)
    t0 = time.process_time()
    cycles = 0
    if link is None:
        typer.echo("no --link: the downlink is counted and discarded", err=True)
    try:
        if link is not None:
            try:
                transport = open_link(link, role="spacecraft")
            except LinkError as exc:
                _fail(str(exc))
            typer.echo(f"flying on {link}", err=True)
            try:
                cycles = radio.serve(transport, duration)
            finally:
                transport.close()
        else:
            elapsed = 0.0
            while duration is None or elapsed < duration:
                step = 1.0 if duration is None else min(1.0, duration - elapsed)
                cycles += fs.run_realtime(step)
                elapsed += step
                radio.downlink()
    except KeyboardInterrupt:
        typer.echo("stopped", err=True)
    summary = {
        "met_s": round(fs.clock.met(), 3),
        "cycles": cycles,
        "cpu_s": round(time.process_time() - t0, 4),
        "mode": fs.mode.name,
        "radio": dict(radio.stats),
        "link": radio.link.counters,
    }
    typer.echo(json.dumps(summary))


def _fly_on_bridge(
    link: str,
    cfg: Any,
    storage: Path | None,
    models: Path | None,
    bench_timeout: float | None,
    duration: float | None,
    nvpmodel: str | None = None,
) -> None:
    """``fsw run --sim-bridge``: wait for the bench, then fly on its world and radio.

    SIGINT and SIGTERM (systemd's stop) end the run cleanly: the summary JSON is printed.
    """
    import signal
    import threading

    import torch

    from fsw.app import build_flight
    from fsw.comms.radio import RadioHost
    from fsw.core.errors import CoreError
    from fsw.core.health import SdNotifier
    from fsw.hal.board import (
        DEFAULT_MODELS_DIR,
        BoardBridge,
        Bridge,
        NvpModel,
        board_info,
        shipped_model_files,
    )
    from fsw.link import LinkError, open_link

    # One tile at a time, the int8 kernels are fastest single-threaded (and a second
    # thread fighting the executive for a small board's cores costs 50x in latency).
    torch.set_num_threads(1)
    try:
        switch = NvpModel.parse(nvpmodel) if nvpmodel else None
    except ValueError as exc:
        _fail(str(exc))
    files = shipped_model_files(models or DEFAULT_MODELS_DIR)
    info = board_info(files)
    if switch is not None:
        info["nvpmodel"] = switch.modes
    typer.echo(f"board inference latency: {json.dumps(info.get('inference_ms'))}", err=True)
    try:
        transport = open_link(link, role="spacecraft")
    except LinkError as exc:
        _fail(str(exc))
    bridge = BoardBridge(transport, info=info, apply_power_mode=switch)
    stop = threading.Event()
    try:
        typer.echo(f"waiting for the bench on {link}", err=True)
        try:
            synced = bridge.wait_synced(bench_timeout)
        except KeyboardInterrupt:
            _fail("stopped while waiting for the bench")
        if not synced:
            _fail(f"no bench answered on {link} in {bench_timeout} s")
        typer.echo(
            f"bench session {bridge.clock.session}, speed {bridge.clock.speed:g}x; flying", err=True
        )
        try:
            fs = build_flight(
                clock=bridge.clock,
                storage_dir=storage,
                link_config=cfg,
                watchdog=SdNotifier.from_env(),
                hal=bridge.hal(files),
                components=[Bridge(bridge)],
            )
        except CoreError as exc:
            _fail(exc.reason)
        radio = RadioHost(fs)
        previous = {
            sig: signal.signal(sig, lambda *_: stop.set())
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            cycles = radio.serve(bridge.radio, duration, stop=stop.is_set, on_cycle=bridge.service)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    finally:
        bridge.close()
    summary = {
        "met_s": round(fs.clock.met(), 3),
        "cycles": cycles,
        "stopped_by_signal": stop.is_set(),
        "mode": fs.mode.name,
        "radio": dict(radio.stats),
        "bridge": dict(bridge.stats),
        "mux": {**bridge.port.stats, **bridge.port.demux.stats},
        "cable": dict(transport.stats),
        "payload": {
            k: fs.telemetry(f"payload.{k}")
            for k in ("frames_seen", "frames_processed", "small_runs", "large_runs")
        },
    }
    typer.echo(json.dumps(summary))


__all__ = ["dict_app", "fsw_app"]
