"""The layering rules of docs/architecture.md, checked on every import statement."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(package: str) -> list[tuple[Path, int, str]]:
    """(file, line, imported module) for every absolute import in a package (or file)."""
    found: list[tuple[Path, int, str]] = []
    where = ROOT / package
    for path in [where] if where.is_file() else sorted(where.rglob("*.py")):
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
    # One exception: the flight's command line takes the shared CLI helpers from
    # gnomon.clikit (which imports nothing of Gnomon's).
    allowed = {("fsw/cli.py", "gnomon.clikit")}
    found = [
        v
        for v in _violations("fsw", ("ground", "hil", "models", "gnomon"))
        if (v.split(":")[0], v.rsplit(" ", 1)[1]) not in allowed
    ]
    assert found == []


def test_the_cli_helpers_the_flight_may_use_import_nothing_of_gnomon() -> None:
    assert _violations("gnomon/clikit.py", ("fsw", "ground", "hil", "models", "gnomon")) == []


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


@pytest.mark.parametrize("module", ["fsw.ai", "fsw.ai.payload", "fsw.app", "fsw.cli"])
def test_importing_the_flight_does_not_load_torch(module: str) -> None:
    """torch takes seconds to import: only loading a model (fsw.ai.runtime) may pull it in."""
    import subprocess
    import sys

    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "False"
