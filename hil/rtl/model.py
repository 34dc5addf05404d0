"""A cycle-counting Python model of the scrubber (``scrub_soc.v``) behind a RegisterBus.

The model keeps the same registers, the same configuration check and the same clock
count as the Verilog (a pass over T bytes takes T + 2 clocks from START to DONE; each
RETRY or RESUME starts a new run that takes the bytes it walks + 2 clocks), so the
driver can be exercised, and the SITL can offload scrubbing, without a simulator. The
cocotb suite runs the same scenarios on the RTL and on this model and compares every
register.

Simplifications: register accesses take no time (time moves only in :meth:`advance`
and :meth:`wait_irq`), and each block is read at the clock of its compare rather than
byte by byte.

>>> import numpy as np
>>> m = ScrubberModel(arena_aw=10, table_aw=2)
>>> m.load(np.zeros(1024, np.uint8), [0xB872B190] * 4)
>>> for reg, value in ((Reg.BLOCK_SIZE, 256), (Reg.BLOCK_COUNT, 4), (Reg.CONFIG, 2)):
...     m.write32(reg, value)
>>> m.write32(Reg.CTRL, Ctrl.START)
>>> m.wait_irq(1e-3), m.read32(Reg.BUSY_CYCLES), hex(m.read32(Reg.STATUS))
(True, 1026, '0x4')
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hil.rtl.errors import ScrubberError
from hil.rtl.reference import crc32c_crcmod
from hil.rtl.regs import (
    REGISTER_VERSION,
    SCRUBBER_ID,
    Config,
    Ctrl,
    Reg,
    ScrubberParams,
    Status,
)

_U32 = 0xFFFF_FFFF


class ScrubberModel:
    """The scrubber and its two RAMs, in Python: implements :class:`RegisterBus`.

    ``arena`` (uint8) and ``table`` (uint32) are the RAM contents; write them directly,
    as the CPU does through the RAMs' host ports.
    """

    def __init__(self, arena_aw: int = 16, table_aw: int = 8, clock_hz: float = 100e6) -> None:
        if not 1 <= arena_aw <= 28 or not 1 <= table_aw <= 20:
            raise ScrubberError(
                f"model RAM sizes out of range: arena_aw={arena_aw} (1..28), "
                f"table_aw={table_aw} (1..20)"
            )
        if clock_hz <= 0:
            raise ScrubberError(f"clock must be positive, not {clock_hz} Hz")
        self.params = ScrubberParams(arena_aw, table_aw, REGISTER_VERSION)
        self.clock_hz = clock_hz
        self.arena = np.zeros(1 << arena_aw, dtype=np.uint8)
        self.table = np.zeros(1 << table_aw, dtype=np.uint32)
        self.cycle = 0
        self._regs = dict.fromkeys(Reg, 0)
        self._busy = self._paused = self._done = self._cfg_error = False
        self._run_t0 = 0  # clock of the command that started the current run
        self._run_block = 0  # first block of the current run
        self._pause_block = 0

    # ---------------------------------------------------------------- RAM access
    def load(self, arena: np.ndarray | bytes, crcs: Sequence[int]) -> None:
        """Copy an arena image and its CRC table into the RAMs (the rest is untouched)."""
        data = np.frombuffer(bytes(arena), dtype=np.uint8) if isinstance(arena, bytes) else arena
        if data.size > self.arena.size or len(crcs) > self.table.size:
            raise ScrubberError(
                f"image of {data.size} bytes / {len(crcs)} CRCs does not fit the "
                f"{self.arena.size}-byte arena / {self.table.size}-entry table"
            )
        self.arena[: data.size] = data
        self.table[: len(crcs)] = np.asarray(crcs, dtype=np.uint64).astype(np.uint32)

    # ------------------------------------------------------------- configuration
    def _layout(self) -> tuple[int, int, int] | None:
        size = self._regs[Reg.BLOCK_SIZE]
        count = self._regs[Reg.BLOCK_COUNT]
        last = self._regs[Reg.LAST_SIZE]
        if not (1 <= size <= self.params.arena_bytes and 1 <= count <= self.params.max_blocks):
            return None
        if last > size:
            return None
        last_eff = last or size
        if (count - 1) * size + last_eff > self.params.arena_bytes:
            return None
        return size, count, last_eff

    def _block_bytes(self, index: int) -> tuple[int, int]:
        layout = self._layout()
        assert layout is not None  # a run only starts with a valid layout
        size, count, last = layout
        start = index * size
        return start, start + (last if index == count - 1 else size)

    # --------------------------------------------------------------------- time
    def _begin_run(self, block: int) -> None:
        self._run_t0 = self.cycle
        self._run_block = block

    def _running(self) -> bool:
        return self._busy and not self._paused

    def _next_event(self) -> tuple[int, int] | None:
        """(clock, block) of the next compare that pauses or ends the pass."""
        layout = self._layout()
        if not self._running() or layout is None:
            return None
        _size, count, _last = layout
        walked = 0
        for index in range(self._run_block, count):
            start, stop = self._block_bytes(index)
            walked += stop - start
            crc = crc32c_crcmod(self.arena[start:stop].tobytes())
            if crc != int(self.table[index]) or index == count - 1:
                return self._run_t0 + walked + 2, index
        return None

    def advance(self, cycles: int) -> None:
        """Let ``cycles`` clocks pass."""
        self._advance_to(self.cycle + max(0, cycles), stop_on_irq=False)

    def _advance_to(self, until: int, *, stop_on_irq: bool) -> bool:
        while True:
            if stop_on_irq and self.irq:
                return True
            event = self._next_event()
            if event is None or event[0] > until:
                self.cycle = max(self.cycle, until)
                return self.irq
            self.cycle = event[0]
            self._compare(event[1])

    def _compare(self, index: int) -> None:
        start, stop = self._block_bytes(index)
        crc = crc32c_crcmod(self.arena[start:stop].tobytes())
        expected = int(self.table[index])
        regs = self._regs
        regs[Reg.BUSY_CYCLES] = (regs[Reg.BUSY_CYCLES] + self.cycle - self._run_t0) & _U32
        # Blocks before `index` in this run passed their check.
        regs[Reg.BLOCKS_CHECKED] = (regs[Reg.BLOCKS_CHECKED] + index - self._run_block + 1) & _U32
        if crc != expected:
            regs[Reg.MISMATCHES] = (regs[Reg.MISMATCHES] + 1) & _U32
            regs[Reg.FAIL_INDEX] = index
            regs[Reg.FAIL_CRC] = crc
            regs[Reg.FAIL_EXPECTED] = expected
            self._paused = True
            self._pause_block = index
            return
        self._finish_pass()

    def _finish_pass(self) -> None:
        regs = self._regs
        regs[Reg.PASSES] = (regs[Reg.PASSES] + 1) & _U32
        self._done = True
        if regs[Reg.CONFIG] & Config.CONTINUOUS:
            self._begin_run(0)
        else:
            self._busy = False

    # ---------------------------------------------------------------- the bus
    @property
    def irq(self) -> bool:
        """Level of the interrupt line."""
        config = self._regs[Reg.CONFIG]
        return bool(
            (config & Config.IRQ_ON_MISMATCH and self._paused)
            or (config & Config.IRQ_ON_DONE and (self._done or self._cfg_error))
        )

    def wait_irq(self, timeout_s: float) -> bool:
        """Run the clock until the interrupt is asserted or ``timeout_s`` has passed."""
        return self._advance_to(
            self.cycle + max(0, int(timeout_s * self.clock_hz)), stop_on_irq=True
        )

    def read32(self, offset: int) -> int:
        """The register at byte ``offset`` (0 for unmapped offsets, like the RTL)."""
        try:
            reg = Reg(offset & 0x3C)
        except ValueError:
            return 0
        if reg is Reg.ID:
            return SCRUBBER_ID
        if reg is Reg.PARAMS:
            return self.params.encode()
        if reg is Reg.CTRL:
            return 0
        if reg is Reg.STATUS:
            bits = (
                (Status.BUSY if self._busy else 0)
                | (Status.PAUSED if self._paused else 0)
                | (Status.DONE if self._done else 0)
                | (Status.CFG_ERROR if self._cfg_error else 0)
            )
            return int(bits)
        cycles, blocks = self._run_progress()
        if reg is Reg.BUSY_CYCLES:
            return (self._regs[reg] + cycles) & _U32
        if reg is Reg.BLOCKS_CHECKED:
            return (self._regs[reg] + blocks) & _U32
        return self._regs[reg]

    def _run_progress(self) -> tuple[int, int]:
        """Clocks spent and blocks checked so far in the current run (0, 0 when stopped)."""
        layout = self._layout()
        if not self._running() or layout is None:
            return 0, 0
        checked = 0
        walked = 0
        for index in range(self._run_block, layout[1]):
            start, stop = self._block_bytes(index)
            walked += stop - start
            if self._run_t0 + walked + 2 > self.cycle:
                break
            checked += 1
        return self.cycle - self._run_t0, checked

    def write32(self, offset: int, value: int) -> None:
        """Write the register at byte ``offset`` with the RTL's side effects."""
        value &= _U32
        try:
            reg = Reg(offset & 0x3C)
        except ValueError:
            return
        if reg in (Reg.BLOCK_SIZE, Reg.BLOCK_COUNT, Reg.LAST_SIZE):
            if not self._busy:
                self._regs[reg] = value
        elif reg is Reg.CONFIG:
            self._regs[reg] = value & 0x7
        elif reg is Reg.STATUS:
            if value & Status.DONE:
                self._done = False
            if value & Status.CFG_ERROR:
                self._cfg_error = False
        elif reg is Reg.CTRL:
            self._command(Ctrl(value & 0x1F))

    def _command(self, ctrl: Ctrl) -> None:
        regs = self._regs
        if Ctrl.CLEAR_COUNTERS in ctrl:
            cycles, blocks = self._run_progress()
            regs[Reg.MISMATCHES] = regs[Reg.PASSES] = 0
            # Counters read as base + progress of the running run: zero them as of now.
            regs[Reg.BUSY_CYCLES] = -cycles & _U32
            regs[Reg.BLOCKS_CHECKED] = -blocks & _U32
        if Ctrl.START in ctrl and not self._busy:
            self._done = self._cfg_error = False
            if self._layout() is None:
                self._cfg_error = True
            else:
                self._busy = True
                self._paused = False
                self._begin_run(0)
        if self._paused and ctrl & (Ctrl.RETRY | Ctrl.RESUME):
            self._paused = False
            layout = self._layout()
            assert layout is not None  # paused implies a pass started with a valid layout
            if Ctrl.RETRY in ctrl:
                self._begin_run(self._pause_block)
            elif self._pause_block == layout[1] - 1:
                self._finish_pass()
            else:
                self._begin_run(self._pause_block + 1)
        if Ctrl.ABORT in ctrl:
            cycles, blocks = self._run_progress()
            regs[Reg.BUSY_CYCLES] = (regs[Reg.BUSY_CYCLES] + cycles) & _U32
            regs[Reg.BLOCKS_CHECKED] = (regs[Reg.BLOCKS_CHECKED] + blocks) & _U32
            self._busy = self._paused = False
