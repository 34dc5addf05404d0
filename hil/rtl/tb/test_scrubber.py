"""cocotb tests of the memory scrubber (``gnomon_scrub_soc``, 64 KiB arena, 256-entry
CRC table): register behaviour, the configuration check, throughput, and random bit
flips found at the right block index and repaired by :class:`ScrubberDriver`, with every
outcome compared to the Python register model and the CRC-32C references.

Run through :func:`hil.rtl.runner.run_suite` (``tests/test_rtl.py``), not directly.
"""

from __future__ import annotations

import random
from typing import Any

import cocotb
import numpy as np
from cocotb.simtime import get_sim_time
from cocotb.task import bridge
from cocotb.triggers import ClockCycles, FallingEdge, First, RisingEdge, Timer

from hil.rtl.driver import ScrubberDriver, ScrubReport
from hil.rtl.metrics import record_metric
from hil.rtl.model import ScrubberModel
from hil.rtl.reference import block_crcs, crc32c_references
from hil.rtl.regs import (
    REGISTER_VERSION,
    SCRUBBER_ID,
    ArenaLayout,
    Config,
    Ctrl,
    Reg,
    Status,
)
from hil.rtl.sim_bus import CLOCK_PERIOD_NS, ScrubSocHarness, SimRegisterBus, SimRepairer

ARENA_AW = 16
TABLE_AW = 8
ARENA_BYTES = 1 << ARENA_AW
TABLE_DEPTH = 1 << TABLE_AW


async def boot(dut: Any) -> ScrubSocHarness:
    """Clock and reset the SoC."""
    harness = ScrubSocHarness(dut)
    await harness.start_clock()
    await harness.reset()
    return harness


def golden_image(rng: random.Random, length: int) -> np.ndarray:
    """A weight arena: int8-looking bytes, with some runs of zeros like real weights."""
    image = np.frombuffer(rng.randbytes(length), dtype=np.uint8).copy()
    for _ in range(8):
        at = rng.randrange(length)
        image[at : at + rng.randrange(1, 512)] = 0
    return image


def checked_crcs(image: np.ndarray, block_size: int) -> list[int]:
    """Block CRCs, with every reference implementation agreeing on them."""
    crcs = block_crcs(image, block_size)
    data = image.tobytes()
    for name, fun in crc32c_references().items():
        for index in (0, len(crcs) - 1):
            piece = data[index * block_size : (index + 1) * block_size]
            assert fun(piece) == crcs[index], f"{name} disagrees on block {index}"
    return crcs


async def wait_irq_cycles(harness: ScrubSocHarness, limit: int) -> int:
    """Clocks from now (a falling edge) until irq is seen high on a falling edge."""
    dut = harness.dut
    begin = get_sim_time("ns")
    if not int(dut.irq.value):
        await First(RisingEdge(dut.irq), Timer(limit * CLOCK_PERIOD_NS, "ns"))
        await FallingEdge(dut.clk)
    assert int(dut.irq.value), f"no interrupt within {limit} clocks"
    return round((get_sim_time("ns") - begin) / CLOCK_PERIOD_NS)


