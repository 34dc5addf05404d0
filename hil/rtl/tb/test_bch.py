"""cocotb tests of the BCH(63,56) codeblock decoder (``tb_bch_top``) against
``fsw.ccsds.bch_decode`` and, for whole CLTUs, ``fsw.ccsds`` ``decode_cltu``.

Run through :func:`hil.rtl.runner.run_suite` (``tests/test_rtl.py``), not directly.
"""

from __future__ import annotations

import importlib
import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge

from hil.rtl.metrics import record_metric
from hil.rtl.reference import bch_encode, bch_reference

CLOCK_PERIOD_NS = 10
VALID = 1 << 8
CLEAR = 1 << 9
CODEBLOCK_BITS = 64  # bit 63 (the last one sent) is the filler bit


@dataclass(slots=True, frozen=True)
class Decoded:
    """One decoder output as captured by the player."""

    clock: int
    error: bool
    corrected: bool
    syndrome: int
    info: bytes


def flip_bits(block: bytes, positions: Sequence[int]) -> bytes:
    """``block`` with the given bits inverted (bit 0 = MSB of byte 0, as sent)."""
    value = bytearray(block)
    for pos in positions:
        value[pos // 8] ^= 0x80 >> (pos % 8)
    return bytes(value)


def stream(blocks: Sequence[bytes]) -> list[int]:
    """Player entries: the codeblocks back to back, byte 0 of the first one with CLEAR."""
    entries = [VALID | byte for block in blocks for byte in block]
    if entries:
        entries[0] |= CLEAR
    return entries


async def setup(dut: Any) -> None:
    """Clock, reset, idle inputs."""
    Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns", impl="gpi").start()
    dut.go.value = 0
    dut.stim_len.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2, rising=False)
    dut.rst.value = 0
    await FallingEdge(dut.clk)


async def play(dut: Any, entries: Sequence[int]) -> tuple[list[Decoded], int]:
    """Stream player entries; returns every decoder output and the clocks taken."""
    stim = dut.stim
    for index, entry in enumerate(entries):
        stim[index].value = entry
    dut.stim_len.value = len(entries)
    await FallingEdge(dut.clk)
    dut.go.value = 1
    await RisingEdge(dut.done)
    await ClockCycles(dut.clk, 2, rising=False)  # the last output lands one clock later
    dut.go.value = 0
    res = dut.res
    outputs = []
    for index in range(int(dut.res_count.value)):
        word = int(res[index].value)
        outputs.append(
            Decoded(
                clock=word >> 65,
                error=bool(word >> 64 & 1),
                corrected=bool(word >> 63 & 1),
                syndrome=word >> 56 & 0x7F,
                info=(word & ((1 << 56) - 1)).to_bytes(7, "big"),
            )
        )
    return outputs, int(dut.cycles.value)


def check(blocks: Sequence[bytes], outputs: Sequence[Decoded], *, first_clock: int = 8) -> None:
    """Each output agrees with ``bch_decode`` and arrives 8 clocks after the previous."""
    assert len(outputs) == len(blocks), f"{len(outputs)} outputs for {len(blocks)} codeblocks"
    for number, (block, out) in enumerate(zip(blocks, outputs, strict=True)):
        want = bch_reference(block)
        where = f"codeblock {number} {block.hex()}"
        if want is None:
            assert out.error, f"{where}: fsw says uncorrectable, RTL decoded {out.info.hex()}"
        else:
            info, corrected = want
            assert not out.error, f"{where}: RTL says uncorrectable, fsw decodes {info.hex()}"
            assert out.info == info, f"{where}: RTL {out.info.hex()} != fsw {info.hex()}"
            assert out.corrected == bool(corrected), (
                f"{where}: RTL corrected={out.corrected}, fsw corrected {corrected} bits"
            )
        assert out.clock == first_clock + 8 * number, (
            f"{where}: output on clock {out.clock}, expected {first_clock + 8 * number}"
        )


@cocotb.test()
async def random_codeblocks_with_flips(dut: Any) -> None:
    """4000 random codeblocks with 0-5 random bit flips (filler bit included)."""
    await setup(dut)
    rng = random.Random(cocotb.RANDOM_SEED)
    blocks = []
    for _ in range(4000):
        clean = bch_encode(rng.randbytes(7))
        flips = rng.choices((0, 1, 2, 3, 4, 5), weights=(25, 45, 15, 7, 4, 4))[0]
        blocks.append(flip_bits(clean, rng.sample(range(CODEBLOCK_BITS), flips)))
    outputs, cycles = await play(dut, stream(blocks))
    check(blocks, outputs)
    assert cycles == 8 * len(blocks)
    corrected = sum(1 for o in outputs if o.corrected)
    errors = sum(1 for o in outputs if o.error)
    record_metric(
        "bch",
        codeblocks=len(blocks),
        corrected=corrected,
        uncorrectable=errors,
        cycles=cycles,
        bytes_per_clock=round(8 * len(blocks) / cycles, 6),
    )


