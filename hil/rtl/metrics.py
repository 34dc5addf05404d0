"""Figures measured inside a simulation (clocks, bytes per clock), handed to the runner.

A cocotb test calls :func:`record_metric`; when the runner set ``GNOMON_RTL_METRICS`` to
a file path, one JSON object per call is appended there, and
:func:`hil.rtl.runner.run_suite` returns them with the results.

>>> record_metric("crc", bytes=4096, cycles=4097)  # no GNOMON_RTL_METRICS: nothing kept
"""

from __future__ import annotations

import json
import os
from pathlib import Path

METRICS_ENV = "GNOMON_RTL_METRICS"


def record_metric(name: str, **values: float | int | str) -> None:
    """Append ``{"name": name, **values}`` to the metrics file, if one is set."""
    path = os.environ.get(METRICS_ENV)
    if not path:
        return
    with Path(path).open("a", encoding="utf-8") as stream:
        stream.write(json.dumps({"name": name, **values}, sort_keys=True) + "\n")
