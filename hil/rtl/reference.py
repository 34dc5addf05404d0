"""The Python references the Verilog blocks must agree with, bit for bit.

CRC-16/CCITT-FALSE and BCH(63,56) come from the flight code (:mod:`fsw.ccsds`). The
weight blocks' CRC-32C is the runtime's (``fsw.ai.crc32c``, imported without the
inference runtime or torch), cross-checked against crcmod's predefined ``crc-32c``.

>>> hex(crc32c(b"123456789"))
'0xe3069283'
>>> [hex(c) for c in block_crcs(b"123456789", block_size=4)]
['0xf63af4ee', '0x100fcf0b', '0x1a2cc12c']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import crcmod.predefined
import numpy as np

from fsw.ai.crc import crc32c
from fsw.ccsds import BchError, bch_decode, bch_encode, crc16

__all__ = [
    "BchError",
    "bch_decode",
    "bch_encode",
    "bch_reference",
    "block_crcs",
    "crc16",
    "crc32c",
    "crc32c_crcmod",
    "crc32c_references",
]

Buffer = bytes | bytearray | memoryview

_crcmod_crc32c: Callable[[bytes], int] = crcmod.predefined.mkPredefinedCrcFun("crc-32c")


def crc32c_crcmod(data: Buffer) -> int:
    """CRC-32C (Castagnoli) by crcmod's predefined ``crc-32c``."""
    return _crcmod_crc32c(bytes(data))


def crc32c_references() -> dict[str, Callable[[Buffer], int]]:
    """Every CRC-32C implementation to compare with, by name.

    >>> sorted(crc32c_references())
    ['crcmod', 'fsw.ai']
    """
    return {"crcmod": crc32c_crcmod, "fsw.ai": crc32c}


def block_crcs(arena: Buffer | np.ndarray, block_size: int) -> list[int]:
    """CRC-32C of each ``block_size`` block of ``arena`` (the last one may be shorter)."""
    data = arena.tobytes() if isinstance(arena, np.ndarray) else bytes(arena)
    fun = crc32c
    return [fun(data[i : i + block_size]) for i in range(0, len(data), block_size)]


def bch_reference(block: Sequence[int] | Buffer) -> tuple[bytes, int] | None:
    """``fsw.ccsds.bch_decode`` of one codeblock, None when it is uncorrectable."""
    try:
        return bch_decode(bytes(block))
    except BchError:
        return None
