"""all-MiniLM-L6-v2 at full size: quality against sentence-transformers, SEU, determinism.

Slow (minutes on a shared 2-core machine): they run in CI (``make test`` with CI=true).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
import torch

from fsw.ai.runtime import Runtime
from fsw.ai.text import TextEncoder
from models import corpus
from models.campaign import CampaignConfig, run_campaign

pytestmark = pytest.mark.slow


@pytest.mark.req("TXT-003")
def test_int8_quality_against_sentence_transformers_over_1000_sentences(
    minilm_gnm: Path, sentence_transformers: ModuleType
) -> None:
    from benchmarks.minilm import quality

    q = quality(Runtime.load(minilm_gnm), 1000)
    print(q)  # shown on failure: the figures docs/ai.md quotes
    assert q["sentences"] == 1000
    assert q["mean_cosine"] >= 0.99
    assert q["top1_neighbour_agreement"] >= 0.95


def test_the_float32_reference_equals_sentence_transformers(
    minilm_gnm: Path, sentence_transformers: ModuleType
) -> None:
    from models.minilm import MiniLM, hf_tokenizer, load_state, model_dir, token_ids

    texts = corpus.sentences(64, corpus.EVALUATION_SEED + 5)
    st = sentence_transformers.SentenceTransformer(str(model_dir()), device="cpu")
    ref = torch.from_numpy(st.encode(texts, batch_size=32, normalize_embeddings=True))
    with torch.no_grad():
        ours = MiniLM(load_state())(token_ids(hf_tokenizer(), texts))
    assert float(torch.nn.functional.cosine_similarity(ours, ref).min()) > 0.99999


@pytest.mark.req("TXT-005")
@pytest.mark.parametrize("mode", ["single", "double", "burst"])
def test_upsets_in_the_23_mb_arena_are_all_detected_and_repaired(
    minilm_gnm: Path, mode: str
) -> None:
    rep = run_campaign(minilm_gnm, CampaignConfig(flips=12, mode=mode, probe_tiles=4, seed=3))
    assert rep["arena_bytes"] > 22_000_000
    assert rep["detected_pct"] == 100.0 and rep["repaired_pct"] == 100.0
    assert rep["outputs_identical_after_repair"] and rep["failures"] == []


@pytest.mark.req("TXT-005")
def test_unrepaired_flips_are_measured_for_int8_and_float32(minilm_gnm: Path) -> None:
    from models.text_seu import retrieval_damage

    rt = Runtime.load(minilm_gnm)
    before = rt.arena.copy()
    d = retrieval_damage(rt, flips=6, seed=1)
    assert (rt.arena == before).all()  # every experimental flip was undone
    assert d["flips"] == 6 and 0 <= d["int8_flips_changing_top1"] <= 6
    assert 0 <= d["fp32_flips_changing_top1"] <= 6
    assert d["fp32_parameter_bits"] > 3 * d["int8_arena_bits"]


@pytest.mark.req("TXT-002")
def test_the_timed_kernel_choice_covers_every_dense_layer_and_changes_no_output(
    minilm_gnm: Path,
) -> None:
    # the session's kernel cache (conftest): timed by the first auto load of this model
    rt = Runtime.load(minilm_gnm)
    dense = [st.name for st in rt.graph.ops if st.kind == "dense"]
    choices = rt.kernel_choices()
    # every dense layer timed at both planned shapes (1 x 32 and 32 x 128 tokens)
    assert sorted(choices) == sorted(dense)
    assert all(sorted(c) == ["M=32", "M=4096"] for c in choices.values())
    assert all(
        v["kernel"] in ("widen", "int_mm", "int_mm_t") for c in choices.values() for v in c.values()
    )
    # the shapes planned without running the graph are the ones a run at those shapes sees
    assert [(n, x.key()) for n, x in rt._gemm_layers()] == [
        (n, x.key()) for n, x in rt._probed_gemm_layers()
    ]
    cached = Runtime.load(minilm_gnm)
    assert {r.source for r in cached.kernel_records} == {"cache"}
    texts = corpus.sentences(40, corpus.EVALUATION_SEED + 9)
    widen = TextEncoder(Runtime.load(minilm_gnm, kernels="widen")).embed(texts)
    assert torch.equal(TextEncoder(cached).embed(texts), widen)


def test_the_build_is_deterministic(tmp_path: Path, minilm_gnm: Path) -> None:
    from models.minilm import build

    again = build(tmp_path)
    assert again.read_bytes() == minilm_gnm.read_bytes()
    enc = TextEncoder(Runtime.load(again))
    assert enc.embed(["hello"]).shape == (1, 384)
