"""What a SITL (or HIL bench) run produced: the summary and the data behind the report.

:class:`SitlResult` is what :class:`hil.sim.sitl.Sitl` returns and what
:func:`hil.sim.report.write_report` draws; :class:`Trace` is the recorded time series
(one sample every :data:`SAMPLE_S` simulated seconds), :class:`SeuRecord` one radiation
upset and what became of it.

>>> tr = Trace()
>>> tr.t_s.append(0.0); tr.soc.append(0.9)
>>> len(tr.t_s), tr.soc
(1, [0.9])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hil.sim.scenario import Scenario
from hil.sim.sitl_config import SitlConfig

#: Trace sample period for the report's plots (simulated seconds).
SAMPLE_S = 10.0


@dataclass(slots=True)
class Trace:
    """Samples for the report's plots (every :data:`SAMPLE_S` simulated seconds)."""

    t_s: list[float] = field(default_factory=list)
    soc: list[float] = field(default_factory=list)
    solar_w: list[float] = field(default_factory=list)
    load_w: list[float] = field(default_factory=list)
    payload_w: list[float] = field(default_factory=list)
    queue: list[int] = field(default_factory=list)
    dl_queued: list[int] = field(default_factory=list)
    inferences: list[int] = field(default_factory=list)
    processed: list[int] = field(default_factory=list)


@dataclass(slots=True, frozen=True)
class SeuRecord:
    """One injected upset and what became of it (times in seconds from the start)."""

    t_s: float
    model: str
    byte: int
    bit: int
    block: int
    detected_s: float | None
    repaired_s: float | None


@dataclass(slots=True)
class SitlResult:
    """Everything a run produced: the summary and the data behind the report."""

    summary: dict[str, Any]
    trace: Trace
    eclipses_s: list[tuple[float, float]]
    passes: list[dict[str, Any]]
    seus: list[SeuRecord]
    scenario: Scenario
    config: SitlConfig


__all__ = ["SAMPLE_S", "SeuRecord", "SitlResult", "Trace"]
