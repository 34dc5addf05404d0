"""cocotb tests of the CRC engine (``tb_crc_top``): CRC-16/CCITT-FALSE and CRC-32C side by
side, compared with the flight references on thousands of random messages, at one byte
per clock with no gap between messages.

Run through :func:`hil.rtl.runner.run_suite` (``tests/test_rtl.py``), not directly.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge

from hil.rtl.metrics import record_metric
from hil.rtl.reference import crc16, crc32c_references

CLOCK_PERIOD_NS = 10
VALID = 1 << 8
CLEAR = 1 << 9
CAPTURE = 1 << 10


def stimulus(messages: Sequence[bytes]) -> list[int]:
    """Player entries for back-to-back messages: one entry per byte (the first byte of
    each message also captures the previous message's CRC), plus a final capture."""
    entries: list[int] = []
    for number, message in enumerate(messages):
        capture = CAPTURE if number else 0
        if not message:
            entries.append(capture | CLEAR)
            continue
        entries.append(capture | CLEAR | VALID | message[0])
        entries.extend(VALID | byte for byte in message[1:])
    entries.append(CAPTURE)
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


async def play(dut: Any, messages: Sequence[bytes]) -> tuple[list[tuple[int, int]], int]:
    """Stream ``messages`` through both engines; returns [(crc16, crc32c)] and the clocks."""
    entries = stimulus(messages)
    stim = dut.stim
    for index, entry in enumerate(entries):
        stim[index].value = entry
    dut.stim_len.value = len(entries)
    await FallingEdge(dut.clk)
    dut.go.value = 1
    await RisingEdge(dut.done)
    await FallingEdge(dut.clk)
    dut.go.value = 0
    count = int(dut.res_count.value)
    assert count == len(messages), f"captured {count} CRCs for {len(messages)} messages"
    res = dut.res
    results = []
    for index in range(count):
        word = int(res[index].value)
        results.append((word >> 32, word & 0xFFFF_FFFF))
    return results, int(dut.cycles.value)


def check(messages: Sequence[bytes], results: Sequence[tuple[int, int]]) -> None:
    """Every CRC equals every reference implementation's."""
    refs = crc32c_references()
    for number, (message, (got16, got32)) in enumerate(zip(messages, results, strict=True)):
        want16 = crc16(message)
        assert got16 == want16, (
            f"message {number} ({len(message)} bytes {message[:16].hex()}...): CRC-16 RTL "
            f"0x{got16:04X} != fsw.ccsds.crc16 0x{want16:04X}"
        )
        for name, fun in refs.items():
            want32 = fun(message)
            assert got32 == want32, (
                f"message {number} ({len(message)} bytes {message[:16].hex()}...): CRC-32C "
                f"RTL 0x{got32:08X} != {name} 0x{want32:08X}"
            )


@cocotb.test()
async def check_values(dut: Any) -> None:
    """The catalogue check values and the empty message."""
    await setup(dut)
    messages = [b"123456789", b"", b"\x00", b"\xff" * 32, bytes(range(256))]
    results, _ = await play(dut, messages)
    assert results[0] == (0x29B1, 0xE3069283), [hex(v) for v in results[0]]
    assert results[1] == (0xFFFF, 0x00000000), [hex(v) for v in results[1]]
    check(messages, results)


@cocotb.test()
async def random_messages_back_to_back(dut: Any) -> None:
    """3000 random messages (0-64 bytes) streamed with no gap: every CRC matches, and
    the engines take exactly one clock per byte (plus the final capture)."""
    await setup(dut)
    rng = random.Random(cocotb.RANDOM_SEED)
    messages = []
    for _ in range(3000):
        length = rng.choice((0, 1, 2, rng.randrange(3, 65)))
        style = rng.random()
        if style < 0.1:
            messages.append(bytes([rng.choice((0x00, 0xFF))]) * length)
        else:
            messages.append(rng.randbytes(length))
    results, cycles = await play(dut, messages)
    check(messages, results)
    total = sum(len(m) for m in messages)
    empties = sum(1 for m in messages if not m)
    assert cycles == total + empties + 1, f"{cycles} clocks for {total} bytes"
    record_metric(
        "crc",
        messages=len(messages),
        bytes=total,
        cycles=cycles,
        bytes_per_clock=round(total / (cycles - empties - 1), 6),
    )


@cocotb.test()
async def weight_block_sizes(dut: Any) -> None:
    """Whole weight blocks (4096 bytes) and a short last block, like the runtime's arena."""
    await setup(dut)
    rng = random.Random(cocotb.RANDOM_SEED + 1)
    messages = [rng.randbytes(4096) for _ in range(6)] + [rng.randbytes(1808), bytes(4096)]
    results, cycles = await play(dut, messages)
    check(messages, results)
    assert cycles == sum(len(m) for m in messages) + 1


@cocotb.test()
async def reset_mid_message(dut: Any) -> None:
    """A reset in the middle of a message restarts from the initial value."""
    await setup(dut)
    dut.stim[0].value = CLEAR | VALID | 0x31
    for index, byte in enumerate(b"23456789", start=1):
        dut.stim[index].value = VALID | byte
    dut.stim_len.value = 9
    dut.go.value = 1
    await RisingEdge(dut.done)
    await FallingEdge(dut.clk)
    dut.go.value = 0
    assert int(dut.u_crc16.crc.value) == 0x29B1
    dut.rst.value = 1
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    await FallingEdge(dut.clk)
    assert int(dut.u_crc16.crc.value) == 0xFFFF, "reset must restore the initial value"
    assert int(dut.u_crc32c.crc.value) == 0x00000000
