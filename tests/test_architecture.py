"""The layering rules of docs/architecture.md, checked on every import statement."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(package: str) -> list[tuple[Path, int, str]]:
    """(file, line, imported module) for every absolute import in a package."""
    found: list[tuple[Path, int, str]] = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.extend((path, node.lineno, alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((path, node.lineno, node.module))
    return found


def _violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path, line, module in _imports(package)
        if any(module == f or module.startswith(f + ".") for f in forbidden)
    ]


def test_flight_code_never_imports_ground_hil_or_models() -> None:
    assert _violations("fsw", ("ground", "hil", "models", "gnomon")) == []


def test_ground_never_imports_flight_components() -> None:
    # The ground may use the wire formats (fsw.ccsds) and transports (fsw.link) only.
    flight_components = ("fsw.core", "fsw.app", "fsw.ai", "fsw.power", "fsw.hal", "fsw.cli")
    assert _violations("ground", (*flight_components, "hil", "models")) == []


@pytest.mark.parametrize("package", ["fsw", "ground", "hil", "models"])
def test_library_code_does_not_print(package: str) -> None:
    """Library code logs; only command-line modules print."""
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        if path.name in {"cli.py", "world_cli.py", "console.py"} or "tests" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "print"
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_flight_components_do_not_read_the_wall_clock() -> None:
    """Only fsw/core/clock.py may call time.time()/sleep(); everything else asks a Clock."""
    offenders = []
    for path in sorted((ROOT / "fsw").rglob("*.py")):
        if path.name in {"clock.py", "bench.py", "cli.py"} or path.parent.name == "link":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "time"
                and node.func.attr in {"time", "sleep"}
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} time.{node.func.attr}")
    assert offenders == []


# ------------------------------------------------ flight code needs only the base install

#: Third-party imports in fsw/ that the base install does not provide, each with the reason
#: it is tolerated for now. A test fails when one of them is gone, so the list only shrinks.
FLIGHT_IMPORTS_OUTSIDE_BASE = {
    ("fsw/cli.py", "rich"): "`gnomon fsw sim` draws a progress bar with rich (a local import: "
    "every other fsw command runs without it); to be replaced by plain stderr output",
}


def _normalize(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def _base_distributions() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {
        _normalize(re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0]) for req in project["dependencies"]
    }


def _modules_of(dists: set[str]) -> set[str]:
    """Top-level import names the installed distributions ``dists`` provide."""
    return {
        module
        for module, owners in importlib.metadata.packages_distributions().items()
        if any(_normalize(owner) in dists for owner in owners)
    }


def _third_party_imports(package: str) -> set[tuple[str, str]]:
    first_party = {"fsw", "ground", "hil", "models", "benchmarks", "gnomon"}
    return {
        (str(path.relative_to(ROOT)), module.partition(".")[0])
        for path, _line, module in _imports(package)
        if module.partition(".")[0] not in sys.stdlib_module_names | first_party
    }


def test_the_base_install_names_the_flight_dependencies() -> None:
    base = _base_distributions()
    assert {"torch", "numpy", "pyserial", "cryptography", "typer-slim"} <= base
    assert not base & {"rich", "matplotlib", "prompt-toolkit", "highspy", "typer"}
    assert {"torch", "serial", "typer", "crcmod"} <= _modules_of(base)


def test_flight_code_imports_nothing_outside_the_base_install() -> None:
    allowed = _modules_of(_base_distributions())
    outside = {
        (path, module)
        for path, module in _third_party_imports("fsw")
        if module not in allowed and (path, module) not in FLIGHT_IMPORTS_OUTSIDE_BASE
    }
    assert outside == set(), "flight code imports modules the base install does not provide"


def test_every_tolerated_flight_import_still_exists() -> None:
    found = _third_party_imports("fsw")
    assert [key for key in FLIGHT_IMPORTS_OUTSIDE_BASE if key not in found] == []
