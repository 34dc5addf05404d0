"""The Python references the Verilog blocks must agree with, bit for bit.

CRC-16/CCITT-FALSE and BCH(63,56) come from the flight code (:mod:`fsw.ccsds`). The
weight blocks' CRC-32C comes from the runtime (``fsw.ai.crc32c``) when it is present and
is always cross-checked against crcmod's predefined ``crc-32c``.

>>> hex(crc32c(b"123456789"))
'0xe3069283'
>>> [hex(c) for c in block_crcs(b"123456789", block_size=4)]
['0xf63af4ee', '0x100fcf0b', '0x1a2cc12c']
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import crcmod.predefined
import numpy as np

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


@functools.cache
def _runtime_crc32c() -> Callable[[Buffer], int] | None:
    """``fsw.ai.crc32c`` when the runtime provides it, else None.

    ``import fsw.ai`` also loads the inference runtime (and torch: seconds per simulator
    process), so when the package is not imported yet its self-contained CRC module
    ``fsw/ai/crc.py`` is loaded on its own; it is the same code either way.
    """
    loaded = sys.modules.get("fsw.ai")
    if loaded is not None:
        fun = getattr(loaded, "crc32c", None)
        return fun if callable(fun) else None
    fsw_spec = importlib.util.find_spec("fsw")
    locations = list(fsw_spec.submodule_search_locations or []) if fsw_spec else []
    for location in locations:
        path = Path(location) / "ai" / "crc.py"
        if not path.is_file():
            continue
        spec = importlib.util.spec_from_file_location("_gnomon_fsw_ai_crc", path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except ImportError:
            break
        fun = getattr(module, "crc32c", None)
        if callable(fun):
            return fun
    try:
        module = importlib.import_module("fsw.ai")
    except ImportError:
        return None
    fun = getattr(module, "crc32c", None)
    return fun if callable(fun) else None


def crc32c_references() -> dict[str, Callable[[Buffer], int]]:
    """Every CRC-32C implementation to compare with, by name.

    >>> sorted(crc32c_references())  # doctest: +SKIP
    ['crcmod', 'fsw.ai']
    """
    refs: dict[str, Callable[[Buffer], int]] = {"crcmod": crc32c_crcmod}
    runtime = _runtime_crc32c()
    if runtime is not None:
        refs["fsw.ai"] = runtime
    return refs


def crc32c(data: Buffer) -> int:
    """CRC-32C of ``data``: the runtime's when it exists, else crcmod's."""
    runtime = _runtime_crc32c()
    return runtime(data) if runtime is not None else crc32c_crcmod(data)


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
