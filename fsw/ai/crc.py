"""CRC-32C (Castagnoli), the block checksum of ``.gnm`` arenas.

Reflected, polynomial 0x1EDC6F41 (0x82F63B78 reflected), init and xorout 0xFFFFFFFF:

>>> hex(crc32c(b"123456789"))
'0xe3069283'

The hardware scrubber (``hil/rtl``) computes the same function bit for bit. The fast path
uses the ``crc32c`` package (SSE4.2 / ARMv8 CRC instructions, ~15 GB/s on one core); if
it is missing, crcmod's C implementation is used (about 20x slower) and a warning logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

CRC32C_CHECK = 0xE3069283  # crc32c(b"123456789")

_impl: Callable[[Any], int]
try:
    import crc32c as _crc32c_mod

    _impl = _crc32c_mod.crc32c
    BACKEND = "crc32c" + ("-hw" if getattr(_crc32c_mod, "hardware_based", False) else "-sw")
except ImportError:  # pragma: no cover - exercised only on boards without the wheel
    import crcmod.predefined

    _impl = crcmod.predefined.mkCrcFun("crc-32c")
    BACKEND = "crcmod"
    log.warning("crc32c package missing: using crcmod (slow scrubbing)")


def crc32c_buffer(data: Any) -> int:
    """CRC-32C of a C-contiguous bytes-like object, without the checks of :func:`crc32c`.

    The scrubber's inner loop calls this; a numpy array must already be contiguous.
    """
    return int(_impl(data))


def crc32c(data: bytes | bytearray | memoryview | np.ndarray) -> int:
    """CRC-32C of ``data`` (bytes-like or a C-contiguous numpy array, read as raw bytes).

    >>> crc32c(np.frombuffer(b"123456789", dtype=np.uint8)) == CRC32C_CHECK
    True
    """
    if isinstance(data, np.ndarray):
        if not data.flags.c_contiguous:
            data = np.ascontiguousarray(data)
        return int(_impl(data.data.cast("B")))
    return int(_impl(data))
