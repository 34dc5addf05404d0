"""Persistent storage with atomic saves and a kept last-good copy.

A record is a 16-byte header (magic ``GNST``, format version, flags, reserved, payload
length, CRC-32 of header and payload) and the payload. A save writes
``<key>.gst.tmp``, fsyncs it, moves the current (valid) ``<key>.gst`` to
``<key>.gst.bak`` and renames the temp file over ``<key>.gst``; then the directory is
fsynced. Whatever instant the power is cut at, a load finds a valid copy: the primary,
else the backup. A torn or corrupt file and a left-over temp file (a save interrupted
between write and rename) are reported in the :class:`LoadResult` so the flight
software can raise an event.

>>> st = MemNvStore()
>>> st.save("params", b'{"gain": 2}')
>>> st.load("params").payload
b'{"gain": 2}'
>>> st.files["params.gst"] = st.files["params.gst"][:-3]     # tear the primary copy
>>> st.save("params", b'{"gain": 3}')                        # a good save rotates nothing bad
>>> res = st.load("params"); res.source, res.payload
('primary', b'{"gain": 3}')
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from fsw.core.errors import NvStoreError

MAGIC = b"GNST"
FORMAT_VERSION = 1
_HDR = struct.Struct(">4sBBHII")
HEADER_LEN = _HDR.size
_KEY_RE = re.compile(r"^[a-z0-9_]{1,64}$")


def _crc(head12: bytes, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(head12))


def pack_record(payload: bytes) -> bytes:
    """Header + payload, as written to storage. The CRC-32 covers the first 12 header
    bytes and the payload, so any damaged byte is detected.

    >>> pack_record(b"hi").hex()
    '474e53540100000000000002442a18b46869'
    """
    head = _HDR.pack(MAGIC, FORMAT_VERSION, 0, 0, len(payload), 0)[:12]
    return head + _crc(head, payload).to_bytes(4, "big") + payload


def unpack_record(raw: bytes) -> bytes:
    """The payload of a stored record; ``NvStoreError`` says why a record is unusable."""
    if len(raw) < HEADER_LEN:
        raise NvStoreError(f"is torn ({len(raw)} bytes, shorter than the {HEADER_LEN}-byte header)")
    magic, version, _flags, _res, length, crc = _HDR.unpack_from(raw, 0)
    if magic != MAGIC:
        raise NvStoreError("is not a Gnomon store record (bad magic)")
    if version != FORMAT_VERSION:
        raise NvStoreError(f"has format version {version}, expected {FORMAT_VERSION}")
    payload = raw[HEADER_LEN:]
    if len(payload) != length:
        raise NvStoreError(f"is torn ({len(payload)} of {length} payload bytes)")
    if _crc(raw[:12], payload) != crc:
        raise NvStoreError("is corrupt (CRC-32 mismatch)")
    return payload


@dataclass(slots=True, frozen=True)
class MirroredLoad:
    """What :meth:`NvStore.load_mirrored` found: the newest good copy's ``payload`` and
    ``generation`` (None and 0: no good copy), whether any copy ``existed``, and what was
    wrong with the other one, in words (``problems``)."""

    key: str
    payload: bytes | None
    generation: int
    existed: bool
    problems: tuple[str, ...] = ()


@dataclass(slots=True, frozen=True)
class LoadResult:
    """What :meth:`NvStore.load` found.

    ``source`` is ``"primary"``, ``"backup"`` (the primary was unusable) or ``"none"``;
    ``problems`` lists what was wrong, in words; ``interrupted`` is True when a temp file
    of an unfinished save was found (and discarded).
    """

    key: str
    payload: bytes | None
    source: str
    problems: tuple[str, ...] = ()
    interrupted: bool = False


class NvStore(ABC):
    """Key -> bytes storage with atomic replace and a last-good backup copy."""

    def save(self, key: str, payload: bytes) -> None:
        """Store ``payload`` under ``key`` atomically; ``NvStoreError`` if I/O fails."""
        _check_key(key)
        primary, backup, tmp = _names(key)
        try:
            self._write_durable(tmp, pack_record(payload))
            current = self._read(primary)
            if current is not None and _is_valid(current):
                self._replace(primary, backup)
            self._replace(tmp, primary)
            self._sync()
        except OSError as exc:
            raise NvStoreError(f"cannot save '{key}': {exc.strerror or exc}") from None

    def load(self, key: str) -> LoadResult:
        """The newest valid copy of ``key`` (never raises for bad content)."""
        _check_key(key)
        primary, backup, tmp = _names(key)
        problems: list[str] = []
        interrupted = False
        try:
            if self._read(tmp) is not None:
                interrupted = True
                problems.append("an interrupted save was found and discarded")
                self._remove(tmp)
        except OSError as exc:
            problems.append(f"temp file unreadable ({exc.strerror or exc})")
        raw_primary = self._read_quiet(primary, "primary", problems)
        if raw_primary is not None:
            try:
                return LoadResult(
                    key, unpack_record(raw_primary), "primary", tuple(problems), interrupted
                )
            except NvStoreError as exc:
                problems.append(f"primary copy {exc.reason}")
        raw_backup = self._read_quiet(backup, "backup", problems)
        if raw_backup is not None:
            if raw_primary is None:
                problems.append("primary copy is missing")
            try:
                return LoadResult(
                    key, unpack_record(raw_backup), "backup", tuple(problems), interrupted
                )
            except NvStoreError as exc:
                problems.append(f"backup copy {exc.reason}")
        return LoadResult(key, None, "none", tuple(problems), interrupted)

    # mirrored records -------------------------------------------------------
    #: False for memory that a reboot clears (nothing survives, so nothing is lost).
    durable = True

    def save_mirrored(self, key: str, payload: bytes, generation: int) -> None:
        """Write ``payload`` to both copies of ``key`` in turn (``<key>.gsa``, then
        ``<key>.gsb``), each made durable before the next is touched.

        For state that must never roll back (the link's anti-replay numbers): at any
        instant at most one copy is being written, so a reset leaves the other intact,
        and once this returns both copies hold ``payload``. ``generation`` (the caller's
        count, one up per save) tells :meth:`load_mirrored` which copy is newer.
        """
        _check_key(key)
        record = pack_record(generation.to_bytes(8, "big") + payload)
        try:
            for name in _mirror_names(key):
                new = self._read(name) is None
                self._write_durable(name, record)
                if new:
                    self._sync()
        except OSError as exc:
            raise NvStoreError(f"cannot save '{key}': {exc.strerror or exc}") from None

    def load_mirrored(self, key: str) -> MirroredLoad:
        """The newest good copy of a mirrored ``key`` (never raises for bad content)."""
        _check_key(key)
        problems: list[str] = []
        good: list[tuple[int, bytes, str]] = []
        existed = False
        for name, which in zip(_mirror_names(key), ("copy A", "copy B"), strict=True):
            raw = self._read_quiet(name, which, problems)
            if raw is None:
                if not any(which in p for p in problems):
                    problems.append(f"{which} is missing")
                continue
            existed = True
            try:
                body = unpack_record(raw)
                if len(body) < 8:
                    raise NvStoreError("is too short to hold a generation")
            except NvStoreError as exc:
                problems.append(f"{which} {exc.reason}")
                continue
            good.append((int.from_bytes(body[:8], "big"), body[8:], which))
        if not good:
            return MirroredLoad(key, None, 0, existed, tuple(problems) if existed else ())
        good.sort(key=lambda g: g[0])
        generation, payload, _ = good[-1]
        if len(good) == 2 and good[0][0] != generation:
            problems.append(f"{good[0][2]} is one save behind (a save was cut short)")
        return MirroredLoad(key, payload, generation, existed, tuple(problems))

    def _read_quiet(self, name: str, which: str, problems: list[str]) -> bytes | None:
        try:
            return self._read(name)
        except OSError as exc:
            problems.append(f"{which} copy unreadable ({exc.strerror or exc})")
            return None

    # primitives -------------------------------------------------------------
    @abstractmethod
    def _read(self, name: str) -> bytes | None:
        """Bytes of ``name`` or None if it does not exist."""

    @abstractmethod
    def _write_durable(self, name: str, data: bytes) -> None:
        """Write ``name`` completely and make it durable (fsync)."""

    @abstractmethod
    def _replace(self, src: str, dst: str) -> None:
        """Atomically rename ``src`` over ``dst``."""

    @abstractmethod
    def _remove(self, name: str) -> None:
        """Delete ``name`` if it exists."""

    def _sync(self) -> None:  # noqa: B027 - optional hook, a no-op in memory
        """Make the renames durable (directory fsync)."""


class DirNvStore(NvStore):
    """A directory on disk (SD card, eMMC). Created if missing.

    >>> import tempfile
    >>> st = DirNvStore(tempfile.mkdtemp())
    >>> st.save("sched", b"[]"); st.load("sched").source
    'primary'
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise NvStoreError(
                f"cannot use storage directory {self.root}: {exc.strerror}"
            ) from None

    def _read(self, name: str) -> bytes | None:
        try:
            return (self.root / name).read_bytes()
        except FileNotFoundError:
            return None

    def _write_durable(self, name: str, data: bytes) -> None:
        with open(self.root / name, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def _replace(self, src: str, dst: str) -> None:
        os.replace(self.root / src, self.root / dst)

    def _remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.root / name)

    def _sync(self) -> None:
        fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class MemNvStore(NvStore):
    """In-memory storage with the same semantics (tests and SITL). ``files`` is public
    so tests can tear or corrupt a copy."""

    durable = False

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def _read(self, name: str) -> bytes | None:
        return self.files.get(name)

    def _write_durable(self, name: str, data: bytes) -> None:
        self.files[name] = bytes(data)

    def _replace(self, src: str, dst: str) -> None:
        if src not in self.files:
            raise FileNotFoundError(2, "No such file", src)
        self.files[dst] = self.files.pop(src)

    def _remove(self, name: str) -> None:
        self.files.pop(name, None)


def _names(key: str) -> tuple[str, str, str]:
    return f"{key}.gst", f"{key}.gst.bak", f"{key}.gst.tmp"


def _mirror_names(key: str) -> tuple[str, str]:
    return f"{key}.gsa", f"{key}.gsb"


def _check_key(key: str) -> None:
    if not _KEY_RE.match(key):
        raise NvStoreError(f"storage key {key!r} must be 1-64 of a-z, 0-9, _")


def _is_valid(raw: bytes) -> bool:
    try:
        unpack_record(raw)
    except NvStoreError:
        return False
    return True


__all__ = [
    "HEADER_LEN",
    "DirNvStore",
    "LoadResult",
    "MemNvStore",
    "MirroredLoad",
    "NvStore",
    "pack_record",
    "unpack_record",
]
