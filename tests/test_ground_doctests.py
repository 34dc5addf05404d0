"""The docstring examples of the ground package run and show real results."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "ground",
    "ground.errors",
    "ground.dictionary",
    "ground.records",
    "ground.codec",
    "ground.tracker",
    "ground.archive",
    "ground.session",
    "ground.station",
    "ground.testapi",
    "ground.console",
    "benchmarks.ground",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0
