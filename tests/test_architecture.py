"""The layering rules of docs/architecture.md, checked on every import statement."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("fsw", "ground", "hil", "models", "benchmarks", "gnomon")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


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
    flight_components = (
        "fsw.core",
        "fsw.app",
        "fsw.ai",
        "fsw.power",
        "fsw.hal",
        "fsw.comms",
        "fsw.cli",
    )
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
FLIGHT_IMPORTS_OUTSIDE_BASE: dict[tuple[str, str], str] = {}


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


# ---------------------------------------------------------------------- import contracts
def _lint_imports(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run import-linter on the packages under ``root`` with ``root``'s pyproject.toml."""
    env = {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "200"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _contracts() -> dict[str, dict[str, object]]:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        cfg = tomllib.load(fh)["tool"]["importlinter"]
    return {c["id"]: c for c in cfg["contracts"]}


def test_import_contracts_hold() -> None:
    """The contracts of pyproject.toml ([tool.importlinter]), as `make lint` runs them."""
    res = _lint_imports(ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout


def test_the_contracts_name_every_module_of_the_flight() -> None:
    """A new module under fsw/ must be placed in the fsw layers and, unless it is a wire
    format (ccsds, link) or the runtime models export to (ai), be forbidden to ground and
    models."""
    fsw = ROOT / "fsw"
    children = {p.stem for p in fsw.glob("*.py") if p.stem != "__init__"} | {
        p.name for p in fsw.iterdir() if (p / "__init__.py").exists()
    }
    contracts = _contracts()

    def flight_modules(contract: str) -> set[str]:
        names = contracts[contract]["forbidden_modules"]
        assert isinstance(names, list)
        return {m.removeprefix("fsw.") for m in names if m.startswith("fsw.")}

    assert flight_modules("ground") == children - {"ccsds", "link", "configfile"}
    assert flight_modules("models") == children - {"ai"}
    layers = contracts["fsw-layers"]["layers"]
    assert isinstance(layers, list)
    assert {m.strip() for layer in layers for m in re.split(r"[|:]", layer)} == children


def _copy_of_the_packages(dest: Path) -> Path:
    def not_python(folder: str, names: list[str]) -> set[str]:
        return {
            n
            for n in names
            if n == "__pycache__" or (not n.endswith(".py") and not (Path(folder) / n).is_dir())
        }

    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, dest / pkg, ignore=not_python)
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


@pytest.mark.parametrize(
    ("contract", "module", "bad_import"),
    [
        ("flight", "fsw/core/_bad_import.py", "import ground.archive"),
        ("flight", "fsw/cli_extra.py", "from gnomon import dev"),
        ("ground", "ground/_bad_import.py", "from fsw.core import clock"),
        ("models", "models/_bad_import.py", "import fsw.power.scheduler"),
        ("hil", "hil/_bad_import.py", "import benchmarks.cli"),
        ("fsw-layers", "fsw/ccsds/_bad_import.py", "from fsw.core import errors"),
    ],
)
def test_a_bad_import_breaks_its_contract(
    tmp_path: Path, contract: str, module: str, bad_import: str
) -> None:
    root = _copy_of_the_packages(tmp_path)
    (root / module).write_text(f"{bad_import}\n", encoding="utf-8")
    res = _lint_imports(root, "--contract", contract)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "BROKEN" in res.stdout
    importer = module.removesuffix(".py").replace("/", ".")
    assert importer in res.stdout  # the report names the offending module


def test_the_flight_cli_may_use_the_shared_cli_helpers(tmp_path: Path) -> None:
    root = _copy_of_the_packages(tmp_path)
    cli = root / "fsw" / "cli.py"
    cli.write_text(cli.read_text(encoding="utf-8") + "\nfrom gnomon.clikit import fail\n")
    res = _lint_imports(root, "--contract", "flight")
    assert res.returncode == 0, res.stdout + res.stderr


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
