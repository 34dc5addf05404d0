"""One byte stream shared by several channels: the framed mux.

On a HIL bench the flight board and the bench PC share one serial cable for the radio
and the simulated world (:mod:`fsw.hal.simbridge` names its channels). Everything on
the cable travels in *mux frames*::

    sync C3 5A | channel u8 | length u16 | header CRC-16 | payload | payload CRC-16

(big-endian; both CRCs are CRC-16/CCITT-FALSE, :func:`fsw.ccsds.crc.crc16`; the header
CRC covers channel and length, so a corrupted length is caught at once and never makes
the receiver wait for bytes that are not coming). :class:`Demux` finds frames in any
chunking, skips garbage and resynchronises on the next sync word: a glitch on the
cable loses the one mux frame it hit, never the stream.

:class:`MuxPort` is one end of the cable: each channel either has a handler (called
with every payload on the port's reader thread) or is a transport of its own
(:class:`ChannelTransport`, so the radio host uses it unchanged). Bad bytes raise
:class:`MuxError` (a :class:`~fsw.link.errors.LinkError`, with the offset and the
reason) from :meth:`MuxFrame.decode`; :class:`Demux` and :class:`MuxPort` only count them.

>>> wire = MuxFrame(0, b"\\x1a\\xcf\\xfc\\x1d").encode()
>>> wire.hex()
'c35a0000048c181acffc1d683a'
>>> d = Demux()
>>> [f.payload.hex() for f in d.feed(b"garbage" + wire + wire[:5])]
['1acffc1d']
>>> [f.channel for f in d.feed(wire[5:])], d.stats["garbage_bytes"]
([0], 7)
>>> import queue
>>> from fsw.link import memory_pair
>>> a, b = memory_pair()
>>> got: queue.Queue[bytes] = queue.Queue()
>>> left = MuxPort(a, {1: got.put}, transports={0: "radio"})
>>> right = MuxPort(b, transports={0: "radio"})
>>> right.send(1, b"hello")
>>> right.channel(0).send(b"\\x1a\\xcf\\xfc\\x1d")
>>> got.get(timeout=2.0), left.channel(0).recv(2.0).hex()
(b'hello', '1acffc1d')
>>> left.channel(0).url, right.bytes_out
('mem://spacecraft#radio', {1: 5, 0: 4})
>>> left.close(); right.close()
"""

from __future__ import annotations

import logging
import queue
import struct
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from fsw.ccsds.crc import crc16
from fsw.link.base import BaseTransport, Transport
from fsw.link.errors import LinkError

log = logging.getLogger(__name__)

SYNC = b"\xc3\x5a"
_HEAD = struct.Struct(">2sBHH")
HEADER_LEN = _HEAD.size  # 7
#: Bytes a mux frame adds to its payload (sync, channel, length, two CRCs).
OVERHEAD = HEADER_LEN + 2
MAX_PAYLOAD = 0xFFFF
MAX_CHANNEL = 0xFF


class MuxError(LinkError):
    """Bytes that are not a valid mux frame.

    ``offset`` is where in the given bytes the problem is; ``reason`` says what it is.

    >>> str(MuxError("header CRC mismatch", 5))
    'mux: header CRC mismatch (at byte 5)'
    """

    PREFIX = "mux"

    def __init__(self, reason: str, offset: int = 0) -> None:
        super().__init__(f"{self.PREFIX}: {reason} (at byte {offset})")
        self.reason = reason
        self.offset = offset


# ---------------------------------------------------------------------------- framing
@dataclass(slots=True, frozen=True)
class MuxFrame:
    """One frame of the cable: a channel (0..255) and its payload (at most 65,535 bytes)."""

    channel: int
    payload: bytes

    def encode(self) -> bytes:
        """The frame as it goes on the wire."""
        if not 0 <= self.channel <= MAX_CHANNEL:
            raise MuxError(f"channel {self.channel} outside 0..{MAX_CHANNEL}")
        n = len(self.payload)
        if n > MAX_PAYLOAD:
            raise MuxError(f"payload of {n} bytes is over the {MAX_PAYLOAD} limit")
        hcrc = crc16(bytes((self.channel, n >> 8, n & 0xFF)))
        head = _HEAD.pack(SYNC, self.channel, n, hcrc)
        return head + self.payload + crc16(self.payload).to_bytes(2, "big")

    @classmethod
    def decode(cls, data: bytes, channels: Collection[int] | None = None) -> MuxFrame:
        """Exactly one frame (:class:`MuxError` if ``data`` is anything else, or if its
        channel is not one of ``channels`` when given)."""
        frame, used = _parse(memoryview(data), 0, channels)
        if frame is None:
            raise MuxError(f"truncated frame: {len(data)} bytes", len(data))
        if used != len(data):
            raise MuxError(f"{len(data) - used} bytes after the frame", used)
        return frame


def _parse(
    buf: memoryview, pos: int, channels: Collection[int] | None
) -> tuple[MuxFrame | None, int]:
    """The frame at ``pos`` and the position after it; (None, pos) if incomplete."""
    end = len(buf)
    if end - pos < HEADER_LEN:
        if bytes(buf[pos : pos + 2]) != SYNC[: end - pos]:
            raise MuxError("no sync word", pos)
        return None, pos
    sync, channel, n, hcrc = _HEAD.unpack_from(buf, pos)
    if sync != SYNC:
        raise MuxError("no sync word", pos)
    if crc16(bytes(buf[pos + 2 : pos + 5])) != hcrc:
        raise MuxError("header CRC mismatch", pos + 5)
    if channels is not None and channel not in channels:
        raise MuxError(f"unknown channel {channel}", pos + 2)
    stop = pos + HEADER_LEN + n + 2
    if stop > end:
        return None, pos
    payload = bytes(buf[pos + HEADER_LEN : stop - 2])
    if crc16(payload) != int.from_bytes(buf[stop - 2 : stop], "big"):
        raise MuxError("payload CRC mismatch", stop - 2)
    return MuxFrame(channel, payload), stop


