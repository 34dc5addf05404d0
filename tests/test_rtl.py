"""The FPGA integrity blocks (hil/rtl): cocotb suites of the Verilog under Icarus, and the
Python side (register map, driver, register model, runner) that needs no simulator.

The suites are marked ``rtl``: without Icarus Verilog they skip with the reason, except
under CI=true, where a missing simulator is a failure (CI must run them).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import random
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.rtl import runner, synth
from hil.rtl.driver import MAX_SPURIOUS_IRQS, ScrubberDriver, repairer_from
from hil.rtl.errors import RtlError, ScrubberError, SimulationError
from hil.rtl.metrics import METRICS_ENV, record_metric
from hil.rtl.model import ScrubberModel
from hil.rtl.reference import block_crcs, crc32c, crc32c_crcmod, crc32c_references
from hil.rtl.regs import (
    REGISTER_VERSION,
    SCRUBBER_ID,
    ArenaLayout,
    Config,
    Ctrl,
    Reg,
    ScrubberParams,
    Status,
)
from hil.rtl.runner import parse_results, run_suite, simulator_missing_reason

HDL_DIR = runner.HDL_DIR


# ------------------------------------------------------------------ cocotb suites
def _require_simulator() -> None:
    reason = simulator_missing_reason()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but the RTL tests cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def rtl_build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rtl_build")


def _metric(result: runner.SuiteResult, name: str) -> list[dict[str, object]]:
    return [m for m in result.metrics if m.get("name") == name]


@pytest.mark.rtl
@pytest.mark.timeout(600)
def test_crc_engine_matches_fsw_crc16_and_crc32c(rtl_build_dir: Path) -> None:
    _require_simulator()
    result = run_suite("crc", rtl_build_dir)
    assert result.passed, result.summary()
    assert {c.name for c in result.cases} == {
        "check_values",
        "random_messages_back_to_back",
        "weight_block_sizes",
        "reset_mid_message",
    }
    (stream,) = _metric(result, "crc")
    assert stream["messages"] == 3000
    assert stream["bytes_per_clock"] == 1.0


@pytest.mark.rtl
@pytest.mark.timeout(600)
def test_bch_decoder_matches_bch_decode_and_decode_cltu(rtl_build_dir: Path) -> None:
    _require_simulator()
    result = run_suite("bch", rtl_build_dir)
    assert result.passed, result.summary()
    assert len(result.cases) == 4
    (random_blocks,) = _metric(result, "bch")
    assert random_blocks["codeblocks"] == 4000
    assert random_blocks["bytes_per_clock"] == 1.0
    assert 0 < int(str(random_blocks["uncorrectable"])) < 4000
    (cltus,) = _metric(result, "bch_cltu")  # fsw.ccsds decode_cltu exists: it must run
    assert cltus["cltus"] == 150


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_scrubber_finds_repairs_and_keeps_one_byte_per_clock(rtl_build_dir: Path) -> None:
    _require_simulator()
    result = run_suite("scrubber", rtl_build_dir)
    assert result.passed, result.summary()
    assert len(result.cases) == 10
    passes = _metric(result, "scrubber_pass")
    assert sorted(int(str(m["block_size"])) for m in passes) == [256, 1024, 4096]
    assert all(float(str(m["bytes_per_clock"])) >= 0.9999 for m in passes)
    flips = _metric(result, "scrubber_flips")
    assert {int(str(m["block_size"])) for m in flips} == {256, 997, 1024, 4096}
    assert sum(int(str(m["block_checks"])) for m in flips) >= 2000


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_blocks_synthesize_to_fpga_primitives(tmp_path: Path) -> None:
    """Yosys maps the blocks to LUTs, flip-flops and block RAM (skips without Yosys,
    which only this check needs)."""
    reason = synth.yosys_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    soc = synth.synthesize("scrub_soc", "xilinx", workdir=tmp_path)
    # 64 KiB arena = 16 RAMB36 + 1 for the CRC table; the walk itself is small logic.
    assert soc.brams == 17, soc.summary()
    assert 300 < soc.luts < 1500 and soc.ffs < 1000 and soc.dsps <= 1, soc.summary()
    bch = synth.synthesize("bch_decoder", "xilinx", workdir=tmp_path)
    assert bch.brams == 0 and 50 < bch.luts < 400, bch.summary()


def test_synthesis_requests_are_checked() -> None:
    with pytest.raises(SimulationError, match="no RTL block 'fft'"):
        synth.synthesize("fft", workdir=Path("/nonexistent"))
    with pytest.raises(SimulationError, match="no synthesis target 'asic'"):
        synth.synthesize("crc16", "asic", workdir=Path("/nonexistent"))
    res = synth.Resources(
        "x", "xilinx", {"LUT6": 3, "LUT2": 1, "FDRE": 5, "RAMB36E1": 2, "DSP48E1": 1, "IBUF": 9}
    )
    assert (res.luts, res.ffs, res.brams, res.dsps) == (4, 5, 2, 1)


def test_missing_simulator_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner.shutil, "which", lambda tool: None)
    reason = simulator_missing_reason()
    assert reason is not None and "iverilog" in reason and "make rtl-deps" in reason
    with pytest.raises(SimulationError, match="Icarus Verilog not found"):
        run_suite("crc", Path("/nonexistent"))


def test_unknown_suite_and_bad_seed_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SimulationError, match="no RTL suite 'fft'"):
        run_suite("fft", Path("/nonexistent"))
    monkeypatch.setenv(runner.SEED_ENV, "0x10")
    assert runner.default_seed() == 16
    monkeypatch.setenv(runner.SEED_ENV, "tuesday")
    with pytest.raises(SimulationError, match="not an integer seed"):
        runner.default_seed()


def test_every_suite_source_exists_and_is_free_of_simulation_constructs() -> None:
    """The synthesizable modules carry no initial blocks, delays or system tasks."""
    for suite in runner.SUITES.values():
        for path in suite.source_paths():
            assert path.is_file(), f"{suite.name}: {path} missing"
    hdl = sorted(p.name for p in HDL_DIR.glob("*.v"))
    assert hdl == ["bch_decoder.v", "crc_engine.v", "dpram.v", "scrub_soc.v", "scrubber.v"]
    for name in hdl:
        code = re.sub(r"//[^\n]*", "", (HDL_DIR / name).read_text(encoding="utf-8"))
        assert not re.search(r"\binitial\b|#\s*\d|\$\w+", code), f"{name} is not synthesizable"


# --------------------------------------------------------- results-file parsing
CASES_XML = (
    '<?xml version="1.0"?><testsuites><testsuite name="all" tests="3">'
    '<testcase name="good" time="0.25"/>'
    '<testcase name="bad" time="1.5"><failure message="CRC 0x1 != 0x2&#10;more"/></testcase>'
    '<testcase name="skipped"><skipped/></testcase>'
    '<testcase name="crashed" time="oops"><error>sim died</error></testcase>'
    "</testsuite></testsuites>"
)


def test_parse_results_known_answer() -> None:
    cases = parse_results(CASES_XML)
    assert [(c.name, c.passed, c.skipped, c.message) for c in cases] == [
        ("good", True, False, ""),
        ("bad", False, False, "CRC 0x1 != 0x2"),
        ("skipped", True, True, ""),
        ("crashed", False, False, "sim died"),
    ]
    assert cases[1].real_time_s == 1.5 and cases[3].real_time_s == 0.0
    result = runner.SuiteResult("crc", 7, cases, (), Path("/tmp/sim.log"))
    assert not result.passed
    assert "1/3 cocotb tests passed" in result.summary()
    assert "FAILED bad: CRC 0x1 != 0x2" in result.summary()
    assert "seed 7" in result.summary()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_parse_results_fuzz_random_bytes(data: bytes) -> None:
    with contextlib.suppress(SimulationError):
        parse_results(data)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(CASES_XML) - 1), st.integers(0, 20), st.binary(max_size=8))
def test_parse_results_fuzz_mutated_file(at: int, cut: int, insert: bytes) -> None:
    data = CASES_XML.encode()
    mutated = data[:at] + insert + data[at + cut :]
    try:
        cases = parse_results(mutated)
    except SimulationError:
        return
    assert all(isinstance(c.name, str) for c in cases)


# ------------------------------------------------------------------ register map
def test_register_map_matches_the_verilog() -> None:
    code = (HDL_DIR / "scrubber.v").read_text(encoding="utf-8")
    words = {m[0]: int(m[1], 16) for m in re.findall(r"R_([A-Z_]+) = 4'h([0-9A-F])", code)}
    assert {name: 4 * word for name, word in words.items()} == {r.name: int(r) for r in Reg}
    assert f"32'h{SCRUBBER_ID:08X}" in code
    assert f"VERSION     = 8'd{REGISTER_VERSION}" in code
    for flag, bit in (
        (Status.BUSY, 0),
        (Status.PAUSED, 1),
        (Status.DONE, 2),
        (Status.CFG_ERROR, 3),
    ):
        assert flag == 1 << bit
    assert "{28'd0, cfg_error, done, paused, busy}" in code
    assert "{29'd0, continuous, irq_done_en, irq_mismatch_en}" in code


def test_params_known_answer_and_round_trip() -> None:
    params = ScrubberParams.decode(0x0001_0810)
    assert params == ScrubberParams(arena_aw=16, table_aw=8, version=1)
    assert (params.arena_bytes, params.max_blocks, params.encode()) == (65536, 256, 0x0001_0810)


@given(st.integers(0, 0xFFFF_FFFF))
def test_params_decode_fuzz(value: int) -> None:
    params = ScrubberParams.decode(value)
    assert params.encode() == value & 0xFF_FFFF


def test_arena_layout_known_answers_and_errors() -> None:
    layout = ArenaLayout.for_arena(10_000, 4096)
    assert (layout.block_count, layout.last_size, layout.last_size_register) == (3, 1808, 1808)
    assert layout.block_range(0) == (0, 4096) and layout.block_range(2) == (8192, 10_000)
    full = ArenaLayout.for_arena(8192, 4096)
    assert (full.block_count, full.last_size, full.last_size_register) == (2, 4096, 0)
    with pytest.raises(ScrubberError, match="outside the arena's 3 blocks"):
        layout.block_range(3)
    with pytest.raises(ScrubberError, match="at least 1 byte"):
        ArenaLayout.for_arena(0, 4096)
    with pytest.raises(ScrubberError, match="does not fit blocks"):
        ArenaLayout(block_size=256, block_count=2, last_size=300)


@given(st.integers(1, 1 << 20), st.integers(1, 1 << 16))
def test_arena_layout_covers_the_arena(arena_bytes: int, block_size: int) -> None:
    layout = ArenaLayout.for_arena(arena_bytes, block_size)
    assert layout.arena_bytes == arena_bytes
    assert layout.block_range(layout.block_count - 1)[1] == arena_bytes


# ------------------------------------------------------------------- references
def test_crc32c_references_agree_with_the_runtime() -> None:
    refs = crc32c_references()
    assert "crcmod" in refs
    rng = random.Random(5)
    samples = [b"123456789", b"", bytes(4096)] + [
        rng.randbytes(rng.randrange(1, 5000)) for _ in range(200)
    ]
    for name, fun in refs.items():
        assert fun(b"123456789") == 0xE3069283, name
        for data in samples:
            assert fun(data) == crc32c_crcmod(data), f"{name} disagrees with crcmod"
    fsw_ai = importlib.import_module("fsw.ai")
    if hasattr(fsw_ai, "crc32c"):
        assert "fsw.ai" in refs
        assert all(fsw_ai.crc32c(d) == crc32c(d) for d in samples)


def test_block_crcs_known_answer() -> None:
    assert block_crcs(b"123456789", block_size=4) == [0xF63AF4EE, 0x100FCF0B, 0x1A2CC12C]
    arena = np.zeros(1024, np.uint8)
    assert block_crcs(arena, 256) == [0xB872B190] * 4


def test_metrics_are_appended_as_json_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.jsonl"
    monkeypatch.setenv(METRICS_ENV, str(path))
    record_metric("crc", bytes=10, cycles=11)
    record_metric("bch", codeblocks=2)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [{"name": "crc", "bytes": 10, "cycles": 11}, {"name": "bch", "codeblocks": 2}]


# ------------------------------------------- driver against the register model
class GoldenRepairer:
    """Restores blocks of a model's arena from the golden image."""

    def __init__(
        self,
        model: ScrubberModel,
        golden: np.ndarray,
        layout: ArenaLayout,
        broken: frozenset[int] = frozenset(),
        refuse: frozenset[int] = frozenset(),
    ):
        self.model, self.golden, self.layout = model, golden, layout
        self.broken, self.refuse = broken, refuse
        self.calls: list[int] = []

    def repair_block(self, index: int) -> bool:
        self.calls.append(index)
        if index in self.refuse:
            return False
        if index not in self.broken:
            start, stop = self.layout.block_range(index)
            self.model.arena[start:stop] = self.golden[start:stop]
        return True


