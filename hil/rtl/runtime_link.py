"""The FPGA scrubber joined to the int8 runtime: the hardware finds, the runtime repairs.

On a board whose weight arena sits in FPGA-attached RAM, the scrubber walks that RAM
without CPU time; on an interrupt the driver (:class:`~hil.rtl.driver.ScrubberDriver`)
asks a :class:`~hil.rtl.driver.Repairer` to fix the failing block. :class:`RuntimeRepairer`
is that repairer for :class:`fsw.ai.runtime.Runtime`: it hands the block to ``Runtime.repair``,
which re-reads it from the verified golden artifact, and writes the repaired bytes back
to the scrubber's arena RAM.

>>> from fsw.ai.runtime import Runtime
>>> from hil.rtl.model import ScrubberModel
>>> rt = Runtime.load("fsw/ai/artifacts/cloudnet-s.gnm")
>>> fpga = ScrubberModel(arena_aw=15, table_aw=4)
>>> link = RuntimeRepairer(rt, fpga)          # loads the arena and CRC table into the RAMs
>>> fpga.arena[5000] ^= 0x40                    # a radiation hit in the FPGA-attached RAM
>>> report = ScrubberDriver(fpga, link).scrub_pass(link.layout)
>>> report.repaired, bool(fpga.arena[5000] == rt.arena[5000]), rt.verify()
((1,), True, [])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hil.rtl.driver import ScrubberDriver
from hil.rtl.errors import ScrubberError
from hil.rtl.model import ScrubberModel
from hil.rtl.regs import ArenaLayout

if TYPE_CHECKING:
    from fsw.ai.runtime import Runtime

__all__ = ["RuntimeRepairer", "ScrubberDriver"]


class RuntimeRepairer:
    """A :class:`~hil.rtl.driver.Repairer` that repairs through ``Runtime.repair``.

    ``ram`` is the scrubber's arena and table RAM (the cocotb/Python model here; on a board,
    the same memory the kernels read, in which case the copies below are no-ops).
    """

    def __init__(self, rt: Runtime, ram: ScrubberModel) -> None:
        if rt.arena.size > ram.arena.size or rt.arena_blocks > ram.table.size:
            raise ScrubberError(
                f"{rt.name}: {rt.arena.size}-byte arena in {rt.arena_blocks} blocks does not "
                f"fit the scrubber's {ram.arena.size}-byte RAM / {ram.table.size}-entry table"
            )
        self.rt = rt
        self.ram = ram
        self.layout = ArenaLayout.for_arena(int(rt.arena.size), rt.block_size)
        ram.load(rt.arena, rt.block_crcs)
        self.repairs = 0
        self.failures = 0

    def _span(self, index: int) -> slice:
        start = index * self.rt.block_size
        return slice(start, min(start + self.rt.block_size, int(self.rt.arena.size)))

    def repair_block(self, index: int) -> bool:
        """Repair block ``index`` from the golden artifact; True when RAM and arena verify."""
        if not 0 <= index < self.rt.arena_blocks:
            self.failures += 1
            return False
        span = self._span(index)
        # The hit happened in the scrubber's RAM: the runtime sees the same bytes.
        self.rt.arena[span] = self.ram.arena[span]
        report = self.rt.repair(blocks=[index])
        if report.unrepairable:
            self.failures += 1
            return False
        self.ram.arena[span] = self.rt.arena[span]
        self.repairs += 1
        return True
