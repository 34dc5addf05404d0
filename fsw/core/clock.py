"""Clocks: the only source of time for flight code.

Flight components never call ``time.time()`` or ``sleep()``; they ask a :class:`Clock`.
Mission time is TAI seconds since the CCSDS epoch 1958-01-01T00:00:00 TAI, the scale
that CUC and CDS time codes carry.

>>> clk = SimClock(start_tai=2_000_000_000.0)
>>> clk.advance(1.5)
>>> clk.now_tai()
2000000001.5
>>> clk.met()
1.5
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

# TAI - UTC has been 37 s since 2017-01-01; no leap second has been announced since.
TAI_MINUS_UTC_S = 37.0
CCSDS_EPOCH_UTC = datetime(1958, 1, 1, tzinfo=UTC)
# Unix epoch expressed on the CCSDS epoch scale (1958-01-01 -> 1970-01-01).
UNIX_EPOCH_IN_CCSDS_S = (datetime(1970, 1, 1, tzinfo=UTC) - CCSDS_EPOCH_UTC).total_seconds()
# A default mission start: 2026-11-21T00:00:00 UTC, as TAI seconds since 1958.
DEFAULT_START_TAI = (
    datetime(2026, 11, 21, tzinfo=UTC) - CCSDS_EPOCH_UTC
).total_seconds() + TAI_MINUS_UTC_S


def tai_to_datetime(tai_s: float) -> datetime:
    """UTC datetime for TAI seconds since 1958 (fixed TAI-UTC offset, 37 s).

    >>> tai_to_datetime(DEFAULT_START_TAI).isoformat()
    '2026-11-21T00:00:00+00:00'
    """
    unix_s = tai_s - TAI_MINUS_UTC_S - UNIX_EPOCH_IN_CCSDS_S
    return datetime.fromtimestamp(unix_s, tz=UTC)


def datetime_to_tai(dt: datetime) -> float:
    """TAI seconds since 1958 for an aware UTC datetime (inverse of :func:`tai_to_datetime`).

    >>> datetime_to_tai(datetime(2026, 11, 21, tzinfo=UTC)) == DEFAULT_START_TAI
    True
    """
    if dt.tzinfo is None:
        raise ValueError("datetime must be timezone-aware (UTC)")
    return (dt - CCSDS_EPOCH_UTC).total_seconds() + TAI_MINUS_UTC_S


@runtime_checkable
class Clock(Protocol):
    """What flight code may ask about time."""

    def now_tai(self) -> float:
        """Mission time: TAI seconds since 1958-01-01."""
        ...

    def met(self) -> float:
        """Mission elapsed time in seconds since this clock started."""
        ...


class SimClock:
    """A clock that moves only when told to: deterministic and as fast as the CPU.

    The executive (or a test) calls :meth:`advance`; nothing else moves it.
    """

    __slots__ = ("_start", "_t")

    def __init__(self, start_tai: float = DEFAULT_START_TAI) -> None:
        self._start = float(start_tai)
        self._t = float(start_tai)

    def now_tai(self) -> float:
        return self._t

    def met(self) -> float:
        return self._t - self._start

    def advance(self, dt_s: float) -> None:
        """Move time forward by ``dt_s`` seconds (never backwards)."""
        if dt_s < 0:
            raise ValueError(f"SimClock cannot go backwards (dt_s={dt_s})")
        self._t += dt_s

    def set_tai(self, tai_s: float) -> None:
        """Jump to an absolute time, e.g. when the ground correlates time. Forward only."""
        if tai_s < self._t:
            raise ValueError(f"SimClock cannot go backwards ({tai_s} < {self._t})")
        self._t = float(tai_s)


class WallClock:
    """The board's clock: a monotonic source anchored to UTC once at start.

    Jumps of the system clock (NTP, a user) do not move mission time; the anchor does.
    """

    __slots__ = ("_anchor_mono", "_anchor_tai", "_start_mono")

    def __init__(self, start_tai: float | None = None) -> None:
        if start_tai is None:
            start_tai = time.time() + UNIX_EPOCH_IN_CCSDS_S + TAI_MINUS_UTC_S
        self._anchor_tai = float(start_tai)
        self._anchor_mono = time.monotonic()
        self._start_mono = self._anchor_mono

    def now_tai(self) -> float:
        return self._anchor_tai + (time.monotonic() - self._anchor_mono)

    def met(self) -> float:
        return time.monotonic() - self._start_mono

    def set_tai(self, tai_s: float) -> None:
        """Re-anchor mission time (time correlation from the ground or the bench)."""
        self._anchor_tai = float(tai_s)
        self._anchor_mono = time.monotonic()