def _loaded_model(
    arena_bytes: int, block_size: int, seed: int = 1
) -> tuple[ScrubberModel, np.ndarray, ArenaLayout]:
    rng = np.random.default_rng(seed)
    golden = rng.integers(0, 256, arena_bytes, dtype=np.uint8)
    model = ScrubberModel(arena_aw=16, table_aw=8)
    model.load(golden, block_crcs(golden, block_size))
    return model, golden, ArenaLayout.for_arena(arena_bytes, block_size)


def test_driver_clean_pass_counts_blocks_and_clocks() -> None:
    model, golden, layout = _loaded_model(50_000, 1024)
    report = ScrubberDriver(model, GoldenRepairer(model, golden, layout)).scrub_pass(layout)
    assert report.faults == ()
    assert (report.blocks_checked, report.busy_cycles) == (49, 50_002)
    assert report.bytes_per_clock == pytest.approx(50_000 / 50_002)
    driver = ScrubberDriver(model, GoldenRepairer(model, golden, layout))
    assert driver.counters().passes == 1
    assert driver.status() == Status(0)  # DONE acknowledged by the driver


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_driver_repairs_exactly_the_corrupted_blocks(data: st.DataObject) -> None:
    block_size = data.draw(st.sampled_from([256, 997, 1024, 4096]))
    arena_bytes = data.draw(st.integers(block_size, 60_000))
    model, golden, layout = _loaded_model(arena_bytes, block_size)
    hits = data.draw(st.lists(st.integers(0, arena_bytes - 1), min_size=1, max_size=8))
    for at in hits:
        model.arena[at] ^= 1 << data.draw(st.integers(0, 7))
    bad = {
        i
        for i in range(layout.block_count)
        if not np.array_equal(
            model.arena[slice(*layout.block_range(i))], golden[slice(*layout.block_range(i))]
        )
    }
    repairer = GoldenRepairer(model, golden, layout)
    report = ScrubberDriver(model, repairer).scrub_pass(layout)
    assert set(report.repaired) == bad and report.unrepaired == ()
    assert sorted(repairer.calls) == sorted(bad)
    assert np.array_equal(model.arena[:arena_bytes], golden)
    sizes = sum(layout.block_range(i)[1] - layout.block_range(i)[0] for i in bad)
    assert report.busy_cycles == arena_bytes + sizes + 2 * (len(bad) + 1)