@cocotb.test()
async def registers_after_reset(dut: Any) -> None:
    """ID, PARAMS, reset values, CONFIG read-back, configuration frozen while busy."""
    h = await boot(dut)
    assert await h.read_reg(Reg.ID) == SCRUBBER_ID
    assert await h.read_reg(Reg.PARAMS) == (REGISTER_VERSION << 16) | (TABLE_AW << 8) | ARENA_AW
    for reg in (
        Reg.CTRL,
        Reg.STATUS,
        Reg.BLOCKS_CHECKED,
        Reg.MISMATCHES,
        Reg.PASSES,
        Reg.BUSY_CYCLES,
        Reg.BLOCK_SIZE,
        Reg.BLOCK_COUNT,
        Reg.LAST_SIZE,
        0x3C,
    ):
        assert await h.read_reg(reg) == 0, f"register 0x{int(reg):02X} not 0 after reset"
    await h.write_reg(Reg.CONFIG, 0xFFFF_FFFF)
    assert await h.read_reg(Reg.CONFIG) == 0x7
    await h.write_reg(Reg.CONFIG, 0)
    assert int(dut.irq.value) == 0
    h.poke_arena(0, bytes(4096))
    h.poke_table(block_crcs(bytes(4096), 1024))
    for reg, value in ((Reg.BLOCK_SIZE, 1024), (Reg.BLOCK_COUNT, 4), (Reg.LAST_SIZE, 0)):
        await h.write_reg(reg, value)
    await h.write_reg(Reg.CTRL, Ctrl.START)
    assert await h.read_reg(Reg.STATUS) == Status.BUSY
    await h.write_reg(Reg.BLOCK_SIZE, 7)  # ignored: a pass is running
    assert await h.read_reg(Reg.BLOCK_SIZE) == 1024
    await h.write_reg(Reg.CTRL, Ctrl.ABORT)
    assert await h.read_reg(Reg.STATUS) == 0


@cocotb.test()
async def configuration_check_matches_model(dut: Any) -> None:
    """400 random and edge configurations: the RTL accepts exactly what the model does,
    and a rejected START raises CFG_ERROR and the done interrupt."""
    h = await boot(dut)
    rng = random.Random(cocotb.RANDOM_SEED)
    model = ScrubberModel(ARENA_AW, TABLE_AW)
    edges = [
        0,
        1,
        2,
        255,
        256,
        257,
        4095,
        4096,
        ARENA_BYTES - 1,
        ARENA_BYTES,
        ARENA_BYTES + 1,
        0xFFFF_FFFF,
        0x8000_0000,
        1 << ARENA_AW + 1,
    ]
    await h.write_reg(Reg.CONFIG, Config.IRQ_ON_DONE)
    model.write32(Reg.CONFIG, Config.IRQ_ON_DONE)
    rejected = 0
    for _ in range(400):
        size = rng.choice(edges) if rng.random() < 0.3 else rng.randrange(1, 9000)
        fits = ARENA_BYTES // max(size, 1)
        count = rng.choice(edges) if rng.random() < 0.3 else rng.randrange(1, min(fits, 300) + 3)
        last = rng.choice(edges) if rng.random() < 0.4 else rng.randrange(0, size + 2)
        for reg, value in ((Reg.BLOCK_SIZE, size), (Reg.BLOCK_COUNT, count), (Reg.LAST_SIZE, last)):
            await h.write_reg(reg, value)
            model.write32(reg, value)
        await h.write_reg(Reg.CTRL, Ctrl.START)
        model.write32(Reg.CTRL, Ctrl.START)
        status = await h.read_reg(Reg.STATUS)
        want = model.read32(Reg.STATUS)
        assert status == want, (
            f"size={size} count={count} last={last}: RTL STATUS 0x{status:X}, model 0x{want:X}"
        )
        if status & Status.CFG_ERROR:
            rejected += 1
            assert int(dut.irq.value) == 1, "a rejected START must raise the done interrupt"
            await h.write_reg(Reg.STATUS, Status.CFG_ERROR)
            model.write32(Reg.STATUS, Status.CFG_ERROR)
            assert int(dut.irq.value) == 0, "writing 1 to CFG_ERROR must clear it and irq"
        await h.write_reg(Reg.CTRL, Ctrl.ABORT)
        model.write32(Reg.CTRL, Ctrl.ABORT)
    assert 80 < rejected < 320, f"{rejected} of 400 rejected: the mix does not test both ways"


