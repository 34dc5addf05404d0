"""Register map of the memory scrubber (``scrubber.v``) and the arena block layout.

All registers are 32-bit words at word-aligned byte offsets. The same constants drive
the Python driver, the register model and the cocotb tests, and ``docs/rtl.md`` shows
them as a table.

>>> layout = ArenaLayout.for_arena(arena_bytes=10_000, block_size=4096)
>>> layout.block_count, layout.last_size, layout.block_range(2)
(3, 1808, (8192, 10000))
>>> Reg.FAIL_INDEX
<Reg.FAIL_INDEX: 28>
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag

from hil.rtl.errors import ScrubberError

#: Value of the ID register: ASCII "GNSC".
SCRUBBER_ID = 0x474E5343
#: Register-map version in PARAMS[23:16].
REGISTER_VERSION = 1


class Reg(IntEnum):
    """Byte offsets of the scrubber's registers."""

    ID = 0x00
    CTRL = 0x04
    CONFIG = 0x08
    STATUS = 0x0C
    BLOCK_SIZE = 0x10
    BLOCK_COUNT = 0x14
    LAST_SIZE = 0x18
    FAIL_INDEX = 0x1C
    FAIL_CRC = 0x20
    FAIL_EXPECTED = 0x24
    BLOCKS_CHECKED = 0x28
    MISMATCHES = 0x2C
    PASSES = 0x30
    BUSY_CYCLES = 0x34
    PARAMS = 0x38


class Ctrl(IntFlag):
    """CTRL bits: one-clock command pulses (the register reads 0)."""

    START = 1 << 0
    ABORT = 1 << 1
    RESUME = 1 << 2
    RETRY = 1 << 3
    CLEAR_COUNTERS = 1 << 4


class Config(IntFlag):
    """CONFIG bits (read/write)."""

    IRQ_ON_MISMATCH = 1 << 0
    IRQ_ON_DONE = 1 << 1
    CONTINUOUS = 1 << 2


class Status(IntFlag):
    """STATUS bits; DONE and CFG_ERROR are cleared by writing 1 (or by START)."""

    BUSY = 1 << 0
    PAUSED = 1 << 1
    DONE = 1 << 2
    CFG_ERROR = 1 << 3


@dataclass(slots=True, frozen=True)
class ScrubberParams:
    """Sizes the hardware was built with, decoded from the PARAMS register.

    >>> ScrubberParams.decode(0x0001_0810)
    ScrubberParams(arena_aw=16, table_aw=8, version=1)
    """

    arena_aw: int
    table_aw: int
    version: int

    @property
    def arena_bytes(self) -> int:
        """Bytes of the arena RAM."""
        return 1 << self.arena_aw

    @property
    def max_blocks(self) -> int:
        """Entries of the CRC table RAM, so the most blocks one pass can check."""
        return 1 << self.table_aw

    @classmethod
    def decode(cls, value: int) -> ScrubberParams:
        """Fields of a PARAMS register value."""
        return cls(
            arena_aw=value & 0xFF, table_aw=(value >> 8) & 0xFF, version=(value >> 16) & 0xFF
        )

    def encode(self) -> int:
        """The PARAMS register value for these sizes."""
        return (self.version << 16) | (self.table_aw << 8) | self.arena_aw


@dataclass(slots=True, frozen=True)
class ArenaLayout:
    """How the weight arena is cut in blocks: every block ``block_size`` bytes, the last
    one ``last_size`` bytes (1 .. block_size), as the runtime's checksum table has it.

    >>> ArenaLayout.for_arena(arena_bytes=8192, block_size=4096)
    ArenaLayout(block_size=4096, block_count=2, last_size=4096)
    """

    block_size: int
    block_count: int
    last_size: int

    def __post_init__(self) -> None:
        if self.block_size < 1:
            raise ScrubberError(f"block size must be at least 1 byte, not {self.block_size}")
        if self.block_count < 1:
            raise ScrubberError(f"an arena needs at least one block, not {self.block_count}")
        if not 1 <= self.last_size <= self.block_size:
            raise ScrubberError(
                f"last block of {self.last_size} bytes does not fit blocks of "
                f"{self.block_size} bytes"
            )

    @classmethod
    def for_arena(cls, arena_bytes: int, block_size: int) -> ArenaLayout:
        """The layout of an arena of ``arena_bytes`` split in ``block_size`` blocks."""
        if arena_bytes < 1:
            raise ScrubberError(f"arena must hold at least 1 byte, not {arena_bytes}")
        if block_size < 1:
            raise ScrubberError(f"block size must be at least 1 byte, not {block_size}")
        count = -(-arena_bytes // block_size)
        return cls(block_size, count, arena_bytes - (count - 1) * block_size)

    @property
    def arena_bytes(self) -> int:
        """Total bytes covered by the blocks."""
        return (self.block_count - 1) * self.block_size + self.last_size

    @property
    def last_size_register(self) -> int:
        """LAST_SIZE as the hardware wants it: 0 when the last block is full."""
        return 0 if self.last_size == self.block_size else self.last_size

    def block_range(self, index: int) -> tuple[int, int]:
        """Byte range ``(start, stop)`` of block ``index``."""
        if not 0 <= index < self.block_count:
            raise ScrubberError(f"block {index} is outside the arena's {self.block_count} blocks")
        start = index * self.block_size
        return start, start + (self.last_size if index == self.block_count - 1 else self.block_size)
