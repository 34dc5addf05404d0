"""SEU campaigns on a text encoder: detection and repair at size, and unrepaired damage.

:func:`run_text_campaign` is what ``gnomon seu campaign --model minilm-l6.gnm`` runs for
a text encoder. Its first half is the campaign of :mod:`models.campaign` on a probe batch
of sentences: inject, scrub, check that every hit block was found and repaired and that
the embeddings are bit-identical to the golden ones again.

Its second half, with ``retrieval_flips > 0``, is the "Terminal Brain Damage" experiment
(Hong et al., USENIX Security 2019: a single flipped exponent bit can ruin a float32
network): one bit at a time is flipped, uniformly over the weight memory, and *not*
repaired; a catalogue of records is ranked for a set of queries; the flip counts as
damage when any query's top-1 record changes. The same is done on the float32 model
(:class:`models.minilm.MiniLM`, its parameters as one float32 memory), so the share of
harmful flips compares int8 (bounded codes, clipped activations) with float32.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from fsw.ai import faults as fi
from fsw.ai.runtime import Runtime
from fsw.ai.text import TextEncoder
from models import corpus

Progress = Callable[[str, int, int], None]
RECORDS = 48  # catalogue size of the retrieval experiment
QUERIES = 16


def _top1(records: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    scores = torch.nan_to_num(queries @ records.t(), nan=-2.0)
    return scores.argmax(dim=1)


def retrieval_damage(
    rt: Runtime, flips: int, seed: int, progress: Progress | None = None
) -> dict[str, Any]:
    """Share of single unrepaired bit flips that change a top-1 retrieval, int8 vs float32."""
    from models import minilm

    texts = corpus.sentences(RECORDS + QUERIES, corpus.EVALUATION_SEED + seed)
    rec_t, qry_t = texts[:RECORDS], texts[RECORDS:]
    enc = TextEncoder(rt)
    ids_r = enc.tokenizer.encode(rec_t, enc.max_tokens)
    ids_q = enc.tokenizer.encode(qry_t, enc.max_tokens)
    rng = np.random.default_rng(seed)

    def int8_top1() -> torch.Tensor:
        return _top1(rt.infer(ids_r), rt.infer(ids_q))

    golden = rt.arena.copy()
    base = int8_top1()
    hurt_int8: list[int] = []  # queries whose top-1 changed, per harmful flip
    for k in range(flips):
        flip = fi.inject(rt.arena, rng, mode="single")
        try:
            n_changed = int((int8_top1() != base).sum())
        finally:
            fi.apply(rt.arena, flip)
        if n_changed:
            hurt_int8.append(n_changed)
        if progress is not None and (k % 10 == 0 or k == flips - 1):
            progress("int8 flips", k + 1, flips)
    assert np.array_equal(rt.arena, golden)
    net = minilm.MiniLM(minilm.load_state())
    params = [p.data for p in net.parameters()]
    flat = [p.view(-1).view(torch.int32) for p in params]
    sizes = np.array([p.numel() for p in params], dtype=np.float64)
    with torch.no_grad():
        base32 = _top1(net(ids_r), net(ids_q))
        hurt_fp32: list[int] = []
        exponent_hits = 0
        for k in range(flips):
            j = int(rng.choice(len(flat), p=sizes / sizes.sum()))
            idx, bit = int(rng.integers(flat[j].numel())), int(rng.integers(32))
            old = int(flat[j][idx])
            flat[j][idx] = _flip32(old, bit)
            try:
                n_changed = int((_top1(net(ids_r), net(ids_q)) != base32).sum())
                exponent_hits += int(23 <= bit <= 30)
            finally:
                flat[j][idx] = old
            if n_changed:
                hurt_fp32.append(n_changed)
            if progress is not None and (k % 10 == 0 or k == flips - 1):
                progress("fp32 flips", k + 1, flips)
    return {
        "flips": flips,
        "records": RECORDS,
        "queries": QUERIES,
        "int8_arena_bits": int(rt.arena.size * 8),
        "fp32_parameter_bits": int(sizes.sum() * 32),
        "int8_flips_changing_top1": len(hurt_int8),
        "int8_share": round(len(hurt_int8) / max(flips, 1), 4),
        **_severity("int8", hurt_int8),
        "fp32_flips_changing_top1": len(hurt_fp32),
        "fp32_share": round(len(hurt_fp32) / max(flips, 1), 4),
        **_severity("fp32", hurt_fp32),
        "fp32_exponent_bit_flips": exponent_hits,
    }


def _severity(kind: str, hurt: list[int]) -> dict[str, Any]:
    """How bad the harmful flips were: queries changed, and flips that broke most queries."""
    return {
        f"{kind}_queries_changed_per_harmful_flip": round(float(np.mean(hurt)), 2) if hurt else 0.0,
        f"{kind}_flips_changing_half_the_queries": sum(1 for n in hurt if 2 * n >= QUERIES),
    }


def _flip32(word: int, bit: int) -> int:
    """``word`` (a signed 32-bit int) with ``bit`` flipped, as a signed 32-bit int."""
    v = (word & 0xFFFFFFFF) ^ (1 << bit)
    return v - (1 << 32) if v >= 1 << 31 else v


def run_text_campaign(
    rt: Runtime,
    *,
    flips: int,
    mode: str,
    target: str,
    burst_bits: int,
    seed: int,
    probe_sentences: int,
    retrieval_flips: int,
    flip_events: Callable[..., dict[str, Any]],
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Detection and repair on a probe batch, then (optionally) the retrieval experiment."""
    t0 = time.perf_counter()
    enc = TextEncoder(rt)
    probe = enc.tokenizer.encode(
        corpus.sentences(probe_sentences, corpus.EVALUATION_SEED), enc.max_tokens
    )
    golden_probe = rt.infer(probe)
    rng = np.random.default_rng(seed)
    res = flip_events(rt, probe, golden_probe, rng, progress)
    final_same = torch.equal(rt.infer(probe), golden_probe)
    n = max(flips, 1)
    rep: dict[str, Any] = {
        "model": rt.name,
        "mode": mode,
        "target": target,
        "burst_bits": burst_bits,
        "flips_injected": flips,
        "bits_flipped": res["bits"],
        "arena_bytes": rt.arena_bytes,
        "arena_blocks": rt.arena_blocks,
        "probe_sentences": probe_sentences,
        "detected": res["detected"],
        "detected_pct": round(100.0 * res["detected"] / n, 3) if flips else 100.0,
        "repaired": res["repaired"],
        "repaired_pct": round(100.0 * res["repaired"] / n, 3) if flips else 100.0,
        "outputs_identical_after_repair": res["identical"] == flips and final_same,
        "events_changing_output_before_repair": res["visible"],
        "failures": res["missed"],
    }
    if retrieval_flips > 0:
        rep["retrieval_damage"] = retrieval_damage(rt, retrieval_flips, seed, progress)
    rep["seconds"] = round(time.perf_counter() - t0, 3)
    return rep