def test_driver_reports_blocks_it_cannot_repair() -> None:
    model, golden, layout = _loaded_model(16_384, 512)
    for at in (3 * 512 + 5, 9 * 512, 20 * 512 + 511):
        model.arena[at] ^= 0x10
    model.table[27] ^= 0x1000
    repairer = GoldenRepairer(model, golden, layout, broken=frozenset({3}), refuse=frozenset({9}))
    report = ScrubberDriver(model, repairer, repair_attempts=3).scrub_pass(layout)
    assert report.repaired == (20,)
    assert report.unrepaired == (3, 9, 27)
    assert {f.index: f.repair_attempts for f in report.faults} == {3: 3, 9: 1, 20: 1, 27: 3}
    assert repairer.calls == [3, 3, 3, 9, 20, 27, 27, 27]
    fault = report.faults[-1]
    assert fault.crc_expected == fault.crc_computed ^ 0x1000


def test_driver_aborts_the_pass_when_the_repairer_raises() -> None:
    model, _golden, layout = _loaded_model(8192, 1024)
    model.arena[100] ^= 1

    def explode(index: int) -> bool:
        raise RuntimeError(f"flash read failed for block {index}")

    with pytest.raises(RuntimeError, match="block 0"):
        ScrubberDriver(model, repairer_from(explode)).scrub_pass(layout)
    assert Status.BUSY not in ScrubberDriver(model, repairer_from(bool)).status()


