"""`--json` means JSON (issue #14, section 2): every `gnomon` command that has a `--json`
option, run in its own process as a script runs it (`... --json | jq`), prints one JSON
document on stdout and nothing else: no library banner (HiGHS printed two lines on file
descriptor 1 before the JSON of `gnomon sched eval --json` and `gnomon bench sched`), no
progress, no log line.

The commands are enumerated from the typer apps, so a new `--json` command is covered
the day it is added: it runs with `--json` and the cheap arguments below (none if it
has no entry). Commands that take minutes are marked slow (they run in CI).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import typer
from test_ground_harness import SimLink, flight_dictionary, free_udp_port

from ground import Archive

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "fsw" / "ai" / "artifacts" / "cloudnet-s.gnm"

#: Cheap arguments per command ({archive}, {dict}, {tmp}, {root}, {model}, {link} filled in).
CHEAP_ARGS: dict[str, list[str]] = {
    "fsw sim": ["--seconds", "10"],
    "fsw provision": ["--storage", "{tmp}/provisioned"],
    "dev reqs": ["--root", "{root}"],
    "yamcs config": ["--out", "{tmp}/yamcs"],
    "sitl": ["sitl-short", "--orbits", "0.02", "--out", "{tmp}/sitl"],
    "ground send": [
        "PING",
        "--link",
        "{link}",
        "--dict",
        "{dict}",
        "--wait",
        "sent",
        "--no-keep-arsn",
    ],
    "ground tlm": ["exec.met_s", "--archive", "{archive}"],
    "ground events": ["--archive", "{archive}"],
    "ground commands": ["--archive", "{archive}"],
    "ground replay": ["--archive", "{archive}"],
    "ground files list": ["--archive", "{archive}"],
    "model train": ["--quick", "--out", "{tmp}/train"],
    "model verify": ["{model}"],
    "model inspect": ["{model}"],
    "model build": ["minilm", "--out", "{tmp}/models"],
    "bench minilm": ["--quality", "0", "--repeats", "1", "--models-dir", "{root}/out/models"],
    "seu campaign": ["--model", "{model}", "--flips", "5", "--eval-tiles", "16"],
    "world pass-times": ["sitl-short", "--hours", "2"],
    "sched eval": ["--scenarios", "2"],
    "bench storage": ["--no-cfdp"],  # the CFDP part is `bench cfdp` (slow, below)
    "campaign run": ["{root}/hil/campaigns/smoke.toml", "--workers", "1", "--out", "{tmp}/cr"],
    "campaign report": ["{campaign}"],
    "campaign constellation": [
        *("constellation-12", "--satellites", "1", "--days", "0.01", "--out", "{tmp}/c1"),
    ],
}
#: Commands that need hardware: (reason).
NEEDS_HARDWARE: dict[str, str] = {
    "hil run": "needs a board on a serial port; `hil selftest` runs the same bench over a "
    "pty pair and is checked here",
}
#: Commands that need a spacecraft answering on the link (test_sdls_reboot runs them against
#: one): here they run without one and must fail cleanly: exit 1, nothing on stdout, the
#: reason on stderr.
NEEDS_PEER: dict[str, list[str]] = {
    "ground sdls-reset": ["--link", "{link}", "--timeout", "1", "--state-dir", "{tmp}/peer"],
    "ground files get": ["logs/seu.log", "--link", "{link}", "--timeout", "1", "--dir", "{tmp}/f"],
    "ground files put": [
        "{model}",
        "uplink/models/m.gnm",
        "--link",
        "{link}",
        "--timeout",
        "1",
        "--dir",
        "{tmp}/f",
    ],
}
#: Commands that take more than a few seconds here (measured: 8 s to 3 min each).
SLOW = {
    "hil selftest",
    "bench ccsds",
    "bench runtime",
    "bench minilm",
    "model build",
    "bench rtl",
    "bench sched",
    "bench ground",
    "bench all",
    "bench cfdp",
    "campaign run",
    "campaign constellation",
}


def _walk(command: click.Command, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    from gnomon.cli import MOUNTS, load

    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = load(name) if not path and name in MOUNTS else command.get_command(ctx, name)
            if sub is not None:
                yield from _walk(sub, (*path, name))
    elif any("--json" in getattr(p, "opts", ()) for p in command.params):
        yield path


def json_commands() -> list[str]:
    """Every `gnomon ...` command with a --json option, e.g. ``"ground tlm"``."""
    from gnomon.cli import app

    return [" ".join(p) for p in _walk(typer.main.get_command(app), ())]


def _params() -> list[object]:
    out: list[object] = []
    for name in json_commands():
        marks: list[pytest.MarkDecorator] = []
        if name in NEEDS_HARDWARE:
            marks.append(pytest.mark.skip(reason=NEEDS_HARDWARE[name]))
        if name in SLOW:
            marks.append(pytest.mark.slow)
        out.append(pytest.param(name, marks=marks, id=name.replace(" ", "-")))
    return out


def test_the_list_is_complete() -> None:
    """The enumeration finds the commands the issue names, and the tables name no stale one."""
    names = set(json_commands())
    assert {"sched eval", "bench sched", "ground tlm", "sitl", "fsw sim"} <= names
    assert set(CHEAP_ARGS) | set(NEEDS_HARDWARE) | set(NEEDS_PEER) | SLOW <= names


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("json")
    dict_file = tmp / "dictionary.json"
    dict_file.write_text(json.dumps(flight_dictionary()), encoding="utf-8")
    archive_file = tmp / "archive.sqlite"
    with Archive(archive_file) as archive:
        link = SimLink(archive=archive)
        link.send("PING")
        link.run(5.0)
    from hil.eval.campaign.spec import RunSpec
    from hil.eval.campaign.store import ResultStore

    (tmp / "campaign").mkdir()
    with ResultStore(tmp / "campaign" / "campaign.sqlite") as store:
        run = RunSpec("sitl", "sitl-short", 1, ())
        record = {"status": "ok", "summary": "{}", "figures": {"min_soc": 0.8}}
        store.record(run, record, spec_hash="s", code_version="v", replay="gnomon sitl")
    return {
        "campaign": str(tmp / "campaign"),
        "archive": str(archive_file),
        "dict": str(dict_file),
        "root": str(ROOT),
        "model": str(MODEL),
        "tmp": str(tmp),
    }


@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", _params())
def test_json_means_only_json_on_stdout(name: str, files: dict[str, str], tmp_path: Path) -> None:
    values = {**files, "link": f"udp://127.0.0.1:{free_udp_port()}"}
    args = [a.format(**values) for a in {**CHEAP_ARGS, **NEEDS_PEER}.get(name, [])]
    env = {**os.environ, "GNOMON_STATE_DIR": str(tmp_path / "state"), "COLUMNS": "80"}
    proc = subprocess.run(
        [sys.executable, "-m", "gnomon.cli", *name.split(), *args, "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=850,
        check=False,
    )
    if name in NEEDS_PEER:
        assert proc.returncode == 1, proc.stderr[-2000:]
        assert proc.stdout == "", f"a failed `gnomon {name} --json` printed: {proc.stdout!r}"
        assert "error:" in proc.stderr
        return
    assert proc.returncode == 0, f"gnomon {name} exited {proc.returncode}: {proc.stderr[-2000:]}"
    try:
        json.loads(proc.stdout)
    except ValueError as exc:
        pytest.fail(f"`gnomon {name} --json` printed more than JSON ({exc}):\n{proc.stdout[:600]}")
