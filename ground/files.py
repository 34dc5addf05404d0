"""The ground's CFDP entity and its file records: files down land in a directory and in the
archive; files go up from it.

:class:`GroundFiles` is the ground end of the transfers the flight's ``cfdp`` component
runs (same library and glue, :mod:`fsw.ccsds.cfdp`, a wire format the ground may use).
A :class:`~ground.session.GroundSession` with ``files`` set hands it every TM packet on
APID 0x7FD and sends the PDUs it makes as TC packets through COP-1. Each file that
arrives (checksum verified by CFDP) lands under ``directory`` at the path the flight
named, and gets a row in the ``files`` table of the archive's SQLite file: name, size,
SHA-256, CRC-32, transaction, times, state and metadata (the JSON sidecar the flight
writes next to a data product, when it has arrived too).

Its CFDP timers run on contact time: the clock advances with the downlink received
(:meth:`GroundFiles.heard`, at most :data:`MAX_CONTACT_GAP_S` per gap), so an LOS
freezes the transfers. PDUs go up only while COP-1's AD service runs.

>>> import tempfile
>>> gf = GroundFiles(Path(tempfile.mkdtemp()))
>>> gf.entity.config.local_id, gf.records()
(2, [])
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import threading
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fsw.ccsds.cfdp import (
    CFDP_APID,
    PART_DIR,
    UPLINK_MAX_PDU,
    CfdpConfig,
    CfdpEntity,
    Transfer,
    safe_relative,
)
from fsw.ccsds.spacepacket import PacketType
from ground.errors import GroundError

MAX_CONTACT_GAP_S = 2.0
OUTGOING_DIR = ".outgoing"
#: CFDP entity ids: the flight is 1, the ground 2 (fsw.comms.cfdp's defaults).
FLIGHT_ENTITY, GROUND_ENTITY = 1, 2

_TABLE = """
CREATE TABLE IF NOT EXISTS files(
    id INTEGER PRIMARY KEY,
    direction TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER,
    sha256 TEXT,
    crc32 TEXT,
    transaction_id TEXT,
    state TEXT NOT NULL,
    condition TEXT NOT NULL,
    started_contact_s REAL,
    ended_contact_s REAL,
    t_ground REAL,
    metadata TEXT);