def test_driver_refuses_layouts_the_hardware_cannot_hold() -> None:
    model = ScrubberModel(arena_aw=12, table_aw=4)
    driver = ScrubberDriver(model, repairer_from(bool))
    with pytest.raises(ScrubberError, match="does not fit the scrubber's 4096-byte RAM"):
        driver.scrub_pass(ArenaLayout.for_arena(5000, 1024))
    with pytest.raises(ScrubberError, match="CRC table of 16 entries: use blocks of at least 256"):
        driver.scrub_pass(ArenaLayout.for_arena(4096, 128))
    model.write32(Reg.BLOCK_SIZE, 1024)
    model.write32(Reg.BLOCK_COUNT, 4)
    model.write32(Reg.CTRL, Ctrl.START)
    with pytest.raises(ScrubberError, match="busy with a pass"):
        driver.scrub_pass(ArenaLayout.for_arena(4096, 1024))


class ScriptedBus:
    """A bus whose registers hold fixed values and whose interrupt is scripted."""

    def __init__(self, regs: dict[int, int], irq: bool = True) -> None:
        self.regs = {int(k): v for k, v in regs.items()}
        self.irq = irq
        self.writes: list[tuple[int, int]] = []

    def read32(self, offset: int) -> int:
        return self.regs.get(offset, 0)

    def write32(self, offset: int, value: int) -> None:
        self.writes.append((offset, value))

    def wait_irq(self, timeout_s: float) -> bool:
        return self.irq


