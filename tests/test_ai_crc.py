"""CRC-32C: the check value, agreement with crcmod, and every input type."""

from __future__ import annotations

import crcmod.predefined
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fsw.ai import crc32c
from fsw.ai.crc import CRC32C_CHECK

_reference = crcmod.predefined.mkCrcFun("crc-32c")


def test_check_value() -> None:
    assert crc32c(b"123456789") == CRC32C_CHECK == 0xE3069283
    assert crc32c(b"") == 0


def test_known_answers_from_rfc3720() -> None:
    # iSCSI (RFC 3720, B.4) test vectors.
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E


@given(st.binary(max_size=9000))
def test_matches_crcmod(data: bytes) -> None:
    assert crc32c(data) == _reference(data)


def test_accepts_numpy_memoryview_and_noncontiguous() -> None:
    a = np.arange(10000, dtype=np.uint8)
    assert crc32c(a) == _reference(a.tobytes())
    assert crc32c(memoryview(a.tobytes())[100:200]) == _reference(a.tobytes()[100:200])
    assert crc32c(a[::2]) == _reference(a[::2].tobytes())
    f = np.linspace(0, 1, 33, dtype=np.float32)
    assert crc32c(f) == _reference(f.tobytes())


def test_single_bit_flip_always_changes_crc() -> None:
    block = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)
    good = crc32c(block)
    for bit in range(0, 4096 * 8, 61):
        block[bit // 8] ^= 1 << (bit % 8)
        assert crc32c(block) != good
        block[bit // 8] ^= 1 << (bit % 8)
