"""FPGA offload of Gnomon's integrity checks: Verilog blocks, their driver, their tests.

The Verilog (``hdl/*.v``) holds a CRC engine (CRC-16/CCITT-FALSE for frames, CRC-32C for
weight blocks, 8 bits per clock), a BCH(63,56) CLTU codeblock decoder, and a memory
scrubber that walks the weight arena and interrupts the CPU with the index of a bad
block. The Python side is what the CPU runs and what proves the hardware right:

- :class:`ScrubberDriver` programs the scrubber over any :class:`RegisterBus` and calls a
  :class:`Repairer` (the runtime) for every corrupted block;
- :class:`ScrubberModel` is the scrubber in Python (same registers, same clock count);
- :func:`run_suite` builds and runs the cocotb suites (``tb/test_*.py``) under Icarus Verilog.

See docs/rtl.md for the block diagrams, the register map and how to run everything.

>>> from hil.rtl import ScrubberDriver, ScrubberModel, repairer_from
>>> ScrubberDriver(ScrubberModel(), repairer_from(lambda index: False)).probe()
ScrubberParams(arena_aw=16, table_aw=8, version=1)
"""

from hil.rtl.driver import (
    BlockFault,
    RegisterBus,
    Repairer,
    ScrubberDriver,
    ScrubCounters,
    ScrubReport,
    repairer_from,
)
from hil.rtl.errors import RtlError, ScrubberError, SimulationError
from hil.rtl.model import ScrubberModel
from hil.rtl.regs import ArenaLayout, Config, Ctrl, Reg, ScrubberParams, Status
from hil.rtl.runner import SUITES, run_suite, simulator_missing_reason

__all__ = [
    "SUITES",
    "ArenaLayout",
    "BlockFault",
    "Config",
    "Ctrl",
    "Reg",
    "RegisterBus",
    "Repairer",
    "RtlError",
    "ScrubCounters",
    "ScrubReport",
    "ScrubberDriver",
    "ScrubberError",
    "ScrubberModel",
    "ScrubberParams",
    "SimulationError",
    "Status",
    "repairer_from",
    "run_suite",
    "simulator_missing_reason",
]
