"""A fleet archive: the ground's archive of a constellation, keyed by spacecraft id (SCID).

One folder holds one :class:`~ground.archive.Archive` per spacecraft
(``scid-0101.sqlite``) and an index, ``fleet.json``, naming each (SCID, name, file). The
ground decodes each spacecraft's downlink with a session of its own, under that SCID
(frames for another spacecraft are refused by the link layer and counted), into that
spacecraft's archive. Every archive command selects the spacecraft by SCID:
``gnomon ground tlm 'eps.*' --archive OUT/archive --scid 101``.

>>> import tempfile
>>> from ground.dictionary import minimal_dictionary
>>> with tempfile.TemporaryDirectory() as d:
...     fleet = FleetArchive(Path(d), create=True, ground_clock="tai")
...     _ = fleet.register(101, "sat-01", minimal_dictionary())
...     fleet.close()
...     FleetArchive(Path(d)).spacecraft()
{101: 'sat-01'}
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ground.archive import Archive
from ground.errors import ArchiveError
from ground.session import GroundSession

INDEX = "fleet.json"


def is_fleet(path: Path) -> bool:
    """True when ``path`` is a fleet archive's folder."""
    return path.is_dir() and (path / INDEX).is_file()


class FleetArchive:
    """The archives of a constellation, one per SCID, in ``folder`` (module docstring)."""

    def __init__(
        self, folder: Path, *, create: bool = False, ground_clock: str | None = None
    ) -> None:
        self.folder = Path(folder)
        self._clock = ground_clock
        self._open: dict[int, Archive] = {}
        self._sessions: dict[int, GroundSession] = {}
        index = self.folder / INDEX
        if create:
            self.folder.mkdir(parents=True, exist_ok=True)
            if not index.exists():
                self._write_index({})
        if not index.is_file():
            raise ArchiveError(f"{self.folder} is not a fleet archive (no {INDEX})")
        try:
            doc = json.loads(index.read_text(encoding="utf-8"))
            self._index = {int(s["scid"]): dict(s) for s in doc["spacecraft"]}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ArchiveError(f"{index}: not a fleet index ({exc})") from None

    def _write_index(self, entries: Mapping[int, Mapping[str, Any]]) -> None:
        doc = {"spacecraft": [dict(entries[k]) for k in sorted(entries)]}
        tmp = self.folder / (INDEX + ".tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.folder / INDEX)

    def spacecraft(self) -> dict[int, str]:
        """SCID -> spacecraft name, for every spacecraft in the fleet."""
        return {k: str(v["name"]) for k, v in sorted(self._index.items())}

    def path_for(self, scid: int) -> Path:
        """The archive file of spacecraft ``scid`` (ArchiveError naming the SCIDs held)."""
        if scid not in self._index:
            held = ", ".join(f"{k} ({v})" for k, v in self.spacecraft().items()) or "none"
            raise ArchiveError(
                f"the fleet archive {self.folder} has no SCID {scid} (it has: {held})"
            )
        return self.folder / str(self._index[scid]["archive"])

    def register(
        self, scid: int, name: str, dictionary: Mapping[str, Any], link_config: Any = None
    ) -> Archive:
        """Add spacecraft ``scid`` (its dictionary; its link keys, default the test keys
        under this SCID) and open its archive for writing."""
        from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig

        entry = {"scid": scid, "name": name, "archive": f"scid-{scid:04d}.sqlite"}
        if self._index.get(scid, entry) != entry:
            raise ArchiveError(f"SCID {scid} is already {self._index[scid]['name']}")
        self._index[scid] = entry
        self._write_index(self._index)
        arch = Archive(self.folder / str(entry["archive"]), ground_clock=self._clock)
        cfg = link_config or dataclasses.replace(LinkConfig.load(TEST_KEY_FILE), spacecraft_id=scid)
        self._open[scid] = arch
        self._sessions[scid] = GroundSession(dict(dictionary), cfg, archive=arch)
        return arch

    def receive(self, scid: int, downlink: Iterable[tuple[float, bytes]]) -> int:
        """Decode and archive spacecraft ``scid``'s downlink ((time, bytes) as received);
        the number of records decoded."""
        session = self._sessions.get(scid)
        if session is None:
            raise ArchiveError(f"SCID {scid} is not registered in this fleet archive")
        n = 0
        for t, data in downlink:
            n += len(session.receive(data, t))
        return n

    def archive(self, scid: int, *, readonly: bool = True) -> Archive:
        """Spacecraft ``scid``'s archive (read-only unless asked), for queries."""
        return Archive(self.path_for(scid), readonly=readonly)

    def close(self) -> None:
        for arch in self._open.values():
            arch.close()
        self._open.clear()
        self._sessions.clear()


__all__ = ["INDEX", "FleetArchive", "is_fleet"]
