"""CPU-side driver of the FPGA memory scrubber: program it, take its interrupts, repair.

The driver talks to the scrubber through a :class:`RegisterBus` (32-bit register reads
and writes plus an interrupt wait), so the same code drives the cocotb simulation
(:mod:`hil.rtl.sim_bus`), the Python register model (:class:`hil.rtl.model.ScrubberModel`)
and, on a board, a ``/dev/mem`` + UIO mapping. When the scrubber reports a block whose
CRC-32C does not match the table, the driver calls ``repairer.repair_block(index)`` (the
runtime rewrites the block from its verified golden artifact) and asks the hardware to
check the block again.

>>> import numpy as np
>>> from hil.rtl.model import ScrubberModel
>>> from hil.rtl.reference import block_crcs
>>> model = ScrubberModel(arena_aw=12, table_aw=4)
>>> golden = np.arange(4096, dtype=np.uint32).astype(np.uint8)
>>> model.load(golden, block_crcs(golden, 1024))
>>> model.arena[1500] ^= 0x10  # a radiation hit in block 1
>>> class Repair:
...     def repair_block(self, index: int) -> bool:
...         start, stop = index * 1024, (index + 1) * 1024
...         model.arena[start:stop] = golden[start:stop]
...         return True
>>> report = ScrubberDriver(model, Repair()).scrub_pass(ArenaLayout.for_arena(4096, 1024))
>>> report.repaired, report.unrepaired, report.blocks_checked, report.busy_cycles
((1,), (), 5, 5124)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from hil.rtl.errors import ScrubberError
from hil.rtl.regs import (
    SCRUBBER_ID,
    ArenaLayout,
    Config,
    Ctrl,
    Reg,
    ScrubberParams,
    Status,
)

_log = logging.getLogger(__name__)

_U32 = 0xFFFF_FFFF
#: Interrupts in a row that show no reason (no PAUSED, DONE or CFG_ERROR) before the
#: driver calls the interrupt line stuck.
MAX_SPURIOUS_IRQS = 64


class RegisterBus(Protocol):
    """32-bit access to the scrubber's registers and its interrupt line."""

    def read32(self, offset: int) -> int:
        """The register at byte ``offset``."""
        ...

    def write32(self, offset: int, value: int) -> None:
        """Write ``value`` to the register at byte ``offset``."""
        ...

    def wait_irq(self, timeout_s: float) -> bool:
        """Block until the interrupt is asserted (True) or ``timeout_s`` passes (False)."""
        ...


class Repairer(Protocol):
    """Rewrites one arena block from a trusted copy (the runtime's golden artifact)."""

    def repair_block(self, index: int) -> bool:
        """Repair block ``index``; True when the block was rewritten."""
        ...


@dataclass(slots=True, frozen=True)
class BlockFault:
    """One block the scrubber found corrupted, and what became of it."""

    index: int
    crc_computed: int
    crc_expected: int
    repaired: bool
    repair_attempts: int


@dataclass(slots=True, frozen=True)
class ScrubCounters:
    """The scrubber's cumulative counters (each wraps at 2**32)."""

    blocks_checked: int
    mismatches: int
    passes: int
    busy_cycles: int


@dataclass(slots=True, frozen=True)
class ScrubReport:
    """Outcome of one pass over the arena."""

    arena_bytes: int
    blocks_checked: int
    busy_cycles: int
    faults: tuple[BlockFault, ...]

    @property
    def repaired(self) -> tuple[int, ...]:
        """Indices of blocks found bad and repaired (the hardware re-check passed)."""
        return tuple(f.index for f in self.faults if f.repaired)

    @property
    def unrepaired(self) -> tuple[int, ...]:
        """Indices of blocks found bad and still bad."""
        return tuple(f.index for f in self.faults if not f.repaired)

    @property
    def bytes_per_clock(self) -> float:
        """Arena bytes per clock the scrubber spent walking (1.0 is the ceiling)."""
        return self.arena_bytes / self.busy_cycles if self.busy_cycles else 0.0


@dataclass(slots=True)
class _FaultState:
    crc_computed: int
    crc_expected: int
    attempts: int = 0
    repaired: bool = False


