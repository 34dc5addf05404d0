"""Text on board: the WordPiece tokenizer, the int8 MiniLM encoder, ranking a catalogue."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fsw.ai import AiError, gnm, shipped_dir
from fsw.ai.runtime import Runtime
from fsw.ai.text import Catalogue, Record, TextEncoder, WordPiece
from models import corpus

TRICKY = [
    "Café déjà vu: naïve façade!",
    "温度 warning 電池 low",
    "tab\tseparated\nnew line\r\ncarriage",
    "control\x00char\x07s and \ufffd replacement",
    "a" * 150 + " long word",
    "snake_case, kebab-case & CamelCase... (brackets) [x] {y} <z>",
    "emoji 🚀 and math ∑ symbols ±3 °C",
    "",
    "   ",
    "MiXeD CaSe ÅNGSTRÖM",
]


@pytest.fixture(scope="module")
def rt(minilm_gnm: Path) -> Runtime:
    # widen forced: no kernel timing at load (tens of seconds at 32 x 128 tokens on a busy
    # 2-core machine); the timed choice on this model is a slow test (test_models_minilm)
    return Runtime.load(minilm_gnm, kernels="widen")


@pytest.fixture(scope="module")
def encoder(rt: Runtime) -> TextEncoder:
    return TextEncoder(rt)


@pytest.mark.req("TXT-001")
def test_the_on_board_tokenizer_matches_the_reference_tokenizer(encoder: TextEncoder) -> None:
    from models.minilm import hf_tokenizer, token_ids

    tok = hf_tokenizer()
    texts = corpus.sentences(300, corpus.EVALUATION_SEED) + TRICKY
    for i in range(0, len(texts), 50):
        chunk = texts[i : i + 50]
        assert torch.equal(encoder.tokenizer.encode(chunk, 128), token_ids(tok, chunk)), chunk


@pytest.mark.req("TXT-001")
def test_text_model_is_a_format_1_1_artifact_with_its_vocabulary_inside(
    minilm_gnm: Path, rt: Runtime
) -> None:
    data = minilm_gnm.read_bytes()
    h = gnm.Header.decode(data)
    assert (h.version_major, h.version_minor) == (1, 1)
    assert 22_000_000 < rt.arena_bytes < 24_000_000  # ~23 MB arena
    assert rt.text and rt.graph.meta["embedding_dim"] == 384
    lo, hi = rt.tensor_regions()["tokenizer.vocab"]
    assert bytes(rt.arena[lo:hi]).startswith(b"[PAD]\n")
    for cnn in ("cloudnet-s.gnm", "cloudnet-l.gnm"):  # the CNNs stay format 1.0
        assert gnm.Header.decode((shipped_dir() / cnn).read_bytes()).version_minor == 0


@pytest.mark.req("TXT-002")
def test_text_encoder_is_bit_identical_across_kernels(minilm_gnm: Path) -> None:
    texts = ["battery temperature high", "star tracker lost lock during eclipse", "ok"]
    outs = []
    # auto picks one of these per layer; each layer's output is the same whichever it picks
    for kernel in ("widen", "int_mm", "int_mm_t"):
        rt = Runtime.load(minilm_gnm, kernels=kernel)
        outs.append(TextEncoder(rt).embed(texts))
    assert all(torch.equal(outs[0], o) for o in outs[1:])
    assert torch.allclose(outs[0].norm(dim=1), torch.ones(3), atol=1e-5)


@pytest.mark.req("TXT-003")
def test_int8_embeddings_follow_the_float32_model(encoder: TextEncoder) -> None:
    from models.minilm import MiniLM, hf_tokenizer, load_state, token_ids

    texts = corpus.sentences(48, corpus.EVALUATION_SEED + 1)
    net = MiniLM(load_state())
    with torch.no_grad():
        ref = net(token_ids(hf_tokenizer(), texts))
    cos = torch.nn.functional.cosine_similarity(encoder.embed(texts), ref)
    assert float(cos.mean()) >= 0.99 and float(cos.min()) >= 0.98


@pytest.mark.req("TXT-002")
def test_text_inputs_are_checked(rt: Runtime) -> None:
    with pytest.raises(AiError, match="integer token ids"):
        rt.infer(torch.zeros(1, 4))
    with pytest.raises(AiError, match="token ids must lie"):
        rt.infer(torch.tensor([[101, 40000, 102]]))
    with pytest.raises(AiError, match="tokens per row"):
        rt.infer(torch.ones(1, 600, dtype=torch.int64))
    with pytest.raises(AiError, match="text encoder"):
        rt.classify(torch.zeros(1, 4, 64, 64))
    assert rt.infer(np.array([[101, 2000, 102]])).shape == (1, 384)


@pytest.mark.req("TXT-004")
def test_a_query_finds_the_matching_records_and_the_embedding_job_is_budgeted(
    encoder: TextEncoder,
) -> None:
    cat = Catalogue()
    cat.extend(
        [
            Record("evt-1", "event", "Battery temperature above the yellow limit in eclipse."),
            Record("evt-2", "event", "Star tracker lost lock after the manoeuvre."),
            Record("file-7", "file", "Thermal infrared scene over Greenland's ice sheet."),
            Record("file-8", "file", "Cloud-free image of the Sahara, 3 percent cloud cover."),
            Record("log-3", "log", "Ground station Kiruna acquired signal at 10:02."),
            Record("log-4", "log", "Uploaded a new model file and verified its checksum."),
        ]
    )
    assert cat.pending == 6
    assert cat.embed_pending(encoder, max_records=4) == 4  # one bounded unit of work
    assert cat.pending == 2 and len(cat.search(encoder.embed(["x"])[0], k=10)) == 4
    assert cat.embed_pending(encoder) == 2 and cat.pending == 0
    queries = {
        "is the battery too hot?": "evt-1",
        "pictures of ice in the arctic": "file-7",
        "when did we last contact the ground?": "log-3",
        "desert images without clouds": "file-8",
    }
    for q, want in queries.items():
        hits = cat.query(encoder, q, k=3)
        assert hits[0].key == want, (q, hits)
        assert hits[0].score >= hits[1].score >= hits[2].score
    only_files = cat.search(encoder.embed(["battery"])[0], k=5, kinds=["file"])
    assert {h.kind for h in only_files} == {"file"} and len(only_files) == 2
    cat.add(Record("evt-1", "event", "Reaction wheel speed nominal."))  # replaced: pending again
    assert cat.pending == 1 and len(cat) == 6
    with pytest.raises(AiError):
        cat.search(encoder.embed(["x"])[0], k=0)


def test_wordpiece_needs_its_special_tokens() -> None:
    with pytest.raises(AiError, match="special token"):
        WordPiece(["a", "b"])
    with pytest.raises(AiError, match="UTF-8"):
        WordPiece.from_vocab_bytes(b"\xff\xfe")
    wp = WordPiece(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hi"])
    assert wp.encode(["hi " * 10], max_tokens=4).tolist() == [[2, 4, 4, 3]]