"""


@dataclass(slots=True, frozen=True)
class FileRecord:
    """One row of the ``files`` table."""

    direction: str
    name: str
    size: int | None
    sha256: str
    crc32: str
    transaction_id: str
    state: str
    condition: str
    started_contact_s: float | None
    ended_contact_s: float | None
    t_ground: float
    metadata: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class GroundFiles:
    """The ground CFDP entity over ``directory``; rows go to ``archive_path`` if given."""

    def __init__(
        self,
        directory: Path,
        archive_path: str | Path | None = None,
        *,
        config: CfdpConfig | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.entity = CfdpEntity(
            config
            or CfdpConfig(
                local_id=GROUND_ENTITY,
                remote_id=FLIGHT_ENTITY,
                packet_type=PacketType.TC,
                max_pdu_len=UPLINK_MAX_PDU,
            ),
            self.directory,
            on_done=self._on_done,
        )
        self._lock = threading.Lock()
        self._contact_s = 0.0
        self._last_rx: float | None = None
        self._rows: list[FileRecord] = []
        self._db: sqlite3.Connection | None = None
        if archive_path is not None and str(archive_path) != ":memory:":
            self._db = sqlite3.connect(str(archive_path), check_same_thread=False, timeout=10.0)
            self._db.executescript(_TABLE)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # ------------------------------------------------------------------ the link
    def heard(self, now_s: float) -> None:
        """Downlink arrived at ``now_s``: advance the contact clock (at most
        :data:`MAX_CONTACT_GAP_S` since the last time, so an LOS adds next to nothing)."""
        with self._lock:
            if self._last_rx is not None:
                self._contact_s += min(max(0.0, now_s - self._last_rx), MAX_CONTACT_GAP_S)
            self._last_rx = now_s

    def receive(self, packet: bytes, now_s: float) -> None:
        """A TM packet on the CFDP APID (advances the contact clock too)."""
        self.heard(now_s)
        with self._lock:
            self.entity.receive(packet)

    def take(self, max_bytes: int) -> list[bytes]:
        """TC packets (PDUs) to send up now, about ``max_bytes``; runs the timers first."""
        with self._lock:
            self.entity.poll(self._contact_s)
            if max_bytes <= 0:
                return []
            return self.entity.take(self._contact_s, max_bytes)

    @property
    def contact_s(self) -> float:
        return self._contact_s

    # ------------------------------------------------------------------ files up
    def put(self, local: Path, dest: str, *, acknowledged: bool = True) -> Transfer:
        """Send the local file ``local`` to ``dest`` on board (e.g. ``uplink/models/x.gnm``)."""
        clean = safe_relative(dest)
        if clean is None:
            raise GroundError(f"on-board path {dest!r} must be relative, without '..'")
        if not local.is_file():
            raise GroundError(f"no file {local} to send")
        staged = self.directory / OUTGOING_DIR / f"{int(time.time() * 1000)}-{local.name}"
        staged.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, staged)
        with self._lock:
            return self.entity.put(
                staged.relative_to(self.directory), clean, acknowledged=acknowledged
            )

    # ------------------------------------------------------------------ records
    def _on_done(self, tr: Transfer) -> None:
        path = self.directory / tr.dest if tr.direction == "in" else None
        sha = crc = ""
        meta: dict[str, Any] | None = None
        if path is not None and tr.state == "finished" and path.is_file():
            data = path.read_bytes()
            sha = hashlib.sha256(data).hexdigest()
            crc = f"{zlib.crc32(data):08x}"
            meta = _metadata(path)
        rec = FileRecord(
            tr.direction,
            tr.dest if tr.direction == "in" else tr.source,
            tr.size,
            sha,
            crc,
            f"{tr.tid[0]}-{tr.tid[1]}" if tr.tid else "",
            tr.state,
            tr.condition,
            tr.started_s,
            tr.ended_s,
            time.time(),
            meta,
        )
        self._rows.append(rec)
        if self._db is not None:
            d = rec.to_dict()
            d["metadata"] = None if meta is None else json.dumps(meta, sort_keys=True)
            cols = ", ".join(d)
            self._db.execute(
                f"INSERT INTO files({cols}) VALUES ({', '.join('?' * len(d))})",
                tuple(d.values()),
            )
            self._db.commit()

    def records(self) -> list[FileRecord]:
        """Transfers ended since this entity started (both directions)."""
        return list(self._rows)


def _metadata(path: Path) -> dict[str, Any] | None:
    """The JSON sidecar of a data product (``x.json`` beside ``x.png``), or the file's own
    JSON; None if there is none (yet)."""
    side = path if path.suffix == ".json" else path.with_suffix(".json")
    if not side.is_file():
        return None
    try:
        doc = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else {"value": doc}


def list_files(archive_path: str | Path) -> list[FileRecord]:
    """The ``files`` rows of an archive file (oldest first); [] if it has none."""
    db = sqlite3.connect(f"file:{archive_path}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT direction, name, size, sha256, crc32, transaction_id, state, condition, "
            "started_contact_s, ended_contact_s, t_ground, metadata FROM files ORDER BY id"
        ).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()
    return [
        FileRecord(
            direction=r[0],
            name=r[1],
            size=r[2],
            sha256=r[3] or "",
            crc32=r[4] or "",
            transaction_id=r[5] or "",
            state=r[6],
            condition=r[7],
            started_contact_s=r[8],
            ended_contact_s=r[9],
            t_ground=r[10],
            metadata=json.loads(r[11]) if r[11] else None,
        )
        for r in rows
    ]


__all__ = [
    "CFDP_APID",
    "PART_DIR",
    "FileRecord",
    "GroundFiles",
    "list_files",
]
