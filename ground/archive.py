"""The ground archive: one SQLite file (WAL) of raw packets, telemetry samples, events and
command history with verification stages.

Writes are buffered and inserted in batches (``executemany`` in one transaction) when
``batch_rows`` rows are waiting or ``flush_interval_s`` has passed (time passed in, so it
runs on a simulated clock too); :meth:`flush` and :meth:`close` write the rest. The
schema is in ``docs/ground.md``; the dictionary used is stored in the file, so an archive
can be read, exported and replayed on its own.

>>> from ground.dictionary import Dictionary, minimal_dictionary
>>> arch = Archive(":memory:")
>>> d = Dictionary(minimal_dictionary())
>>> arch.set_dictionary(d)
>>> arch.add_samples(100.0, (0x1001, 0x1003), (21.5, 7))
>>> arch.add_samples(101.0, (0x1001, 0x1003), (22.0, 8))
>>> [(s.t_tai, s.value) for s in arch.telemetry("demo.temp_c")]
[(100.0, 21.5), (101.0, 22.0)]
>>> arch.close()
"""

from __future__ import annotations

import csv
import fnmatch
import io
import itertools
import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from fsw.ccsds import CcsdsError, datetime_from_tai
from ground.dictionary import Dictionary, DictionaryError, HkLayout, suggest_name
from ground.errors import ArchiveError
from ground.records import Decoded, EventRecord, Sample
from ground.tracker import CommandHandle, Stage, StageRecord

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS channels(
    channel_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    units TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS samples(
    channel_id INTEGER NOT NULL,
    t_tai REAL NOT NULL,
    value,
    PRIMARY KEY (channel_id, t_tai)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS packets(
    id INTEGER PRIMARY KEY,
    t_ground_s REAL NOT NULL,
    t_tai REAL,
    apid INTEGER,
    service INTEGER,
    subservice INTEGER,
    seq_count INTEGER,
    name TEXT,
    error TEXT,
    raw BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS packets_t_tai ON packets(t_tai);
CREATE INDEX IF NOT EXISTS packets_name ON packets(name, t_tai);
CREATE TABLE IF NOT EXISTS events(
    id INTEGER PRIMARY KEY,
    t_tai REAL NOT NULL,
    t_ground_s REAL NOT NULL,
    event_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    severity TEXT NOT NULL,
    message TEXT NOT NULL,
    args TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_t_tai ON events(t_tai);
CREATE INDEX IF NOT EXISTS events_name ON events(name, t_tai);
CREATE TABLE IF NOT EXISTS commands(
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    args TEXT NOT NULL,
    request_id INTEGER NOT NULL,
    seq_count INTEGER NOT NULL,
    t_sent_s REAL NOT NULL,
    release_tai REAL,
    tc BLOB NOT NULL,
    status TEXT NOT NULL,
    failure_code TEXT,
    reason TEXT);
CREATE INDEX IF NOT EXISTS commands_name ON commands(name, t_sent_s);
CREATE INDEX IF NOT EXISTS commands_t_sent ON commands(t_sent_s);
CREATE TABLE IF NOT EXISTS command_stages(
    command_id INTEGER NOT NULL REFERENCES commands(id),
    stage TEXT NOT NULL,
    t_ground_s REAL NOT NULL,
    t_tai REAL,
    failure_code TEXT,
    reason TEXT,
    step TEXT);
CREATE INDEX IF NOT EXISTS command_stages_command ON command_stages(command_id);
CREATE TABLE IF NOT EXISTS flagged(
    channel_id INTEGER NOT NULL,
    t_tai REAL NOT NULL,
    value TEXT NOT NULL,
    reason TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS flagged_channel ON flagged(channel_id, t_tai);
CREATE VIEW IF NOT EXISTS telemetry AS
    SELECT c.name AS name, s.t_tai AS t_tai, s.value AS value, c.units AS units
    FROM samples AS s JOIN channels AS c USING (channel_id);
"""


@dataclass(slots=True, frozen=True)
class ArchivedPacket:
    """One raw TM packet as archived."""

    id: int
    t_ground_s: float
    t_tai: float | None
    name: str | None
    raw: bytes


@dataclass(slots=True, frozen=True)
class FlaggedValue:
    """A telemetry value kept out of the samples: NaN, infinite, outside the channel's
    declared valid range, or a raw value its type cannot hold (an enum value without a
    label, a bool that is neither 0 nor 1). ``value`` is the text of what arrived."""

    name: str
    t_tai: float
    value: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "name": self.name,
            "t_tai": self.t_tai,
            "utc": utc_text(self.t_tai),
            "value": self.value,
            "reason": self.reason,
        }


@dataclass(slots=True, frozen=True)
class CommandRecord:
    """One archived command with its verification stages."""

    id: int
    name: str
    args: dict[str, Any]
    request_id: int
    seq_count: int
    t_sent_s: float
    release_tai: float | None
    status: str
    failure_code: str | None
    reason: str | None
    stages: tuple[StageRecord, ...]
    sent_utc: str = ""  # t_sent_s as ISO 8601 UTC, read with the archive's ground clock

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "id": self.id,
            "name": self.name,
            "args": self.args,
            "request_id": self.request_id,
            "seq_count": self.seq_count,
            "t_sent_s": self.t_sent_s,
            "sent_utc": self.sent_utc,
            "release_tai": self.release_tai,
            "status": self.status,
            "failure_code": self.failure_code,
            "reason": self.reason,
            "stages": [s.to_dict() for s in self.stages],
        }


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    return str(value)


def utc_text(t_tai: float | None) -> str:
    """ISO 8601 UTC text of a TAI time ('' if None or not representable).

    >>> utc_text(2.0e9)
    '2021-05-18T03:32:43.000Z'
    """
    if t_tai is None:
        return ""
    try:
        return _iso_ms(datetime_from_tai(t_tai))
    except (CcsdsError, ValueError, OverflowError):
        return ""


def _iso_ms(stamp: datetime) -> str:
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


#: SQLite's page cache per archive connection, KiB. Bounded, so that the memory of a long
#: run (or a station up for weeks) stays flat: the inserts touch the newest pages of each
#: channel's range, a few hundred pages; a larger cache only grows with the file.
CACHE_KIB = 8192

#: The scales a session's ground clock (``t_ground_s``, ``t_sent_s``) can be in.
GROUND_CLOCKS = ("unix", "tai")


def ground_time_text(t_s: float | None, clock: str = "unix") -> str:
    """ISO 8601 UTC text of a ground-clock time ('' if None or not representable).

    A station's clock is Unix seconds; SITL's simulated ground clock is TAI seconds.

    >>> ground_time_text(1.8e9), ground_time_text(2.0e9, "tai")
    ('2027-01-15T08:00:00.000Z', '2021-05-18T03:32:43.000Z')
    """
    if t_s is None:
        return ""
    if clock == "tai":
        return utc_text(t_s)
    try:
        return _iso_ms(datetime.fromtimestamp(t_s, tz=UTC))
    except (ValueError, OverflowError, OSError):
        return ""


class Archive:
    """An archive file (``":memory:"`` for a throw-away one). Thread-safe.

    ``batch_rows``: buffered rows that trigger a write; ``flush_interval_s``: the longest
    a row waits (checked in :meth:`maybe_flush`, which the session calls with its time).
    ``ground_clock``: the scale of the session's ground times, ``"unix"`` (a station) or
    ``"tai"`` (SITL); stored in the archive when given, read back from it when not
    (an archive that never stored one is ``"unix"``).

    ``readonly`` opens an existing archive for queries only: nothing is written to the
    file (no schema into an empty or foreign SQLite file), and a file that is not a
    Gnomon archive is refused with :class:`ArchiveError`. ``cache_kib`` bounds SQLite's
    page cache (:data:`CACHE_KIB`).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        batch_rows: int = 100_000,
        flush_interval_s: float = 1.0,
        ground_clock: str | None = None,
        readonly: bool = False,
        cache_kib: int = CACHE_KIB,
    ) -> None:
        if ground_clock is not None and ground_clock not in GROUND_CLOCKS:
            raise ArchiveError(
                f"ground clock {ground_clock!r} is not one of {', '.join(GROUND_CLOCKS)}"
            )
        self.path = str(path)
        self.readonly = readonly
        self.batch_rows = batch_rows
        self.flush_interval_s = flush_interval_s
        self._lock = threading.RLock()
        self._has_flagged = True
        try:
            if readonly:
                self._db = self._connect_readonly()
            else:
                self._db = self._connect_writable(ground_clock)
            self._db.execute(f"PRAGMA cache_size=-{max(64, int(cache_kib))}")
            stored = self._meta("ground_clock")
            self._types = self._channel_types()
        except sqlite3.Error as exc:
            raise ArchiveError(f"cannot open archive {self.path}: {exc}") from None
        self.ground_clock = stored if stored in GROUND_CLOCKS else "unix"
        self._packets: list[tuple[Any, ...]] = []
        self._hk: list[tuple[float, tuple[int, ...], tuple[Any, ...]]] = []
        self._hk_rows = 0
        self._events: list[tuple[Any, ...]] = []
        self._flagged: list[tuple[int, float, str, str]] = []
        self._stages: list[tuple[Any, ...]] = []
        self._status: dict[int, tuple[str, str | None, str | None]] = {}
        self._last_flush_s: float | None = None
        self._closed = False
        self.stats: dict[str, int] = {
            "packets": 0,
            "samples": 0,
            "events": 0,
            "commands": 0,
            "stages": 0,
            "flagged": 0,
            "flushes": 0,
        }

    def _connect_writable(self, ground_clock: str | None) -> sqlite3.Connection:
        if self.path != ":memory:":
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ArchiveError(
                    f"cannot create the folder of archive {self.path}: {exc.strerror}"
                ) from None
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA wal_autocheckpoint=10000")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(_SCHEMA)
            row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif str(row[0]) != str(SCHEMA_VERSION):
                raise ArchiveError(
                    f"{self.path} has archive schema {row[0]}; this ground "
                    f"reads version {SCHEMA_VERSION}"
                )
            if ground_clock is not None:
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('ground_clock', ?)", (ground_clock,)
                )
        except BaseException:
            db.close()
            raise
        return db

    def _connect_readonly(self) -> sqlite3.Connection:
        """Open an existing archive without writing a byte; refuse other files."""
        path = Path(self.path)
        if self.path == ":memory:" or not path.is_file():
            raise ArchiveError(f"no archive at {self.path}")
        if path.stat().st_size == 0:
            raise ArchiveError(f"{self.path} is empty: not a Gnomon archive")
        # Without a -wal file beside it no writer has the archive open (a WAL writer keeps
        # one), so it is read as immutable: SQLite then creates no -wal/-shm files either.
        live = Path(self.path + "-wal").exists()
        db = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro{'' if live else '&immutable=1'}",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            db.execute("PRAGMA busy_timeout=5000")
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            missing = {"meta", "channels", "samples", "packets", "events", "commands"} - tables
            if missing:
                raise ArchiveError(
                    f"{self.path} is an SQLite file but not a Gnomon archive "
                    f"(no {', '.join(sorted(missing))} table)"
                )
            row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None or str(row[0]) != str(SCHEMA_VERSION):
                raise ArchiveError(
                    f"{self.path} has archive schema {None if row is None else row[0]}; "
                    f"this ground reads version {SCHEMA_VERSION}"
                )
            self._has_flagged = "flagged" in tables
        except BaseException:
            db.close()
            raise
        return db

    # -- context ------------------------------------------------------------------------

    def __enter__(self) -> Archive:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Write what is buffered and close the file."""
        with self._lock:
            if self._closed:
                return
            self.flush()
            self._closed = True
            self._db.close()

    def _check(self) -> None:
        if self._closed:
            raise ArchiveError(f"archive {self.path} is closed")

    def _check_writable(self) -> None:
        self._check()
        if self.readonly:
            raise ArchiveError(f"archive {self.path} is open read-only")

    # -- dictionary ---------------------------------------------------------------------

    def _channel_types(self) -> dict[int, str]:
        return dict(self._db.execute("SELECT channel_id, type FROM channels").fetchall())

    def set_dictionary(self, dictionary: Dictionary) -> None:
        """Store the dictionary (and its channel table) the data are decoded with."""
        with self._lock:
            self._check_writable()
            old = self._meta("content_hash")
            if old is not None and old != dictionary.content_hash:
                log.warning(
                    "archive %s was written with dictionary %s; now %s",
                    self.path,
                    old[:19],
                    dictionary.content_hash[:19],
                )
            try:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT OR REPLACE INTO channels VALUES (?, ?, ?, ?)",
                    [
                        (ch.id, ch.name, ch.field.type, ch.units)
                        for ch in dictionary.channels.values()
                    ],
                )
                self._db.executemany(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                    [
                        ("dictionary", json.dumps(dictionary.doc, separators=(",", ":"))),
                        ("content_hash", dictionary.content_hash),
                    ],
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise ArchiveError(f"cannot write to archive {self.path}: {exc}") from None
            self._types = self._channel_types()

    def _meta(self, key: str) -> str | None:
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        except sqlite3.Error as exc:
            raise ArchiveError(f"cannot read archive {self.path}: {exc}") from None
        return None if row is None else str(row[0])

    def dictionary(self) -> Dictionary | None:
        """The dictionary stored in the archive (None if it has none)."""
        with self._lock:
            self._check()
            text = self._meta("dictionary")
        if text is None:
            return None
        try:
            return Dictionary.from_json(text, source=f"the dictionary stored in {self.path}")
        except DictionaryError as exc:
            raise ArchiveError(str(exc)) from None

    # -- writing ------------------------------------------------------------------------

    @property
    def pending_rows(self) -> int:
        """Rows waiting to be written."""
        return (
            len(self._packets)
            + self._hk_rows
            + len(self._events)
            + len(self._stages)
            + len(self._flagged)
        )

    def add_packet(self, t_ground_s: float, dec: Decoded) -> None:
        """Buffer one raw TM packet (with what it decoded to)."""
        with self._lock:
            t_tai = None if dec.error else dec.t_tai  # an undecodable packet has no time
            self._packets.append(
                (
                    t_ground_s,
                    t_tai,
                    dec.apid,
                    dec.service,
                    dec.subservice,
                    dec.seq_count,
                    dec.name,
                    dec.error,
                    dec.raw,
                )
            )

    def add_samples(
        self, t_tai: float, channel_ids: tuple[int, ...], values: tuple[Any, ...]
    ) -> None:
        """Buffer the values of one housekeeping report (``channel_ids`` in order).

        Pass the same ``channel_ids`` tuple object for every report of a structure
        (:class:`~ground.dictionary.HkLayout` does): rows are then grouped cheaply.
        """
        with self._lock:
            self._hk.append((t_tai, channel_ids, values))
            self._hk_rows += len(values)

    def add_hk(self, t_tai: float, layout: HkLayout, values: tuple[Any, ...]) -> None:
        """Buffer one decoded (3,25) report."""
        self.add_samples(t_tai, layout.ids, values)

    def add_flagged(self, t_tai: float, channel_id: int, value: Any, reason: str) -> None:
        """Buffer a telemetry value that is kept out of the samples (see
        :class:`FlaggedValue`), with the reason."""
        with self._lock:
            self._flagged.append((channel_id, t_tai, repr(value), reason))

    def add_event(self, t_ground_s: float, ev: EventRecord) -> None:
        """Buffer one event."""
        with self._lock:
            self._events.append(
                (
                    ev.t_tai,
                    t_ground_s,
                    ev.event_id,
                    ev.name,
                    ev.severity,
                    ev.message,
                    json.dumps(ev.args, default=_json_default),
                )
            )

    def add_command(self, handle: CommandHandle) -> int:
        """Record a command now (it gets its archive id) with the stages it has so far."""
        with self._lock:
            self._check_writable()
            try:
                cur = self._db.execute(
                    "INSERT INTO commands (name, args, request_id, seq_count, t_sent_s, "
                    "release_tai, tc, status, failure_code, reason) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        handle.name,
                        json.dumps(handle.args, default=_json_default),
                        handle.request_id,
                        handle.seq_count,
                        handle.t_sent_s,
                        handle.release_tai,
                        handle.tc,
                        handle.status.value,
                        handle.failure_code,
                        handle.reason,
                    ),
                )
            except sqlite3.Error as exc:
                raise ArchiveError(f"cannot write to archive {self.path}: {exc}") from None
            cid = cur.lastrowid
            assert cid is not None
            handle.archive_id = cid
            self.stats["commands"] += 1
            for rec in handle.stages:
                self.add_stage(handle, rec)
            return cid

    def add_stage(self, handle: CommandHandle, rec: StageRecord) -> None:
        """Buffer one verification stage of an archived command."""
        if handle.archive_id is None:
            return
        with self._lock:
            self._stages.append(
                (
                    handle.archive_id,
                    rec.stage.value,
                    rec.t_ground_s,
                    rec.t_tai,
                    rec.failure_code,
                    rec.reason,
                    rec.step,
                )
            )
            self._status[handle.archive_id] = (
                handle.status.value,
                handle.failure_code,
                handle.reason,
            )

    def maybe_flush(self, now_s: float) -> bool:
        """Write the buffers if they are big or old enough; True if it wrote."""
        with self._lock:
            if self._last_flush_s is None:
                self._last_flush_s = now_s
            n = self.pending_rows
            if n and (
                n >= self.batch_rows or abs(now_s - self._last_flush_s) >= self.flush_interval_s
            ):
                self.flush()
                self._last_flush_s = now_s
                return True
            return False

    def _sample_rows(self) -> list[tuple[int, float, Any]]:
        rows: list[tuple[int, float, Any]] = []
        groups: dict[int, tuple[tuple[int, ...], list[float], list[tuple[Any, ...]]]] = {}
        for t, ids, values in self._hk:
            g = groups.get(id(ids))
            if g is None:
                groups[id(ids)] = (ids, [t], [values])
            else:
                g[1].append(t)
                g[2].append(values)
        rep = itertools.repeat
        for ids, times, value_rows in groups.values():
            for cid, column in zip(ids, zip(*value_rows, strict=True), strict=True):
                rows.extend(zip(rep(cid), times, column, strict=False))
        return rows

    def flush(self) -> None:
        """Write every buffered row in one transaction."""
        with self._lock:
            self._check()
            if not self.pending_rows and not self._status:
                return
            self._check_writable()
            samples = self._sample_rows()
            db = self._db
            try:
                db.execute("BEGIN")
                if self._packets:
                    db.executemany(
                        "INSERT INTO packets (t_ground_s, t_tai, apid, service, "
                        "subservice, seq_count, name, error, raw) "
                        "VALUES (?,?,?,?,?,?,?,?,?)",
                        self._packets,
                    )
                if samples:
                    db.executemany("INSERT OR IGNORE INTO samples VALUES (?,?,?)", samples)
                if self._events:
                    db.executemany(
                        "INSERT INTO events (t_tai, t_ground_s, event_id, name, "
                        "severity, message, args) VALUES (?,?,?,?,?,?,?)",
                        self._events,
                    )
                if self._stages:
                    db.executemany(
                        "INSERT INTO command_stages VALUES (?,?,?,?,?,?,?)", self._stages
                    )
                if self._flagged:
                    db.executemany("INSERT INTO flagged VALUES (?,?,?,?)", self._flagged)
                if self._status:
                    db.executemany(
                        "UPDATE commands SET status=?, failure_code=?, reason=? WHERE id=?",
                        [(*v, k) for k, v in self._status.items()],
                    )
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise ArchiveError(f"cannot write to archive {self.path}: {exc}") from None
            self.stats["packets"] += len(self._packets)
            self.stats["samples"] += len(samples)
            self.stats["events"] += len(self._events)
            self.stats["stages"] += len(self._stages)
            self.stats["flagged"] += len(self._flagged)
            self.stats["flushes"] += 1
            self._packets.clear()
            self._hk.clear()
            self._hk_rows = 0
            self._events.clear()
            self._stages.clear()
            self._flagged.clear()
            self._status.clear()

    def _rollback(self) -> None:
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            log.debug("rollback after a failed write also failed", exc_info=True)

    # -- queries ------------------------------------------------------------------------

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            self._check()
            self.flush()
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise ArchiveError(f"cannot read archive {self.path}: {exc}") from None

    @staticmethod
    def _range(
        column: str, since: float | None, until: float | None, where: list[str], params: list[Any]
    ) -> None:
        if since is not None:
            where.append(f"{column} >= ?")
            params.append(since)
        if until is not None:
            where.append(f"{column} <= ?")
            params.append(until)

    def channel_names(self, pattern: str | None = None) -> list[str]:
        """Names of the channels with samples, matching a glob ``pattern`` if given."""
        rows = self._query(
            "SELECT name FROM channels c WHERE EXISTS "
            "(SELECT 1 FROM samples s WHERE s.channel_id = c.channel_id) "
            "ORDER BY name"
        )
        names = [str(r[0]) for r in rows]
        return [n for n in names if pattern is None or fnmatch.fnmatchcase(n, pattern)]

    def telemetry(
        self,
        name: str,
        since_tai: float | None = None,
        until_tai: float | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[Sample]:
        """Samples of channel ``name`` in a time range (oldest first by default)."""
        row = self._query("SELECT channel_id, type FROM channels WHERE name=?", (name,))
        if not row:
            known = [str(r[0]) for r in self._query("SELECT name FROM channels")]
            raise ArchiveError(
                f"the archive has no channel named '{name}'{suggest_name(name, known)}"
            )
        cid, ctype = row[0]
        where, params = ["channel_id = ?"], [cid]
        self._range("t_tai", since_tai, until_tai, where, params)
        sql = (
            f"SELECT t_tai, value FROM samples WHERE {' AND '.join(where)} "
            f"ORDER BY t_tai {'DESC' if newest_first else 'ASC'}"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        conv = bool if ctype == "bool" else None
        return [Sample(name, t, conv(v) if conv else v) for t, v in self._query(sql, params)]

    def flagged(
        self,
        pattern: str | None = None,
        since_tai: float | None = None,
        until_tai: float | None = None,
    ) -> list[FlaggedValue]:
        """Telemetry values kept out of the samples (oldest first); ``pattern`` is a
        glob over channel names."""
        if not self._has_flagged:
            return []  # an archive written before values were checked
        where: list[str] = []
        params: list[Any] = []
        self._range("f.t_tai", since_tai, until_tai, where, params)
        if pattern is not None:
            where.append("c.name GLOB ?")
            params.append(pattern)
        sql = (
            "SELECT c.name, f.t_tai, f.value, f.reason FROM flagged AS f "
            "JOIN channels AS c USING (channel_id)"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY f.t_tai, f.rowid"
        return [
            FlaggedValue(str(n), float(t), str(v), str(r))
            for n, t, v, r in self._query(sql, params)
        ]

    def events(
        self,
        since_tai: float | None = None,
        until_tai: float | None = None,
        name: str | None = None,
        severity: str | None = None,
        limit: int | None = None,
    ) -> list[EventRecord]:
        """Events in a time range, oldest first; ``name`` may be a glob (``cmd.*``)."""
        where: list[str] = []
        params: list[Any] = []
        self._range("t_tai", since_tai, until_tai, where, params)
        if name is not None:
            where.append("name GLOB ?")
            params.append(name)
        if severity is not None:
            if severity.upper() not in ("INFO", "LOW", "MEDIUM", "HIGH"):
                raise ArchiveError(f"severity '{severity}' is not one of INFO, LOW, MEDIUM, HIGH")
            where.append("severity = ?")
            params.append(severity.upper())
        sql = "SELECT id, t_tai, event_id, name, severity, args, message FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        if limit is None:
            sql += " ORDER BY t_tai, id"
        else:  # the newest `limit`, still oldest first
            sql = (
                f"SELECT * FROM ({sql} ORDER BY t_tai DESC, id DESC LIMIT {int(limit)}) "
                "ORDER BY t_tai, id"
            )
        return [
            EventRecord(t, eid, n, sev, json.loads(a), msg)
            for _, t, eid, n, sev, a, msg in self._query(sql, params)
        ]

    def commands(
        self, name: str | None = None, limit: int | None = None, *, unfinished: bool = False
    ) -> list[CommandRecord]:
        """Commands (oldest first), with their stages; ``name`` may be a glob.

        ``unfinished``: only those with no final report yet (not ``completed`` or
        ``failed``: still waiting, or timed out and so still open to a late report).
        """
        conds: list[str] = []
        params: list[Any] = []
        if name is not None:
            conds.append("name GLOB ?")
            params.append(name)
        if unfinished:
            conds.append("status NOT IN ('completed', 'failed')")
        where = " WHERE " + " AND ".join(conds) if conds else ""
        sql = (
            "SELECT id, name, args, request_id, seq_count, t_sent_s, release_tai, status, "
            f"failure_code, reason FROM commands{where} ORDER BY id DESC"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = self._query(sql, params)[::-1]
        stages: dict[int, list[StageRecord]] = {}
        if rows:
            marks = ",".join("?" * len(rows))
            for cid, st, tg, tt, fc, rs, step in self._query(
                f"SELECT * FROM command_stages WHERE command_id IN ({marks}) ORDER BY rowid",
                [r[0] for r in rows],
            ):
                stages.setdefault(cid, []).append(StageRecord(Stage(st), tg, tt, fc, rs, step))
        return [
            CommandRecord(
                r[0],
                r[1],
                json.loads(r[2]),
                r[3],
                r[4],
                r[5],
                r[6],
                r[7],
                r[8],
                r[9],
                tuple(stages.get(r[0], ())),
                ground_time_text(r[5], self.ground_clock),
            )
            for r in rows
        ]

    def packets(
        self, since_tai: float | None = None, until_tai: float | None = None
    ) -> Iterator[ArchivedPacket]:
        """Raw packets in arrival order (in chunks, so a large archive streams)."""
        where: list[str] = ["id > ?"]
        params: list[Any] = [0]
        self._range("t_tai", since_tai, until_tai, where, params)
        sql = (
            f"SELECT id, t_ground_s, t_tai, name, raw FROM packets WHERE "
            f"{' AND '.join(where)} ORDER BY id LIMIT 5000"
        )
        while True:
            rows = self._query(sql, params)
            if not rows:
                return
            for r in rows:
                yield ArchivedPacket(r[0], r[1], r[2], r[3], bytes(r[4]))
            params[0] = rows[-1][0]

    def time_range(self) -> tuple[float, float] | None:
        """(oldest, newest) on-board time of the archived packets, or None if empty."""
        row = self._query("SELECT min(t_tai), max(t_tai) FROM packets")[0]
        return None if row[0] is None else (float(row[0]), float(row[1]))

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        out = {}
        for table in ("packets", "samples", "events", "commands", "command_stages"):
            out[table] = int(self._query(f"SELECT count(*) FROM {table}")[0][0])
        out["flagged"] = (
            int(self._query("SELECT count(*) FROM flagged")[0][0]) if self._has_flagged else 0
        )
        return out

    # -- export and replay --------------------------------------------------------------

    def export_csv(
        self,
        out: str | Path | TextIO,
        pattern: str | None = None,
        since_tai: float | None = None,
        until_tai: float | None = None,
    ) -> int:
        """Write samples as CSV (``name,t_tai,utc,value,units``), by channel then time.

        ``pattern`` is a glob over channel names. Returns the number of rows written.
        """
        names = self.channel_names(pattern)
        units = dict(self._query("SELECT name, units FROM channels"))
        n = 0
        with _OpenText(out) as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["name", "t_tai", "utc", "value", "units"])
            for name in names:
                for s in self.telemetry(name, since_tai, until_tai):
                    w.writerow(
                        [name, f"{s.t_tai:.6f}", utc_text(s.t_tai), s.value, units.get(name, "")]
                    )
                    n += 1
        return n

    def export_events_csv(
        self,
        out: str | Path | TextIO,
        since_tai: float | None = None,
        until_tai: float | None = None,
    ) -> int:
        """Write events as CSV (``t_tai,utc,severity,name,message,args``)."""
        n = 0
        with _OpenText(out) as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["t_tai", "utc", "severity", "name", "message", "args"])
            for ev in self.events(since_tai, until_tai):
                w.writerow(
                    [
                        f"{ev.t_tai:.6f}",
                        utc_text(ev.t_tai),
                        ev.severity,
                        ev.name,
                        ev.message,
                        json.dumps(ev.args, default=_json_default),
                    ]
                )
                n += 1
        return n


class _OpenText:
    """Context manager: a path opened for writing, or a given text stream left open."""

    def __init__(self, out: str | Path | TextIO) -> None:
        self._out = out
        self._fh: TextIO | None = None

    def __enter__(self) -> TextIO:
        if isinstance(self._out, str | Path):
            try:
                self._fh = open(self._out, "w", encoding="utf-8", newline="")
            except OSError as exc:
                raise ArchiveError(f"cannot write {self._out}: {exc.strerror}") from None
            return self._fh
        assert isinstance(self._out, io.TextIOBase | TextIO) or hasattr(self._out, "write")
        return self._out

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()


__all__ = [
    "CACHE_KIB",
    "GROUND_CLOCKS",
    "Archive",
    "ArchivedPacket",
    "CommandRecord",
    "FlaggedValue",
    "ground_time_text",
    "utc_text",
]
