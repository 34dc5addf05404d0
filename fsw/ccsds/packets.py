"""Space packet services around :class:`SpacePacket` (CCSDS 133.0-B-2).

* :class:`SequenceCounter`: the sender's per-APID 14-bit source sequence count.
* :class:`SequenceChecker`: the receiver's per-APID continuity check, reporting gaps.
* :func:`segment` and :class:`Reassembler`: user data longer than one packet, carried
  as FIRST / CONTINUATION / LAST segments and put back together.
* :class:`PacketExtractor`: packets from an unframed byte stream (TCP, a file, a UART),
  resynchronising past garbage.

>>> counter = SequenceCounter()
>>> [counter.next(0x10) for _ in range(3)]
[0, 1, 2]
>>> parts = segment(0x10, bytes(250), max_data_len=100, counter=counter)
>>> [p.seq_flags.name for p in parts]
['FIRST', 'CONTINUATION', 'LAST']
>>> r = Reassembler()
>>> [r.push(p) for p in parts][-1] == bytes(250)
True
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from fsw.ccsds.errors import PacketError
from fsw.ccsds.spacepacket import (
    IDLE_APID,
    MAX_APID,
    MAX_DATA_LEN,
    MAX_SEQ_COUNT,
    PRIMARY_HEADER_LEN,
    PacketType,
    SeqFlags,
    SpacePacket,
)

log = logging.getLogger(__name__)

_MOD = MAX_SEQ_COUNT + 1


class SequenceCounter:
    """Per-APID source sequence counts for a sender, wrapping at 16384."""

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next: dict[int, int] = {}

    def next(self, apid: int) -> int:
        """The count for the next packet of ``apid`` (then advance)."""
        if not 0 <= apid <= MAX_APID:
            raise PacketError(f"APID {apid} outside 0..{MAX_APID}")
        value = self._next.get(apid, 0)
        self._next[apid] = (value + 1) % _MOD
        return value

    def peek(self, apid: int) -> int:
        """The count the next packet of ``apid`` will get, without advancing."""
        return self._next.get(apid, 0)


class SequenceChecker:
    """Receiver-side continuity check of source sequence counts, per APID.

    :meth:`check` returns how many packets are missing just before this one (0 when it
    follows on). A count at or behind the last one (within half the counter range) is a
    duplicate or reordered packet, counted in ``stats["out_of_order"]`` and reported as 0.

    >>> chk = SequenceChecker()
    >>> chk.check(5, 0), chk.check(5, 1), chk.check(5, 4), chk.check(5, 4)
    (0, 0, 2, 0)
    >>> chk.stats
    {'packets': 4, 'gaps': 1, 'missing': 2, 'out_of_order': 1}
    """

    __slots__ = ("_last", "stats")

    def __init__(self) -> None:
        self._last: dict[int, int] = {}
        self.stats: dict[str, int] = {"packets": 0, "gaps": 0, "missing": 0, "out_of_order": 0}

    def check(self, apid: int, seq_count: int) -> int:
        """Record one received packet; return the number missing before it."""
        self.stats["packets"] += 1
        last = self._last.get(apid)
        if last is None:
            self._last[apid] = seq_count
            return 0
        ahead = (seq_count - last) % _MOD
        if ahead == 0 or ahead > _MOD // 2:
            self.stats["out_of_order"] += 1
            return 0
        self._last[apid] = seq_count
        missing = ahead - 1
        if missing:
            self.stats["gaps"] += 1
            self.stats["missing"] += missing
            log.info("APID %d: %d packet(s) missing before count %d", apid, missing, seq_count)
        return missing

    def last(self, apid: int) -> int | None:
        """The last in-order count seen for ``apid``."""
        return self._last.get(apid)


def segment(
    apid: int,
    user_data: bytes,
    max_data_len: int,
    counter: SequenceCounter,
    packet_type: PacketType = PacketType.TM,
) -> list[SpacePacket]:
    """Carry ``user_data`` in as few packets as possible of at most ``max_data_len`` data
    bytes each, flagged FIRST / CONTINUATION / LAST (UNSEGMENTED when one suffices)."""
    if not 1 <= max_data_len <= MAX_DATA_LEN:
        raise PacketError(f"max data length {max_data_len} outside 1..{MAX_DATA_LEN}")
    if not user_data:
        raise PacketError("nothing to segment: user data is empty")
    pieces = [user_data[i : i + max_data_len] for i in range(0, len(user_data), max_data_len)]
    if len(pieces) == 1:
        flags = [SeqFlags.UNSEGMENTED]
    else:
        flags = [SeqFlags.FIRST] + [SeqFlags.CONTINUATION] * (len(pieces) - 2) + [SeqFlags.LAST]
    return [
        SpacePacket(
            apid=apid,
            data=piece,
            packet_type=packet_type,
            seq_flags=flag,
            seq_count=counter.next(apid),
        )
        for piece, flag in zip(pieces, flags, strict=True)
    ]


class Reassembler:
    """Puts segmented user data back together, per APID.

    Segments must arrive in order with consecutive counts; a missing or out-of-place
    segment drops the group (counted in ``stats``), never raises.
    """

    __slots__ = ("_groups", "max_len", "stats")

    def __init__(self, max_len: int = 1 << 20) -> None:
        self.max_len = max_len
        self._groups: dict[int, tuple[int, list[bytes], int]] = {}  # apid -> (last, parts, n)
        self.stats: dict[str, int] = {
            "completed": 0,
            "unsegmented": 0,
            "dropped_incomplete": 0,
            "dropped_orphan": 0,
            "dropped_too_long": 0,
        }

    def push(self, pkt: SpacePacket) -> bytes | None:
        """Feed one packet; return the complete user data when ``pkt`` finishes it."""
        apid = pkt.apid
        flags = pkt.seq_flags
        if flags is SeqFlags.UNSEGMENTED:
            if self._groups.pop(apid, None) is not None:
                self.stats["dropped_incomplete"] += 1
            self.stats["unsegmented"] += 1
            return pkt.data
        if flags is SeqFlags.FIRST:
            if self._groups.pop(apid, None) is not None:
                self.stats["dropped_incomplete"] += 1
            self._groups[apid] = (pkt.seq_count, [pkt.data], len(pkt.data))
            return None
        group = self._groups.pop(apid, None)
        if group is None:
            self.stats["dropped_orphan"] += 1
            return None
        last, parts, size = group
        if pkt.seq_count != (last + 1) % _MOD:
            self.stats["dropped_incomplete"] += 1
            return None
        size += len(pkt.data)
        if size > self.max_len:
            self.stats["dropped_too_long"] += 1
            return None
        parts.append(pkt.data)
        if flags is SeqFlags.LAST:
            self.stats["completed"] += 1
            return b"".join(parts)
        self._groups[apid] = (pkt.seq_count, parts, size)
        return None


class PacketExtractor:
    """Space packets from an unframed byte stream that arrives in arbitrary pieces.

    A header that cannot be right (version not 0, an APID not in ``apids``, a length over
    ``max_len``) means the stream is out of step: one byte is skipped and the search goes
    on. Idle packets are dropped unless ``keep_idle``.

    >>> ext = PacketExtractor()
    >>> pkt = SpacePacket(apid=3, data=b"hi").encode()
    >>> ext.feed(b"\\xff" + pkt[:4]), ext.feed(pkt[4:])
    ([], [b'\\x00\\x03\\xc0\\x00\\x00\\x01hi'])
    """

    __slots__ = ("_buf", "apids", "keep_idle", "max_len", "stats")

    def __init__(
        self,
        apids: Iterable[int] | None = None,
        max_len: int = PRIMARY_HEADER_LEN + MAX_DATA_LEN,
        keep_idle: bool = False,
    ) -> None:
        self.apids = frozenset(apids) if apids is not None else None
        self.max_len = max_len
        self.keep_idle = keep_idle
        self._buf = bytearray()
        self.stats: dict[str, int] = {"packets": 0, "idle_packets": 0, "bytes_skipped": 0}

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add bytes; return the packets now complete."""
        buf = self._buf
        buf += data
        out: list[bytes] = []
        pos = 0
        n = len(buf)
        while n - pos >= PRIMARY_HEADER_LEN:
            b0 = buf[pos]
            apid = ((b0 & 7) << 8) | buf[pos + 1]
            total = PRIMARY_HEADER_LEN + ((buf[pos + 4] << 8) | buf[pos + 5]) + 1
            if (
                b0 >> 5
                or total > self.max_len
                or (self.apids is not None and apid not in self.apids and apid != IDLE_APID)
            ):
                pos += 1
                self.stats["bytes_skipped"] += 1
                continue
            if n - pos < total:
                break
            if apid == IDLE_APID and not self.keep_idle:
                self.stats["idle_packets"] += 1
            else:
                out.append(bytes(buf[pos : pos + total]))
                self.stats["packets"] += 1
            pos += total
        if pos:
            del buf[:pos]
        return out


__all__ = [
    "PacketExtractor",
    "Reassembler",
    "SequenceChecker",
    "SequenceCounter",
    "segment",
]