GOOD = {Reg.ID: SCRUBBER_ID, Reg.PARAMS: 0x0001_0810}


@pytest.mark.parametrize(
    ("regs", "irq", "message"),
    [
        ({Reg.ID: 0xDEADBEEF}, True, "no scrubber at this address: ID reads 0xDEADBEEF"),
        ({Reg.ID: SCRUBBER_ID, Reg.PARAMS: 0}, True, "impossible RAM sizes"),
        (GOOD, False, "raised no interrupt within 1.0 s"),
        ({**GOOD, Reg.STATUS: Status.CFG_ERROR}, True, "rejected the configuration"),
        (GOOD, True, "interrupt line stuck"),
        ({**GOOD, Reg.STATUS: Status.PAUSED, Reg.FAIL_INDEX: 99}, True, "reported block 99"),
        ({**GOOD, Reg.STATUS: Status.PAUSED}, True, "keeps reporting mismatches"),
    ],
)
def test_driver_explains_broken_hardware(regs: dict[int, int], irq: bool, message: str) -> None:
    bus = ScriptedBus(regs, irq)
    with pytest.raises(ScrubberError, match=message):
        ScrubberDriver(bus, repairer_from(bool)).scrub_pass(ArenaLayout.for_arena(4096, 1024))
    if regs.get(Reg.ID) == SCRUBBER_ID and regs.get(Reg.PARAMS):
        assert bus.writes[-1] == (Reg.CTRL, Ctrl.ABORT), "a failed pass must stop the hardware"


def test_driver_tolerates_a_few_spurious_interrupts() -> None:
    model, _golden, layout = _loaded_model(4096, 1024)

    class Noisy:
        def __init__(self) -> None:
            self.spurious = MAX_SPURIOUS_IRQS

        def read32(self, offset: int) -> int:
            return model.read32(offset)

        def write32(self, offset: int, value: int) -> None:
            model.write32(offset, value)

        def wait_irq(self, timeout_s: float) -> bool:
            if self.spurious:
                self.spurious -= 1
                return True
            return model.wait_irq(timeout_s)

    report = ScrubberDriver(Noisy(), repairer_from(bool)).scrub_pass(layout)
    assert report.faults == () and report.blocks_checked == 4


