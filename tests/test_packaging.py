"""Packaging: a flight board installs only what flies (docs/packaging.md).

The board is simulated by a Python process in which the extras' modules cannot be
imported (``sys.modules[name] = None``, which is what an absent package looks like to
``import`` and to ``importlib.util.find_spec``): the flight commands must work there and
the others must say which extra to install.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gnomon.cli import EXTRA_MODULES, MOUNTS, app

ROOT = Path(__file__).resolve().parents[1]
TOP_LEVEL = {"fsw", "ground", "hil", "models", "benchmarks", "gnomon"}
#: What a board does not install: every extra's modules (the base install has none of them).
NOT_ON_A_BOARD = sorted({m for modules in EXTRA_MODULES.values() for m in modules})

_BOARD = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None
sys.argv = ["gnomon", *sys.argv[1:]]
from gnomon.cli import main
main()
"""


def gnomon_on_a_board(*args: str) -> subprocess.CompletedProcess[str]:
    """``gnomon ARGS`` in a process that cannot import any extra's modules."""
    return subprocess.run(
        [sys.executable, "-c", _BOARD.format(blocked=NOT_ON_A_BOARD), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    "args", [["--help"], ["fsw", "--help"], ["fsw", "run", "--help"], ["dict", "--help"]]
)
def test_the_flight_commands_run_without_any_extra(args: list[str]) -> None:
    proc = gnomon_on_a_board(*args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: gnomon") and proc.stderr == ""


def test_the_board_help_still_lists_every_command() -> None:
    out = gnomon_on_a_board("--help").stdout
    assert all(re.search(rf"^\s+{name}\s", out, re.M) for name in ("dict", "fsw", *MOUNTS))


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (["ground", "tlm", "--help"], "ground"),
        (["sitl", "--orbits", "1"], "sim"),
        (["hil", "selftest"], "bench"),
        (["model", "inspect", "x.gnm"], "lab"),
    ],
)
def test_a_command_without_its_extra_says_which_to_install(args: list[str], extra: str) -> None:
    proc = gnomon_on_a_board(*args)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (
        f"error: gnomon {args[0]} needs the '{extra}' extra: pip install 'gnomon[{extra}]'\n"
    )


def test_with_the_extras_installed_the_same_commands_run() -> None:
    result = CliRunner().invoke(app, ["ground", "tlm", "--help"])
    assert result.exit_code == 0 and "--since" in result.output


def test_a_benchmark_without_its_module_names_the_bench_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import benchmarks.cli

    def needs_cocotb() -> dict[str, object]:
        raise ModuleNotFoundError("No module named 'cocotb'", name="cocotb.runner")

    monkeypatch.setattr(benchmarks.cli, "_bench_functions", lambda: {"rtl": needs_cocotb})
    result = CliRunner().invoke(app, ["bench", "rtl", "--json"])
    assert result.exit_code == 2
    assert "gnomon bench rtl needs the 'bench' extra (cocotb is missing)" in result.output


def test_a_module_missing_deep_inside_a_command_ends_in_a_sentence(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import gnomon.cli

    def command_needing_rich() -> None:
        raise ModuleNotFoundError("No module named 'rich'", name="rich.progress")

    monkeypatch.setattr(gnomon.cli, "app", command_needing_rich)
    with pytest.raises(SystemExit) as exit_:
        gnomon.cli.main()
    assert exit_.value.code == 2
    assert "error: this command needs rich, which is not installed here" in capsys.readouterr().err


# --------------------------------------------------------------- pyproject.toml extras


def _normalize(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def _extra_distributions(extra: str) -> set[str]:
    """Distributions of ``extra`` in pyproject.toml, its ``gnomon[...]`` references expanded."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    dists: set[str] = set()
    for req in extras[extra]:
        name = re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0]
        if name == "gnomon":
            for inner in re.findall(r"\[(.*)\]", req)[0].split(","):
                dists |= _extra_distributions(inner.strip())
        else:
            dists.add(_normalize(name))
    return dists


@pytest.mark.parametrize("extra", sorted(EXTRA_MODULES))
def test_the_modules_gnomon_checks_are_those_the_extra_installs(extra: str) -> None:
    owners = importlib.metadata.packages_distributions()
    checked = {m: {_normalize(d) for d in owners.get(m, [])} for m in EXTRA_MODULES[extra]}
    dists = _extra_distributions(extra)
    assert {m for m, by in checked.items() if not by & dists} == set()  # none from elsewhere
    assert {d for d in dists if not any(d in by for by in checked.values())} == set()


def test_every_extra_a_command_needs_is_defined() -> None:
    needed = {m.extra for m in MOUNTS.values() if m.extra}
    assert needed <= set(EXTRA_MODULES)
    for extra in needed:
        assert _extra_distributions(extra)


def test_dev_installs_every_extra() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    everything = set().union(*(_extra_distributions(e) for e in extras if e != "dev"))
    assert everything <= _extra_distributions("dev")


# ---------------------------------------------------------------- top-level packages


def test_the_distribution_installs_exactly_six_top_level_packages() -> None:
    installed = importlib.metadata.distribution("gnomon").read_text("top_level.txt") or ""
    assert set(installed.split()) == TOP_LEVEL


def test_pyproject_packages_only_the_six_top_level_folders() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]
    patterns = setuptools["packages"]["find"]["include"]
    packaged = {
        path.parent.name
        for path in ROOT.glob("*/__init__.py")
        if any(fnmatch.fnmatchcase(path.parent.name, p) for p in patterns)
    }
    assert packaged == TOP_LEVEL