@cocotb.test()
async def every_single_and_double_error(dut: Any) -> None:
    """Exhaustive: all 63 single errors are corrected, the filler bit is ignored, and all
    1953 double errors in the 63 coded bits are reported uncorrectable."""
    await setup(dut)
    rng = random.Random(cocotb.RANDOM_SEED + 1)
    clean = bch_encode(rng.randbytes(7))
    singles = [flip_bits(clean, [pos]) for pos in range(CODEBLOCK_BITS)]
    doubles = [flip_bits(clean, pair) for pair in itertools.combinations(range(63), 2)]
    blocks = [clean, *singles, *doubles]
    outputs, _ = await play(dut, stream(blocks))
    check(blocks, outputs)
    assert not outputs[0].corrected and outputs[0].syndrome == 0
    assert all(o.corrected and o.info == clean[:7] for o in outputs[1:64])
    assert not outputs[64].corrected and outputs[64].info == clean[:7], "filler bit must not count"
    assert all(o.error for o in outputs[65:]), "every double error must be detected"


@cocotb.test()
async def gaps_and_realignment(dut: Any) -> None:
    """Idle clocks between bytes change nothing; CLEAR drops a partial codeblock."""
    await setup(dut)
    rng = random.Random(cocotb.RANDOM_SEED + 2)
    first = flip_bits(bch_encode(rng.randbytes(7)), [rng.randrange(56)])
    second = bch_encode(rng.randbytes(7))
    entries = []
    for byte in first:  # one idle clock after every byte
        entries += [VALID | byte, 0]
    entries += [VALID | b for b in rng.randbytes(3)]  # a partial codeblock (noise)
    entries += [CLEAR]  # realign without a byte
    entries += [VALID | b for b in second]
    outputs, _ = await play(dut, entries)
    assert len(outputs) == 2, f"{len(outputs)} outputs, expected 2"
    want = bch_reference(first)
    assert want is not None
    assert (outputs[0].info, outputs[0].corrected, outputs[0].error) == (want[0], True, False)
    assert outputs[0].clock == 15, f"first output on clock {outputs[0].clock}, expected 15"
    assert (outputs[1].info, outputs[1].corrected, outputs[1].error) == (second[:7], False, False)
    assert outputs[1].clock == len(entries)


def _cltu_api() -> tuple[Callable[..., bytes], Callable[..., Any], Callable[..., bytes]] | None:
    """(encode_cltu, decode_cltu_report, tc_randomize) from fsw.ccsds, if it has them."""
    for name in ("fsw.ccsds", "fsw.ccsds.cltu"):
        module = importlib.import_module(name)
        if all(hasattr(module, f) for f in ("encode_cltu", "decode_cltu_report")):
            randomizer = importlib.import_module("fsw.ccsds.randomizer")
            return module.encode_cltu, module.decode_cltu_report, randomizer.tc_randomize
    return None


def tc_frame(rng: random.Random, length: int) -> bytes:
    """A TC transfer frame of ``length`` bytes whose header declares that length."""
    body = bytearray(rng.randbytes(length))
    body[2] = (body[2] & 0xFC) | ((length - 1) >> 8 & 0x03)
    body[3] = (length - 1) & 0xFF
    return bytes(body)


@cocotb.test()
async def whole_cltus_match_decode_cltu(dut: Any) -> None:
    """150 random TC frames as CLTUs with up to one flip per codeblock: the RTL decodes
    codeblocks until the tail (the first uncorrectable one), and the derandomized data
    equals ``decode_cltu`` with the same number of corrected bits."""
    api = _cltu_api()
    if api is None:
        cocotb.log.warning("fsw.ccsds has no decode_cltu yet: CLTU comparison skipped")
        return
    encode_cltu, decode_cltu_report, tc_randomize = api
    await setup(dut)
    rng = random.Random(cocotb.RANDOM_SEED + 3)
    cltus = []
    for _ in range(150):
        frame = tc_frame(rng, rng.randrange(5, 257))
        sent = bytearray(encode_cltu(frame))
        blocks = (len(sent) - 2) // 8 - 1
        for index in range(blocks):
            if rng.random() < 0.5:
                bit = rng.randrange(63)
                sent[2 + 8 * index + bit // 8] ^= 0x80 >> (bit % 8)
        cltus.append(bytes(sent))
    # Each CLTU body (codeblocks and tail) back to back; CLEAR where a start sequence was.
    entries: list[int] = []
    spans = []
    for cltu in cltus:
        body = cltu[2:]
        spans.append(len(body) // 8)
        entries.append(CLEAR | VALID | body[0])
        entries.extend(VALID | b for b in body[1:])
    outputs, _ = await play(dut, entries)
    assert len(outputs) == sum(spans)
    position = 0
    total_blocks = 0
    for number, (cltu, span) in enumerate(zip(cltus, spans, strict=True)):
        mine = outputs[position : position + span]
        position += span
        first_bad = next(i for i, o in enumerate(mine) if o.error)
        assert first_bad == span - 1, f"CLTU {number}: RTL stopped at codeblock {first_bad}"
        info = b"".join(o.info for o in mine[:first_bad])
        data = tc_randomize(info)
        length = ((data[2] & 0x03) << 8 | data[3]) + 1
        want = decode_cltu_report(cltu)
        assert data[:length] == want.data, f"CLTU {number}: RTL frame differs from decode_cltu"
        corrected = sum(1 for o in mine[:first_bad] if o.corrected)
        assert corrected == want.bits_corrected, (
            f"CLTU {number}: RTL corrected {corrected} bits, decode_cltu {want.bits_corrected}"
        )
        total_blocks += span
    record_metric("bch_cltu", cltus=len(cltus), codeblocks=total_blocks)
