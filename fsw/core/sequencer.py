"""The ``seq`` component: stored command sequences (PUS service 21 style).

A stored sequence is a named list of TCs with relative delays (each step waits its
delay after the previous step). Sequences come from code (``fs.add_sequence``) or from
the ground ((21,1) load, (21,2) unload) and are saved to storage; (21,3) starts one,
(21,4) aborts it. Limit monitors may start a sequence as their action.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fsw.core.component import Component
from fsw.core.declarations import Channel, Event, Severity, command
from fsw.core.errors import CommandFailed, DeclarationError, FailureCode
from fsw.core.persistence import Persistence, clip
from fsw.core.registry import registry_of
from fsw.core.timetag import Execute, check_tc
from fsw.core.wire import Arg, Array

STORE_KEY = "sequences"
MAX_SEQUENCES = 64
MAX_STEPS = 256
SEQ_RATE_GROUP = "10Hz"

_SEQ_ID = Arg("seq_id", "u16", min=1)
_SEQ_NAME = Arg("name", "str", max_len=32)
_STEPS = Array(
    "steps", (Arg("delay_ms", "u32", units="ms"), Arg("tc", "packet")), max_count=MAX_STEPS
)


@dataclass(slots=True, frozen=True)
class SeqStep:
    """Wait ``delay_s`` after the previous step, then execute ``tc``."""

    delay_s: float
    tc: bytes


@dataclass(slots=True, frozen=True)
class StoredSequence:
    """A named list of steps.

    >>> from fsw.ccsds import PusTc
    >>> ping = PusTc(apid=100, service=17, subservice=1).encode()
    >>> StoredSequence(1, "ping_twice", (SeqStep(0.0, ping), SeqStep(5.0, ping))).name
    'ping_twice'
    """

    seq_id: int
    name: str
    steps: tuple[SeqStep, ...]
    #: The dictionary an uploaded sequence was checked under (0: defined in code, always
    #: current); a sequence saved under another one is refused step by step after an update.
    dict_hash: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        if not 1 <= self.seq_id <= 0xFFFF:
            raise DeclarationError(f"sequence id {self.seq_id} outside 1..65535")
        if not self.name or len(self.name.encode()) > 32:
            raise DeclarationError(f"sequence name {self.name!r} must be 1-32 bytes")
        if len(self.steps) > MAX_STEPS:
            raise DeclarationError(f"sequence {self.name}: more than {MAX_STEPS} steps")
        for s in self.steps:
            if not 0 <= s.delay_s <= 0xFFFF_FFFF / 1000:
                raise DeclarationError(f"sequence {self.name}: bad delay {s.delay_s}")

    def to_json(self) -> dict[str, Any]:
        return {
            "seq_id": self.seq_id,
            "name": self.name,
            "steps": [{"delay_s": s.delay_s, "tc": s.tc.hex()} for s in self.steps],
            "dict_hash": self.dict_hash,
        }


@dataclass(slots=True)
class _Run:
    seq: StoredSequence
    index: int
    next_tai: float


class Sequencer(Component):
    """Runs stored sequences; loads, unloads and saves them."""

    NAME = "seq"
    DESCRIPTION = "Stored sequences: named TC lists with relative delays; persisted."
    TELEMETRY = (
        Channel("loaded", "u16", description="sequences on board", id=4),
        Channel("running", "u16", description="sequences running now", id=5),
        Channel("steps_released", "u32", description="sequence steps executed", id=6),
    )
    EVENTS = (
        Event(
            "STARTED",
            Severity.INFO,
            "sequence {name} ({seq_id}) started: {reason}",
            (_SEQ_NAME, Arg("seq_id", "u16"), Arg("reason", "str", max_len=64)),
            id=1,
        ),
        Event(
            "COMPLETED",
            Severity.INFO,
            "sequence {name} ({seq_id}) completed",
            (_SEQ_NAME, Arg("seq_id", "u16")),
            id=2,
        ),
        Event(
            "ABORTED",
            Severity.LOW,
            "sequence {name} ({seq_id}) aborted: {reason}",
            (_SEQ_NAME, Arg("seq_id", "u16"), Arg("reason", "str", max_len=64)),
            id=3,
        ),
    )
    RATE_GROUPS = (SEQ_RATE_GROUP,)
    HK_INTERVAL_S = 10.0

    def __init__(
        self,
        storage: Persistence,
        execute: Execute,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self._storage = storage
        self._execute = execute
        self._defaults: dict[int, StoredSequence] = {}
        self._uploaded: dict[int, StoredSequence] = {}
        self._removed_defaults: set[int] = set()
        self._runs: dict[int, _Run] = {}

    def on_init(self) -> None:
        self._runs.clear()
        self._publish()

    # ------------------------------------------------------------ table
    def sequences(self) -> dict[int, StoredSequence]:
        """Sequences on board by id (uploaded ones replace code ones with the same id)."""
        table = {k: v for k, v in self._defaults.items() if k not in self._removed_defaults}
        table.update(self._uploaded)
        return table

    def default_sequences(self) -> list[StoredSequence]:
        """Sequences defined in code (for the dictionary)."""
        return [self._defaults[k] for k in sorted(self._defaults)]

    def add(self, seq: StoredSequence) -> None:
        """Define a sequence in code (at topology build time)."""
        rt = registry_of(self)
        if seq.seq_id in self._defaults:
            raise DeclarationError(f"sequence id {seq.seq_id} is already defined")
        for n, s in enumerate(seq.steps, start=1):
            try:
                check_tc(s.tc, rt.config.tc_apid, f"{seq.name} step {n}")
            except CommandFailed as exc:
                raise DeclarationError(exc.reason) from None
        self._defaults[seq.seq_id] = seq
        self._publish()

    def load_saved(self) -> None:
        """Read uploaded sequences from storage (at boot)."""
        doc = self._storage.load_json(STORE_KEY)
        if not isinstance(doc, dict):
            return
        for item in doc.get("uploaded", []):
            try:
                seq = StoredSequence(
                    int(item["seq_id"]),
                    str(item["name"]),
                    tuple(
                        SeqStep(float(s["delay_s"]), bytes.fromhex(s["tc"])) for s in item["steps"]
                    ),
                    int(item.get("dict_hash", 0)),
                )
            except (KeyError, TypeError, ValueError, AttributeError, DeclarationError):
                continue
            self._uploaded[seq.seq_id] = seq
        self._removed_defaults = {
            int(i) for i in doc.get("removed_defaults", []) if isinstance(i, int)
        }
        self._publish()

    def _save(self) -> None:
        self._storage.save_json(
            STORE_KEY,
            {
                "version": 1,
                "uploaded": [s.to_json() for _, s in sorted(self._uploaded.items())],
                "removed_defaults": sorted(self._removed_defaults),
            },
        )

    def _publish(self) -> None:
        if not self.is_bound:
            return
        self.tlm("loaded", len(self.sequences()))
        self.tlm("running", len(self._runs))

    def _get(self, seq_id: int) -> StoredSequence:
        seq = self.sequences().get(seq_id)
        if seq is None:
            raise CommandFailed(FailureCode.NOT_FOUND, f"no sequence with id {seq_id}")
        return seq

    # ------------------------------------------------------------ running
    def is_running(self, seq_id: int) -> bool:
        return seq_id in self._runs

    def start(self, seq_id: int, reason: str) -> None:
        """Start a sequence (``CommandFailed`` NOT_FOUND / BUSY)."""
        seq = self._get(seq_id)
        if seq_id in self._runs:
            raise CommandFailed(FailureCode.BUSY, f"sequence {seq.name} is already running")
        now = self.clock.now_tai()
        first = seq.steps[0].delay_s if seq.steps else 0.0
        self._runs[seq_id] = _Run(seq, 0, now + first)
        self.event("STARTED", seq.name, seq_id, clip(reason, 64))
        self._publish()
        self._advance(seq_id, now)

    def abort(self, seq_id: int, reason: str) -> None:
        run = self._runs.pop(seq_id, None)
        if run is None:
            raise CommandFailed(FailureCode.NOT_FOUND, f"sequence {seq_id} is not running")
        self.event("ABORTED", run.seq.name, seq_id, clip(reason, 64))
        self._publish()

    def on_tick(self, rate_group: str) -> None:
        if not self._runs:
            return
        now = self.clock.now_tai()
        for seq_id in list(self._runs):
            self._advance(seq_id, now)

    def _advance(self, seq_id: int, now: float) -> None:
        run = self._runs.get(seq_id)
        while run is not None and run.next_tai <= now + 1e-9:
            if run.index >= len(run.seq.steps):
                del self._runs[seq_id]
                self.event("COMPLETED", run.seq.name, seq_id)
                self._publish()
                return
            step = run.seq.steps[run.index]
            run.index += 1
            if run.index < len(run.seq.steps):
                run.next_tai += run.seq.steps[run.index].delay_s
            self.tlm_inc("steps_released")
            self._execute(step.tc, f"seq:{run.seq.name}", dict_hash=run.seq.dict_hash)
            run = self._runs.get(seq_id)  # the step may have aborted its own sequence

    def busy_reason(self, command: str, args: Mapping[str, Any]) -> str | None:
        if command in ("SEQ_START", "SEQ_UNLOAD", "SEQ_LOAD") and args["seq_id"] in self._runs:
            return f"sequence {args['seq_id']} is running"
        return None

    # ------------------------------------------------------------ commands
    @command(
        "SEQ_LOAD",
        service=21,
        subservice=1,
        args=(_SEQ_ID, _SEQ_NAME, _STEPS),
        description="Load (or replace) a stored sequence; it is saved to storage.",
    )
    def load_cmd(self, seq_id: int, name: str, steps: list[dict[str, Any]]) -> None:
        if seq_id not in self.sequences() and len(self.sequences()) >= MAX_SEQUENCES:
            raise CommandFailed(FailureCode.BUSY, f"sequence table full ({MAX_SEQUENCES})")
        rt = registry_of(self)
        for n, s in enumerate(steps, start=1):
            check_tc(s["tc"], rt.config.tc_apid, f"step {n}")
        if not name:
            raise CommandFailed(FailureCode.ARG_OUT_OF_RANGE, "a sequence needs a name")
        seq = StoredSequence(
            seq_id,
            name,
            tuple(SeqStep(s["delay_ms"] / 1000.0, s["tc"]) for s in steps),
            rt.dict_hash,
        )
        self._uploaded[seq_id] = seq
        self._save()
        self._publish()

    @command(
        "SEQ_UNLOAD",
        service=21,
        subservice=2,
        args=(_SEQ_ID,),
        description="Remove a stored sequence (code-defined ones until the next boot "
        "with fresh storage).",
    )
    def unload_cmd(self, seq_id: int) -> None:
        self._get(seq_id)
        self._uploaded.pop(seq_id, None)
        if seq_id in self._defaults:
            self._removed_defaults.add(seq_id)
        self._save()
        self._publish()

    @command(
        "SEQ_START",
        service=21,
        subservice=3,
        args=(_SEQ_ID,),
        description="Start a stored sequence.",
    )
    def start_cmd(self, seq_id: int) -> None:
        self.start(seq_id, "by command")

    @command(
        "SEQ_ABORT",
        service=21,
        subservice=4,
        args=(_SEQ_ID,),
        description="Abort a running sequence.",
    )
    def abort_cmd(self, seq_id: int) -> None:
        self.abort(seq_id, "by command")


__all__ = ["SeqStep", "Sequencer", "StoredSequence"]