@cocotb.test()
async def clean_pass_one_byte_per_clock(dut: Any) -> None:
    """A clean 64 KiB pass takes exactly T + 2 clocks from START to DONE (1 byte/clock
    with no bubble between blocks) and counts every block once, for 256-, 1024- and
    4096-byte blocks."""
    h = await boot(dut)
    rng = random.Random(cocotb.RANDOM_SEED + 3)
    image = golden_image(rng, ARENA_BYTES)
    h.poke_arena(0, image)
    await h.write_reg(Reg.CONFIG, Config.IRQ_ON_MISMATCH | Config.IRQ_ON_DONE)
    for block_size in (256, 1024, 4096):
        layout = ArenaLayout.for_arena(ARENA_BYTES, block_size)
        h.poke_table(checked_crcs(image, block_size))
        await h.write_reg(Reg.CTRL, Ctrl.CLEAR_COUNTERS)
        await h.write_reg(Reg.STATUS, Status.DONE)
        for reg, value in (
            (Reg.BLOCK_SIZE, block_size),
            (Reg.BLOCK_COUNT, layout.block_count),
            (Reg.LAST_SIZE, 0),
        ):
            await h.write_reg(reg, value)
        dut.reg_addr.value = Reg.CTRL
        dut.reg_wdata.value = Ctrl.START
        dut.reg_we.value = 1
        await FallingEdge(dut.clk)  # START sampled on the rising edge just passed
        dut.reg_we.value = 0
        cycles = await wait_irq_cycles(h, 2 * ARENA_BYTES)
        # irq is registered from DONE, which is set T + 2 clocks after the START edge.
        where = f"{block_size}-byte blocks"
        assert cycles == ARENA_BYTES + 2 + 1, f"{where}: {cycles} clocks to the interrupt"
        assert await h.read_reg(Reg.STATUS) == Status.DONE, where
        assert await h.read_reg(Reg.BUSY_CYCLES) == ARENA_BYTES + 2, where
        assert await h.read_reg(Reg.BLOCKS_CHECKED) == layout.block_count, where
        assert await h.read_reg(Reg.MISMATCHES) == 0, where
        assert await h.read_reg(Reg.PASSES) == 1, where
        record_metric(
            "scrubber_pass",
            block_size=block_size,
            bytes=ARENA_BYTES,
            busy_cycles=ARENA_BYTES + 2,
            bytes_per_clock=round(ARENA_BYTES / (ARENA_BYTES + 2), 6),
        )


async def run_driver(
    harness: ScrubSocHarness, repairer: SimRepairer, layout: ArenaLayout
) -> ScrubReport:
    """One :meth:`ScrubberDriver.scrub_pass` on the simulated hardware."""
    driver = ScrubberDriver(SimRegisterBus(harness), repairer, timeout_s=0.01)
    return await bridge(driver.scrub_pass)(layout)


def model_report(
    image: np.ndarray,
    corrupted: np.ndarray,
    crcs: list[int],
    layout: ArenaLayout,
    broken: frozenset[int] = frozenset(),
    refuse: frozenset[int] = frozenset(),
) -> tuple[ScrubReport, ScrubberModel]:
    """The same pass on the Python register model."""
    model = ScrubberModel(ARENA_AW, TABLE_AW)
    model.load(corrupted, crcs)

    class Repair:
        def repair_block(self, index: int) -> bool:
            if index in refuse:
                return False
            if index not in broken:
                start, stop = layout.block_range(index)
                model.arena[start:stop] = image[start:stop]
            return True

    return ScrubberDriver(model, Repair()).scrub_pass(layout), model


def corrupt(
    rng: random.Random, image: np.ndarray, layout: ArenaLayout
) -> tuple[np.ndarray, set[int]]:
    """Flip 1-3 bits in each of 1-6 random blocks (edges of blocks favoured)."""
    bad = image.copy()
    blocks = set(rng.sample(range(layout.block_count), min(layout.block_count, rng.randint(1, 6))))
    if rng.random() < 0.3:
        blocks |= {0, layout.block_count - 1}
    for index in blocks:
        start, stop = layout.block_range(index)
        for _ in range(rng.randint(1, 3)):
            at = rng.choice((start, stop - 1, rng.randrange(start, stop)))
            bad[at] ^= 1 << rng.randrange(8)
        if np.array_equal(bad[start:stop], image[start:stop]):  # two flips cancelled
            bad[start] ^= 0x01
    return bad, blocks


