"""The sim-bridge: one serial byte stream carrying the radio and the simulated world.

On a HIL bench the flight board and the bench PC share one cable. Everything on it
travels in *mux frames*::

    sync C3 5A | channel u8 | length u16 | header CRC-16 | payload | payload CRC-16

(big-endian; both CRCs are CRC-16/CCITT-FALSE, :func:`fsw.ccsds.crc.crc16`; the header
CRC covers channel and length, so a corrupted length is caught at once and never makes
the receiver wait for bytes that are not coming). :class:`Demux` finds frames in any
chunking, skips garbage and resynchronises on the next sync word: a glitch on the
cable loses the one mux frame it hit, never the stream.

Channels: :data:`RADIO` carries the space link as is (CLTUs up, ASM + TM frames down);
:data:`BRIDGE` carries the messages below (the world the board senses); :data:`BULK`
carries filler for the link-efficiency measurement.

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

>>> wire = MuxFrame(RADIO, b"\\x1a\\xcf\\xfc\\x1d").encode()
>>> wire.hex()
'c35a0000048c181acffc1d683a'
>>> d = Demux()
>>> [f.payload.hex() for f in d.feed(b"garbage" + wire + wire[:5])]
['1acffc1d']
>>> [f.channel for f in d.feed(wire[5:])], d.stats["garbage_bytes"]
([0], 7)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import queue
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from fsw.ccsds.crc import crc16
from fsw.hal.interfaces import EpsReading, Platform
from fsw.link.base import BaseTransport, Transport
from fsw.link.errors import LinkError
from fsw.power.predictor import GroundStation, ImagingPlan, TargetBox
from fsw.power.scheduler import CascadeProfile, PowerMode, SchedulerConfig

log = logging.getLogger(__name__)

SYNC = b"\xc3\x5a"
_HEAD = struct.Struct(">2sBHH")
HEADER_LEN = _HEAD.size  # 7
#: Bytes a mux frame adds to its payload (sync, channel, length, two CRCs).
OVERHEAD = HEADER_LEN + 2
MAX_PAYLOAD = 0xFFFF

RADIO, BRIDGE, BULK = 0, 1, 2
CHANNELS = (RADIO, BRIDGE, BULK)


class SimBridgeError(ValueError):
    """Bytes that are not a valid mux frame or bridge message.

    ``offset`` is where in the given bytes the problem is; ``reason`` says what it is.
    """

    def __init__(self, reason: str, offset: int = 0) -> None:
        super().__init__(f"sim-bridge: {reason} (at byte {offset})")
        self.reason = reason
        self.offset = offset


# ---------------------------------------------------------------------------- framing
@dataclass(slots=True, frozen=True)
class MuxFrame:
    """One frame of the cable: a channel and its payload (at most 65,535 bytes)."""

    channel: int
    payload: bytes

    def encode(self) -> bytes:
        """The frame as it goes on the wire."""
        if self.channel not in CHANNELS:
            raise SimBridgeError(f"unknown channel {self.channel}")
        n = len(self.payload)
        if n > MAX_PAYLOAD:
            raise SimBridgeError(f"payload of {n} bytes is over the {MAX_PAYLOAD} limit")
        hcrc = crc16(bytes((self.channel, n >> 8, n & 0xFF)))
        head = _HEAD.pack(SYNC, self.channel, n, hcrc)
        return head + self.payload + crc16(self.payload).to_bytes(2, "big")

    @classmethod
    def decode(cls, data: bytes) -> MuxFrame:
        """Exactly one frame (:class:`SimBridgeError` if ``data`` is anything else)."""
        frame, used = _parse(memoryview(data), 0)
        if frame is None:
            raise SimBridgeError(f"truncated frame: {len(data)} bytes", len(data))
        if used != len(data):
            raise SimBridgeError(f"{len(data) - used} bytes after the frame", used)
        return frame


def _parse(buf: memoryview, pos: int) -> tuple[MuxFrame | None, int]:
    """The frame at ``pos`` and the position after it; (None, pos) if incomplete."""
    end = len(buf)
    if end - pos < HEADER_LEN:
        if bytes(buf[pos : pos + 2]) != SYNC[: end - pos]:
            raise SimBridgeError("no sync word", pos)
        return None, pos
    sync, channel, n, hcrc = _HEAD.unpack_from(buf, pos)
    if sync != SYNC:
        raise SimBridgeError("no sync word", pos)
    if crc16(bytes(buf[pos + 2 : pos + 5])) != hcrc:
        raise SimBridgeError("header CRC mismatch", pos + 5)
    if channel not in CHANNELS:
        raise SimBridgeError(f"unknown channel {channel}", pos + 2)
    stop = pos + HEADER_LEN + n + 2
    if stop > end:
        return None, pos
    payload = bytes(buf[pos + HEADER_LEN : stop - 2])
    if crc16(payload) != int.from_bytes(buf[stop - 2 : stop], "big"):
        raise SimBridgeError("payload CRC mismatch", stop - 2)
    return MuxFrame(channel, payload), stop


class Demux:
    """Mux frames from a byte stream in any chunking; never raises on bad bytes.

    ``stats``: ``frames``, ``payload_bytes``, ``garbage_bytes`` (skipped while hunting
    for a sync word), ``crc_errors`` (headers or payloads that failed their CRC).
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.stats = {"frames": 0, "payload_bytes": 0, "garbage_bytes": 0, "crc_errors": 0}

    def feed(self, data: bytes) -> list[MuxFrame]:
        """Frames completed by ``data`` (oldest first)."""
        self._buf += data
        out: list[MuxFrame] = []
        buf = self._buf
        pos = 0
        while pos < len(buf):
            at = buf.find(SYNC, pos)
            if at < 0:
                keep = 1 if buf[-1:] == SYNC[:1] else 0
                self.stats["garbage_bytes"] += len(buf) - pos - keep
                pos = len(buf) - keep
                break
            self.stats["garbage_bytes"] += at - pos
            pos = at
            try:
                frame, after = _parse(memoryview(buf), pos)
            except SimBridgeError as exc:
                if "CRC" in exc.reason:
                    self.stats["crc_errors"] += 1
                self.stats["garbage_bytes"] += 1
                pos += 1  # resynchronise on the next sync word
                continue
            if frame is None:
                break
            out.append(frame)
            self.stats["frames"] += 1
            self.stats["payload_bytes"] += len(frame.payload)
            pos = after
        del buf[:pos]
        return out


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
        rest = {k: doc[k] for k in ("deadline", "min_deadline_s", "max_deadline_s") if k in doc}
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
class MuxPort:
    """One end of the cable: a transport, the demux, and a reader thread.

    Radio bytes are available through :attr:`radio`, a transport of its own (so
    :class:`~fsw.comms.radio.RadioHost` and the ground station use it unchanged); bridge
    messages go to ``on_message`` (called on the reader thread); :data:`BULK` payloads
    to ``on_bulk``. Writes from any thread are serialised. Bad bytes are counted in
    :attr:`demux` and ``stats["bad_messages"]``, never raised.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        on_message: Callable[[Message], None] | None = None,
        on_bulk: Callable[[int], None] | None = None,
        poll_s: float = 0.02,
    ) -> None:
        self.transport = transport
        self.demux = Demux()
        self.on_message = on_message
        self.on_bulk = on_bulk
        self.radio = RadioChannel(self)
        self.stats = {
            "bad_messages": 0,
            "messages_in": 0,
            "messages_out": 0,
            "radio_in": 0,
            "radio_out": 0,
            "bulk_in": 0,
            "handler_errors": 0,
        }
        self._wlock = threading.Lock()
        self._stop = threading.Event()
        self._poll_s = poll_s
        self._thread = threading.Thread(target=self._run, name="simbridge-rx", daemon=True)
        self._thread.start()

    def send_message(self, msg: Message) -> None:
        """Send one bridge message (dropped and counted by the transport if unplugged)."""
        self.write(msg.frame())
        self.stats["messages_out"] += 1

    def send_channel(self, channel: int, data: bytes) -> None:
        """Send ``data`` on ``channel``, split into frames of at most 65,535 bytes."""
        for i in range(0, len(data), MAX_PAYLOAD):
            self.write(MuxFrame(channel, data[i : i + MAX_PAYLOAD]).encode())

    def write(self, wire: bytes) -> None:
        """Write raw bytes to the cable (one writer at a time)."""
        with self._wlock:
            try:
                self.transport.send(wire)
            except (LinkError, OSError) as exc:
                log.warning("sim-bridge write failed: %s", exc)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.transport.recv(self._poll_s)
            except (LinkError, OSError) as exc:
                if self._stop.is_set():
                    return
                log.warning("sim-bridge read failed: %s", exc)
                self._stop.wait(0.25)
                continue
            if data:
                for frame in self.demux.feed(data):
                    try:
                        self._route(frame)
                    except Exception:  # a handler's bug must not take the cable down
                        self.stats["handler_errors"] += 1
                        log.exception(
                            "sim-bridge handler failed on a channel %d frame", frame.channel
                        )

    def _route(self, frame: MuxFrame) -> None:
        if frame.channel == RADIO:
            self.stats["radio_in"] += len(frame.payload)
            self.radio.deliver(frame.payload)
        elif frame.channel == BULK:
            self.stats["bulk_in"] += len(frame.payload)
            if self.on_bulk is not None:
                self.on_bulk(len(frame.payload))
        else:
            try:
                msg = decode_message(frame.payload)
            except SimBridgeError as exc:
                self.stats["bad_messages"] += 1
                log.warning("%s", exc)
                return
            self.stats["messages_in"] += 1
            if self.on_message is not None:
                self.on_message(msg)

    def close(self) -> None:
        """Stop the reader and close the transport."""
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.radio.close()
        self.transport.close()


class RadioChannel(BaseTransport):
    """The :data:`RADIO` channel of a :class:`MuxPort`, as a transport."""

    def __init__(self, port: MuxPort) -> None:
        super().__init__(f"{port.transport.url}#radio", port.transport.role)
        self._port = port
        self._rx: queue.Queue[bytes] = queue.Queue()

    @property
    def status(self) -> str:
        return "closed" if self.closed else self._port.transport.status

    def deliver(self, data: bytes) -> None:
        """Radio bytes the demux found (the port's reader calls this)."""
        self._rx.put(data)

    def send(self, data: bytes) -> None:
        self._check_open()
        if data:
            self._port.send_channel(RADIO, data)
            self._port.stats["radio_out"] += len(data)
            self._sent(len(data))

    def recv(self, timeout_s: float) -> bytes:
        self._check_open()
        try:
            data = (
                self._rx.get(timeout=max(0.0, timeout_s))
                if timeout_s > 0
                else self._rx.get_nowait()
            )
        except queue.Empty:
            return b""
        while True:
            try:
                data += self._rx.get_nowait()
            except queue.Empty:
                break
        return self._received(data)


__all__ = [
    "BRIDGE",
    "BULK",
    "CHANNELS",
    "MAX_PAYLOAD",
    "OVERHEAD",
    "RADIO",
    "SYNC",
    "BoardHello",
    "BulkRequest",
    "Demux",
    "EpsSample",
    "FrameMsg",
    "Message",
    "MuxFrame",
    "MuxPort",
    "PlatformMsg",
    "PowerModeMsg",
    "RadioChannel",
    "SimBridgeError",
    "TimeSync",
    "decode_message",
    "platform_from_json",
    "platform_to_json",
]
