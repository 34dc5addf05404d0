"""The docstring examples of the flight core run and show real results."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "fsw.core.wire",
    "fsw.core.declarations",
    "fsw.core.component",
    "fsw.core.errors",
    "fsw.core.nvstore",
    "fsw.core.registry",
    "fsw.core.flight",
    "fsw.core.dictionary",
    "fsw.core.testing",
    "fsw.core.sequencer",
    "fsw.core.modes",
    "fsw.core.health",
    "benchmarks.core",
    "fsw.app",
    "fsw.main",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0
