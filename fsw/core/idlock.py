"""The id lock: every on-board id of the default topology, committed beside the code.

Ids outlive a release. Time-tagged commands and stored sequences sit on board as raw TC
bytes (function ids, parameter ids), ground scripts name ids, and archives written with
one dictionary are read with the next. So ids are pinned in the declarations
(``Channel(..., id=4)``, ``@command(opcode=1)``, ``component_id=12``) and recorded in
``fsw/dictionary.lock.json``; ``tests/test_dictionary_lock.py`` compares the two id by id.

- A new id (a channel, event, parameter, command or component added) is compatible:
  ``gnomon dict lock`` records it.
- A changed or removed id breaks what the ground and the spacecraft hold. ``gnomon dict
  lock`` refuses it until :data:`DICTIONARY_VERSION` is bumped: a deliberate, visible
  change that the dictionary carries (``dictionary_version``) and the flight publishes.

>>> old = {"telemetry": {"eps.soc_pct": 3076}, "events": {}}
>>> new = {"telemetry": {"eps.soc_pct": 3077, "eps.bus_v": 3078}, "events": {}}
>>> diff = compare(old, new)
>>> diff.changed, diff.added, diff.breaking
(['telemetry eps.soc_pct: 3076 -> 3077'], ['telemetry eps.bus_v: 3078'], True)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

#: Bump when an id changes or goes away (never needed for additions).
DICTIONARY_VERSION = 1

#: The sections of the lock, each ``name -> id`` (commands: ``[service, subservice,
#: function id or None]``; reports: ``[service, subservice]``).
SECTIONS = ("components", "commands", "telemetry", "events", "parameters", "reports", "apids")


def lock_path() -> Path:
    """``fsw/dictionary.lock.json``: package data of ``fsw``, so a board has it too."""
    return Path(str(resources.files("fsw").joinpath("dictionary.lock.json")))


def id_table(d: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every id a dictionary assigns, by section and full name."""
    apids = d["apids"]
    return {
        "components": {c["name"]: c["id"] for c in d["components"]},
        "commands": {
            c["name"]: [c["service"], c["subservice"], c["function_id"]] for c in d["commands"]
        },
        "telemetry": {t["name"]: t["id"] for t in d["telemetry"]},
        "events": {e["name"]: e["id"] for e in d["events"]},
        "parameters": {p["name"]: p["id"] for p in d["parameters"]},
        "reports": {r["name"]: [r["service"], r["subservice"]] for r in d["reports"]},
        "apids": {"tc": apids["tc"], **{f"tm.{k}": v for k, v in apids["tm"].items()}},
    }


@dataclass(slots=True)
class LockDiff:
    """What changed between a lock and the code: one line per id."""

    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)

    @property
    def breaking(self) -> bool:
        """True when an id changed or went away (needs a DICTIONARY_VERSION bump)."""
        return bool(self.changed or self.removed)

    @property
    def empty(self) -> bool:
        return not (self.changed or self.removed or self.added)

    def lines(self) -> list[str]:
        return (
            [f"changed: {x}" for x in self.changed]
            + [f"removed: {x}" for x in self.removed]
            + [f"added: {x}" for x in self.added]
        )


def compare(locked: dict[str, Any], current: dict[str, Any]) -> LockDiff:
    """The differences from ``locked`` to ``current`` (both :func:`id_table` shaped)."""
    diff = LockDiff()
    for section in SECTIONS:
        old, new = locked.get(section, {}), current.get(section, {})
        for name in sorted(set(old) | set(new)):
            if name not in new:
                diff.removed.append(f"{section} {name}: {old[name]}")
            elif name not in old:
                diff.added.append(f"{section} {name}: {new[name]}")
            elif old[name] != new[name]:
                diff.changed.append(f"{section} {name}: {old[name]} -> {new[name]}")
    return diff


def load_lock(path: Path | None = None) -> dict[str, Any]:
    """The committed lock (an empty one if the file does not exist yet)."""
    p = path or lock_path()
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"dictionary_version": 0}
    if not isinstance(doc, dict):
        raise ValueError(f"{p}: not a JSON object")
    return doc


def lock_document(table: dict[str, Any], version: int = DICTIONARY_VERSION) -> str:
    """The lock file's text for ``table`` at ``version`` (sorted, so diffs stay small)."""
    doc: dict[str, Any] = {
        "about": "On-board ids of the default topology; see fsw/core/idlock.py. "
        "Regenerate with `gnomon dict lock`.",
        "dictionary_version": version,
    }
    parts = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in doc.items()]
    for section in SECTIONS:
        rows = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in sorted(table[section].items())]
        parts.append(f" {json.dumps(section)}: {{\n" + ",\n".join(rows) + "\n }")
    return "{\n" + ",\n".join(parts) + "\n}\n"


__all__ = [
    "DICTIONARY_VERSION",
    "SECTIONS",
    "LockDiff",
    "compare",
    "id_table",
    "load_lock",
    "lock_document",
    "lock_path",
]
