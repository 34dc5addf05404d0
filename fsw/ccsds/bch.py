"""BCH(63,56) codeblocks of the TC Synchronization and Channel Coding layer (CCSDS 231.0-B).

A codeblock is 8 bytes: 7 information bytes (56 bits), 7 parity bits, one filler bit (0).
Generator g(x) = x^7 + x^6 + x^2 + 1; the parity bits are sent complemented. The code
corrects any single bit error in the 63 coded bits and detects (without correcting) every
double error, since g(x) = (x + 1)(x^6 + x + 1).

>>> block = bch_encode(b"\\x00" * 7)
>>> block.hex()
'00000000000000fe'
>>> info, corrected = bch_decode(bytes([0x01]) + block[1:])
>>> info == b"\\x00" * 7, corrected
(True, 1)
"""

from __future__ import annotations

import numpy as np

from fsw.ccsds.errors import CcsdsError

INFO_BYTES = 7
CODEBLOCK_BYTES = 8
_GEN = 0x45  # x^6 + x^2 + 1 (x^7 implicit)


class BchError(CcsdsError):
    """A codeblock with more errors than BCH(63,56) can correct."""


def _make_table() -> tuple[int, ...]:
    """Parity remainder after shifting one information byte through the divider."""
    table = []
    for byte in range(256):
        rem = 0
        for bit in range(7, -1, -1):
            feedback = ((rem >> 6) & 1) ^ ((byte >> bit) & 1)
            rem = (rem << 1) & 0x7F
            if feedback:
                rem ^= _GEN
        table.append(rem)
    return tuple(table)


_TABLE = _make_table()


def bch_parity(info: bytes | bytearray | memoryview) -> int:
    """The 7 parity bits (not yet complemented) of 7 information bytes."""
    rem = 0
    for byte in info:
        # Shifting 8 information bits through the 7-bit divider: the remainder's 7 bits
        # line up with the top 7 bits of the byte, so fold them in and look the result up.
        rem = _TABLE[byte ^ (rem << 1)]
    return rem


def bch_encode(info: bytes | bytearray | memoryview) -> bytes:
    """One 8-byte codeblock for exactly 7 information bytes."""
    if len(info) != INFO_BYTES:
        raise BchError(f"a BCH codeblock carries {INFO_BYTES} information bytes, not {len(info)}")
    parity = bch_parity(info) ^ 0x7F
    return bytes(info) + bytes([parity << 1])


def _syndrome_table() -> dict[int, tuple[int, int]]:
    """Syndrome -> (byte index, bit mask) of the single flipped bit that causes it."""
    table: dict[int, tuple[int, int]] = {}
    zero = bytes(INFO_BYTES)
    for index in range(INFO_BYTES):
        for bit in range(8):
            info = bytearray(zero)
            info[index] ^= 0x80 >> bit
            table[bch_parity(info)] = (index, 0x80 >> bit)
    for bit in range(7):  # an error in a parity bit shows up as that bit of the syndrome
        table[1 << bit] = (INFO_BYTES, 1 << (bit + 1))
    return table


_SYNDROMES = _syndrome_table()


def bch_decode(block: bytes | bytearray | memoryview) -> tuple[bytes, int]:
    """Information bytes of one codeblock and how many bits were corrected (0 or 1).

    Raises :class:`BchError` when the codeblock has an error it cannot correct.
    """
    if len(block) != CODEBLOCK_BYTES:
        raise BchError(f"a BCH codeblock is {CODEBLOCK_BYTES} bytes, not {len(block)}")
    info = bytes(block[:INFO_BYTES])
    received = ((block[INFO_BYTES] >> 1) & 0x7F) ^ 0x7F
    syndrome = bch_parity(info) ^ received
    if syndrome == 0:
        return info, 0
    where = _SYNDROMES.get(syndrome)
    if where is None:
        raise BchError("uncorrectable codeblock (two or more bit errors)")
    index, mask = where
    if index == INFO_BYTES:
        return info, 1
    fixed = bytearray(info)
    fixed[index] ^= mask
    return bytes(fixed), 1


# --- Vectorised forms (numpy): the same code, many codeblocks per call. -------------------

_TABLE_NP = np.array(_TABLE, dtype=np.uint8)
# Syndrome -> information byte index to fix (0..6), 7 for a parity-bit error, -1 when
# the syndrome is not that of a single error; and the bit mask to XOR.
_SYN_INDEX = np.full(128, -1, dtype=np.int8)
_SYN_MASK = np.zeros(128, dtype=np.uint8)
_SYN_INDEX[0] = 7  # no error: "fix" nothing (mask 0)
for _syn, (_idx, _mask) in _SYNDROMES.items():
    _SYN_INDEX[_syn] = _idx
    _SYN_MASK[_syn] = _mask if _idx < INFO_BYTES else 0


def _parity_rows(info: np.ndarray) -> np.ndarray:
    rem = np.zeros(info.shape[0], dtype=np.uint8)
    for col in range(INFO_BYTES):
        rem = _TABLE_NP[info[:, col] ^ (rem << 1)]
    return rem


def bch_encode_blocks(info: bytes | bytearray | memoryview) -> bytes:
    """Codeblocks for information bytes whose length is a multiple of 7 (as bch_encode).

    >>> bch_encode_blocks(bytes(14)) == bch_encode(bytes(7)) * 2
    True
    """
    if len(info) % INFO_BYTES:
        raise BchError(f"{len(info)} information bytes is not a whole number of codeblocks")
    n = len(info) // INFO_BYTES
    if n == 0:
        return b""
    rows = np.frombuffer(bytes(info), dtype=np.uint8).reshape(n, INFO_BYTES)
    out = np.empty((n, CODEBLOCK_BYTES), dtype=np.uint8)
    out[:, :INFO_BYTES] = rows
    out[:, INFO_BYTES] = (_parity_rows(rows) ^ 0x7F) << 1
    return out.tobytes()


def bch_decode_blocks(data: bytes | bytearray | memoryview) -> tuple[bytes, int, int]:
    """Decode consecutive codeblocks up to the first one that cannot be corrected.

    Returns ``(information bytes, bits corrected, good blocks)``; when ``good blocks`` is
    less than ``len(data) // 8`` the block at that index was uncorrectable (as a CLTU
    decoder does, decoding stops there). A trailing partial block is ignored.

    >>> tail = bytes.fromhex("c5c5c5c5c5c5c579")  # the CLTU tail: uncorrectable on purpose
    >>> info, fixed, good = bch_decode_blocks(bch_encode(bytes(7)) + tail)
    >>> info == bytes(7), fixed, good
    (True, 0, 1)
    """
    n = len(data) // CODEBLOCK_BYTES
    if n == 0:
        return b"", 0, 0
    blocks = np.frombuffer(bytes(data[: n * CODEBLOCK_BYTES]), dtype=np.uint8).reshape(
        n, CODEBLOCK_BYTES
    )
    info = blocks[:, :INFO_BYTES]
    received = ((blocks[:, INFO_BYTES] >> 1) & 0x7F) ^ 0x7F
    syndrome = _parity_rows(info) ^ received
    index = _SYN_INDEX[syndrome]
    bad = np.flatnonzero(index < 0)
    good = int(bad[0]) if bad.size else n
    syndrome = syndrome[:good]
    index = index[:good]
    corrected = int(np.count_nonzero(syndrome))
    fixed = info[:good].copy()
    rows = np.flatnonzero(index < INFO_BYTES)
    if rows.size:
        fixed[rows, index[rows]] ^= _SYN_MASK[syndrome[rows]]
    return fixed.tobytes(), corrected, good
