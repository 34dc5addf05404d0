"""CRC-16/CCITT-FALSE: the PUS packet error control and the TC/TM frame FECF.

Polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR.
Computed by crcmod's C extension (:data:`CRC16_USES_C_EXTENSION` says so).

>>> hex(crc16(b"123456789"))
'0x29b1'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import crcmod.predefined

_crc16_fun: Callable[[bytes], int] = crcmod.predefined.mkPredefinedCrcFun("crc-ccitt-false")

#: True when crcmod's compiled extension (not the pure-Python fallback) does the work.
CRC16_USES_C_EXTENSION: bool = bool(
    getattr(importlib.import_module("crcmod.crcmod"), "_usingExtension", False)
)


def crc16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/CCITT-FALSE of ``data``.

    >>> crc16(b"")
    65535
    """
    return _crc16_fun(bytes(data) if not isinstance(data, bytes) else data)


def crc16_function() -> Callable[[bytes], int]:
    """The underlying crcmod function itself (takes ``bytes`` only), for hot loops.

    >>> crc16_function()(b"123456789") == 0x29B1
    True
    """
    return _crc16_fun
