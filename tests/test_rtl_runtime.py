"""The scrubber driver (on the register-exact Python model) repairing the real runtime."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from fsw.ai import shipped_dir
from fsw.ai.runtime import Runtime
from hil.rtl.model import ScrubberModel
from hil.rtl.runtime_link import RuntimeRepairer, ScrubberDriver

ARTIFACTS = shipped_dir()


@pytest.mark.parametrize("model", ["cloudnet-s", "cloudnet-l"])
def test_hardware_found_flips_are_repaired_by_the_runtime(model: str) -> None:
    rt = Runtime.load(ARTIFACTS / f"{model}.gnm")
    golden_arena = rt.arena.copy()
    x = torch.from_numpy(np.random.default_rng(0).random((2, 4, 64, 64), dtype=np.float32))
    golden_out = rt.infer(x).clone()
    fpga = ScrubberModel(arena_aw=17, table_aw=6)
    link = RuntimeRepairer(rt, fpga)
    rng = np.random.default_rng(1)
    hits = rng.choice(rt.arena.size * 8, size=12, replace=False)
    for bit in hits:
        fpga.arena[bit // 8] ^= np.uint8(1 << (bit % 8))
    bad_blocks = sorted({int(b // 8) // rt.block_size for b in hits})

    report = ScrubberDriver(fpga, link).scrub_pass(link.layout)

    assert sorted(report.repaired) == bad_blocks
    assert report.unrepaired == ()
    assert np.array_equal(fpga.arena[: rt.arena.size], golden_arena)
    assert np.array_equal(rt.arena, golden_arena)
    assert torch.equal(rt.infer(x), golden_out)
    assert link.repairs == len(bad_blocks)


def test_a_block_the_golden_copy_cannot_fix_is_reported_unrepaired(tmp_path: Path) -> None:
    path = tmp_path / "cloudnet-s.gnm"
    shutil.copy(ARTIFACTS / "cloudnet-s.gnm", path)
    rt = Runtime.load(path)
    # The golden file on storage is damaged in the same block as the RAM.
    raw = bytearray(path.read_bytes())
    raw[4096 + 10] ^= 0xFF  # arena starts at offset 4096 in this artifact (block 0)
    path.write_bytes(bytes(raw))
    fpga = ScrubberModel(arena_aw=15, table_aw=4)
    link = RuntimeRepairer(rt, fpga)
    fpga.arena[10] ^= 0x01

    report = ScrubberDriver(fpga, link).scrub_pass(link.layout)

    assert 0 in report.unrepaired
    assert link.failures >= 1
    assert not rt.enabled  # the runtime disables a model it cannot trust
