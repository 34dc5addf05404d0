"""Every docstring example in Gnomon runs and shows its real result.

The modules are found by walking the six packages, so a new module's examples run without
anyone listing it. A module whose examples cannot run in CI goes into :data:`CANNOT_RUN`
with the reason, and is reported as skipped, never left out silently.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("fsw", "ground", "hil", "models", "benchmarks", "gnomon")

#: Module -> why its examples cannot run in CI (empty: every module's examples run).
CANNOT_RUN: dict[str, str] = {}


def all_modules() -> list[str]:
    """Dotted names of every module of the six packages, packages included."""
    names = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            names.append(".".join(parts))
    return names


MODULES = all_modules()


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.skip(reason=CANNOT_RUN[name]))
        if name in CANNOT_RUN
        else name
        for name in MODULES
    ],
)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"


def test_the_walk_finds_every_package_and_module() -> None:
    assert {name.partition(".")[0] for name in MODULES} == set(PACKAGES)
    assert {"fsw.core.wire", "ground.codec", "hil.rtl.driver", "gnomon.clikit"} <= set(MODULES)
    assert all(name in MODULES for name in CANNOT_RUN)