class RandomBus:
    """Every register read returns whatever hypothesis chose: a fuzzed scrubber."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def read32(self, offset: int) -> int:
        if offset == Reg.ID and self.data.draw(st.booleans()):
            return SCRUBBER_ID
        if offset == Reg.PARAMS and self.data.draw(st.booleans()):
            return 0x0001_0810
        return self.data.draw(st.one_of(st.integers(0, 0xF), st.integers(0, 2**32 - 1)))

    def write32(self, offset: int, value: int) -> None:
        assert 0 <= value <= 0xFFFF_FFFF

    def wait_irq(self, timeout_s: float) -> bool:
        return self.data.draw(st.booleans())


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_driver_fuzz_arbitrary_register_values(data: st.DataObject) -> None:
    layout = ArenaLayout.for_arena(data.draw(st.integers(1, 65_536)), 4096)
    try:
        report = ScrubberDriver(RandomBus(data), repairer_from(bool)).scrub_pass(layout)
    except ScrubberError:
        return
    assert all(0 <= f.index < layout.block_count for f in report.faults)


# ------------------------------------------------------------- the model itself
def test_model_configuration_check() -> None:
    model = ScrubberModel(arena_aw=12, table_aw=4)
    model.write32(Reg.CONFIG, Config.IRQ_ON_DONE)
    cases = [
        ((1024, 4, 0), True),
        ((1024, 4, 1024), True),
        ((1000, 5, 96), True),
        ((0, 4, 0), False),
        ((1024, 0, 0), False),
        ((1024, 5, 0), False),
        ((256, 17, 0), False),
        ((256, 16, 0), True),
        ((1024, 4, 1025), False),
        ((4097, 1, 0), False),
        ((4096, 1, 0), True),
    ]
    for (size, count, last), ok in cases:
        for reg, value in ((Reg.BLOCK_SIZE, size), (Reg.BLOCK_COUNT, count), (Reg.LAST_SIZE, last)):
            model.write32(reg, value)
        model.write32(Reg.CTRL, Ctrl.START)
        status = Status(model.read32(Reg.STATUS))
        assert (Status.BUSY in status) == ok, (size, count, last)
        assert (Status.CFG_ERROR in status) == (not ok)
        assert model.irq == (not ok)
        model.write32(Reg.CTRL, Ctrl.ABORT)
        model.write32(Reg.STATUS, Status.CFG_ERROR)


def test_model_continuous_mode_and_counters() -> None:
    model, _golden, _layout = _loaded_model(8192, 256)
    for reg, value in (
        (Reg.BLOCK_SIZE, 256),
        (Reg.BLOCK_COUNT, 32),
        (Reg.CONFIG, Config.CONTINUOUS | Config.IRQ_ON_MISMATCH),
    ):
        model.write32(reg, value)
    model.write32(Reg.CTRL, Ctrl.START)
    model.advance(3 * 8194 + 100)
    assert model.read32(Reg.PASSES) == 3
    assert model.read32(Reg.BLOCKS_CHECKED) == 3 * 32
    assert model.read32(Reg.BUSY_CYCLES) == 3 * 8194 + 100
    model.arena[5 * 256 + 7] ^= 0x40
    assert model.wait_irq(1e-3)
    assert model.read32(Reg.FAIL_INDEX) == 5
    assert Status(model.read32(Reg.STATUS)) == Status.BUSY | Status.PAUSED | Status.DONE
    model.write32(Reg.CTRL, Ctrl.CLEAR_COUNTERS)
    assert [
        model.read32(r) for r in (Reg.BLOCKS_CHECKED, Reg.MISMATCHES, Reg.PASSES, Reg.BUSY_CYCLES)
    ] == [0, 0, 0, 0]
    model.write32(Reg.CTRL, Ctrl.ABORT)
    assert not model.irq and model.read32(Reg.STATUS) & Status.BUSY == 0


def test_model_rejects_impossible_sizes() -> None:
    with pytest.raises(ScrubberError, match="arena_aw=40"):
        ScrubberModel(arena_aw=40)
    model = ScrubberModel(arena_aw=10, table_aw=2)
    with pytest.raises(ScrubberError, match="does not fit"):
        model.load(bytes(2048), [0])


def test_error_family() -> None:
    assert issubclass(ScrubberError, RtlError) and issubclass(SimulationError, RtlError)
