"""Golden copies on storage: checked in the background, healed from each other (issue 14 §7)."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from fsw.ai import gnm, shipped_dir
from fsw.ai.golden import FileMap, provision_copies
from fsw.ai.runtime import AiEvent, Runtime

SMALL = shipped_dir() / "cloudnet-s.gnm"
LARGE = shipped_dir() / "cloudnet-l.gnm"


@pytest.fixture
def copies(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a" / "cloudnet-s.gnm", tmp_path / "b" / "cloudnet-s.gnm"
    for p in (a, b):
        p.parent.mkdir()
        shutil.copy(SMALL, p)
    return a, b


def _flip_file(path: Path, offset: int, bit: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


@pytest.mark.req("AI-006")
@pytest.mark.parametrize("header_byte", [8, 20, 40, 60])
def test_a_flipped_header_bit_in_a_golden_copy_no_longer_blocks_repairs(
    copies: tuple[Path, Path], header_byte: int
) -> None:
    a, b = copies
    seen: list[AiEvent] = []
    rt = Runtime.load(a, golden_paths=[b], on_event=seen.append)
    _flip_file(a, header_byte, 3)  # copy A's header is hit: its offsets cannot be trusted
    before = rt.arena.copy()
    x = torch.rand(2, 4, 64, 64)
    golden_out = rt.infer(x)
    for blk in range(rt.arena_blocks):
        rt.arena[blk * rt.block_size + 7] ^= 0x20
        rep = rt.scrub()
        assert (rep.corrupted, rep.repaired, rep.unrepairable) == (1, 1, 0)
    assert np.array_equal(rt.arena, before) and torch.equal(rt.infer(x), golden_out)
    assert all(str(a) in e.detail for e in seen if e.kind == "block_repaired")
    # the background check reports the bad copy and heals it from the other one
    golden_rep = rt.check_golden()
    assert [(f.path, f.what, f.healed) for f in golden_rep.findings] == [(a, "header", True)]
    assert [e.kind for e in seen[-2:]] == ["golden_bad", "golden_healed"]
    assert a.read_bytes() == SMALL.read_bytes() and rt.golden.copies_ok == 2


@pytest.mark.req("AI-006")
def test_damaged_blocks_and_tables_of_a_copy_are_found_within_the_budget_and_healed(
    copies: tuple[Path, Path],
) -> None:
    a, b = copies
    rt = Runtime.load(a, golden_paths=[b])
    h = gnm.decode(SMALL.read_bytes()).header
    _flip_file(b, h.arena_offset + 2 * h.block_size + 99, 0)  # a block of copy B
    _flip_file(b, h.table_b_offset + 5, 7)  # and its second CRC table
    _flip_file(a, h.graph_offset + 10, 1)  # and copy A's graph
    findings = []
    budget = 4096
    reps = [rt.check_golden(budget) for _ in range(2 * (h.file_size // budget + 4))]
    findings = [f for r in reps for f in r.findings]
    assert all(r.bytes_checked <= budget + h.block_size for r in reps)
    assert sum(r.sweeps for r in reps) >= 1
    assert {(f.path, f.what) for f in findings} == {
        (b, "arena block 2"),
        (b, "table-b"),
        (a, "graph"),
    }
    assert all(f.healed for f in findings)
    assert a.read_bytes() == b.read_bytes() == SMALL.read_bytes()
    assert rt.golden.counters["healed"] == 3 and rt.golden.counters["unhealable"] == 0


@pytest.mark.req("AI-006")
def test_a_missing_copy_is_rewritten_and_a_foreign_or_hopeless_one_is_reported(
    tmp_path: Path, copies: tuple[Path, Path]
) -> None:
    a, b = copies
    other = tmp_path / "other.gnm"
    shutil.copy(LARGE, other)  # the wrong model named as a golden copy: never overwritten
    rt = Runtime.load(a, golden_paths=[b, other])
    b.unlink()
    rep = rt.check_golden()
    got = {(f.path, f.what, f.healed) for f in rep.findings}
    assert got == {(b, "missing", True), (other, "another model", False)}
    assert b.read_bytes() == SMALL.read_bytes() and other.read_bytes() == LARGE.read_bytes()
    # the same header bit hit in both copies: nothing good is left to heal from
    _flip_file(a, 30, 2)
    _flip_file(b, 30, 2)
    rep = rt.check_golden()
    assert {(f.path, f.what, f.healed) for f in rep.findings} >= {
        (a, "header", False),
        (b, "header", False),
    }
    assert rt.golden.copies_ok == 0
    rt.arena[5] ^= 1  # the blocks themselves are still good in both: repairs still work
    assert rt.scrub().repaired == 1


def test_file_map_covers_every_byte_once() -> None:
    data = SMALL.read_bytes()
    fmap = FileMap.of(data)
    spans = sorted((s.offset, s.offset + s.size) for s in fmap.segments)
    assert spans[0][0] == 0 and spans[-1][1] == len(data)
    assert all(x[1] == y[0] for x, y in itertools.pairwise(spans))
    for off in (0, 100, len(data) - 1):
        bad = bytearray(data)
        bad[off] ^= 1
        assert len(fmap.bad_segments(bytes(bad))) == 1


def test_provisioned_copies_are_rewritten_when_damaged(tmp_path: Path) -> None:
    (p,) = provision_copies(SMALL, tmp_path)
    _flip_file(p, 5000, 1)
    assert provision_copies(SMALL, tmp_path) == (p,)
    assert p.read_bytes() == SMALL.read_bytes()
    assert provision_copies(tmp_path / "missing.gnm", tmp_path) == ()


@pytest.mark.req("SCRB-006")
def test_the_scrubber_checks_golden_copies_in_the_background_and_reports_healing(
    tmp_path: Path,
) -> None:
    from fsw.ai.payload import with_golden_copies
    from fsw.ai.scrubber import Scrubber
    from fsw.app import build_flight
    from fsw.core.clock import SimClock
    from fsw.hal.interfaces import Hal, ModelFiles, NoCamera, NoEps, NoPayloadPower
    from hil.sim.scenario import load_scenario
    from hil.sim.sim_hal import platform_of

    sc = load_scenario("sitl-short")
    small, large = tmp_path / "cloudnet-s.gnm", tmp_path / "cloudnet-l.gnm"
    shutil.copy(SMALL, small)
    shutil.copy(LARGE, large)
    files = with_golden_copies(ModelFiles(small, large), tmp_path / "storage")
    (copy_s,) = files.small_golden
    _flip_file(copy_s, 12, 4)  # a header bit of the storage copy of cloudnet-s
    clock = SimClock(sc.start_tai)
    hal = Hal(NoEps(), NoCamera(), NoPayloadPower(), platform_of(sc), files, "profile", "test")
    fs = build_flight(clock, hal=hal)
    scrubber = fs.component("scrubber")
    assert isinstance(scrubber, Scrubber)
    fs.step(10.0)  # 64 KiB a tick: both copies of cloudnet-s (2 x 29 KiB) in the first tick
    names = [(e.name, e.args[0]) for e in fs.recent_events if "GOLDEN" in e.name]
    assert names == [
        ("scrubber.GOLDEN_BAD", "cloudnet-s"),
        ("scrubber.GOLDEN_HEALED", "cloudnet-s"),
    ]
    assert copy_s.read_bytes() == SMALL.read_bytes()
    assert fs.telemetry("scrubber.golden_bad") == 1
    assert fs.telemetry("scrubber.golden_healed") == 1
    assert fs.telemetry("scrubber.golden_copies_ok") == 4  # two per model
    assert fs.telemetry("scrubber.golden_bytes_checked") > 2 * SMALL.stat().st_size
