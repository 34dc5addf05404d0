"""Records the ground produces: decoded packets, events, telemetry values, samples.

All are frozen dataclasses; times are explicit about their scale: ``t_tai`` is on-board
time (TAI seconds since 1958, from the packet's CUC time stamp), ``t_ground_s`` is the
ground's own clock as the session was given it.

>>> from ground.dictionary import LimitState
>>> v = ChannelValue("eps.soc", 0.42, 2.0e9, LimitState.OK, "")
>>> v.text
'0.42'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ground.dictionary import HkLayout, LimitState


@dataclass(slots=True, frozen=True)
class EventRecord:
    """One event report as the ground decoded it."""

    t_tai: float
    event_id: int
    name: str
    severity: str
    args: dict[str, Any]
    message: str


@dataclass(slots=True, frozen=True)
class HkSample:
    """The values of one (3,25) report in structure order (the archive's fast path)."""

    sid: int
    layout: HkLayout
    values: tuple[Any, ...]


@dataclass(slots=True, frozen=True)
class Decoded:
    """One TM packet, decoded from the dictionary.

    ``kind`` is the report's role: ``verification``, ``hk``, ``event``, ``reply`` (any
    other declared report), or ``unknown`` (a (service, subservice) the dictionary does
    not declare, or a packet that failed to decode: ``error`` then says why). ``fields``
    follow the report declaration; for (3,25) ``fields["values"]`` maps channel names to
    values, and ``hk`` holds the same values as a tuple; for events ``event`` is set.
    """

    kind: str
    name: str
    apid: int
    service: int
    subservice: int
    seq_count: int
    t_tai: float
    fields: dict[str, Any]
    raw: bytes
    hk: HkSample | None = None
    event: EventRecord | None = None
    error: str | None = None

    @property
    def request_id(self) -> int | None:
        """The request id a service-1 report refers to."""
        rid = self.fields.get("request_id") if self.service == 1 else None
        return int(rid) if isinstance(rid, int) else None


def format_value(value: Any) -> str:
    """Short text of a telemetry value (floats to 6 significant digits).

    >>> format_value(0.30000001192092896), format_value(True), format_value("SAFE")
    ('0.3', 'True', 'SAFE')
    """
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


@dataclass(slots=True, frozen=True)
class ChannelValue:
    """The latest value of a telemetry channel and where it sits against its limits."""

    name: str
    value: Any
    t_tai: float
    limit: LimitState
    units: str

    @property
    def text(self) -> str:
        """The value as the console shows it."""
        return format_value(self.value)


@dataclass(slots=True, frozen=True)
class Sample:
    """One archived telemetry sample."""

    name: str
    t_tai: float
    value: Any


__all__ = ["ChannelValue", "Decoded", "EventRecord", "HkSample", "Sample", "format_value"]
