"""The golden copies of a model file: checked in the background, healed from each other.

A loaded model repairs its RAM arena from *golden* copies of its ``.gnm`` file on storage.
A golden copy is only useful if it is intact when a repair needs it, and storage takes
upsets too. So, at load, the runtime records the expected check value of every segment of its
verified file (header, graph, CRC table A, padding, each arena block, table B, the
SHA-256/HMAC trailer): the :class:`FileMap`. A :class:`GoldenSet` then walks its copies a
byte budget at a time, compares every segment with the map and rewrites a bad segment
from a copy whose segment verifies (an arena block also from the verified RAM arena).
A copy that is missing, or of the wrong size, is rewritten whole from a verified copy.

Repairs of the RAM arena do not need a copy's header either: a block is read at the
offset of the verified file and accepted only if its CRC matches, so one flipped header
bit no longer makes every repair impossible.

>>> from fsw.ai import gnm, shipped_dir
>>> data = (shipped_dir() / "cloudnet-s.gnm").read_bytes()
>>> fmap = FileMap.of(data)
>>> [s.region for s in fmap.segments][:4], fmap.size == len(data)
(['header', 'graph', 'table-a', 'padding'], True)
>>> fmap.bad_segments(data)
[]
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from fsw.ai import gnm
from fsw.ai.crc import crc32c
from fsw.ai.errors import ModelIntegrityError

log = logging.getLogger(__name__)

#: Default background budget: golden-file bytes checked per call (one per scrubber tick).
DEFAULT_GOLDEN_BUDGET_BYTES = 64 * 1024


def segment_crc(region: str, offset: int, data: bytes | memoryview) -> int:
    """The check value of a segment: the block CRC-32C in the arena, BLAKE2b elsewhere.

    The header and the CRC tables end with their own CRC-32C, and a CRC of any message
    followed by its own CRC is one constant (CRCs are affine, so no seed or prefix helps):
    every valid header would match. A 64-bit BLAKE2b of the offset and the bytes does not
    have that blind spot, so another model's header or table is caught too.
    """
    if region == "arena":
        return crc32c(data)  # the block CRCs of the file's own table
    h = hashlib.blake2b(struct.pack("<Q", offset), digest_size=8)
    h.update(data)
    return int.from_bytes(h.digest(), "little")


@dataclass(slots=True, frozen=True)
class Segment:
    """One checked byte range of a model file and its expected CRC-32C."""

    region: str  # header | graph | table-a | padding | arena | table-b | trailer
    offset: int
    size: int
    crc: int  # segment_crc(): CRC-32C for arena blocks, 64-bit BLAKE2b elsewhere
    block: int | None = None  # arena block index

    def matches(self, data: bytes | memoryview) -> bool:
        """True if ``data`` is exactly this segment's expected bytes (by its check value)."""
        return len(data) == self.size and segment_crc(self.region, self.offset, data) == self.crc

    @property
    def label(self) -> str:
        return f"arena block {self.block}" if self.block is not None else self.region


@dataclass(slots=True, frozen=True)
class FileMap:
    """The expected CRC of every segment of a verified model file (covers every byte)."""

    size: int
    segments: tuple[Segment, ...]

    @classmethod
    def of(cls, data: bytes | memoryview) -> FileMap:
        """The map of ``data``, a file that already verified (``gnm.decode``)."""
        h = gnm.Header.decode(data)
        mv = memoryview(data)
        pad = h.table_a_offset + h.table_size
        ranges: list[tuple[str, int, int, int | None]] = [
            ("header", 0, gnm.HEADER_SIZE, None),
            ("graph", h.graph_offset, h.graph_size, None),
            ("table-a", h.table_a_offset, h.table_size, None),
            ("padding", pad, h.arena_offset - pad, None),
        ]
        for i in range(h.n_blocks):
            lo = i * h.block_size
            size = min(h.block_size, h.arena_size - lo)
            ranges.append(("arena", h.arena_offset + lo, size, i))
        ranges.append(("table-b", h.table_b_offset, h.table_size, None))
        ranges.append(("trailer", h.sha_offset, h.file_size - h.sha_offset, None))
        segs = tuple(
            Segment(r, off, n, segment_crc(r, off, mv[off : off + n]), blk)
            for r, off, n, blk in ranges
            if n
        )
        return cls(h.file_size, segs)

    def bad_segments(self, data: bytes | memoryview) -> list[Segment]:
        """Segments of ``data`` (a whole file) that differ from the map."""
        mv = memoryview(data)
        return [s for s in self.segments if not s.matches(mv[s.offset : s.offset + s.size])]


@dataclass(slots=True, frozen=True)
class GoldenFinding:
    """What the background check found in one copy, and what became of it."""

    path: Path
    what: str  # the segment label, "missing" or "size"
    healed: bool
    source: str  # where the good bytes came from ("" if none)


