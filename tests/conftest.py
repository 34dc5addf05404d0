"""Shared pytest configuration: the `--hil-port` option for tests on a real board, and
the hypothesis profile (no per-example deadline: tests are never timed, and a loaded
2-core machine takes 400 ms for an example that takes 20 ms alone; a failure prints the
blob that reproduces it)."""

from __future__ import annotations

import pytest
from hypothesis import settings

settings.register_profile("gnomon", deadline=None, print_blob=True)
settings.load_profile("gnomon")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--hil-port",
        default=None,
        help="serial port of a real flight board (e.g. /dev/ttyUSB0) for tests marked hil",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--hil-port"):
        return
    skip = pytest.mark.skip(reason="needs a real board: pass --hil-port /dev/ttyUSB0")
    for item in items:
        if item.get_closest_marker("hil") is not None:
            item.add_marker(skip)
