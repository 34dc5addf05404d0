"""all-MiniLM-L6-v2 on the int8 runtime: speed, scrub cost and quality (``gnomon bench minilm``).

Speed: batch 32 x 128 tokens (and one 32-token query), Gnomon int8 with its per-machine
kernels, Gnomon with ``widen`` on every layer, the float32 eager model
(:class:`models.minilm.MiniLM`) and torch's own dynamic int8 (``quantize_dynamic``,
fbgemm, prepacked weights), medians of interleaved runs on one thread. Scrub: the
default policy (one 4 KiB block per inference) and a full scrub of the 23 MB arena,
against one inference. Quality: cosine similarity and top-1 neighbour agreement with
sentence-transformers' float32 embeddings over generated operator-style sentences.
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch

from benchmarks.runtime import _medians_interleaved
from fsw.ai.kernels import cpu_info
from fsw.ai.runtime import DEFAULT_SCRUB_BUDGET_BYTES, Runtime
from fsw.ai.text import TextEncoder
from models import corpus, minilm

OUT = Path("out/models")


def _medians_ms(fns: Sequence[Callable[[], object]], repeats: int) -> list[float]:
    """Median milliseconds of each function, interleaved, after one untimed call each."""
    return [round(1e3 * m, 3) for m in _medians_interleaved(fns, repeats, warmup=1)]


def _batch_ids(enc: TextEncoder, n: int, tokens: int) -> torch.Tensor:
    """``n`` rows of exactly ``tokens`` ids (long generated texts, truncated)."""
    texts = corpus.sentences(8 * n, corpus.EVALUATION_SEED)
    long = [" ".join(texts[8 * i : 8 * i + 8]) for i in range(n)]
    ids = enc.tokenizer.encode(long, tokens)
    if ids.shape[1] != tokens:
        raise RuntimeError(f"generated texts gave {ids.shape[1]} tokens, not {tokens}")
    return ids


def quality(rt: Runtime, sentences: int = 1000) -> dict[str, Any]:
    """Gnomon int8 against sentence-transformers float32 on ``sentences`` generated texts."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return {"skipped": "sentence-transformers is not installed (the dev extra has it)"}
    texts = corpus.sentences(sentences, corpus.EVALUATION_SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st = SentenceTransformer(str(minilm.model_dir()), device="cpu")
        ref = torch.from_numpy(st.encode(texts, batch_size=32, normalize_embeddings=True))
    ours = TextEncoder(rt).embed(texts)
    cos = torch.nn.functional.cosine_similarity(ours, ref)

    def top1(e: torch.Tensor) -> torch.Tensor:
        s = e @ e.t()
        s.fill_diagonal_(-2.0)
        return s.argmax(dim=1)

    return {
        "corpus": f"models.corpus.sentences({sentences}, seed={corpus.EVALUATION_SEED})",
        "sentences": sentences,
        "mean_cosine": round(float(cos.mean()), 5),
        "min_cosine": round(float(cos.min()), 5),
        "top1_neighbour_agreement": round(float((top1(ours) == top1(ref)).float().mean()), 4),
        "goals": {
            "mean_cosine_ge_0.99": float(cos.mean()) >= 0.99,
            "top1_agreement_ge_0.95": float((top1(ours) == top1(ref)).float().mean()) >= 0.95,
        },
    }


def bench_minilm(
    *,
    out_dir: Path = OUT,
    batch: int = 32,
    tokens: int = 128,
    repeats: int = 5,
    quality_sentences: int = 1000,
) -> dict[str, Any]:
    """Latency, scrub cost and quality of the int8 MiniLM (see the module docstring)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        path = minilm.ensure_built(out_dir)
        rt = Runtime.load(path)
        before = Runtime.load(path, kernels="widen")
        enc = TextEncoder(rt)
        net = minilm.MiniLM(minilm.load_state())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tq = torch.ao.quantization.quantize_dynamic(
                minilm.MiniLM(minilm.load_state()), {torch.nn.Linear}, dtype=torch.qint8
            )
        cpu = cpu_info()
        out: dict[str, Any] = {
            "threads": 1,
            "cpu": cpu,
            "int8_dot_product_cpu": bool(
                {"avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm"} & set(cpu["flags"])
            ),
            "artifact": str(path),
            "arena_bytes": rt.arena_bytes,
            "arena_blocks": rt.arena_blocks,
            "kernels": {
                op: {rows: c["kernel"] for rows, c in per.items()}
                for op, per in rt.kernel_choices().items()
                if op.startswith("l0.")
            },
            "latency": {},
        }
        shapes = {"batch32x128": (batch, tokens), "query1x32": (1, 32)}
        for key, (n, t) in shapes.items():
            ids = _batch_ids(enc, n, t)
            reps = repeats if n > 1 else repeats * 4
            with torch.inference_mode():
                t_g, t_w, t_f, t_q = _medians_ms(
                    [
                        partial(rt.infer, ids),
                        partial(before.infer, ids),
                        partial(net, ids),
                        partial(tq, ids),
                    ],
                    reps,
                )
            out["latency"][key] = {
                "gnomon_int8_ms": t_g,
                "gnomon_widen_everywhere_ms": t_w,
                "fp32_eager_ms": t_f,
                "torch_dynamic_int8_ms": t_q,
                "gnomon_vs_fp32": round(t_g / t_f, 3),
                "gnomon_vs_torch_int8": round(t_g / t_q, 3),
                "torch_int8_vs_fp32": round(t_q / t_f, 3),
            }
        out["scrub"] = _scrub_cost(rt, out["latency"])
        out["goals"] = {
            "batch32x128_le_0.5x_fp32 (int8-dot CPUs)": out["latency"]["batch32x128"][
                "gnomon_vs_fp32"
            ]
            <= 0.5,
            "goal_applies_here": out["int8_dot_product_cpu"],
            "scrub_policy_lt_1pct": out["scrub"]["policy_pct_of_query"] < 1.0,
        }
        if quality_sentences:
            out["quality"] = quality(rt, quality_sentences)
        return out
    finally:
        torch.set_num_threads(threads)


def _scrub_cost(rt: Runtime, latency: dict[str, Any]) -> dict[str, Any]:
    def med_us(fn: Callable[[], object], n: int) -> float:
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts) * 1e6

    t_pol = med_us(partial(rt.scrub, DEFAULT_SCRUB_BUDGET_BYTES), 200)
    t_full = med_us(rt.scrub, 10)
    q_ms = latency["query1x32"]["gnomon_int8_ms"]
    b_ms = latency["batch32x128"]["gnomon_int8_ms"]
    return {
        "policy_budget_bytes": DEFAULT_SCRUB_BUDGET_BYTES,
        "policy_scrub_us": round(t_pol, 2),
        "policy_pct_of_query": round(100 * t_pol / (q_ms * 1e3), 4),
        "policy_pct_of_batch": round(100 * t_pol / (b_ms * 1e3), 5),
        "inferences_per_full_sweep": rt.arena_blocks,
        "full_scrub_ms": round(t_full / 1e3, 3),
        "full_scrub_gbps": round(rt.arena_bytes / (t_full * 1e-6) / 1e9, 2),
        "full_scrub_pct_of_batch": round(100 * t_full / (b_ms * 1e3), 3),
    }