class Demux:
    """Mux frames from a byte stream in any chunking; never raises on bad bytes.

    ``channels``: the channels in use; a frame on another one is garbage (None: any).
    ``stats``: ``frames``, ``payload_bytes``, ``garbage_bytes`` (skipped while hunting
    for a sync word), ``crc_errors`` (headers or payloads that failed their CRC).
    """

    def __init__(self, channels: Collection[int] | None = None) -> None:
        self._buf = bytearray()
        self._channels = None if channels is None else frozenset(channels)
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
                frame, after = _parse(memoryview(buf), pos, self._channels)
            except MuxError as exc:
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


# ---------------------------------------------------------------------------- the port
class MuxPort:
    """One end of a shared cable: a transport, the demux, and a reader thread.

    ``handlers`` maps a channel to a function called with each of its payloads (on the
    reader thread); ``transports`` maps a channel to a name and makes it a transport of
    its own (:meth:`channel`). Frames on other channels are counted (``unrouted``) and
    dropped; a handler that raises is logged and counted (``handler_errors``), never
    takes the cable down. Writes from any thread are serialised. ``bytes_in`` and
    ``bytes_out`` count payload bytes per channel.
    """

    def __init__(
        self,
        transport: Transport,
        handlers: Mapping[int, Callable[[bytes], None]] | None = None,
        *,
        transports: Mapping[int, str] | None = None,
        poll_s: float = 0.02,
    ) -> None:
        handlers = dict(handlers or {})
        names = dict(transports or {})
        both = sorted(set(handlers) & set(names))
        if both:
            raise MuxError(f"channel {both[0]} has a handler and is a transport")
        self.transport = transport
        self.demux = Demux(set(handlers) | set(names))
        self._handlers = handlers
        self._channels = {n: ChannelTransport(self, n, name) for n, name in names.items()}
        self.bytes_in = dict.fromkeys((*handlers, *names), 0)
        self.bytes_out: dict[int, int] = {}
        self.stats = {"handler_errors": 0, "unrouted": 0}
        self._wlock = threading.Lock()
        self._stop = threading.Event()
        self._poll_s = poll_s
        self._thread = threading.Thread(target=self._run, name="mux-rx", daemon=True)
        self._thread.start()

    def channel(self, number: int) -> ChannelTransport:
        """The transport of a channel given in ``transports``."""
        try:
            return self._channels[number]
        except KeyError:
            raise MuxError(f"channel {number} is not a transport of this port") from None

    def send(self, channel: int, data: bytes) -> None:
        """Send ``data`` on ``channel``, split into frames of at most 65,535 bytes."""
        for i in range(0, len(data), MAX_PAYLOAD):
            self.write(MuxFrame(channel, data[i : i + MAX_PAYLOAD]).encode())
        with self._wlock:
            self.bytes_out[channel] = self.bytes_out.get(channel, 0) + len(data)

    def write(self, wire: bytes) -> None:
        """Write raw bytes to the cable (one writer at a time; failures are logged)."""
        with self._wlock:
            try:
                self.transport.send(wire)
            except (LinkError, OSError) as exc:
                log.warning("mux write failed: %s", exc)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.transport.recv(self._poll_s)
            except (LinkError, OSError) as exc:
                if self._stop.is_set():
                    return
                log.warning("mux read failed: %s", exc)
                self._stop.wait(0.25)
                continue
            for frame in self.demux.feed(data) if data else ():
                self._route(frame)

    def _route(self, frame: MuxFrame) -> None:
        n = frame.channel
        self.bytes_in[n] = self.bytes_in.get(n, 0) + len(frame.payload)
        chan = self._channels.get(n)
        if chan is not None:
            chan.deliver(frame.payload)
            return
        handler = self._handlers.get(n)
        if handler is None:
            self.stats["unrouted"] += 1
            return
        try:
            handler(frame.payload)
        except Exception:  # a handler's bug must not take the cable down
            self.stats["handler_errors"] += 1
            log.exception("mux handler failed on a channel %d frame", n)

    def close(self) -> None:
        """Stop the reader, close the channel transports and the cable's transport."""
        self._stop.set()
        self._thread.join(timeout=2.0)
        for chan in self._channels.values():
            chan.close()
        self.transport.close()


class ChannelTransport(BaseTransport):
    """One channel of a :class:`MuxPort`, as a transport (``<cable url>#<name>``)."""

    def __init__(self, port: MuxPort, number: int, name: str) -> None:
        super().__init__(f"{port.transport.url}#{name}", port.transport.role)
        self.number = number
        self._port = port
        self._rx: queue.Queue[bytes] = queue.Queue()

    @property
    def status(self) -> str:
        return "closed" if self.closed else self._port.transport.status

    def deliver(self, data: bytes) -> None:
        """Bytes the demux found for this channel (the port's reader calls this)."""
        self._rx.put(data)

    def send(self, data: bytes) -> None:
        self._check_open()
        if data:
            self._port.send(self.number, data)
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
    "HEADER_LEN",
    "MAX_CHANNEL",
    "MAX_PAYLOAD",
    "OVERHEAD",
    "SYNC",
    "ChannelTransport",
    "Demux",
    "MuxError",
    "MuxFrame",
    "MuxPort",
]