@cocotb.test()
@cocotb.parametrize(
    (
        ("block_size", "arena_bytes", "rounds"),
        [(256, 32_768, 8), (1024, 61_000, 3), (4096, ARENA_BYTES, 2), (997, 20_001, 3)],
    )
)
async def random_flips_found_and_repaired(
    dut: Any, block_size: int, arena_bytes: int, rounds: int
) -> None:
    """Random bit flips in random blocks: the driver is told exactly the corrupted block
    indices with the right CRCs, repairs them, the arena ends equal to the golden image,
    a second pass is clean, and the report equals the register model's."""
    h = await boot(dut)
    rng = random.Random(cocotb.RANDOM_SEED + 7 * block_size)
    layout = ArenaLayout.for_arena(arena_bytes, block_size)
    image = golden_image(rng, arena_bytes)
    crcs = checked_crcs(image, block_size)
    h.poke_arena(0, image)
    h.poke_table(crcs)
    checks = 0
    for round_number in range(rounds):
        bad, blocks = corrupt(rng, image, layout)
        changed = np.flatnonzero(bad != image)
        for at in changed:
            h.poke_arena(int(at), bytes([int(bad[at])]))
        repairer = SimRepairer(h, image, layout)
        report = await run_driver(h, repairer, layout)
        where = f"round {round_number}, blocks {sorted(blocks)}"
        assert set(report.repaired) == blocks, f"{where}: RTL reported {report.faults}"
        assert report.unrepaired == ()
        data = bad.tobytes()
        for fault in report.faults:
            start, stop = layout.block_range(fault.index)
            assert fault.crc_computed == block_crcs(data[start:stop], block_size)[0], where
            assert fault.crc_expected == crcs[fault.index], where
        assert sorted(repairer.calls) == sorted(blocks)
        for index in blocks:
            start, stop = layout.block_range(index)
            assert h.peek_arena(start, stop - start) == image[start:stop].tobytes(), (
                f"{where}: block {index} not restored"
            )
        want, _ = model_report(image, bad, crcs, layout)
        assert report == want, f"{where}: RTL {report} != model {want}"
        walked = arena_bytes + sum(stop - start for start, stop in map(layout.block_range, blocks))
        assert report.busy_cycles == walked + 2 * (len(blocks) + 1), (
            f"{where}: {report.busy_cycles} busy clocks for {walked} bytes walked"
        )
        clean = await run_driver(h, SimRepairer(h, image, layout), layout)
        assert clean.faults == () and clean.busy_cycles == arena_bytes + 2, f"{where}: {clean}"
        checks += report.blocks_checked + clean.blocks_checked
    record_metric(
        "scrubber_flips",
        block_size=block_size,
        arena_bytes=arena_bytes,
        block_checks=checks,
        rounds=rounds,
    )


@cocotb.test()
async def unrepairable_blocks_are_reported(dut: Any) -> None:
    """A repair that does not fix the block is retried, then reported; a refused repair
    is reported at once; a corrupted table entry cannot be repaired from the arena."""
    h = await boot(dut)
    rng = random.Random(cocotb.RANDOM_SEED + 11)
    layout = ArenaLayout.for_arena(16_384, 512)
    image = golden_image(rng, 16_384)
    crcs = checked_crcs(image, 512)
    bad = image.copy()
    bad[512 * 3 + 17] ^= 0x04  # block 3: repair "succeeds" but changes nothing
    bad[512 * 9] ^= 0x80  # block 9: the repairer refuses
    bad[512 * 20 + 511] ^= 0x01  # block 20: repaired properly
    table = list(crcs)
    table[27] ^= 0x0000_1000  # block 27: the table is wrong, the data is fine
    h.poke_arena(0, bad)
    h.poke_table(table)
    broken, refuse = frozenset({3}), frozenset({9})
    repairer = SimRepairer(h, image, layout, broken=broken, refuse=refuse)
    report = await run_driver(h, repairer, layout)
    assert report.repaired == (20,), report
    assert report.unrepaired == (3, 9, 27), report
    attempts = {f.index: f.repair_attempts for f in report.faults}
    assert attempts == {3: 2, 9: 1, 20: 1, 27: 2}, attempts
    assert repairer.calls == [3, 3, 9, 20, 27, 27], repairer.calls
    want, _ = model_report(image, bad, table, layout, broken, refuse)
    assert report == want, f"RTL {report} != model {want}"
    assert await h.read_reg(Reg.MISMATCHES) == 3 * 2 + 1 + 1


