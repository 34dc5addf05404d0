"""What a SITL (or HIL bench) run produced: the summary and the data behind the report.

:class:`SitlResult` is what :class:`hil.sim.sitl.Sitl` returns and what
:func:`hil.sim.report.write_report` draws; :class:`Trace` is the recorded time series
(one sample every :data:`SAMPLE_S` simulated seconds, decimated so that a run of any
length keeps at most :data:`MAX_POINTS` points), :class:`SeuRecord` one radiation upset
and what became of it.

>>> tr = Trace(max_points=4)
>>> for k in range(6):
...     tr.add(10.0 * k, soc=0.9 - 0.01 * k, solar_w=1.0, load_w=2.0, payload_w=float(k % 2),
...            queue=k, dl_queued=0, inferences=k, processed=k)
>>> tr.finish()
>>> tr.t_s, tr.soc, tr.payload_w, tr.queue, tr.period_s
([0.0, 20.0, 40.0], [0.89, 0.87, 0.85], [0.5, 0.5, 0.5], [1, 3, 5], 20.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hil.sim.scenario import Scenario
from hil.sim.sitl_config import SitlConfig

#: Trace sample period for the report's plots (simulated seconds).
SAMPLE_S = 10.0
#: Most points a :class:`Trace` keeps: a 3-orbit run (~1,700 samples) is kept whole; a
#: longer one is decimated, so its memory and its plots stay the same size.
MAX_POINTS = 8192

#: How two neighbouring points merge into one when a trace is decimated: power is
#: averaged (energy is kept), the state of charge keeps its minimum (a dip below the
#: floor stays visible), queues their maximum, cumulative counts their last value.
_MERGE = {
    "soc": min,
    "solar_w": "mean",
    "load_w": "mean",
    "payload_w": "mean",
    "queue": max,
    "dl_queued": max,
    "inferences": "last",
    "processed": "last",
}
_SERIES = ("t_s", *_MERGE)


def _merge(key: str, values: list[Any]) -> Any:
    how = _MERGE[key]
    if how == "mean":
        return sum(values) / len(values)
    if how == "last":
        return values[-1]
    assert callable(how)
    return how(values)


@dataclass(slots=True)
class Trace:
    """Samples for the report's plots, every :data:`SAMPLE_S` simulated seconds at first.

    :meth:`add` takes one sample. When ``max_points`` points are held, neighbouring
    points are merged pairwise (see ``_MERGE``) and from then on each point stands for
    twice as many samples (:attr:`period_s` doubles), so memory is bounded however long
    the run. Call :meth:`finish` at the end of the run to keep a last, partial point.
    A point's time is the start of the span it stands for.
    """

    t_s: list[float] = field(default_factory=list)
    soc: list[float] = field(default_factory=list)
    solar_w: list[float] = field(default_factory=list)
    load_w: list[float] = field(default_factory=list)
    payload_w: list[float] = field(default_factory=list)
    queue: list[int] = field(default_factory=list)
    dl_queued: list[int] = field(default_factory=list)
    inferences: list[int] = field(default_factory=list)
    processed: list[int] = field(default_factory=list)
    max_points: int = MAX_POINTS
    #: Samples per point (1 until the first decimation, then 2, 4, ...).
    stride: int = 1
    _pending: list[tuple[Any, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.max_points < 2 or self.max_points % 2:
            raise ValueError(f"max_points must be an even number >= 2, not {self.max_points}")

    @property
    def period_s(self) -> float:
        """Simulated seconds one point stands for."""
        return SAMPLE_S * self.stride

    def __len__(self) -> int:
        return len(self.t_s)

    def add(
        self,
        t_s: float,
        *,
        soc: float,
        solar_w: float,
        load_w: float,
        payload_w: float,
        queue: int,
        dl_queued: int,
        inferences: int,
        processed: int,
    ) -> None:
        """Record one sample (decimating when the trace is full)."""
        self._pending.append(
            (t_s, soc, solar_w, load_w, payload_w, queue, dl_queued, inferences, processed)
        )
        if len(self._pending) >= self.stride:
            self._push_pending()
            if len(self.t_s) >= self.max_points:
                self._halve()

    def finish(self) -> None:
        """Keep the samples of a last, partial point (the end of the run)."""
        if self._pending:
            self._push_pending()

    def _push_pending(self) -> None:
        rows = self._pending
        series = [getattr(self, name) for name in _SERIES]
        series[0].append(rows[0][0])
        for k, name in enumerate(_SERIES[1:], start=1):
            series[k].append(_merge(name, [r[k] for r in rows]))
        self._pending = []

    def _halve(self) -> None:
        for name in _SERIES:
            old = getattr(self, name)
            if name == "t_s":
                new = old[0::2]
            else:
                new = [_merge(name, old[i : i + 2]) for i in range(0, len(old), 2)]
            setattr(self, name, new)
        self.stride *= 2


#: How the summary's ``tm_dropped_on_board`` classes read in a sentence.
_DROP_WORDS = {"hk": "housekeeping", "event": "events", "realtime": "verification and replies"}


def losses_text(link: Mapping[str, Any]) -> str:
    """What a run's telemetry lost, in words: on the link, dropped on board (by class),
    still queued on board at the end (from the summary's ``link`` section).

    >>> losses_text({"packets_lost": 257, "tm_queued_at_end": 1821,
    ...              "tm_dropped_on_board": {"realtime": 0, "event": 0, "hk": 28779}})
    '257 TM packets lost on the link, 28,779 dropped on board (housekeeping 28,779) when \
the downlink queue was full, 1,821 still queued on board at the end'
    """
    parts = [f"{int(link.get('packets_lost', 0)):,} TM packets lost on the link"]
    by_class = {k: int(v) for k, v in (link.get("tm_dropped_on_board") or {}).items() if v}
    dropped = sum(by_class.values()) if by_class else int(link.get("tm_queue_dropped", 0))
    if dropped:
        which = ", ".join(f"{_DROP_WORDS.get(k, k)} {v:,}" for k, v in by_class.items())
        parts.append(
            f"{dropped:,} dropped on board{f' ({which})' if which else ''} "
            "when the downlink queue was full"
        )
    queued = int(link.get("tm_queued_at_end", 0))
    if queued:
        parts.append(f"{queued:,} still queued on board at the end")
    return ", ".join(parts)


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


__all__ = ["MAX_POINTS", "SAMPLE_S", "SeuRecord", "SitlResult", "Trace", "losses_text"]
