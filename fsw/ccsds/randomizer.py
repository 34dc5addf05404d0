"""Pseudo-randomizers of the TM (131.0-B) and TC (231.0-B) synchronization layers.

Both are 8-stage LFSRs started with all ones and XORed onto the data, so applying one
twice gives the data back. The TM sequence (x^8+x^7+x^5+x^3+1) restarts at every frame
(after the ASM); the TC sequence (x^8+x^6+x^4+x^3+x^2+x+1) restarts at every CLTU.
Both repeat every 255 bytes.

>>> tm_randomize(bytes(4)).hex()
'ff480ec0'
>>> tc_randomize(bytes(4)).hex()
'ff399e5a'
>>> tm_randomize(tm_randomize(b"gnomon")) == b"gnomon"
True
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

from fsw.ccsds.errors import FrameError

_PERIOD = 255


def _lfsr_sequence(taps: tuple[int, ...]) -> bytes:
    """One period (255 bytes) of a Fibonacci LFSR seeded with all ones, MSB first."""
    state = [1] * 8
    bits: list[int] = []
    for _ in range(_PERIOD * 8):
        bits.append(state[0])
        feedback = 0
        for tap in taps:
            feedback ^= state[tap]
        state = [*state[1:], feedback]
    return bytes(int("".join(str(b) for b in bits[i * 8 : i * 8 + 8]), 2) for i in range(_PERIOD))


#: One period of the TM randomizer sequence (starts ff 48 0e c0 9a 0d ...).
TM_SEQUENCE: bytes = _lfsr_sequence((0, 3, 5, 7))
#: One period of the TC randomizer sequence (starts ff 39 9e 5a 68 e9 ...).
TC_SEQUENCE: bytes = _lfsr_sequence((0, 1, 2, 3, 4, 6))


@lru_cache(maxsize=32)
def _as_int(sequence: bytes, length: int) -> int:
    reps = -(-length // _PERIOD)
    return int.from_bytes((sequence * reps)[:length], "big")


@lru_cache(maxsize=32)
def _as_array(sequence: bytes, length: int) -> npt.NDArray[np.uint8]:
    reps = -(-length // _PERIOD)
    arr = np.frombuffer((sequence * reps)[:length], dtype=np.uint8).copy()
    arr.setflags(write=False)
    return arr


def _xor(sequence: bytes, data: bytes | bytearray | memoryview) -> bytes:
    n = len(data)
    if n == 0:
        return b""
    return (int.from_bytes(data, "big") ^ _as_int(sequence, n)).to_bytes(n, "big")


def tm_randomize(data: bytes | bytearray | memoryview) -> bytes:
    """XOR one TM frame with the TM randomizer sequence (also derandomizes).

    >>> tm_randomize(b"\\xff\\x48") == bytes(2)
    True
    """
    return _xor(TM_SEQUENCE, data)


def tc_randomize(data: bytes | bytearray | memoryview) -> bytes:
    """XOR one TC frame (the CLTU's data) with the TC randomizer sequence.

    >>> tc_randomize(b"\\xff\\x39") == bytes(2)
    True
    """
    return _xor(TC_SEQUENCE, data)


def tm_randomize_rows(frames: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Randomize many equal-length frames at once: rows of a 2-D uint8 array.

    Returns a new array; each row is XORed with the sequence from its first byte.

    >>> rows = np.zeros((2, 3), dtype=np.uint8)
    >>> bytes(tm_randomize_rows(rows)[1]).hex()
    'ff480e'
    """
    if frames.ndim != 2:
        raise FrameError("tm_randomize_rows needs a 2-D array (frames x bytes)")
    return np.bitwise_xor(frames, _as_array(TM_SEQUENCE, frames.shape[1]))


def tm_sequence_array(length: int) -> npt.NDArray[np.uint8]:
    """The TM randomizer sequence for a frame of ``length`` bytes, as a read-only array."""
    return _as_array(TM_SEQUENCE, length)


__all__ = [
    "TC_SEQUENCE",
    "TM_SEQUENCE",
    "tc_randomize",
    "tm_randomize",
    "tm_randomize_rows",
    "tm_sequence_array",
]