@cocotb.test()
async def continuous_mode_catches_a_late_flip(dut: Any) -> None:
    """CONTINUOUS walks pass after pass; a flip made while it runs is reported with its
    block index within two passes; ABORT stops it."""
    h = await boot(dut)
    rng = random.Random(cocotb.RANDOM_SEED + 13)
    layout = ArenaLayout.for_arena(8192, 256)
    image = golden_image(rng, 8192)
    h.poke_arena(0, image)
    h.poke_table(checked_crcs(image, 256))
    for reg, value in (
        (Reg.BLOCK_SIZE, 256),
        (Reg.BLOCK_COUNT, layout.block_count),
        (Reg.LAST_SIZE, 0),
        (Reg.CONFIG, Config.CONTINUOUS | Config.IRQ_ON_MISMATCH),
    ):
        await h.write_reg(reg, value)
    await h.write_reg(Reg.CTRL, Ctrl.START)
    await ClockCycles(dut.clk, 3 * 8194 + 100, rising=False)
    assert int(dut.irq.value) == 0
    assert await h.read_reg(Reg.PASSES) == 3
    status = await h.read_reg(Reg.STATUS)
    assert status & Status.BUSY and status & Status.DONE, f"STATUS 0x{status:X}"
    target = rng.randrange(layout.block_count)
    h.poke_arena(target * 256 + rng.randrange(256), bytes([rng.randrange(256)]))
    if h.peek_arena(0, 8192) == image.tobytes():  # the random byte happened to be equal
        h.poke_arena(target * 256, bytes([int(image[target * 256]) ^ 0xFF]))
    cycles = await wait_irq_cycles(h, 2 * 8194 + 10)
    assert await h.read_reg(Reg.FAIL_INDEX) == target
    assert await h.read_reg(Reg.STATUS) & Status.PAUSED
    assert cycles <= 2 * 8194 + 3
    await h.write_reg(Reg.CTRL, Ctrl.ABORT)
    assert await h.read_reg(Reg.STATUS) & (Status.BUSY | Status.PAUSED) == 0
    assert int(dut.irq.value) == 0


@cocotb.test()
async def host_ports_feed_the_scrubber(dut: Any) -> None:
    """The CPU ports of both RAMs read back what they wrote, and a byte the CPU changes
    through the arena port is caught by the next pass."""
    h = await boot(dut)
    rng = random.Random(cocotb.RANDOM_SEED + 17)
    data = rng.randbytes(2048)
    await h.host_write_arena(0, data)
    assert bytes([await h.host_read_arena(i) for i in range(0, 2048, 37)]) == data[::37]
    assert h.peek_arena(0, 2048) == data
    layout = ArenaLayout.for_arena(2048, 512)
    image = np.frombuffer(data, dtype=np.uint8).copy()
    crcs = block_crcs(image, 512)
    for index, crc in enumerate(crcs):
        await h.host_write_table(index, crc)
    assert [await h.host_read_table(i) for i in range(4)] == crcs
    await h.host_write_arena(1500, bytes([data[1500] ^ 0x20]))
    report = await run_driver(h, SimRepairer(h, image, layout), layout)
    assert report.repaired == (2,), report
    assert await h.host_read_arena(1500) == data[1500]