@dataclass(slots=True, frozen=True)
class GoldenReport:
    """One call of :meth:`GoldenSet.check`."""

    bytes_checked: int
    segments_checked: int
    findings: tuple[GoldenFinding, ...]
    sweeps: int  # complete passes over every copy finished during this call


@dataclass(slots=True)
class GoldenSet:
    """The golden copies of one model, checked a budget at a time and healed.

    ``ram_block(i)`` returns arena block ``i`` from RAM if it verifies (a source for
    healing an arena block of a copy), else ``None``.
    """

    fmap: FileMap
    paths: tuple[Path, ...]
    ram_block: Callable[[int], bytes | None]
    _copy: int = 0
    _seg: int = 0
    bad: dict[Path, set[str]] = field(default_factory=dict)
    counters: dict[str, int] = field(
        default_factory=lambda: {
            "bytes_checked": 0,
            "bad_found": 0,
            "healed": 0,
            "unhealable": 0,
            "sweeps": 0,
        }
    )

    @property
    def copies_ok(self) -> int:
        """Copies with no known bad segment."""
        return sum(1 for p in self.paths if not self.bad.get(p))

    def check(self, budget_bytes: int | None = None) -> GoldenReport:
        """Check the next ``budget_bytes`` of golden-copy bytes (``None``: every copy whole).

        At least one segment is checked per call. A bad segment is healed at once if
        another source verifies.
        """
        if not self.paths:
            return GoldenReport(0, 0, (), 0)
        total = sum(s.size for s in self.fmap.segments) * len(self.paths)
        budget = total if budget_bytes is None else max(1, budget_bytes)
        spent = checked = sweeps = 0
        findings: list[GoldenFinding] = []
        while spent < budget and checked < len(self.fmap.segments) * len(self.paths):
            path = self.paths[self._copy]
            n = k = 0
            found: list[GoldenFinding] = []
            if self._seg == 0:
                f0 = self._check_whole_file(path)
                if f0 is not None:
                    findings.append(f0)
                k = 1  # the whole-file check counts as progress
            if self._seg < len(self.fmap.segments):
                n, k, found = self._check_some(path, budget - spent)
            spent += n
            checked += k
            findings += found
            if self._seg >= len(self.fmap.segments):
                self._seg = 0
                self._copy = (self._copy + 1) % len(self.paths)
                if self._copy == 0:
                    sweeps += 1
        self.counters["bytes_checked"] += spent
        self.counters["sweeps"] += sweeps
        return GoldenReport(spent, checked, tuple(findings), sweeps)

    def _check_whole_file(self, path: Path) -> GoldenFinding | None:
        """A missing copy, or one of the wrong size, is rewritten whole.

        A file that is a *valid* model but another one (its header verifies and differs)
        is reported and never overwritten: the configuration named the wrong file.
        """
        try:
            size = path.stat().st_size
            with path.open("rb") as f:
                head = f.read(gnm.HEADER_SIZE)
        except OSError:
            return self._whole_or_skip(path, "missing")
        if self._foreign(head):
            self._seg = len(self.fmap.segments)  # nothing else of it is ours to check
            return self._unhealable(path, "another model")
        if size != self.fmap.size:
            return self._whole_or_skip(path, "size")
        return None

    def _whole_or_skip(self, path: Path, what: str) -> GoldenFinding | None:
        """Rewrite the copy whole; if that fails, skip its segments for this sweep."""
        found = self._rewrite_whole(path, what)
        if path in self.bad and what in self.bad[path]:
            self._seg = len(self.fmap.segments)
        return found

    def _foreign(self, head: bytes) -> bool:
        """True if ``head`` is a valid header of a different model file."""
        if self.fmap.segments[0].matches(head):
            return False
        try:
            gnm.Header.decode(head)
        except ModelIntegrityError:
            return False  # a damaged header of (presumably) our copy: heal it
        return True

    def _check_some(self, path: Path, budget: int) -> tuple[int, int, list[GoldenFinding]]:
        spent = checked = 0
        findings: list[GoldenFinding] = []
        segs = self.fmap.segments
        try:
            with path.open("rb") as f:
                while self._seg < len(segs) and (checked == 0 or spent < budget):
                    s = segs[self._seg]
                    f.seek(s.offset)
                    data = f.read(s.size)
                    spent += s.size
                    checked += 1
                    self._seg += 1
                    if s.matches(data):
                        self.bad.get(path, set()).discard(s.label)
                        continue
                    found = self._heal_segment(path, s)
                    if found is not None:
                        findings.append(found)
        except OSError as e:
            log.warning("golden copy %s unreadable: %s", path, e)
            self._seg = len(segs)  # skip the rest of this copy this sweep
            checked += 1  # progress, so an unreadable copy cannot stall the walk
            found = self._rewrite_whole(path, "missing")
            if found is not None:
                findings.append(found)
        return spent, checked, findings

    def _good_bytes(self, s: Segment, exclude: Path) -> tuple[bytes, str] | None:
        if s.block is not None:
            ram = self.ram_block(s.block)
            if ram is not None and s.matches(ram):
                return ram, "RAM arena"
        for other in self.paths:
            if other == exclude:
                continue
            try:
                with other.open("rb") as f:
                    f.seek(s.offset)
                    data = f.read(s.size)
            except OSError:
                continue
            if s.matches(data):
                return data, str(other)
        return None

    def _known(self, path: Path, what: str) -> bool:
        """True if ``what`` of ``path`` is already known bad (reported once, retried quietly)."""
        known = what in self.bad.get(path, set())
        if not known:
            self.counters["bad_found"] += 1
            self.bad.setdefault(path, set()).add(what)
        return known

    def _unhealable(self, path: Path, what: str) -> GoldenFinding | None:
        if self._known(path, what):
            return None
        self.counters["unhealable"] += 1
        return GoldenFinding(path, what, False, "")

    def _heal_segment(self, path: Path, s: Segment) -> GoldenFinding | None:
        """Rewrite a bad segment; a finding the first time, or when it heals."""
        if s.label in self.bad.get(path, set()) and self._good_bytes(s, path) is None:
            return None  # still no good source: reported already
        good = self._good_bytes(s, path)
        if good is not None:
            try:
                with path.open("r+b") as f:
                    f.seek(s.offset)
                    f.write(good[0])
                    f.flush()
                    os.fsync(f.fileno())
                    f.seek(s.offset)
                    ok = s.matches(f.read(s.size))
            except OSError as e:
                log.warning("golden copy %s: cannot rewrite %s: %s", path, s.label, e)
                ok = False
            if ok:
                self._known(path, s.label)
                self.bad[path].discard(s.label)
                self.counters["healed"] += 1
                return GoldenFinding(path, s.label, True, good[1])
        return self._unhealable(path, s.label)

    def _rewrite_whole(self, path: Path, what: str) -> GoldenFinding | None:
        """Rewrite a missing or wrong-sized copy from a verified one."""
        for other in self.paths:
            if other == path:
                continue
            try:
                data = other.read_bytes()
            except OSError:
                continue
            if len(data) != self.fmap.size or self.fmap.bad_segments(data):
                continue
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except OSError as e:
                log.warning("golden copy %s cannot be rewritten: %s", path, e)
                break
            self._known(path, what)
            self.bad[path] = set()
            self.counters["healed"] += 1
            return GoldenFinding(path, what, True, str(other))
        return self._unhealable(path, what)


