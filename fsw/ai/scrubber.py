"""The ``scrubber`` component: background integrity checks of the models' weight arenas.

Once a second it spends a byte budget (``budget_bytes``, default two 4 KiB blocks)
checking the weight arenas of the loaded models round-robin with
:meth:`fsw.ai.runtime.Runtime.scrub`, which repairs a bad block from the verified golden
file. It never starves the real work: the budget bounds its time per tick (cFS CS
style). Each repair raises ``BLOCK_REPAIRED``; a block no golden copy can restore raises
``BLOCK_UNREPAIRABLE`` and the runtime disables that model (``MODEL_DISABLED``); the
payload then falls back to the other model. When a later scrub or ``SCRUB_ALL`` (e.g.
after a fresh golden copy was uplinked) restores it, ``MODEL_ENABLED`` follows.

The golden copies on storage are checked too (``golden_budget_bytes`` a tick, one model
at a time; ``SCRUB_ALL`` checks them whole): a damaged segment of a copy (its header, a
block, a CRC table) raises ``GOLDEN_BAD`` and is rewritten from the other copy or the
verified RAM arena (``GOLDEN_HEALED``), or ``GOLDEN_UNHEALABLE`` when nothing good is left
or storage is read-only.

>>> from fsw.app import build_flight
>>> fs = build_flight()                # no HAL: no models, nothing to scrub
>>> _ = fs.step(2.0)
>>> fs.telemetry("scrubber.models"), fs.telemetry("scrubber.blocks_checked")
(0, 0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from fsw.ai.errors import AiError
from fsw.ai.golden import DEFAULT_GOLDEN_BUDGET_BYTES
from fsw.core import (
    Arg,
    Channel,
    CommandFailed,
    Component,
    Event,
    FailureCode,
    Param,
    Severity,
    command,
)

if TYPE_CHECKING:
    from fsw.ai.golden import GoldenReport
    from fsw.ai.runtime import AiEvent, Runtime, ScrubReport

#: ``listener(model_index, report)`` after every scrub call (SITL uses it to account).
ScrubListener = Callable[[int, "ScrubReport"], None]


class Scrubber(Component):
    """Budgeted round-robin scrubbing of every model's weight arena, with repair."""

    NAME = "scrubber"
    DESCRIPTION = "Checks the models' weight arenas a byte budget per tick and repairs them."
    TELEMETRY = (
        Channel("models", "u8", description="model arenas under watch", id=4),
        Channel(
            "models_enabled", "u8", description="models whose arena verifies (not disabled)", id=5
        ),
        Channel("blocks_checked", "u32", description="arena blocks checked since boot", id=6),
        Channel(
            "bytes_checked", "u32", units="B", description="arena bytes checked since boot", id=7
        ),
        Channel("corrupted", "u32", description="bad blocks found", id=8),
        Channel("repaired", "u32", description="bad blocks restored from a golden copy", id=9),
        Channel(
            "unrepairable",
            "u32",
            description="bad blocks no golden copy could restore",
            yellow=(None, 0.0),
            id=10,
        ),
        Channel("sweeps", "u32", description="complete passes over every arena", id=11),
        Channel(
            "failures", "u32", description="scrub calls that raised (damaged CRC table)", id=12
        ),
        Channel(
            "golden_copies_ok",
            "u8",
            description="golden model copies on storage with no known bad segment",
            id=13,
        ),
        Channel(
            "golden_bytes_checked",
            "u32",
            units="B",
            description="golden-copy bytes checked in the background since boot",
            id=14,
        ),
        Channel("golden_bad", "u32", description="damaged golden-copy segments found", id=15),
        Channel(
            "golden_healed",
            "u32",
            description="damaged golden-copy segments rewritten from a good source",
            id=16,
        ),
        Channel(
            "golden_unhealable",
            "u32",
            description="damaged golden-copy segments no good source could rewrite",
            yellow=(None, 0.0),
            id=17,
        ),
    )
    EVENTS = (
        Event(
            "BLOCK_REPAIRED",
            Severity.LOW,
            "{model}: block {block} repaired",
            (Arg("model", "str", max_len=32), Arg("block", "u16")),
            id=1,
        ),
        Event(
            "BLOCK_UNREPAIRABLE",
            Severity.HIGH,
            "{model}: block {block} cannot be repaired (no golden copy verifies)",
            (Arg("model", "str", max_len=32), Arg("block", "u16")),
            id=2,
        ),
        Event(
            "MODEL_DISABLED",
            Severity.HIGH,
            "{model} disabled: {detail}",
            (Arg("model", "str", max_len=32), Arg("detail", "str", max_len=80)),
            id=3,
        ),
        Event(
            "MODEL_ENABLED",
            Severity.INFO,
            "{model} enabled again: every block verifies",
            (Arg("model", "str", max_len=32),),
            id=4,
        ),
        Event(
            "TABLE_REPAIRED",
            Severity.MEDIUM,
            "{model}: CRC table reloaded from golden copy",
            (Arg("model", "str", max_len=32),),
            id=5,
        ),
        Event(
            "SCRUB_FAILED",
            Severity.HIGH,
            "{model}: scrub failed: {detail}",
            (Arg("model", "str", max_len=32), Arg("detail", "str", max_len=80)),
            id=6,
        ),
        Event(
            "GOLDEN_BAD",
            Severity.MEDIUM,
            "{model}: golden copy damaged: {detail}",
            (Arg("model", "str", max_len=32), Arg("detail", "str", max_len=80)),
            id=7,
        ),
        Event(
            "GOLDEN_HEALED",
            Severity.LOW,
            "{model}: golden copy healed: {detail}",
            (Arg("model", "str", max_len=32), Arg("detail", "str", max_len=80)),
            id=8,
        ),
        Event(
            "GOLDEN_UNHEALABLE",
            Severity.HIGH,
            "{model}: golden copy cannot be healed: {detail}",
            (Arg("model", "str", max_len=32), Arg("detail", "str", max_len=80)),
            id=9,
        ),
    )
    PARAMETERS = (
        Param("enabled", "bool", default=True, description="scrub every tick", id=1),
        Param(
            "budget_bytes",
            "u32",
            default=8192,
            min=0,
            max=1 << 24,
            units="B",
            description="arena bytes checked per tick over all models (>= 1 block)",
            id=2,
        ),
        Param(
            "golden_budget_bytes",
            "u32",
            default=DEFAULT_GOLDEN_BUDGET_BYTES,
            min=0,
            max=1 << 26,
            units="B",
            description="golden-copy bytes read and checked per tick (0: no background check)",
            id=3,
        ),
    )
    RATE_GROUPS = ("1Hz",)
    HK_INTERVAL_S = 10.0

    def __init__(self, models: Sequence[Runtime] = (), name: str | None = None) -> None:
        super().__init__(name)
        self.models: tuple[Runtime, ...] = tuple(models)
        self.listeners: list[ScrubListener] = []

    def replace_model(self, old: Runtime | None, new: Runtime | None) -> None:
        """Watch ``new`` instead of ``old`` (either may be None: add or remove)."""
        models = [rt for rt in self.models if rt is not old]
        if new is not None:
            models.append(new)
        self.models = tuple(models)
        if hasattr(self, "_swept"):
            self._next = 0
            self._swept = [0] * len(self.models)
            self._publish()

    def on_init(self) -> None:
        self._next = 0
        self._swept = [0] * len(self.models)
        self._sweeps = 0
        self._totals = {
            "blocks_checked": 0,
            "bytes_checked": 0,
            "corrupted": 0,
            "repaired": 0,
            "unrepairable": 0,
            "failures": 0,
        }
        self._golden_next = 0
        self.tlm("models", len(self.models))
        self.tlm("models_enabled", sum(rt.enabled for rt in self.models))

    def on_tick(self, rate_group: str) -> None:
        if not self.models or not self.param("enabled"):
            return
        budget = int(self.param("budget_bytes"))
        spent = 0
        first = True
        while first or spent < budget:
            first = False
            i = self._next
            rt = self.models[i]
            remaining = max(rt.block_size, budget - spent)
            rep = self._scrub(i, rt, remaining)
            if rep is None:
                break
            spent += max(rep.bytes_checked, rt.block_size)
            self._swept[i] += rep.blocks_checked
            if self._swept[i] >= rt.arena_blocks:
                self._swept[i] = 0
                self._next = (i + 1) % len(self.models)
                if self._next == 0:
                    self._sweeps += 1
        self._check_golden(int(self.param("golden_budget_bytes")))
        self._publish()

    def _check_golden(self, budget: int | None) -> None:
        """Background check of the golden copies: one model per tick, round-robin."""
        if budget == 0:
            return
        order = range(len(self.models)) if budget is None else [self._golden_next]
        for i in order:
            rt = self.models[i]
            try:
                rep = rt.check_golden(budget)
            except (AiError, OSError) as exc:
                self._totals["failures"] += 1
                self.event("SCRUB_FAILED", rt.name[:32], f"golden check: {exc}"[:80])
                continue
            if budget is not None and (rep.sweeps or not rt.golden_paths):
                self._golden_next = (i + 1) % len(self.models)
            for ev in _golden_events(rep):
                self._report(ev, rt.name)

    def _scrub(self, i: int, rt: Runtime, budget_bytes: int | None) -> ScrubReport | None:
        try:
            rep = rt.scrub(budget_bytes)
        except AiError as exc:
            self._totals["failures"] += 1
            self.event("SCRUB_FAILED", rt.name[:32], str(exc)[:80])
            self._next = (i + 1) % len(self.models)
            return None
        t = self._totals
        t["blocks_checked"] += rep.blocks_checked
        t["bytes_checked"] += rep.bytes_checked
        t["corrupted"] += rep.corrupted
        t["repaired"] += rep.repaired
        t["unrepairable"] += rep.unrepairable
        for ev in rep.events:
            self._report(ev)
        for listener in self.listeners:
            listener(i, rep)
        return rep

    def _report(self, ev: AiEvent, model_name: str | None = None) -> None:
        model = (model_name or ev.model)[:32]
        block = (ev.block or 0) & 0xFFFF
        if ev.kind == "block_repaired":
            self.event("BLOCK_REPAIRED", model, block)
        elif ev.kind == "block_unrepairable":
            self.event("BLOCK_UNREPAIRABLE", model, block)
        elif ev.kind == "model_disabled":
            self.event("MODEL_DISABLED", model, ev.detail[:80])
        elif ev.kind == "model_enabled":
            self.event("MODEL_ENABLED", model)
        elif ev.kind == "table_repaired":
            self.event("TABLE_REPAIRED", model)
        elif ev.kind == "golden_bad":
            self.event("GOLDEN_BAD", model, ev.detail[-80:])
        elif ev.kind == "golden_healed":
            self.event("GOLDEN_HEALED", model, ev.detail[-80:])
        elif ev.kind == "golden_unhealable":
            self.event("GOLDEN_UNHEALABLE", model, ev.detail[-80:])

    def _publish(self) -> None:
        for key, value in self._totals.items():
            self.tlm(key, value & 0xFFFFFFFF)
        self.tlm("sweeps", self._sweeps)
        self.tlm("models_enabled", sum(rt.enabled for rt in self.models))
        gold = [rt.golden for rt in self.models]
        self.tlm("golden_copies_ok", min(255, sum(g.copies_ok for g in gold)))
        for key, name in (
            ("bytes_checked", "golden_bytes_checked"),
            ("bad_found", "golden_bad"),
            ("healed", "golden_healed"),
            ("unhealable", "golden_unhealable"),
        ):
            self.tlm(name, sum(g.counters[key] for g in gold) & 0xFFFFFFFF)

    @command(
        description="Check and repair every block of every model now (whole arenas).", opcode=1
    )
    def scrub_all(self) -> None:
        if not self.models:
            raise CommandFailed(FailureCode.EXECUTION_ERROR, "no model loaded")
        bad = 0
        for i, rt in enumerate(self.models):
            rep = self._scrub(i, rt, None)
            bad += 1 if rep is None else rep.unrepairable
        self._check_golden(None)  # and every golden copy, whole
        self._publish()
        if bad:
            raise CommandFailed(
                FailureCode.EXECUTION_ERROR, f"{bad} blocks could not be repaired (see events)"
            )


def _golden_events(rep: GoldenReport) -> list[AiEvent]:
    """The runtime's golden events for one report (the runtime logs them already)."""
    from fsw.ai.runtime import AiEvent

    out = []
    for f in rep.findings:
        where = f"{f.path.name}: {f.what}"
        out.append(AiEvent("golden_bad", "", None, where))
        kind = "golden_healed" if f.healed else "golden_unhealable"
        out.append(AiEvent(kind, "", None, where))
    return out


__all__ = ["ScrubListener", "Scrubber"]
