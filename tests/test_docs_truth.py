"""The docs say what the code does: command lines they show run as written, the channels
they name exist, the scenarios they list are the bundled ones; ``gnomon --version``."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import typer
from typer.testing import CliRunner

from fsw.app import build_flight
from fsw.core.clock import SimClock
from fsw.core.dictionary import build_dictionary
from gnomon.cli import MOUNTS, app, load

ROOT = Path(__file__).resolve().parents[1]
DOCS = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]


def _command_lines() -> list[tuple[str, str]]:
    """Every ``gnomon ...`` line in the docs that gives options: inline code and shell
    blocks (prompts, comments and pipes removed)."""
    found: set[tuple[str, str]] = set()
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        name = str(path.relative_to(ROOT))
        for m in re.finditer(r"`(gnomon [^`\n]+)`", text):
            found.add((name, m.group(1)))
        for block in re.findall(r"```(?:sh|bash|console)?\n(.*?)```", text, re.S):
            for line in block.splitlines():
                line = line.strip().removeprefix("$ ").strip()
                if line.startswith("gnomon "):
                    found.add((name, re.split(r"\s+#|[|<&]", line)[0].strip()))
    return sorted((f, line) for f, line in found if " --" in line)


def _resolve(tokens: list[str]) -> tuple[click.Command | None, list[str]]:
    root = typer.main.get_command(app)
    ctx = click.Context(root)
    cmd: click.Command = root
    rest = tokens[1:]
    while isinstance(cmd, click.Group) and rest and not rest[0].startswith("-"):
        sub = load(rest[0]) if cmd is root and rest[0] in MOUNTS else cmd.get_command(ctx, rest[0])
        if sub is None:
            return None, rest
        cmd, rest = sub, rest[1:]
    return cmd, rest


def test_command_lines_in_the_docs_give_required_options_and_no_unknown_ones() -> None:
    lines = _command_lines()
    assert len(lines) > 30
    problems = []
    for where, line in lines:
        tokens = shlex.split(line.replace("...", ""))
        cmd, rest = _resolve(tokens)
        if cmd is None:
            problems.append(f"{where}: `{line}`: no such command")
            continue
        known = {"--help"}
        for p in cmd.params:
            known.update(getattr(p, "opts", []), getattr(p, "secondary_opts", []))
        given = {t.split("=", 1)[0] for t in rest if t.startswith("--")}
        for p in cmd.params:
            if isinstance(p, click.Option) and p.required and not given & set(p.opts):
                problems.append(f"{where}: `{line}` lacks {p.opts[0]}")
        problems += [f"{where}: `{line}`: unknown option {o}" for o in sorted(given - known)]
    assert problems == []


def test_docs_world_lists_every_bundled_scenario() -> None:
    text = (ROOT / "docs" / "world.md").read_text(encoding="utf-8")
    bundled = sorted(p.stem for p in (ROOT / "hil" / "scenarios").glob("*.toml"))
    assert bundled and [name for name in bundled if f"`{name}`" not in text] == []


def test_channels_and_parameters_named_in_the_ground_guide_exist() -> None:
    doc = build_dictionary(build_flight(SimClock(0.0)))
    components = {c["name"] for c in doc["components"]}
    names = {c["name"] for c in doc["telemetry"]} | {p["name"] for p in doc["parameters"]}
    text = (ROOT / "docs" / "ground.md").read_text(encoding="utf-8")
    named = {
        f"{comp}.{rest}"
        for comp, rest in re.findall(r"(?<![\w./-])([a-z]+)\.([a-z][a-z0-9_]*)\b(?![.(/-])", text)
        if comp in components and rest not in ("md", "py", "json", "sqlite", "csv", "toml")
    }
    assert {"eps.soc_pct", "health.max_restarts"} <= named
    assert sorted(named - names) == []


def test_gnomon_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert re.fullmatch(r"gnomon \d+\.\d+\.\d+\S* \(dictionary version \d+\)\n", result.output)