@dataclass(slots=True)
class _Pass:
    layout: ArenaLayout
    faults: dict[int, _FaultState] = field(default_factory=dict)


class ScrubberDriver:
    """Programs the scrubber, services its interrupts and calls the repairer.

    ``timeout_s`` bounds each wait for an interrupt; ``repair_attempts`` is how many
    times one block is repaired and re-checked before it is reported unrepaired.
    """

    def __init__(
        self,
        bus: RegisterBus,
        repairer: Repairer,
        *,
        timeout_s: float = 1.0,
        repair_attempts: int = 2,
    ) -> None:
        if timeout_s <= 0:
            raise ScrubberError(f"interrupt timeout must be positive, not {timeout_s} s")
        if repair_attempts < 1:
            raise ScrubberError(f"repair_attempts must be at least 1, not {repair_attempts}")
        self._bus = bus
        self._repairer = repairer
        self._timeout_s = timeout_s
        self._repair_attempts = repair_attempts

    # ------------------------------------------------------------------ registers
    def _read(self, reg: Reg) -> int:
        return self._bus.read32(reg) & _U32

    def _write(self, reg: Reg, value: int) -> None:
        self._bus.write32(reg, value & _U32)

    def probe(self) -> ScrubberParams:
        """Check the ID register and return the sizes the hardware was built with."""
        ident = self._read(Reg.ID)
        if ident != SCRUBBER_ID:
            raise ScrubberError(
                f"no scrubber at this address: ID reads 0x{ident:08X}, expected "
                f"0x{SCRUBBER_ID:08X} (check the bus mapping and the FPGA bitstream)"
            )
        params = ScrubberParams.decode(self._read(Reg.PARAMS))
        if not (1 <= params.arena_aw <= 31 and 1 <= params.table_aw <= 31):
            raise ScrubberError(
                f"scrubber reports impossible RAM sizes (2**{params.arena_aw} arena bytes, "
                f"2**{params.table_aw} table entries)"
            )
        return params

    def status(self) -> Status:
        """The STATUS register."""
        return Status(self._read(Reg.STATUS) & 0xF)

    def counters(self) -> ScrubCounters:
        """The cumulative counters."""
        return ScrubCounters(
            blocks_checked=self._read(Reg.BLOCKS_CHECKED),
            mismatches=self._read(Reg.MISMATCHES),
            passes=self._read(Reg.PASSES),
            busy_cycles=self._read(Reg.BUSY_CYCLES),
        )

    def clear_counters(self) -> None:
        """Zero BLOCKS_CHECKED, MISMATCHES, PASSES and BUSY_CYCLES."""
        self._write(Reg.CTRL, Ctrl.CLEAR_COUNTERS)

    def abort(self) -> None:
        """Stop any pass in progress; the scrubber goes idle."""
        self._write(Reg.CTRL, Ctrl.ABORT)

    def configure(
        self,
        layout: ArenaLayout,
        *,
        params: ScrubberParams | None = None,
        config: Config = Config.IRQ_ON_MISMATCH | Config.IRQ_ON_DONE,
    ) -> None:
        """Program block size, block count and last block size (the scrubber must be idle)."""
        params = params if params is not None else self.probe()
        if layout.arena_bytes > params.arena_bytes:
            raise ScrubberError(
                f"arena of {layout.arena_bytes} bytes does not fit the scrubber's "
                f"{params.arena_bytes}-byte RAM"
            )
        if layout.block_count > params.max_blocks:
            raise ScrubberError(
                f"{layout.block_count} blocks do not fit the scrubber's CRC table of "
                f"{params.max_blocks} entries: use blocks of at least "
                f"{-(-layout.arena_bytes // params.max_blocks)} bytes"
            )
        if Status.BUSY in self.status():
            raise ScrubberError("scrubber is busy with a pass: abort() it before reconfiguring")
        self._write(Reg.BLOCK_SIZE, layout.block_size)
        self._write(Reg.BLOCK_COUNT, layout.block_count)
        self._write(Reg.LAST_SIZE, layout.last_size_register)
        self._write(Reg.CONFIG, config)

    # ------------------------------------------------------------------- the pass
    def scrub_pass(self, layout: ArenaLayout) -> ScrubReport:
        """Check every block once, repairing each bad block; returns what was found.

        Raises :class:`ScrubberError` when the scrubber is missing, rejects the layout,
        stops answering, or reports something impossible.
        """
        self.configure(layout)
        before = self.counters()
        self._write(Reg.STATUS, Status.DONE | Status.CFG_ERROR)
        self._write(Reg.CTRL, Ctrl.START)
        state = _Pass(layout)
        try:
            self._service_until_done(state)
        except BaseException:
            self.abort()
            raise
        after = self.counters()
        faults = tuple(
            BlockFault(
                index=i,
                crc_computed=f.crc_computed,
                crc_expected=f.crc_expected,
                repaired=f.repaired,
                repair_attempts=f.attempts,
            )
            for i, f in sorted(state.faults.items())
        )
        return ScrubReport(
            arena_bytes=layout.arena_bytes,
            blocks_checked=(after.blocks_checked - before.blocks_checked) & _U32,
            busy_cycles=(after.busy_cycles - before.busy_cycles) & _U32,
            faults=faults,
        )

    def _service_until_done(self, state: _Pass) -> None:
        # Every block can fail at most repair_attempts + 1 times: anything beyond means
        # the hardware is looping.
        budget = state.layout.block_count * (self._repair_attempts + 2) + 2
        spurious = 0
        while True:
            if not self._bus.wait_irq(self._timeout_s):
                raise ScrubberError(
                    f"scrubber raised no interrupt within {self._timeout_s} s "
                    f"(status {self._describe(self.status())})"
                )
            status = self.status()
            if Status.CFG_ERROR in status:
                raise ScrubberError(
                    "scrubber rejected the configuration (block size, count or last size "
                    "outside its RAMs)"
                )
            if Status.PAUSED in status:
                spurious = 0
                budget -= 1
                if budget < 0:
                    raise ScrubberError("scrubber keeps reporting mismatches: pass aborted")
                self._handle_mismatch(state)
                continue
            if Status.DONE in status:
                self._write(Reg.STATUS, Status.DONE)
                return
            spurious += 1
            if spurious > MAX_SPURIOUS_IRQS:
                raise ScrubberError(
                    f"interrupt line stuck: {spurious} interrupts with nothing to report "
                    f"(status {self._describe(status)})"
                )

    def _handle_mismatch(self, state: _Pass) -> None:
        index = self._read(Reg.FAIL_INDEX)
        if index >= state.layout.block_count:
            raise ScrubberError(
                f"scrubber reported block {index}, outside the arena's "
                f"{state.layout.block_count} blocks"
            )
        computed = self._read(Reg.FAIL_CRC)
        expected = self._read(Reg.FAIL_EXPECTED)
        fault = state.faults.get(index)
        if fault is None:
            fault = state.faults[index] = _FaultState(computed, expected)
            _log.warning(
                "weight block %d corrupted: CRC-32C 0x%08X, table says 0x%08X",
                index,
                computed,
                expected,
            )
        else:
            fault.repaired = False  # the re-check after the last repair failed
        if fault.attempts >= self._repair_attempts:
            _log.error("weight block %d still corrupted after %d repairs", index, fault.attempts)
            self._write(Reg.CTRL, Ctrl.RESUME)
            return
        fault.attempts += 1
        if self._repairer.repair_block(index):
            fault.repaired = True  # provisional until the hardware re-check passes
            self._write(Reg.CTRL, Ctrl.RETRY)
        else:
            _log.error("repair of weight block %d failed", index)
            self._write(Reg.CTRL, Ctrl.RESUME)

    @staticmethod
    def _describe(status: Status) -> str:
        names = [flag.name for flag in Status if flag in status and flag.name]
        return "|".join(names) if names else "idle"


def repairer_from(function: Callable[[int], bool]) -> Repairer:
    """Wrap a plain ``index -> bool`` function as a :class:`Repairer`.

    >>> repairer_from(lambda index: index < 3).repair_block(1)
    True
    """

    class _FunctionRepairer:
        def repair_block(self, index: int) -> bool:
            return bool(function(index))

    return _FunctionRepairer()