def read_segment(paths: Iterable[Path], s: Segment) -> tuple[bytes, Path] | None:
    """The bytes of segment ``s`` from the first copy whose bytes match its CRC."""
    for path in paths:
        try:
            with path.open("rb") as f:
                data = _read_at(f, s.offset, s.size)
        except OSError as e:
            log.warning("cannot read golden file %s: %s", path, e)
            continue
        if s.matches(data):
            return data, path
    return None


def _read_at(f: IO[bytes], offset: int, size: int) -> bytes:
    f.seek(offset)
    return f.read(size)


def copies_for(paths: Sequence[Path]) -> tuple[Path, ...]:
    """Distinct golden paths in order (the same file named twice counts once)."""
    seen: list[Path] = []
    for p in paths:
        if all(os.path.abspath(p) != os.path.abspath(q) for q in seen):
            seen.append(p)
    return tuple(seen)


def provision_copies(model: Path, directory: Path, copies: int = 1) -> tuple[Path, ...]:
    """Make sure ``directory`` holds ``copies`` verified golden copies of ``model``.

    A copy is (re)written when it is missing or differs from ``model`` (which must
    verify). Returns the copies that exist and verify; a read-only or full storage
    yields fewer (logged), never an exception.

    >>> import tempfile
    >>> from fsw.ai import shipped_dir
    >>> with tempfile.TemporaryDirectory() as d:
    ...     [p.name for p in provision_copies(shipped_dir() / "cloudnet-s.gnm", Path(d))]
    ['cloudnet-s.golden1.gnm']
    """
    try:
        data = model.read_bytes()
        gnm.decode(data)
    except (OSError, ModelIntegrityError) as e:
        log.warning("no golden copies of %s: it does not load (%s)", model, e)
        return ()
    fmap = FileMap.of(data)
    out: list[Path] = []
    for k in range(1, copies + 1):
        dst = directory / f"{model.stem}.golden{k}.gnm"
        try:
            if (
                not dst.exists()
                or fmap.bad_segments(dst.read_bytes())
                or (dst.stat().st_size != len(data))
            ):
                directory.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}-", dir=directory)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, dst)
            out.append(dst)
        except OSError as e:
            log.warning("golden copy %s not provisioned: %s", dst, e)
    return tuple(out)


__all__ = [
    "DEFAULT_GOLDEN_BUDGET_BYTES",
    "FileMap",
    "GoldenFinding",
    "GoldenReport",
    "GoldenSet",
    "Segment",
    "copies_for",
    "provision_copies",
    "read_segment",
]
