"""Randomizers, BCH(63,56) codeblocks and CLTUs (CCSDS 231.0-B)."""

from __future__ import annotations

import contextlib
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.ccsds import (
    BchError,
    CcsdsError,
    CltuError,
    CltuExtractor,
    TcFrame,
    bch_decode,
    bch_encode,
    decode_cltu,
    encode_cltu,
    tc_randomize,
    tm_randomize,
)
from fsw.ccsds.bch import bch_decode_blocks, bch_encode_blocks
from fsw.ccsds.cltu import TAIL_SEQUENCE, decode_cltu_report
from fsw.ccsds.randomizer import TC_SEQUENCE, TM_SEQUENCE

# --- randomizers --------------------------------------------------------------------------


def test_tm_randomizer_prefix_and_period() -> None:
    # CCSDS 131.0-B Annex: the sequence starts ff 48 0e c0 9a 0d 70 bc 8e 2c 93 ad a7 b7 46 ce.
    assert tm_randomize(bytes(16)).hex() == "ff480ec09a0d70bc8e2c93ada7b746ce"
    assert len(TM_SEQUENCE) == 255
    assert tm_randomize(bytes(255 * 2 + 3)) == TM_SEQUENCE * 2 + TM_SEQUENCE[:3]


def test_tc_randomizer_prefix_and_period() -> None:
    # CCSDS 231.0-B: the sequence starts ff 39 9e 5a 68 e9 06 f5 6c 89 2f a1 31 5e 08 c0.
    assert tc_randomize(bytes(16)).hex() == "ff399e5a68e906f56c892fa1315e08c0"
    assert tc_randomize(bytes(300)) == TC_SEQUENCE + TC_SEQUENCE[:45]


@given(st.binary(max_size=3000))
def test_randomizers_are_involutions(data: bytes) -> None:
    assert tm_randomize(tm_randomize(data)) == data
    assert tc_randomize(tc_randomize(bytearray(data))) == data


# --- BCH ----------------------------------------------------------------------------------


def test_bch_parity_known_answers() -> None:
    assert bch_encode(bytes(7)).hex() == "00000000000000fe"  # complemented zero parity
    assert bch_encode(b"\xff" * 7)[7] == _parity_reference(b"\xff" * 7)
    # The CLTU tail is built to be uncorrectable.
    with pytest.raises(BchError):
        bch_decode(TAIL_SEQUENCE)


def _parity_reference(info: bytes) -> int:
    """Bit-by-bit polynomial division by x^7+x^6+x^2+1, complemented, filler 0."""
    bits = [int(b) for byte in info for b in format(byte, "08b")] + [0] * 7
    gen = [1, 1, 0, 0, 0, 1, 0, 1]
    for i in range(56):
        if bits[i]:
            for j, g in enumerate(gen):
                bits[i + j] ^= g
    rem = int("".join(map(str, bits[56:])), 2)
    return ((rem ^ 0x7F) << 1) & 0xFE


@given(st.binary(min_size=7, max_size=7))
def test_bch_parity_matches_polynomial_division(info: bytes) -> None:
    assert bch_encode(info)[7] == _parity_reference(info)


