"""The sim-bridge: the radio and the simulated world on one serial cable.

On a HIL bench the flight board and the bench PC share one cable, split into channels
by the framed mux of :mod:`fsw.link.mux`: :data:`RADIO` carries the space link as is
(CLTUs up, ASM + TM frames down); :data:`BRIDGE` carries the messages below (the world
the board senses); :data:`BULK` carries filler for the link-efficiency measurement.
:class:`BridgePort` is one end: a :class:`~fsw.link.mux.MuxPort` whose radio channel is
a transport and whose bridge channel is decoded into messages.

Bridge messages (one per mux frame, first byte = type):

=================  =====  =============================================================
:class:`TimeSync`  bench  simulated TAI now, speed-up, session id
:class:`EpsSample` bench  one EPS reading
:class:`FrameMsg`  bench  one camera frame (pixels as float16)
:class:`PlatformMsg` bench the platform description (JSON, :func:`platform_to_json`)
:class:`BulkRequest` bench ask the board to send N bytes of filler on :data:`BULK`
:class:`PowerModeMsg` board the payload power mode the flight switched to
:class:`BoardHello` board who the board is and what it measured (JSON)
=================  =====  =============================================================

>>> wire = TimeSync(2.1e9, 10.0, 7).frame()
>>> wire[:3].hex(), MuxFrame.decode(wire).channel == BRIDGE
('c35a01', True)
>>> decode_message(MuxFrame.decode(wire).payload)
TimeSync(tai=2100000000.0, speed=10.0, session=7)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from fsw.hal.interfaces import EpsReading, Platform
from fsw.link.base import Transport
from fsw.link.mux import ChannelTransport, Demux, MuxError, MuxFrame, MuxPort
from fsw.power.predictor import GroundStation, ImagingPlan, TargetBox
from fsw.power.scheduler import CascadeProfile, PowerMode, SchedulerConfig

log = logging.getLogger(__name__)

RADIO, BRIDGE, BULK = 0, 1, 2
CHANNELS = (RADIO, BRIDGE, BULK)


class SimBridgeError(MuxError):
    """Bytes on the :data:`BRIDGE` channel that are not a valid bridge message.

    ``offset`` is where in the message the problem is; ``reason`` says what it is.
    """

    PREFIX = "sim-bridge"


# ---------------------------------------------------------------------------- messages
class Message:
    """A bridge message: a type byte and a body; :func:`decode_message` reads any."""

    TYPE: ClassVar[int]

    def body(self) -> bytes:
        raise NotImplementedError

    def encode(self) -> bytes:
        """The message as a :data:`BRIDGE` payload."""
        return bytes((self.TYPE,)) + self.body()

    def frame(self) -> bytes:
        """The message in its mux frame, ready for the cable."""
        return MuxFrame(BRIDGE, self.encode()).encode()


def _unpack(fmt: struct.Struct, body: bytes, what: str) -> tuple[Any, ...]:
    if len(body) != fmt.size:
        raise SimBridgeError(f"{what} needs {fmt.size} bytes, got {len(body)}", 1)
    return fmt.unpack(body)


def _finite(values: tuple[float, ...], what: str) -> None:
    if not all(math.isfinite(v) for v in values):
        raise SimBridgeError(f"{what} carries a non-finite number", 1)


@dataclass(slots=True, frozen=True)
class TimeSync(Message):
    """Bench time: simulated TAI now, the speed-up it runs at, the bench session id."""

    TYPE: ClassVar[int] = 1
    _S: ClassVar[struct.Struct] = struct.Struct(">ddI")
    tai: float
    speed: float
    session: int

    def body(self) -> bytes:
        return self._S.pack(self.tai, self.speed, self.session)

    @classmethod
    def from_body(cls, body: bytes) -> TimeSync:
        tai, speed, session = _unpack(cls._S, body, "TimeSync")
        _finite((tai, speed), "TimeSync")
        if not 0.0 < speed <= 1000.0:
            raise SimBridgeError(f"TimeSync speed {speed} not in (0, 1000]", 9)
        return cls(tai, speed, session)


@dataclass(slots=True, frozen=True)
class EpsSample(Message):
    """One EPS reading (the fields of :class:`~fsw.hal.interfaces.EpsReading`)."""

    TYPE: ClassVar[int] = 2
    _S: ClassVar[struct.Struct] = struct.Struct(">?dddddd")
    reading: EpsReading

    def body(self) -> bytes:
        r = self.reading
        return self._S.pack(
            r.valid, r.t_tai, r.soc, r.battery_wh, r.solar_w, r.load_w, r.bus_voltage_v
        )

    @classmethod
    def from_body(cls, body: bytes) -> EpsSample:
        valid, *nums = _unpack(cls._S, body, "EpsSample")
        _finite(tuple(nums), "EpsSample")
        return cls(EpsReading(bool(valid), *nums))


@dataclass(slots=True, frozen=True, eq=False)
class FrameMsg(Message):
    """One camera frame; the pixels travel as float16 (half the bytes, ~1e-3 precise)."""

    TYPE: ClassVar[int] = 3
    _S: ClassVar[struct.Struct] = struct.Struct(">IddddBHH")
    frame_id: int
    t_tai: float
    lat_deg: float
    lon_deg: float
    priority: float
    pixels: np.ndarray

    def body(self) -> bytes:
        px = np.asarray(self.pixels)
        if px.ndim != 3:
            raise SimBridgeError(f"pixels must be (bands, height, width), got {px.shape}")
        b, h, w = px.shape
        head = self._S.pack(
            self.frame_id, self.t_tai, self.lat_deg, self.lon_deg, self.priority, b, h, w
        )
        return head + px.astype(">f2").tobytes()

    @classmethod
    def from_body(cls, body: bytes) -> FrameMsg:
        n = cls._S.size
        if len(body) < n:
            raise SimBridgeError(f"FrameMsg needs at least {n} bytes, got {len(body)}", 1)
        fid, t, lat, lon, prio, b, h, w = cls._S.unpack_from(body)
        _finite((t, lat, lon, prio), "FrameMsg")
        if len(body) - n != 2 * b * h * w:
            raise SimBridgeError(
                f"FrameMsg of {b}x{h}x{w} pixels needs {2 * b * h * w} "
                f"pixel bytes, got {len(body) - n}",
                1 + n,
            )
        px = np.frombuffer(body, dtype=">f2", offset=n).astype(np.float32).reshape(b, h, w)
        return cls(fid, t, lat, lon, prio, px)


def _json_body(doc: dict[str, Any], what: str) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _json_doc(body: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise SimBridgeError(f"{what} is not JSON ({exc})", 1) from None
    if not isinstance(doc, dict):
        raise SimBridgeError(f"{what} must be a JSON object", 1)
    return doc


@dataclass(slots=True, frozen=True)
class PlatformMsg(Message):
    """The platform description the flight is given (see :func:`platform_to_json`)."""

    TYPE: ClassVar[int] = 4
    platform: Platform

    def body(self) -> bytes:
        return _json_body(platform_to_json(self.platform), "PlatformMsg")

    @classmethod
    def from_body(cls, body: bytes) -> PlatformMsg:
        return cls(platform_from_json(_json_doc(body, "PlatformMsg")))


@dataclass(slots=True, frozen=True)
class BulkRequest(Message):
    """Ask the board to send ``nbytes`` of filler on :data:`BULK` as fast as it can."""

    TYPE: ClassVar[int] = 5
    _S: ClassVar[struct.Struct] = struct.Struct(">I")
    nbytes: int

    def body(self) -> bytes:
        return self._S.pack(self.nbytes)

    @classmethod
    def from_body(cls, body: bytes) -> BulkRequest:
        return cls(*_unpack(cls._S, body, "BulkRequest"))


@dataclass(slots=True, frozen=True)
class PowerModeMsg(Message):
    """The payload power mode the flight switched to (``None``: off), at board TAI."""

    TYPE: ClassVar[int] = 6
    _S: ClassVar[struct.Struct] = struct.Struct(">d")
    mode: str | None
    t_tai: float

    def body(self) -> bytes:
        return self._S.pack(self.t_tai) + (self.mode or "").encode()

    @classmethod
    def from_body(cls, body: bytes) -> PowerModeMsg:
        if len(body) < 8:
            raise SimBridgeError(f"PowerModeMsg needs at least 8 bytes, got {len(body)}", 1)
        (t,) = cls._S.unpack_from(body)
        _finite((t,), "PowerModeMsg")
        try:
            mode = body[8:].decode("utf-8")
        except UnicodeDecodeError:
            raise SimBridgeError("PowerModeMsg mode is not UTF-8", 9) from None
        return cls(mode or None, t)


@dataclass(slots=True, frozen=True)
class BoardHello(Message):
    """The board introducing itself: host, machine, measured inference latencies, etc."""

    TYPE: ClassVar[int] = 7
    info: dict[str, Any]

    def body(self) -> bytes:
        return _json_body(self.info, "BoardHello")

    @classmethod
    def from_body(cls, body: bytes) -> BoardHello:
        return cls(_json_doc(body, "BoardHello"))


_MESSAGES: dict[int, Any] = {
    m.TYPE: m
    for m in (TimeSync, EpsSample, FrameMsg, PlatformMsg, BulkRequest, PowerModeMsg, BoardHello)
}


def decode_message(payload: bytes) -> Message:
    """The bridge message in a :data:`BRIDGE` payload (:class:`SimBridgeError` if bad).

    >>> decode_message(TimeSync(2.1e9, 10.0, 7).encode())
    TimeSync(tai=2100000000.0, speed=10.0, session=7)
    """
    if not payload:
        raise SimBridgeError("empty bridge message", 0)
    cls = _MESSAGES.get(payload[0])
    if cls is None:
        raise SimBridgeError(f"unknown bridge message type {payload[0]}", 0)
    msg: Message = cls.from_body(bytes(payload[1:]))
    return msg


# ---------------------------------------------------------------------------- platform
def platform_to_json(p: Platform) -> dict[str, Any]:
    """A :class:`~fsw.hal.interfaces.Platform` as plain JSON-able data."""
    doc = dataclasses.asdict(p)
    prof = doc["scheduler"]["profile"]
    prof["small_latency_s"] = dict(p.scheduler.profile.small_latency_s)
    prof["large_latency_s"] = dict(p.scheduler.profile.large_latency_s)
    return doc


def platform_from_json(doc: dict[str, Any]) -> Platform:
    """The inverse of :func:`platform_to_json` (:class:`SimBridgeError` if malformed)."""
    try:
        s = dict(doc["scheduler"])
        prof = CascadeProfile(**s.pop("profile"))
        modes = tuple(PowerMode(**m) for m in s.pop("modes"))
        sched = SchedulerConfig(modes=modes, profile=prof, **s)
        stations = tuple(GroundStation(**g) for g in doc.get("stations", ()))
        im = doc.get("imaging")
        imaging = None
        if im is not None:
            im = dict(im)
            targets = tuple(TargetBox(**t) for t in im.pop("targets", ()))
            imaging = ImagingPlan(targets=targets, **im)
        tle = doc.get("tle")
        keys = ("deadline", "min_deadline_s", "max_deadline_s", "bus_peak_w")
        rest = {k: doc[k] for k in keys if k in doc}
        return Platform(
            scheduler=sched,
            stations=stations,
            imaging=imaging,
            tle=None if tle is None else (str(tle[0]), str(tle[1])),
            **rest,
        )
    except SimBridgeError:
        raise
    except Exception as exc:  # any malformed document is one error for the operator
        raise SimBridgeError(f"platform description does not parse: {exc!r}", 1) from None


# ---------------------------------------------------------------------------- the port
class BridgePort:
    """One end of the bench cable: a :class:`~fsw.link.mux.MuxPort` on ``transport``.

    Radio bytes are available through :attr:`radio`, a transport of its own (so
    :class:`~fsw.comms.radio.RadioHost` and the ground station use it unchanged); bridge
    messages go to ``on_message`` (called on the reader thread); :data:`BULK` payload
    sizes to ``on_bulk``. Bad bytes are counted in :attr:`demux` and
    ``stats["bad_messages"]``, never raised.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        on_message: Callable[[Message], None] | None = None,
        on_bulk: Callable[[int], None] | None = None,
        poll_s: float = 0.02,
    ) -> None:
        self.on_message = on_message
        self.on_bulk = on_bulk
        self._counts = {"bad_messages": 0, "messages_in": 0, "messages_out": 0}
        self.mux = MuxPort(
            transport,
            {BRIDGE: self._on_bridge, BULK: self._on_bulk},
            transports={RADIO: "radio"},
            poll_s=poll_s,
        )
        self.radio: ChannelTransport = self.mux.channel(RADIO)

    @property
    def transport(self) -> Transport:
        """The cable."""
        return self.mux.transport

    @property
    def demux(self) -> Demux:
        """The cable's demux (frames, garbage and CRC errors counted)."""
        return self.mux.demux

    @property
    def stats(self) -> dict[str, int]:
        """Messages in and out, bad messages, radio and bulk bytes, handler errors."""
        return {
            **self._counts,
            "radio_in": self.mux.bytes_in[RADIO],
            "radio_out": self.mux.bytes_out.get(RADIO, 0),
            "bulk_in": self.mux.bytes_in[BULK],
            "handler_errors": self.mux.stats["handler_errors"],
        }

    def send_message(self, msg: Message) -> None:
        """Send one bridge message (dropped and counted by the transport if unplugged)."""
        self.mux.send(BRIDGE, msg.encode())
        self._counts["messages_out"] += 1

    def send_bulk(self, data: bytes) -> None:
        """Send filler on :data:`BULK` (split into frames of at most 65,535 bytes)."""
        self.mux.send(BULK, data)

    def _on_bridge(self, payload: bytes) -> None:
        try:
            msg = decode_message(payload)
        except SimBridgeError as exc:
            self._counts["bad_messages"] += 1
            log.warning("%s", exc)
            return
        self._counts["messages_in"] += 1
        if self.on_message is not None:
            self.on_message(msg)

    def _on_bulk(self, payload: bytes) -> None:
        if self.on_bulk is not None:
            self.on_bulk(len(payload))

    def close(self) -> None:
        """Stop the reader and close the cable."""
        self.mux.close()


__all__ = [
    "BRIDGE",
    "BULK",
    "CHANNELS",
    "RADIO",
    "BoardHello",
    "BridgePort",
    "BulkRequest",
    "EpsSample",
    "FrameMsg",
    "Message",
    "PlatformMsg",
    "PowerModeMsg",
    "SimBridgeError",
    "TimeSync",
    "decode_message",
    "platform_from_json",
    "platform_to_json",
]
