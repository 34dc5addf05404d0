"""Shared pytest configuration: the `--hil-port` option for tests on a real board."""

from __future__ import annotations

import pytest


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
