"""Packet stores: append-only files of CRC-checked records (the stores of PUS-C service 15).

A store is a directory of segment files, ``<dir>/<8 hex digits>.seg``, numbered in the
order they were opened. A segment starts with a 16-byte header::

    magic "GNPS" | version u8 | 3 reserved bytes | segment number u32 | CRC-32C of the 12 before

and holds records laid end to end, each an 18-byte header and its data::

    sync 0xA5 | kind u8 | length u32 | t_tai f64 | CRC-32C u32 (of kind, length, t_tai, data)

``kind`` 0 is a stored packet (its data a whole space packet, ``t_tai`` the time it was
stored); kind 1 is a delete marker ("everything up to ``t_tai`` is deleted"), so a
deletion is an append too and survives a reset.

Writes are append-only and unbuffered (one ``os.write`` a record), so a process killed at
any instant leaves every record it had written intact; :meth:`PacketStore.sync` (the
storage component calls it once a second) makes them durable against a power cut too. A
record cut short by a reset is the last bytes of the newest segment: opening the store
finds it, truncates it away and counts it (``torn_records``). A damaged record inside a
segment (bit rot) fails its CRC; the scan skips to the next record that checks and counts
the bytes it lost. :func:`check_store` runs the same scan read-only: an integrity check in
the spirit of SQLite's ``PRAGMA integrity_check``.

Capacity is in bytes (segments included). A *circular* store drops its oldest segment to
make room (its records count as ``overwritten``); a *stop-when-full* store refuses the
record (``refused``) and says so once (:attr:`PacketStore.full`).

>>> import tempfile
>>> d = tempfile.TemporaryDirectory()
>>> st = PacketStore(Path(d.name) / "hk", capacity_bytes=4096, segment_bytes=1024)
>>> st.append(b"\\x08\\x65\\xc0\\x00\\x00\\x01ab", 100.0)
True
>>> st.append(b"\\x08\\x65\\xc0\\x01\\x00\\x01cd", 101.0)
True
>>> [(t, p[-2:]) for t, p in st.records()]
[(100.0, b'ab'), (101.0, b'cd')]
>>> st.close(); check_store(Path(d.name) / "hk").ok
True
>>> d.cleanup()
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from crc32c import crc32c

from fsw.storage.errors import StorageError

MAGIC = b"GNPS"
VERSION = 1
SEG_HEADER = struct.Struct(">4sB3xII")
SEG_HEADER_LEN = SEG_HEADER.size
#: A record's header: sync, kind, length, t_tai, CRC.
REC_HEADER = struct.Struct(">BBIdI")
REC_HEADER_LEN = REC_HEADER.size
_CRC_PART = struct.Struct(">BId")  # what the CRC covers before the data
SYNC = 0xA5
KIND_PACKET = 0
KIND_DELETE = 1
#: A stored packet that also went to the realtime downlink (an open playback skips it;
#: a time-range playback includes it).
KIND_SENT = 2
_PACKET_KINDS = (KIND_PACKET, KIND_SENT)
#: The largest record data: one whole space packet (6 + 65536 bytes).
MAX_RECORD = 65542
SUFFIX = ".seg"
#: Bytes read at a time when reading records back (more than two of the largest records).
READ_CHUNK = 1 << 18


def _seg_header(number: int) -> bytes:
    head = SEG_HEADER.pack(MAGIC, VERSION, number, 0)[:12]
    return head + crc32c(head).to_bytes(4, "big")


def encode_record(data: bytes, t_tai: float, kind: int = KIND_PACKET) -> bytes:
    """One record as written (header + data).

    >>> rec = encode_record(b"hi", 1.0)
    >>> len(rec), rec.hex(" ", 1).split()[:6], rec[-2:]
    (20, ['a5', '00', '00', '00', '00', '02'], b'hi')
    >>> scan_segment(_seg_header(1) + rec, 1).records
    [(1.0, 34, 2, 0)]
    """
    part = _CRC_PART.pack(kind, len(data), t_tai)
    crc = crc32c(data, crc32c(part))
    return REC_HEADER.pack(SYNC, kind, len(data), t_tai, crc) + data


@dataclass(slots=True)
class Segment:
    """One segment file as indexed in memory."""

    number: int
    path: Path
    size: int = SEG_HEADER_LEN
    records: int = 0
    first_t: float | None = None
    last_t: float | None = None


@dataclass(slots=True, frozen=True)
class ScanResult:
    """What reading one segment found: its good records (time, data offset, length,
    kind), where the good data ends, and the damage."""

    records: list[tuple[float, int, int, int]]
    good_end: int
    corrupt_bytes: int = 0
    corrupt_records: int = 0
    torn_bytes: int = 0
    bad_header: str = ""


def scan_segment(raw: bytes, number: int | None = None) -> ScanResult:
    """Parse one segment's bytes; never raises (damage is reported in the result).

    A record that fails its checks is skipped by searching for the next sync byte whose
    record checks; bytes after the last good record that hold no good record are a torn
    tail (``torn_bytes``), anything skipped before a good record is corruption.
    """
    n = len(raw)
    if n < SEG_HEADER_LEN:
        return ScanResult([], 0, torn_bytes=n, bad_header="shorter than its header")
    magic, version, seg_no, crc = SEG_HEADER.unpack_from(raw, 0)
    if magic != MAGIC or crc32c(raw[:12]) != crc:
        return ScanResult([], 0, corrupt_bytes=n, bad_header="bad segment header")
    if version != VERSION:
        return ScanResult([], 0, corrupt_bytes=n, bad_header=f"format version {version}")
    if number is not None and seg_no != number:
        return ScanResult([], 0, corrupt_bytes=n, bad_header=f"holds segment {seg_no}")
    recs, good_end, skipped, bad = _scan_records(raw, SEG_HEADER_LEN)
    return ScanResult(recs, good_end, skipped, bad, n - good_end)


def _scan_records(
    raw: bytes, start: int
) -> tuple[list[tuple[float, int, int, int]], int, int, int]:
    """Records of ``raw`` from ``start`` whose CRC checks: ((time, data offset, length,
    kind) each, where the last good one ends, bytes skipped before good ones, how many
    damaged stretches)."""
    n = len(raw)
    out: list[tuple[float, int, int, int]] = []
    pos = good_end = start
    skipped = bad = 0
    mv = memoryview(raw)
    unpack = REC_HEADER.unpack_from
    while pos + REC_HEADER_LEN <= n:
        sync, kind, length, t, crc = unpack(raw, pos)
        end = pos + REC_HEADER_LEN + length
        if (
            sync == SYNC
            and kind in (KIND_PACKET, KIND_DELETE, KIND_SENT)
            and length <= MAX_RECORD
            and end <= n
            and crc32c(mv[pos + REC_HEADER_LEN : end], crc32c(mv[pos + 1 : pos + 14])) == crc
        ):
            if pos != good_end:
                skipped += pos - good_end
                bad += 1
            out.append((t, pos + REC_HEADER_LEN, length, kind))
            pos = good_end = end
            continue
        nxt = raw.find(SYNC, pos + 1)  # resynchronise on the next sync byte
        if nxt < 0:
            break
        pos = nxt
    return out, good_end, skipped, bad


@dataclass(slots=True)
class CheckReport:
    """:func:`check_store`'s answer: counts, and what is wrong in words (empty: ok)."""

    segments: int = 0
    records: int = 0
    bytes: int = 0
    torn_bytes: int = 0
    corrupt_bytes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every byte of the store belongs to a good record or header."""
        return not self.problems


def check_store(path: Path) -> CheckReport:
    """Read-only integrity check of a store directory (nothing is changed).

    A torn tail on the newest segment (a write cut by a reset, not yet repaired by
    opening the store) and any corruption are listed in ``problems``.
    """
    rep = CheckReport()
    segs = _segment_files(path)
    for i, (number, p) in enumerate(segs):
        try:
            raw = p.read_bytes()
        except OSError as exc:
            rep.problems.append(f"{p.name}: cannot read ({exc.strerror or exc})")
            continue
        res = scan_segment(raw, number)
        rep.segments += 1
        rep.records += len(res.records)
        rep.bytes += len(raw)
        rep.torn_bytes += res.torn_bytes
        rep.corrupt_bytes += res.corrupt_bytes
        if res.bad_header:
            rep.problems.append(f"{p.name}: {res.bad_header}")
        if res.corrupt_records:
            rep.problems.append(
                f"{p.name}: {res.corrupt_bytes} damaged bytes before "
                f"{res.corrupt_records} good records"
            )
        if res.torn_bytes:
            where = "newest segment" if i == len(segs) - 1 else "an older segment"
            rep.problems.append(f"{p.name}: torn tail of {res.torn_bytes} bytes ({where})")
    return rep


def _segment_files(path: Path) -> list[tuple[int, Path]]:
    out: list[tuple[int, Path]] = []
    if not path.is_dir():
        return out
    for p in path.iterdir():
        if p.suffix == SUFFIX and len(p.stem) == 8:
            try:
                out.append((int(p.stem, 16), p))
            except ValueError:
                continue
    return sorted(out)


@dataclass(slots=True)
class Cursor:
    """A position in a store: a segment number and a byte offset in it."""

    segment: int
    offset: int = SEG_HEADER_LEN


@dataclass(slots=True)
class OpenReport:
    """What opening a store found and repaired."""

    segments: int = 0
    records: int = 0
    torn_records: int = 0
    torn_bytes: int = 0
    corrupt_bytes: int = 0
    dropped_segments: int = 0


class PacketStore:
    """One packet store (see the module docstring).

    ``capacity_bytes`` bounds the bytes on disk; ``segment_bytes`` the size of one segment
    (the unit a circular store overwrites). Opening repairs a torn tail; what it found is
    in :attr:`opened`.
    """

    def __init__(
        self,
        path: Path,
        *,
        capacity_bytes: int,
        segment_bytes: int = 1 << 20,
        circular: bool = True,
    ) -> None:
        if segment_bytes < 256 or segment_bytes > capacity_bytes:
            raise StorageError(
                f"store {path.name}: segment_bytes {segment_bytes} must be in 256..capacity "
                f"({capacity_bytes})"
            )
        self.path = path
        self.capacity_bytes = capacity_bytes
        self.segment_bytes = segment_bytes
        self.circular = circular
        self.segments: list[Segment] = []
        #: Everything up to this time is deleted (the newest delete marker).
        self.deleted_before = float("-inf")
        self.counts = dict.fromkeys(("stored", "overwritten", "refused", "write_errors"), 0)
        self.full = False
        self._fd = -1
        self._dirty = False
        self._used = 0
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"store {path.name}: cannot create {path}: {exc}") from None
        self.opened = self._open()

    # ------------------------------------------------------------------ opening
    def _open(self) -> OpenReport:
        rep = OpenReport()
        found: list[tuple[Segment, list[float]]] = []
        for number, p in _segment_files(self.path):
            raw = p.read_bytes()
            res = scan_segment(raw, number)
            if res.bad_header:
                # A header is written before any record: a bad one is a reset while the
                # segment was being created (or damage); it holds nothing usable.
                p.unlink()
                rep.dropped_segments += 1
                rep.corrupt_bytes += len(raw)
                continue
            if res.torn_bytes:
                rep.torn_records += 1
                rep.torn_bytes += res.torn_bytes
                with open(p, "r+b") as fh:
                    fh.truncate(res.good_end)
                    fh.flush()
                    os.fsync(fh.fileno())
            rep.corrupt_bytes += res.corrupt_bytes
            times = []
            for t, _off, _n, kind in res.records:
                if kind == KIND_DELETE:
                    self.deleted_before = max(self.deleted_before, t)
                else:
                    times.append(t)
            found.append((Segment(number, p, res.good_end), times))
        for seg, times in found:
            self._index(seg, times)
            self.segments.append(seg)
            rep.records += seg.records
        rep.segments = len(self.segments)
        self._used = sum(s.size for s in self.segments)
        if self.segments:
            self._fd = self._open_fd(self.segments[-1].path)
        return rep

    def _index(self, seg: Segment, times: list[float]) -> None:
        """Set a segment's live record count and time span (deleted records hidden)."""
        live = [t for t in times if t > self.deleted_before]
        seg.records = len(live)
        seg.first_t = live[0] if live else None
        seg.last_t = live[-1] if live else None

    @staticmethod
    def _open_fd(path: Path) -> int:
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    # ------------------------------------------------------------------ status
    @property
    def used_bytes(self) -> int:
        """Bytes on disk (segment headers included)."""
        return self._used

    @property
    def fill(self) -> float:
        """Share of the capacity in use (0..1)."""
        return min(1.0, self.used_bytes / self.capacity_bytes)

    @property
    def record_count(self) -> int:
        """Packets held (including any not yet dropped by a partial delete)."""
        return sum(s.records for s in self.segments)

    @property
    def oldest_t(self) -> float | None:
        """Time of the oldest packet held (None: empty)."""
        return next((s.first_t for s in self.segments if s.first_t is not None), None)

    @property
    def newest_t(self) -> float | None:
        """Time of the newest packet held (None: empty)."""
        return next((s.last_t for s in reversed(self.segments) if s.last_t is not None), None)

    # ------------------------------------------------------------------ writing
    def append(self, data: bytes, t_tai: float, kind: int = KIND_PACKET) -> bool:
        """Store one packet (``kind`` :data:`KIND_SENT`: it also went to the realtime
        downlink); False when it was refused (a full stop-when-full store, or an I/O
        error; both counted)."""
        n = len(data)
        if n > MAX_RECORD:
            self.counts["refused"] += 1
            return False
        crc = crc32c(data, crc32c(_CRC_PART.pack(kind, n, t_tai)))
        rec = REC_HEADER.pack(SYNC, kind, n, t_tai, crc) + data
        size = len(rec)
        segs = self.segments
        if (
            not segs
            or segs[-1].size + size > self.segment_bytes
            or self._used + size > self.capacity_bytes
        ) and not self._room(size):
            self.counts["refused"] += 1
            self.full = True
            return False
        try:
            os.write(self._fd, rec)
        except OSError:
            self.counts["write_errors"] += 1
            return False
        seg = segs[-1]
        seg.size += size
        self._used += size
        self._dirty = True
        seg.records += 1
        if seg.first_t is None:
            seg.first_t = t_tai
        seg.last_t = t_tai
        self.counts["stored"] += 1
        return True

    def _room(self, n: int) -> bool:
        """Make room for ``n`` more bytes (a new segment if needed); False: no room."""
        need_new = not self.segments or self.segments[-1].size + n > self.segment_bytes
        extra = n + (SEG_HEADER_LEN if need_new else 0)
        while self.used_bytes + extra > self.capacity_bytes:
            if not self.circular or len(self.segments) <= (0 if need_new else 1):
                return False
            self._drop_oldest()
        if need_new:
            return self._new_segment()
        return True

    def _drop_oldest(self) -> None:
        seg = self.segments.pop(0)
        self._used -= seg.size
        self.counts["overwritten"] += seg.records
        with contextlib.suppress(FileNotFoundError):
            seg.path.unlink()

    def _new_segment(self) -> bool:
        number = self.segments[-1].number + 1 if self.segments else 1
        path = self.path / f"{number:08x}{SUFFIX}"
        try:
            if self._fd >= 0:
                os.fsync(self._fd)  # a full segment is durable before the next one starts
                os.close(self._fd)
                self._fd = -1
                self._dirty = False
            self._fd = self._open_fd(path)
            os.write(self._fd, _seg_header(number))
        except OSError:
            self.counts["write_errors"] += 1
            return False
        self.segments.append(Segment(number, path))
        self._used += SEG_HEADER_LEN
        self._dirty = True
        return True

    def _write(self, rec: bytes) -> bool:
        try:
            os.write(self._fd, rec)
        except OSError:
            self.counts["write_errors"] += 1
            return False
        self.segments[-1].size += len(rec)
        self._used += len(rec)
        self._dirty = True
        return True

    def delete_up_to(self, t_tai: float) -> int:
        """Delete every packet stored at or before ``t_tai``; returns how many went.

        Whole segments go at once (their files are removed); in a segment that straddles
        ``t_tai``, and in the open one, a delete marker hides the older records until the
        segment itself goes.
        """
        if t_tai <= self.deleted_before:
            return 0
        gone = 0
        while len(self.segments) > 1 and (self.segments[0].last_t or float("-inf")) <= t_tai:
            seg = self.segments.pop(0)
            self._used -= seg.size
            gone += seg.records
            with contextlib.suppress(FileNotFoundError):
                seg.path.unlink()
        self.deleted_before = t_tai
        for seg in self.segments:
            if seg.first_t is not None and seg.first_t <= t_tai:
                before = seg.records
                self._index(seg, [t for t, k, _d, _e in self._iter_from(seg) if k in _PACKET_KINDS])
                gone += before - seg.records
        rec = encode_record(b"", t_tai, KIND_DELETE)
        if self._room(len(rec)):
            self._write(rec)
        self.full = False
        return gone

    def sync(self) -> None:
        """Make everything written durable (fsync); cheap when nothing changed."""
        if self._dirty and self._fd >= 0:
            try:
                os.fsync(self._fd)
            except OSError:
                self.counts["write_errors"] += 1
                return
            self._dirty = False

    def close(self) -> None:
        """Sync and close the open segment."""
        self.sync()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # ------------------------------------------------------------------ reading
    def _iter_from(
        self, seg: Segment, offset: int = SEG_HEADER_LEN, chunk: int = READ_CHUNK
    ) -> Iterator[tuple[float, int, bytes, int]]:
        """(t_tai, kind, data, offset just after it) of the records of ``seg`` from byte
        ``offset`` on whose CRC checks (a damaged record is skipped, as at opening).

        Reads ``chunk`` bytes at a time (growing up to :data:`READ_CHUNK` while no whole
        record fits), so a playback pulling a few kB at a time costs what it reads, not
        the rest of the segment.
        """
        size = max(512, min(chunk, READ_CHUNK))
        try:
            fh = open(seg.path, "rb")  # noqa: SIM115 (a generator keeps it open across yields)
        except OSError:
            return
        with fh:
            while offset < seg.size:
                try:
                    fh.seek(offset)
                    raw = fh.read(min(size, seg.size - offset))
                except OSError:
                    return
                if not raw:
                    return
                recs, end, _skipped, _bad = _scan_records(raw, 0)
                for t, at, length, kind in recs:
                    yield t, kind, raw[at : at + length], offset + at + length
                if recs:
                    offset += end
                elif offset + len(raw) >= seg.size:
                    return  # nothing good left in the segment
                elif size < READ_CHUNK:
                    size = min(READ_CHUNK, size * 4)  # a record longer than the chunk
                else:  # a damaged stretch longer than a record: move on, keep an overlap
                    offset += len(raw) - (REC_HEADER_LEN + MAX_RECORD)

    def records(self) -> Iterator[tuple[float, bytes]]:
        """Every packet held, oldest first (deleted ones hidden): (t_tai, packet)."""
        for seg in list(self.segments):
            for t, kind, data, _end in self._iter_from(seg):
                if kind in _PACKET_KINDS and t > self.deleted_before:
                    yield t, data

    def read_from(
        self,
        cursor: Cursor,
        max_bytes: int,
        t_to: float = float("inf"),
        *,
        skip_sent: bool = False,
    ) -> tuple[list[tuple[float, bytes]], Cursor, bool]:
        """Packets from ``cursor`` on (at least one if there is any), up to about
        ``max_bytes`` of them (``skip_sent``: leave out those that also went realtime).

        Returns (records, the cursor after them, done). A record stored after ``t_to``
        ends the read (done, the cursor left on it). A cursor whose segment was
        overwritten moves on to the oldest segment left.
        """
        out: list[tuple[float, bytes]] = []
        size = 0
        cur = Cursor(cursor.segment, cursor.offset)
        for seg in list(self.segments):
            if seg.number < cur.segment:
                continue
            if seg.number > cur.segment:
                cur = Cursor(seg.number)
            for t, kind, data, end in self._iter_from(seg, cur.offset, 2 * max_bytes):
                if kind != KIND_DELETE and t > t_to:
                    return out, cur, True
                cur.offset = end
                if (
                    kind == KIND_DELETE
                    or (skip_sent and kind == KIND_SENT)
                    or t <= self.deleted_before
                ):
                    continue
                out.append((t, data))
                size += len(data)
                if size >= max_bytes:
                    return out, cur, False
        return out, cur, True

    def cursor_at(self, t_from: float) -> Cursor:
        """The cursor of the first packet stored at or after ``t_from`` (the end of the
        store when there is none yet)."""
        for seg in self.segments:
            if seg.last_t is None or seg.last_t < t_from:
                continue
            off = SEG_HEADER_LEN
            for t, kind, _data, end in self._iter_from(seg):
                if kind != KIND_DELETE and t >= t_from:
                    return Cursor(seg.number, off)
                off = end
        return self.end_cursor()

    def end_cursor(self) -> Cursor:
        """The cursor just after the newest record (where the next one will be read)."""
        if not self.segments:
            return Cursor(1)
        seg = self.segments[-1]
        return Cursor(seg.number, seg.size)


__all__ = [
    "KIND_DELETE",
    "KIND_PACKET",
    "KIND_SENT",
    "MAX_RECORD",
    "CheckReport",
    "Cursor",
    "OpenReport",
    "PacketStore",
    "ScanResult",
    "Segment",
    "check_store",
    "encode_record",
    "scan_segment",
]
