"""cocotb side of the scrubber: drive ``gnomon_scrub_soc`` ports, and a RegisterBus on top.

Only importable inside a cocotb simulation. :class:`ScrubSocHarness` has the async
primitives (register reads and writes, RAM loads, the interrupt); :class:`SimRegisterBus`
and :class:`SimRepairer` wrap them as the blocking :class:`hil.rtl.driver.RegisterBus`
and :class:`hil.rtl.driver.Repairer`, so the very same :class:`ScrubberDriver` runs
against the simulated hardware from a :func:`cocotb.task.bridge` thread::

    harness = ScrubSocHarness(dut)
    await harness.start_clock()
    await harness.reset()
    driver = ScrubberDriver(SimRegisterBus(harness), SimRepairer(harness, golden, layout))
    report = await bridge(driver.scrub_pass)(layout)

Register bus timing (the scrubber's): a write is sampled on one rising edge; a read
returns the word one clock after its address. Signals are driven and sampled on
falling edges, so nothing races the rising edge.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from cocotb.clock import Clock
from cocotb.task import resume
from cocotb.triggers import ClockCycles, FallingEdge, First, RisingEdge, Timer

from hil.rtl.regs import ArenaLayout

CLOCK_PERIOD_NS = 10


class ScrubSocHarness:
    """Async access to a ``gnomon_scrub_soc`` top level (``dut`` is the cocotb handle)."""

    def __init__(self, dut: Any) -> None:  # cocotb handles are dynamically typed
        self.dut = dut
        self._arena_mem = dut.u_arena.mem
        self._table_mem = dut.u_table.mem

    async def start_clock(self) -> None:
        """Start the 100 MHz clock (the C implementation, no Python per edge)."""
        Clock(self.dut.clk, CLOCK_PERIOD_NS, unit="ns", impl="gpi").start()
        await FallingEdge(self.dut.clk)

    async def reset(self) -> None:
        """Two clocks of reset with every input idle."""
        d = self.dut
        for sig in (
            d.reg_we,
            d.reg_addr,
            d.reg_wdata,
            d.arena_we,
            d.arena_addr,
            d.arena_wdata,
            d.table_we,
            d.table_addr,
            d.table_wdata,
        ):
            sig.value = 0
        d.rst.value = 1
        await ClockCycles(d.clk, 2, rising=False)
        d.rst.value = 0
        await FallingEdge(d.clk)

    # ------------------------------------------------------------- registers
    async def write_reg(self, offset: int, value: int) -> None:
        """Write a register; returns once the interrupt line reflects the write."""
        d = self.dut
        d.reg_addr.value = offset
        d.reg_wdata.value = value & 0xFFFF_FFFF
        d.reg_we.value = 1
        await FallingEdge(d.clk)
        d.reg_we.value = 0
        await FallingEdge(d.clk)  # irq is registered: one more clock to follow the state

    async def read_reg(self, offset: int) -> int:
        """Read a register (one clock)."""
        d = self.dut
        d.reg_addr.value = offset
        await FallingEdge(d.clk)
        return int(d.reg_rdata.value)

    async def wait_irq(self, max_cycles: int) -> bool:
        """Wait up to ``max_cycles`` clocks for the interrupt; True when it is asserted."""
        d = self.dut
        if int(d.irq.value):
            return True
        await First(RisingEdge(d.irq), Timer(max(1, max_cycles) * CLOCK_PERIOD_NS, "ns"))
        await FallingEdge(d.clk)
        return bool(int(d.irq.value))

    # ---------------------------------------------------- RAM contents (via VPI)
    def poke_arena(self, start: int, data: bytes | np.ndarray) -> None:
        """Deposit bytes in the arena RAM, as a CPU DMA would."""
        mem = self._arena_mem
        for offset, byte in enumerate(bytes(data)):
            mem[start + offset].value = byte

    def poke_table(self, crcs: list[int], start: int = 0) -> None:
        """Deposit expected CRCs in the table RAM."""
        mem = self._table_mem
        for offset, crc in enumerate(crcs):
            mem[start + offset].value = crc & 0xFFFF_FFFF

    def peek_arena(self, start: int, length: int) -> bytes:
        """Bytes of the arena RAM."""
        mem = self._arena_mem
        return bytes(int(mem[start + i].value) for i in range(length))

    # ------------------------------------------------- RAM contents (host port)
    async def host_write_arena(self, start: int, data: bytes) -> None:
        """Write bytes through the arena RAM's CPU port, one per clock."""
        d = self.dut
        d.arena_we.value = 1
        for offset, byte in enumerate(data):
            d.arena_addr.value = start + offset
            d.arena_wdata.value = byte
            await FallingEdge(d.clk)
        d.arena_we.value = 0

    async def host_read_arena(self, address: int) -> int:
        """Read one arena byte through the CPU port (one clock)."""
        d = self.dut
        d.arena_we.value = 0
        d.arena_addr.value = address
        await FallingEdge(d.clk)
        return int(d.arena_rdata.value)

    async def host_write_table(self, index: int, crc: int) -> None:
        """Write one table entry through the table RAM's CPU port."""
        d = self.dut
        d.table_we.value = 1
        d.table_addr.value = index
        d.table_wdata.value = crc & 0xFFFF_FFFF
        await FallingEdge(d.clk)
        d.table_we.value = 0

    async def host_read_table(self, index: int) -> int:
        """Read one table entry through the CPU port (one clock)."""
        d = self.dut
        d.table_we.value = 0
        d.table_addr.value = index
        await FallingEdge(d.clk)
        return int(d.table_rdata.value)


class SimRegisterBus:
    """Blocking :class:`RegisterBus` over the harness, for code in a ``bridge`` thread.

    ``timeout_s`` of :meth:`wait_irq` is simulated time.
    """

    def __init__(self, harness: ScrubSocHarness) -> None:
        self._read = resume(harness.read_reg)
        self._write = resume(harness.write_reg)
        self._wait = resume(harness.wait_irq)

    def read32(self, offset: int) -> int:
        """Read a register."""
        return self._read(offset)

    def write32(self, offset: int, value: int) -> None:
        """Write a register."""
        self._write(offset, value)

    def wait_irq(self, timeout_s: float) -> bool:
        """Wait for the interrupt, at most ``timeout_s`` of simulated time."""
        return self._wait(math.ceil(timeout_s * 1e9 / CLOCK_PERIOD_NS))


class SimRepairer:
    """A :class:`Repairer` that rewrites a block from the golden image in the arena RAM.

    ``broken`` blocks are "repaired" without effect (the repair reports success but the
    bytes stay wrong), to exercise the driver's retry limit; ``refuse`` blocks make
    ``repair_block`` return False.
    """

    def __init__(
        self,
        harness: ScrubSocHarness,
        golden: np.ndarray,
        layout: ArenaLayout,
        *,
        broken: frozenset[int] = frozenset(),
        refuse: frozenset[int] = frozenset(),
    ) -> None:
        self._harness = harness
        self._golden = golden
        self._layout = layout
        self._broken = broken
        self._refuse = refuse
        self.calls: list[int] = []
        self._restore = resume(self._restore_async)

    async def _restore_async(self, index: int) -> None:
        start, stop = self._layout.block_range(index)
        self._harness.poke_arena(start, self._golden[start:stop])
        await FallingEdge(self._harness.dut.clk)

    def repair_block(self, index: int) -> bool:
        """Rewrite block ``index`` from the golden image."""
        self.calls.append(index)
        if index in self._refuse:
            return False
        if index not in self._broken:
            self._restore(index)
        return True
