"""Command verification: each command's stages as PUS service 1 reports them.

A command is ``sent`` when the ground hands it to the link (``scheduled`` for a
time-tagged TC inside a (11,4) insert), then ``accepted`` (1,1), ``started`` (1,3),
``progress`` (1,5) and ``completed`` (1,7), or ``failed`` at one of those steps
((1,2), (1,4), (1,6), (1,8) with a failure code and reason), or ``timed_out`` when a
report does not come in time. A report arriving after a timeout is still recorded.

>>> h = CommandHandle(1, "PING", {}, bytes(8), request_id=0x18640000, seq_count=0,
...                   t_sent_s=10.0)
>>> h.add(StageRecord(Stage.ACCEPTED, 10.2))
>>> h.reached(Stage.ACCEPTED), h.reached(Stage.COMPLETED), h.status.value
(True, False, 'accepted')
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ground.records import Decoded

log = logging.getLogger(__name__)


class Stage(Enum):
    """Verification stages of a command, in the order they normally happen."""

    SCHEDULED = "scheduled"
    SENT = "sent"
    ACCEPTED = "accepted"
    STARTED = "started"
    PROGRESS = "progress"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"

    @classmethod
    def parse(cls, text: str | Stage) -> Stage:
        """A stage from its name (``"completed"``), as the CLI and test API take it."""
        if isinstance(text, Stage):
            return text
        try:
            return cls(text.lower().replace("-", "_"))
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown stage '{text}'; use one of {names}") from None


_RANK = {
    Stage.SCHEDULED: 0,
    Stage.SENT: 0,
    Stage.ACCEPTED: 1,
    Stage.STARTED: 2,
    Stage.PROGRESS: 2,
    Stage.COMPLETED: 3,
}
#: (service 1 subservice) -> (stage, failed step or None)
_VERIFICATION = {
    1: (Stage.ACCEPTED, None),
    2: (Stage.FAILED, "acceptance"),
    3: (Stage.STARTED, None),
    4: (Stage.FAILED, "start"),
    5: (Stage.PROGRESS, None),
    6: (Stage.FAILED, "progress"),
    7: (Stage.COMPLETED, None),
    8: (Stage.FAILED, "completion"),
}


@dataclass(slots=True, frozen=True)
class StageRecord:
    """One stage reached: when (ground and on-board time) and, for failures, why.

    ``step`` names the verification step that failed (acceptance, start, progress,
    completion) or, for a timeout, the stage that was awaited.
    """

    stage: Stage
    t_ground_s: float
    t_tai: float | None = None
    failure_code: str | None = None
    reason: str | None = None
    step: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "stage": self.stage.value,
            "t_ground_s": self.t_ground_s,
            "t_tai": self.t_tai,
            "failure_code": self.failure_code,
            "reason": self.reason,
            "step": self.step,
        }


@dataclass(slots=True, frozen=True)
class CommandTimeouts:
    """How long the ground waits: acceptance after sending, completion after sending.

    For a time-tagged TC both count from its release time (on-board time, estimated
    from the downlink's time stamps).
    """

    accept_s: float = 10.0
    complete_s: float = 60.0


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value


class CommandHandle:
    """One command on its way: updated by the tracker as its reports arrive.

    ``args`` are the checked values (enums as labels, ids given by name resolved).
    Read it from any thread; only the session (under the station's lock) writes it.
    """

    __slots__ = (
        "archive_id",
        "args",
        "id",
        "name",
        "parent",
        "release_tai",
        "request_id",
        "seq_count",
        "stages",
        "t_sent_s",
        "tc",
    )

    def __init__(
        self,
        id: int,
        name: str,
        args: dict[str, Any],
        tc: bytes,
        *,
        request_id: int,
        seq_count: int,
        t_sent_s: float,
        release_tai: float | None = None,
        parent: CommandHandle | None = None,
    ) -> None:
        self.id = id
        self.name = name
        self.args = args
        self.tc = tc
        self.request_id = request_id
        self.seq_count = seq_count
        self.t_sent_s = t_sent_s
        self.release_tai = release_tai
        self.parent = parent
        self.stages: list[StageRecord] = []
        self.archive_id: int | None = None

    def add(self, record: StageRecord) -> None:
        """Append a stage (the tracker calls this)."""
        self.stages.append(record)

    @property
    def status(self) -> Stage:
        """The latest stage."""
        return self.stages[-1].stage if self.stages else Stage.SENT

    def reached(self, stage: Stage | str) -> bool:
        """True once ``stage`` (or a later success stage) was reported.

        ``failed`` and ``timed_out`` are reached only by a failure or timeout record.
        """
        stage = Stage.parse(stage)
        if stage in (Stage.FAILED, Stage.TIMED_OUT):
            return any(r.stage is stage for r in self.stages)
        want = _RANK[stage]
        return any(r.stage in _RANK and _RANK[r.stage] >= want for r in self.stages)

    @property
    def failed(self) -> bool:
        """True when a failure report arrived."""
        return any(r.stage is Stage.FAILED for r in self.stages)

    @property
    def timed_out(self) -> bool:
        """True when a timeout was recorded (reports may still have come later)."""
        return any(r.stage is Stage.TIMED_OUT for r in self.stages)

    @property
    def done(self) -> bool:
        """Completed, failed or timed out: nothing more is expected."""
        return (
            self.failed
            or self.reached(Stage.COMPLETED)
            or (self.timed_out and self.status is Stage.TIMED_OUT)
        )

    def _failure(self) -> StageRecord | None:
        for r in reversed(self.stages):
            if r.stage in (Stage.FAILED, Stage.TIMED_OUT):
                return r
        return None

    @property
    def failure_code(self) -> str | None:
        """The failure code name of a failed command (``TIMEOUT`` for a timeout)."""
        rec = self._failure()
        if rec is None:
            return None
        return rec.failure_code if rec.stage is Stage.FAILED else rec.failure_code or "TIMEOUT"

    @property
    def reason(self) -> str | None:
        """Why it failed or timed out, in words."""
        rec = self._failure()
        return rec.reason if rec else None

    def time_of(self, stage: Stage | str) -> float | None:
        """Ground time the stage was first recorded (None if not yet)."""
        stage = Stage.parse(stage)
        for r in self.stages:
            if r.stage is stage:
                return r.t_ground_s
        return None

    def summary(self) -> str:
        """One line for the console, e.g. ``PING #3 completed (+0.21 s)``."""
        last = self.stages[-1] if self.stages else None
        head = f"{self.name} #{self.seq_count}"
        if last is None:
            return f"{head} sent"
        dt = last.t_ground_s - self.t_sent_s
        if last.stage is Stage.FAILED:
            return f"{head} FAILED at {last.step}: {last.failure_code}: {last.reason} (+{dt:.2f} s)"
        if last.stage is Stage.TIMED_OUT:
            return f"{head} TIMED OUT: {last.reason}"
        if last.stage is Stage.SCHEDULED:
            return f"{head} scheduled for TAI {self.release_tai:.3f}"
        return f"{head} {last.stage.value} (+{dt:.2f} s)"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``gnomon ground send --json`` prints this)."""
        return {
            "name": self.name,
            "args": _json_value(self.args),
            "request_id": self.request_id,
            "seq_count": self.seq_count,
            "t_sent_s": self.t_sent_s,
            "release_tai": self.release_tai,
            "status": self.status.value,
            "failure_code": self.failure_code,
            "reason": self.reason,
            "stages": [r.to_dict() for r in self.stages],
        }

    def __repr__(self) -> str:
        return f"<CommandHandle {self.summary()}>"


class CommandTracker:
    """Every command of a session by request id, with stage timeouts.

    Keeps the last ``history`` commands; a request id seen again (the 14-bit sequence
    count wrapped) refers to the newest command.
    """

    def __init__(self, timeouts: CommandTimeouts | None = None, history: int = 5000) -> None:
        self.timeouts = timeouts or CommandTimeouts()
        self._history = history
        self._all: OrderedDict[int, CommandHandle] = OrderedDict()
        self._by_request: dict[int, CommandHandle] = {}
        self._pending: dict[int, CommandHandle] = {}
        self.unmatched = 0

    def add(self, handle: CommandHandle) -> None:
        """Start tracking ``handle``."""
        self._all[handle.id] = handle
        self._by_request[handle.request_id] = handle
        self._pending[handle.id] = handle
        while len(self._all) > self._history:
            _, old = self._all.popitem(last=False)
            if self._by_request.get(old.request_id) is old:
                del self._by_request[old.request_id]
            self._pending.pop(old.id, None)

    def adopt(self, handle: CommandHandle, *, pending: bool) -> None:
        """Track a command another session sent (e.g. before a ground restart), so its
        reports still find it; ``pending``: its timeouts are checked as for our own."""
        self.add(handle)
        if not pending:
            self._pending.pop(handle.id, None)

    def get(self, request_id: int) -> CommandHandle | None:
        """The newest command with this request id."""
        return self._by_request.get(request_id)

    def __iter__(self) -> Iterator[CommandHandle]:
        return iter(list(self._all.values()))

    def __len__(self) -> int:
        return len(self._all)

    @property
    def pending(self) -> list[CommandHandle]:
        """Commands still waiting for a report (oldest first)."""
        return list(self._pending.values())

    def recent(self, n: int = 20) -> list[CommandHandle]:
        """The last ``n`` commands, oldest first."""
        return list(self._all.values())[-n:]

    def on_report(self, dec: Decoded, now_s: float) -> tuple[CommandHandle, StageRecord] | None:
        """Apply one service-1 report; the handle and the stage it recorded, if it is ours."""
        rid = dec.request_id
        step = _VERIFICATION.get(dec.subservice)
        if rid is None or step is None:
            return None
        handle = self._by_request.get(rid)
        if handle is None:
            self.unmatched += 1
            return None
        stage, failed_step = step
        code = dec.fields.get("failure_code")
        reason = dec.fields.get("reason")
        rec = StageRecord(
            stage,
            now_s,
            dec.t_tai,
            None if code is None else str(code),
            None if reason is None else str(reason),
            failed_step,
        )
        handle.add(rec)
        if stage in (Stage.COMPLETED, Stage.FAILED):
            self._pending.pop(handle.id, None)
        else:
            self._pending[handle.id] = handle  # also a late report after a timeout
        return handle, rec

    def check_timeouts(
        self, now_s: float, tai_now: float | None
    ) -> list[tuple[CommandHandle, StageRecord]]:
        """Record a timeout for each command whose next report is overdue."""
        out: list[tuple[CommandHandle, StageRecord]] = []
        acc, comp = self.timeouts.accept_s, self.timeouts.complete_s
        for handle in list(self._pending.values()):
            status = handle.status
            if status is Stage.TIMED_OUT:
                continue
            if handle.release_tai is not None:
                if tai_now is None:
                    continue
                elapsed = tai_now - handle.release_tai
                waiting = status in (Stage.SCHEDULED, Stage.SENT)
                if waiting and elapsed > acc:
                    why = (
                        f"no acceptance report {acc:g} s after its release time "
                        f"(TAI {handle.release_tai:.1f})"
                    )
                elif not waiting and elapsed > comp:
                    why = f"not completed {comp:g} s after its release time"
                else:
                    continue
            else:
                elapsed = now_s - handle.t_sent_s
                if status is Stage.SENT and elapsed > acc:
                    why = (
                        f"no acceptance report within {acc:g} s (is the spacecraft in "
                        "contact? see `stats`)"
                    )
                elif status is not Stage.SENT and elapsed > comp:
                    why = f"{status.value} but not completed within {comp:g} s"
                else:
                    continue
            awaited = "accepted" if status in (Stage.SCHEDULED, Stage.SENT) else "completed"
            rec = StageRecord(Stage.TIMED_OUT, now_s, None, "TIMEOUT", why, awaited)
            handle.add(rec)
            self._pending.pop(handle.id, None)
            log.warning("%s", handle.summary())
            out.append((handle, rec))
        return out


__all__ = ["CommandHandle", "CommandTimeouts", "CommandTracker", "Stage", "StageRecord"]
