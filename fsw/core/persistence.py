"""The ``persist`` component: JSON documents in a :class:`~fsw.core.nvstore.NvStore`, with events.

Parameters, the time-based schedule and stored sequences are saved through it. Loading
never fails: a torn or corrupt copy is reported (``persist.RECOVERED``) and the last good
copy is used; if no good copy exists the owner keeps its defaults
(``persist.DEFAULTS_USED``).
"""

from __future__ import annotations

import json
from typing import Any

from fsw.core.component import Component
from fsw.core.declarations import Channel, Event, Severity
from fsw.core.errors import CommandFailed, FailureCode, NvStoreError
from fsw.core.nvstore import NvStore
from fsw.core.wire import Arg

_KEY = Arg("key", "str", max_len=32)


def clip(text: str, max_bytes: int = 200) -> str:
    """``text`` cut to at most ``max_bytes`` of UTF-8 (on a character boundary)."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    return raw[: max_bytes - 3].decode("utf-8", "ignore") + "..."


class Persistence(Component):
    """Saves and loads JSON documents atomically; reports damaged copies."""

    NAME = "persist"
    DESCRIPTION = "Atomic, CRC-checked persistence of parameters, schedule and sequences."
    TELEMETRY = (
        Channel("saves", "u32", description="successful saves", id=4),
        Channel("save_failures", "u32", description="saves that failed (I/O error)", id=5),
        Channel("recoveries", "u32", description="loads that fell back to the backup copy", id=6),
    )
    EVENTS = (
        Event(
            "RECOVERED",
            Severity.MEDIUM,
            "{key}: {problem}; the last good copy was used",
            (_KEY, Arg("problem", "str", max_len=200)),
            id=1,
        ),
        Event(
            "DEFAULTS_USED",
            Severity.HIGH,
            "{key}: {problem}; no good copy, defaults used",
            (_KEY, Arg("problem", "str", max_len=200)),
            id=2,
        ),
        Event(
            "INTERRUPTED_SAVE",
            Severity.LOW,
            "{key}: a save cut short by a reset was discarded; the previous copy stands",
            (_KEY,),
            id=3,
        ),
        Event(
            "SAVE_FAILED",
            Severity.HIGH,
            "{key}: {reason}",
            (_KEY, Arg("reason", "str", max_len=200)),
            id=4,
        ),
    )
    HK_INTERVAL_S = 30.0

    def __init__(self, backend: NvStore, name: str | None = None) -> None:
        super().__init__(name)
        self.backend = backend

    def load_json(self, key: str) -> Any | None:
        """The stored document for ``key``, or None (first boot, or nothing usable)."""
        res = self.backend.load(key)
        problems = [p for p in res.problems if "interrupted save" not in p]
        if res.interrupted:
            self.event("INTERRUPTED_SAVE", key)
        if res.source == "backup":
            self.tlm_inc("recoveries")
            self.event("RECOVERED", key, clip("; ".join(problems) or "primary unusable"))
        if res.payload is None:
            if problems:
                self.event("DEFAULTS_USED", key, clip("; ".join(problems)))
            return None
        try:
            return json.loads(res.payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            self.event("DEFAULTS_USED", key, clip(f"content unreadable ({exc})"))
            return None

    def save_json(self, key: str, document: Any) -> None:
        """Save ``document`` atomically; a failure raises ``CommandFailed`` (and an event)."""
        payload = json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")
        try:
            self.backend.save(key, payload)
        except NvStoreError as exc:
            self.tlm_inc("save_failures")
            self.event("SAVE_FAILED", key, clip(exc.reason))
            raise CommandFailed(FailureCode.EXECUTION_ERROR, f"storage: {exc.reason}") from None
        self.tlm_inc("saves")


__all__ = ["Persistence", "clip"]