@settings(max_examples=100)
@given(st.binary(min_size=0, max_size=7 * 40).filter(lambda b: len(b) % 7 == 0))
def test_vectorised_bch_equals_scalar(info: bytes) -> None:
    blocks = bch_encode_blocks(info)
    assert blocks == b"".join(bch_encode(info[i : i + 7]) for i in range(0, len(info), 7))
    assert bch_decode_blocks(blocks) == (info, 0, len(info) // 7)


def test_vectorised_bch_corrects_every_single_bit_and_stops_at_doubles() -> None:
    info = os.urandom(7 * 63)
    clean = bytearray(bch_encode_blocks(info))
    # one flipped bit in each codeblock, at every one of the 63 coded positions
    for blk in range(63):
        pos = blk  # bit index 0..62 within the block
        clean[blk * 8 + pos // 8] ^= 0x80 >> (pos % 8)
    fixed, corrected, good = bch_decode_blocks(bytes(clean))
    assert (fixed, corrected, good) == (info, 63, 63)
    for blk in range(63):  # the scalar decoder agrees block by block
        assert bch_decode(bytes(clean[blk * 8 : blk * 8 + 8])) == (info[blk * 7 : blk * 7 + 7], 1)
    clean[5 * 8] ^= 0x01  # block 5 now has two errors: detected, decoding stops there
    fixed, corrected, good = bch_decode_blocks(bytes(clean))
    assert (good, corrected, fixed) == (5, 5, info[:35])


# --- CLTUs --------------------------------------------------------------------------------


def frame_bytes(data: bytes = b"\x01\x02\x03") -> bytes:
    return TcFrame(spacecraft_id=42, vcid=0, data=data, seq=3).encode()


def test_cltu_known_layout() -> None:
    frame = frame_bytes()  # 10 bytes -> two codeblocks, 4 fill bytes
    cltu = encode_cltu(frame, randomize=False)
    assert cltu[:2] == b"\xeb\x90" and cltu[-8:] == TAIL_SEQUENCE
    assert len(cltu) == 2 + 16 + 8
    assert cltu[2:9] == frame[:7] and cltu[10:13] == frame[7:] and cltu[13:17] == b"\x55" * 4
    randomized = encode_cltu(frame)
    assert randomized[2:9] == tc_randomize(frame)[:7]


@given(st.binary(min_size=1, max_size=1000), st.booleans())
def test_cltu_round_trip(data: bytes, randomize: bool) -> None:
    frame = frame_bytes(data) if len(data) < 1000 else frame_bytes(data[:1000])
    assert decode_cltu(encode_cltu(frame, randomize), randomize) == frame


def test_cltu_corrects_one_bit_per_codeblock() -> None:
    frame = frame_bytes(os.urandom(200))
    cltu = bytearray(encode_cltu(frame))
    rng = random.Random(7)
    n_blocks = (len(cltu) - 10) // 8
    for blk in range(n_blocks):
        cltu[2 + blk * 8 + rng.randrange(8)] ^= 1 << rng.randrange(1, 8)  # not the filler
    report = decode_cltu_report(bytes(cltu))
    assert report.data == frame and report.bits_corrected == n_blocks and report.complete


def test_cltu_rejects_two_errors_in_a_codeblock() -> None:
    cltu = bytearray(encode_cltu(frame_bytes(os.urandom(50))))
    cltu[2 + 8 * 2] ^= 0x81
    with pytest.raises(CltuError, match="codeblock 3 has two or more bit errors"):
        decode_cltu(bytes(cltu))


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda c: b"\xeb\x91" + c[2:], "start sequence"),
        (lambda c: c[:-8], "no tail"),
        (lambda c: c[:-1], "whole number"),
        (lambda c: c + b"\x00" * 8, "after the tail"),
        (lambda c: c[:2] + c[-8:], "no codeblocks"),
    ],
)
def test_cltu_structure_errors(mangle: object, reason: str) -> None:
    cltu = encode_cltu(frame_bytes())
    with pytest.raises(CltuError, match=reason):
        decode_cltu(mangle(cltu))  # type: ignore[operator]


def test_cltu_short_of_declared_frame_length() -> None:
    frame = frame_bytes(bytes(20))
    cltu = encode_cltu(frame[:14], randomize=False)  # header still says 27 bytes
    with pytest.raises(CltuError, match="frame header declares 27"):
        decode_cltu(cltu, randomize=False)


def test_extractor_finds_cltus_in_noise_and_split_reads() -> None:
    frames = [frame_bytes(bytes([i]) * (i * 7 + 1)) for i in range(6)]
    stream = b"".join(
        b"\x55" * 5 + os.urandom(3).replace(b"\xeb", b"\x00") + encode_cltu(f) for f in frames
    )
    ext = CltuExtractor()
    out = []
    for i in range(0, len(stream), 11):
        out += ext.feed(stream[i : i + 11])
    assert [d.data for d in out] == frames
    assert all(d.complete for d in out)
    assert ext.stats["cltus"] == 6 and ext.stats["bytes_skipped"] >= 48


def test_extractor_delivers_data_before_an_uncorrectable_block() -> None:
    frame = frame_bytes(bytes(30))
    cltu = bytearray(encode_cltu(frame, randomize=False))
    cltu[-8] ^= 0xFF  # break the tail: now the decoder stops at the garbage after it
    ext = CltuExtractor(randomize=False)
    out = ext.feed(bytes(cltu) + encode_cltu(frame, randomize=False))
    assert out[0].data == frame and not out[0].complete
    assert out[1].data == frame and out[1].complete


@settings(max_examples=300)
@given(st.binary(max_size=200), st.data())
def test_cltu_decoders_fuzz(noise: bytes, data: st.DataObject) -> None:
    cltu = bytearray(encode_cltu(frame_bytes(data.draw(st.binary(min_size=1, max_size=60)))))
    for _ in range(data.draw(st.integers(0, 6))):
        cltu[data.draw(st.integers(0, len(cltu) - 1))] ^= data.draw(st.integers(1, 255))
    for candidate in (noise, bytes(cltu), noise + bytes(cltu)):
        with contextlib.suppress(CcsdsError):
            decode_cltu(candidate)
        ext = CltuExtractor()
        for piece in (candidate[:17], candidate[17:]):
            for decoded in ext.feed(piece):
                assert decoded.codeblocks >= 1
