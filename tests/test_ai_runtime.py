"""The int8 runtime: exact integer kernels, the arena, scrubbing, repair, disabling."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from fsw.ai import AiError, ModelDisabledError, ModelIntegrityError, gnm, shipped_dir
from fsw.ai.runtime import GROUP_BLOCKS, KERNELS, AiEvent, Prediction, Runtime
from models import synth
from models.reference import integer_reference
from models.train import HOLDOUT_SEED

ARTIFACTS = shipped_dir()
SMALL = ARTIFACTS / "cloudnet-s.gnm"
LARGE = ARTIFACTS / "cloudnet-l.gnm"


@pytest.fixture(scope="module")
def tiles() -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    x, cf, keep = synth.make_dataset(96, HOLDOUT_SEED)
    return torch.from_numpy(x), cf, keep


@pytest.fixture
def golden(tmp_path: Path) -> Path:
    p = tmp_path / "cloudnet-s.gnm"
    shutil.copy(SMALL, p)
    return p


def flip(rt: Runtime, byte: int, bit: int = 6) -> None:
    rt.arena[byte] ^= np.uint8(1 << bit)


def top_byte(rt: Runtime, tensor: str) -> int:
    """Offset of the top byte of the first float32 of ``tensor`` (sign bit 7, exponent 6..0)."""
    return rt.tensor_regions()[tensor][0] + 3


# --- loading -------------------------------------------------------------------------------


def test_load_reports_geometry() -> None:
    rt = Runtime.load(SMALL)
    m = gnm.decode(SMALL.read_bytes())
    assert rt.name == "cloudnet-s" and rt.enabled
    assert rt.block_size == 4096 and rt.arena_blocks == m.header.n_blocks
    assert rt.arena.dtype == np.uint8 and rt.arena.size == m.header.arena_size
    assert bytes(rt.arena) == bytes(m.arena)
    assert rt.golden_paths == (SMALL,)


@pytest.mark.req("AI-001")
def test_damaged_file_refuses_to_load_and_names_the_block(tmp_path: Path) -> None:
    data = bytearray(SMALL.read_bytes())
    h = gnm.decode(bytes(data)).header
    data[h.arena_offset + 2 * h.block_size + 17] ^= 0x04
    bad = tmp_path / "bad.gnm"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError) as e:
        Runtime.load(bad)
    assert e.value.region == "arena" and e.value.block == 2 and "bad.gnm" in str(e.value)
    with pytest.raises(ModelIntegrityError) as e:
        Runtime.load(tmp_path / "missing.gnm")
    assert e.value.region == "file"


@pytest.mark.req("AI-002")
def test_signed_model_requires_the_right_key(tmp_path: Path) -> None:
    key = b"uplink-key-0123456789abcdef"
    m = gnm.decode(SMALL.read_bytes())
    signed = tmp_path / "signed.gnm"
    signed.write_bytes(gnm.encode(m.graph, bytes(m.arena), hmac_key=key))
    assert Runtime.load(signed, hmac_key=key).signed
    with pytest.raises(ModelIntegrityError) as e:
        Runtime.load(signed, hmac_key=b"not-the-key-0123456789")
    assert e.value.region == "hmac"
    with pytest.raises(ModelIntegrityError):
        Runtime.load(SMALL, hmac_key=key)  # unsigned file where a signature is required


def _linear_graph(in_features: int, input_name: str = "x") -> bytes:
    b = gnm.ArenaBuilder()
    b.add("fc.w", np.ones((2, 8), dtype=np.int8))
    b.add("fc.b", np.zeros(2, dtype=np.int32))
    for role in ("s", "d"):
        b.add(f"fc.{role}", np.ones(2, dtype=np.float32))
    b.add("fc.clip", np.array([[-9, -9], [9, 9]], dtype=np.float32))
    b.add("q.inv", np.ones(1, dtype=np.float32))
    op = gnm.OpSpec(
        "linear",
        "fc",
        input_name,
        "y",
        {"weight": "fc.w", "bias": "fc.b", "scale": "fc.s", "dequant": "fc.d", "clip": "fc.clip"},
    )
    q = gnm.OpSpec("quantize", "q", "x", "qx", {"inv_scale": "q.inv"}, {"clamp": [0, 127]})
    g = gnm.ModelGraph("lin", (-1, in_features), ("a", "b"), (q, op), b.tensors, {})
    return gnm.encode(g, b.arena())


@pytest.mark.req("AI-001")
def test_graphs_that_cannot_run_are_refused_at_load() -> None:
    rt = Runtime.from_bytes(_linear_graph(8, "qx"))
    assert rt.infer(torch.full((3, 8), 2.0)).tolist() == [[9.0, 9.0]] * 3  # 8*2=16, clipped
    with pytest.raises(ModelIntegrityError, match="cannot run") as e:
        Runtime.from_bytes(_linear_graph(5, "qx"))
    assert e.value.region == "graph"
    with pytest.raises(ModelIntegrityError, match="no earlier op"):
        Runtime.from_bytes(_linear_graph(8, "nowhere"))


# --- arithmetic ----------------------------------------------------------------------------


@pytest.mark.req("AI-003")
@pytest.mark.parametrize("path", [SMALL, LARGE])
def test_every_kernel_equals_the_integer_reference(path: Path, tiles: tuple) -> None:
    x = tiles[0][:3]
    ref = integer_reference(gnm.decode(path.read_bytes()), x.numpy())
    for kernel in KERNELS:  # auto (timed once a session: conftest's cache) and every kernel
        out = Runtime.load(path, kernels=kernel).infer(x)
        assert np.array_equal(out.numpy(), ref), kernel


@pytest.mark.req("AI-003")
def test_output_is_deterministic_and_batch_and_thread_invariant(tiles: tuple) -> None:
    x = tiles[0][:24]
    rt = Runtime.load(SMALL)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        y1 = rt.infer(x)
        torch.set_num_threads(2)
        y2 = rt.infer(x)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(y1, y2)
    assert torch.equal(y1, rt.infer(x))
    singles = torch.cat([rt.infer(x[i : i + 1]) for i in range(5)])
    assert torch.equal(singles, y1[:5])


@pytest.mark.parametrize("path,min_acc", [(SMALL, 0.92), (LARGE, 0.94)])
def test_models_classify_held_out_tiles(path: Path, min_acc: float, tiles: tuple) -> None:
    x, cf, keep = tiles
    preds = Runtime.load(path).classify(x)
    assert all(isinstance(p, Prediction) for p in preds)
    assert all(0.5 <= p.confidence <= 1.0 and 0.0 <= p.cloud_fraction <= 1.0 for p in preds)
    acc = np.mean([p.keep == k for p, k in zip(preds, keep, strict=True)])
    assert acc >= min_acc
    mae = np.mean([abs(p.cloud_fraction - c) for p, c in zip(preds, cf, strict=True)])
    assert mae < 0.12
    wrong = [p.confidence for p, k in zip(preds, keep, strict=True) if p.keep != k]
    right = [p.confidence for p, k in zip(preds, keep, strict=True) if p.keep == k]
    assert not wrong or np.mean(wrong) < np.mean(right)  # unsure when wrong: cascade works


def test_bad_inputs_raise_ai_error() -> None:
    rt = Runtime.load(SMALL)
    for bad in (torch.zeros(1, 3, 64, 64), torch.zeros(4, 64, 64), torch.zeros(1, 4, 32, 64)):
        with pytest.raises(AiError, match="does not match"):
            rt.infer(bad)
    with pytest.raises(AiError):
        rt.infer([1, 2, 3])  # type: ignore[arg-type]
    with pytest.raises(AiError):
        Runtime.load(SMALL, kernels="cuda")
    assert rt.infer(np.zeros((1, 4, 64, 64), dtype=np.float64)).shape == (1, 2)


# --- the arena is what the kernels read ----------------------------------------------------


@pytest.mark.req("AI-004")
def test_weight_views_live_inside_the_arena() -> None:
    rt = Runtime.load(SMALL)
    lo = rt.arena.ctypes.data
    for t in rt.graph.tensors:
        v = rt.tensor(t.name)
        assert v.data_ptr() == lo + t.offset
        assert v.data_ptr() + t.nbytes <= lo + rt.arena.size


@pytest.mark.req("AI-004")
def test_flipping_an_arena_bit_changes_the_output_and_scrub_restores_it(tiles: tuple) -> None:
    x = tiles[0][:8]
    rt = Runtime.load(SMALL)
    golden = rt.infer(x)
    flip(rt, top_byte(rt, "head.d"), 7)  # the sign of the keep logit's dequant scale
    assert not torch.equal(rt.infer(x), golden)
    rep = rt.scrub()
    assert (rep.corrupted, rep.repaired, rep.unrepairable) == (1, 1, 0)
    assert torch.equal(rt.infer(x), golden)


# --- scrubbing -------------------------------------------------------------------------------


@pytest.mark.req("AI-005")
def test_clean_scrub_checks_everything_and_finds_nothing() -> None:
    rt = Runtime.load(LARGE)
    rep = rt.scrub()
    assert rep.blocks_checked == rt.arena_blocks and rep.bytes_checked == rt.arena.size
    assert (rep.corrupted, rep.repaired, rep.unrepairable) == (0, 0, 0)
    assert rt.verify() == []


@pytest.mark.req("AI-005")
def test_budgeted_scrub_walks_round_robin(golden: Path) -> None:
    rt = Runtime.load(golden)
    n = rt.arena_blocks
    flip(rt, 2 * rt.block_size + 100, 0)
    found_at = []
    for call in range(n + 1):
        rep = rt.scrub(budget_bytes=rt.block_size)
        assert rep.blocks_checked == 1
        if rep.corrupted:
            found_at.append(call)
            assert rep.corrupted_blocks == (2,)
    assert found_at == [2]
    assert rt.scrub(budget_bytes=0).blocks_checked == 1  # always some progress
    assert rt.scrub(budget_bytes=10**9).blocks_checked == n
    with pytest.raises(AiError):
        rt.scrub(budget_bytes=-1)


@pytest.mark.req("AI-006")
def test_repair_reports_events_and_restores_bytes(golden: Path) -> None:
    seen: list[AiEvent] = []
    rt = Runtime.load(golden, on_event=seen.append)
    before = rt.arena.copy()
    flip(rt, 10, 7)
    flip(rt, rt.arena.size - 1, 0)  # the short last block
    rep = rt.scrub()
    last = rt.arena_blocks - 1
    assert rep.corrupted_blocks == (0, last)
    assert (rep.corrupted, rep.repaired, rep.unrepairable) == (2, 2, 0)
    assert np.array_equal(rt.arena, before)
    assert [(e.kind, e.block) for e in seen] == [("block_repaired", 0), ("block_repaired", last)]
    assert list(rep.events) == seen
    s = rt.stats()
    assert (s.corrupted, s.repaired, s.unrepairable, s.enabled) == (2, 2, 0, True)


@pytest.mark.req("AI-007")
def test_unrepairable_block_disables_the_model_until_a_good_golden_arrives(
    tmp_path: Path, tiles: tuple
) -> None:
    x = tiles[0][:4]
    damaged = tmp_path / "golden.gnm"
    data = bytearray(SMALL.read_bytes())
    h = gnm.decode(bytes(data)).header
    data[h.arena_offset + 1 * h.block_size + 5] ^= 0x80  # the golden copy of block 1 is hit too
    damaged.write_bytes(bytes(data))
    seen: list[AiEvent] = []
    rt = Runtime.from_bytes(SMALL.read_bytes(), golden_paths=[damaged], on_event=seen.append)
    golden_out = rt.infer(x)
    flip(rt, rt.block_size + 5, 7)
    rep = rt.scrub()
    assert (rep.corrupted, rep.repaired, rep.unrepairable) == (1, 0, 1)
    assert rep.unrepairable_blocks == (1,)
    assert not rt.enabled
    assert [e.kind for e in seen] == ["block_unrepairable", "model_disabled"]
    with pytest.raises(ModelDisabledError, match="fallback"):
        rt.infer(x)
    with pytest.raises(ModelDisabledError):
        rt.classify(x)
    again = rt.scrub()  # no duplicate events while it stays broken
    assert again.unrepairable == 1 and len(again.events) == 0
    rep = rt.repair(golden_paths=[SMALL])  # e.g. the ground uplinked a fresh copy
    assert rep.repaired == 1 and rt.enabled
    assert [e.kind for e in rep.events] == ["block_repaired", "model_enabled"]
    assert torch.equal(rt.infer(x), golden_out)


@pytest.mark.req("AI-006")
def test_second_golden_copy_is_used_when_the_first_fails(tmp_path: Path) -> None:
    first = tmp_path / "a.gnm"
    data = bytearray(SMALL.read_bytes())
    h = gnm.decode(bytes(data)).header
    data[h.arena_offset + 3] ^= 1
    first.write_bytes(bytes(data))
    other = tmp_path / "other.gnm"
    other.write_bytes(LARGE.read_bytes())  # a different model: must be refused
    rt = Runtime.from_bytes(SMALL.read_bytes(), golden_paths=[first, other, SMALL])
    flip(rt, 3, 0)
    rep = rt.scrub()
    assert rep.repaired == 1
    assert str(SMALL) in rep.events[0].detail


@pytest.mark.req("AI-007")
def test_scrub_without_any_golden_file_marks_block_unrepairable() -> None:
    rt = Runtime.from_bytes(SMALL.read_bytes())
    flip(rt, 0)
    rep = rt.scrub()
    assert rep.unrepairable == 1 and not rt.enabled
    assert "no golden file" in rep.events[0].detail


@pytest.mark.req("AI-008")
def test_damaged_crc_table_in_ram_is_reloaded(golden: Path) -> None:
    rt = Runtime.load(golden)
    rt._table[1] ^= 0x10  # an upset in the RAM copy of the checksums
    rep = rt.scrub()
    assert [e.kind for e in rep.events] == ["table_repaired"]
    assert rep.corrupted == 0 and rt.enabled


@pytest.mark.req("AI-008")
def test_group_fast_path_localises_the_bad_block(tmp_path: Path) -> None:
    n_blocks = 3 * GROUP_BLOCKS + 5
    b = gnm.ArenaBuilder()
    b.add(
        "blob", np.random.default_rng(1).integers(-127, 128, n_blocks * 4096 - 100, dtype=np.int8)
    )
    g = gnm.ModelGraph("blob", (-1, 1), (), (), b.tensors, {})
    path = tmp_path / "blob.gnm"
    path.write_bytes(gnm.encode(g, b.arena()))
    rt = Runtime.load(path)
    for block in (0, GROUP_BLOCKS + 7, n_blocks - 1):
        flip(rt, block * 4096 + 33, 2)
        rep = rt.scrub()
        assert rep.corrupted_blocks == (block,) and rep.repaired == 1
        assert rep.blocks_checked == n_blocks
    rt._group_crc[1] ^= 1  # an upset in a group checksum: no false repair, self-heals
    assert rt.scrub().corrupted == 0
    assert rt._group_crc[1] == gnm.block_crcs(b.arena(), 4096 * GROUP_BLOCKS)[1]


# --- trusted inference and activation protection --------------------------------------------


@pytest.mark.req("AI-010")
def test_verify_option_repairs_before_inference(golden: Path, tiles: tuple) -> None:
    x = tiles[0][:4]
    rt = Runtime.load(golden)
    ref = rt.infer(x)
    flip(rt, top_byte(rt, "head.d"), 7)
    assert rt.verify() == [rt.arena_blocks - 1]
    assert not torch.equal(rt.infer(x), ref)
    assert torch.equal(rt.infer(x, verify=True), ref)
    assert rt.verify() == []
    lonely = Runtime.from_bytes(SMALL.read_bytes())
    flip(lonely, 5)
    with pytest.raises(ModelDisabledError):
        lonely.infer(x, verify=True)


@pytest.mark.req("AI-009")
def test_ranger_clip_bounds_a_corrupted_activation(tiles: tuple) -> None:
    x = tiles[0][:8]
    rt = Runtime.load(SMALL)

    def run_with(value: float) -> torch.Tensor:
        def hook(name: str, kind: str, t: torch.Tensor) -> None:
            if name == "conv2":
                t[:, 0] = value

        h = rt.add_activation_hook(hook)
        try:
            return rt.infer(x)
        finally:
            h.remove()

    assert torch.equal(run_with(1e6), run_with(127.0))  # clipped to the calibrated max
    rt.clip_activations = False
    assert not torch.equal(run_with(1e6), run_with(127.0))
    rt.clip_activations = True
    calls: list[str] = []
    h = rt.add_activation_hook(lambda name, kind, t: calls.append(kind))
    rt.infer(x[:1])
    h.remove()
    assert calls == [op.kind for op in rt.graph.ops]


@pytest.mark.req("AI-009")
def test_corrupted_scale_cannot_produce_nan_or_unbounded_logits(tiles: tuple) -> None:
    x = tiles[0][:8]
    rt = Runtime.load(SMALL)
    clip = rt.tensor("head.clip").clone()
    rt.tensor("head.d")[:] = float("nan")
    y = rt.infer(x)
    assert not torch.isnan(y).any()
    rt.tensor("head.d")[:] = 1e30
    y = rt.infer(x)
    assert bool((y >= clip[0]).all() and (y <= clip[1]).all())


@pytest.mark.parametrize("name", ["fsw.ai", "fsw.ai.runtime"])
def test_docstring_examples_run(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
