"""Benchmarks of the int8 runtime and the scrubber (``gnomon bench runtime|scrub --json``).

Both run on one thread (``torch.set_num_threads(1)``) and return a JSON-able dict; the
lead's CLI prints it. Latencies are medians of repeated runs measured with
``time.perf_counter``; accuracy is keep/discard accuracy on held-out synthetic tiles.

>>> r = bench_scrub(synthetic_mib=1, repeats=3)
>>> r["crc_check"] == "0xe3069283", r["synthetic"]["arena_bytes"]
(True, 1048576)
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsw.ai import crc32c, gnm, shipped_dir
from fsw.ai.crc import BACKEND as CRC_BACKEND
from fsw.ai.kernels import cpu_info
from fsw.ai.runtime import DEFAULT_SCRUB_BUDGET_BYTES, Runtime
from models import synth
from models.reference import torch_int8_model
from models.train import HOLDOUT_SEED, fp32_reference_path, load_fp32

ARTIFACTS = shipped_dir()
MODELS = ("cloudnet-s", "cloudnet-l")


def _median_s(fn: Callable[[], object], repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _medians_interleaved(
    fns: Sequence[Callable[[], object]], repeats: int, warmup: int = 3
) -> list[float]:
    """Median seconds of each function, timed in turn so machine noise hits all alike
    (after ``warmup`` untimed calls of each)."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def _accuracy(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, keep: torch.Tensor
) -> float:
    with torch.inference_mode():
        logits = torch.cat([fn(x[i : i + 128]) for i in range(0, x.shape[0], 128)])
    return round(float(((logits[:, 0] >= 0) == keep).float().mean()), 5)


def _int8_dot_cpu(flags: Sequence[str]) -> bool:
    """True on a CPU with int8 dot-product instructions (VNNI, AMX, ARM SDOT/I8MM)."""
    return bool({"avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm"} & set(flags))


def _kernel_summary(rt: Runtime) -> dict[str, dict[str, str]]:
    """Layer -> planned rows -> chosen kernel (and whether it was timed or cached)."""
    return {
        op: {rows: f"{c['kernel']} ({c['source']})" for rows, c in per.items()}
        for op, per in rt.kernel_choices().items()
    }


def bench_runtime(
    models: Sequence[str] = MODELS,
    *,
    artifacts: str | Path = ARTIFACTS,
    holdout_tiles: int = 2000,
    batches: Sequence[int] = (1, 32),
    repeats: int = 50,
    engine: str = "fbgemm",
    kernels: str = "auto",
) -> dict[str, Any]:
    """Latency and accuracy: Gnomon int8 vs fp32 eager vs torch int8, per model and batch.

    Gnomon runs with its per-machine kernel choice (``kernels``, default ``auto``) and,
    timed in the same interleaved loop, with ``widen`` on every layer (the kernel every
    layer used before the choice existed), so "never slower than before" is measured
    under the same machine noise. Goals: int8 accuracy within 1 point of fp32; on a CPU
    with int8 dot products, batch 32 <= 0.5x fp32, batch 1 <= 0.8x and no slower than
    torch's own int8; elsewhere, no slower than widen everywhere (within 5 % noise).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        xs, _, keep_np = synth.make_dataset(holdout_tiles, HOLDOUT_SEED)
        x, keep = torch.from_numpy(xs), torch.from_numpy(keep_np)
        cpu = cpu_info()
        dot = _int8_dot_cpu(cpu["flags"])
        out: dict[str, Any] = {
            "threads": 1,
            "holdout_tiles": holdout_tiles,
            "holdout_seed": HOLDOUT_SEED,
            "torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu": cpu,
            "int8_dot_product_cpu": dot,
            "kernels_option": kernels,
            "torch_int8_engine": engine,
            "models": {},
        }
        for name in models:
            out["models"][name] = _bench_model(
                name, Path(artifacts), x, keep, batches, repeats, engine, kernels, dot
            )
        return out
    finally:
        torch.set_num_threads(threads)


def _bench_model(
    name: str,
    artifacts: Path,
    x: torch.Tensor,
    keep: torch.Tensor,
    batches: Sequence[int],
    repeats: int,
    engine: str,
    kernels: str,
    dot: bool,
) -> dict[str, Any]:
    path = artifacts / f"{name}.gnm"
    rt = Runtime.load(path, kernels=kernels)
    before = Runtime.load(path, kernels="widen")
    net = load_fp32(name, fp32_reference_path(name, path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tq = torch_int8_model(gnm.decode(path.read_bytes()), engine)
        acc = {
            "gnomon_int8": _accuracy(rt.infer, x, keep),
            "fp32": _accuracy(net, x, keep),
            "torch_int8": _accuracy(tq, x, keep),
        }
        lat: dict[str, Any] = {}
        for bs in batches:
            xb = x[:bs].clone()
            n = repeats if bs == 1 else max(5, repeats // 3)
            with torch.inference_mode():
                t_g, t_w, t_f, t_q = _medians_interleaved(
                    [
                        partial(rt.infer, xb),
                        partial(before.infer, xb),
                        partial(net, xb),
                        partial(tq, xb),
                    ],
                    n,
                )
            lat[f"batch{bs}"] = {
                "gnomon_int8_ms": round(t_g * 1e3, 4),
                "gnomon_widen_everywhere_ms": round(t_w * 1e3, 4),
                "fp32_eager_ms": round(t_f * 1e3, 4),
                "torch_int8_ms": round(t_q * 1e3, 4),
                "gnomon_vs_fp32": round(t_g / t_f, 3),
                "gnomon_vs_torch_int8": round(t_g / t_q, 3),
                "gnomon_vs_widen_everywhere": round(t_g / t_w, 3),
                "torch_int8_vs_fp32": round(t_q / t_f, 3),
                "gnomon_ms_per_tile": round(t_g * 1e3 / bs, 4),
            }
    ratios = [v["gnomon_vs_fp32"] for v in lat.values()]
    goals: dict[str, Any] = {
        "int8_within_1pt_of_fp32": abs(acc["gnomon_int8"] - acc["fp32"]) <= 0.01,
        "best_ratio": min(ratios),
        "int8_dot_product_goals_apply": dot,
    }
    if dot:
        goals["batch32_le_0.5x_fp32"] = lat.get("batch32", {}).get("gnomon_vs_fp32", 9) <= 0.5
        goals["batch1_le_0.8x_fp32"] = lat.get("batch1", {}).get("gnomon_vs_fp32", 9) <= 0.8
        goals["le_torch_int8"] = {k: v["gnomon_vs_torch_int8"] <= 1.0 for k, v in lat.items()}
    goals["not_slower_than_widen_everywhere"] = {
        k: v["gnomon_vs_widen_everywhere"] <= 1.05 for k, v in lat.items()
    }
    return {
        "arena_bytes": rt.arena_bytes,
        "macs_per_tile": int(rt.graph.meta.get("macs_per_tile", 0)),
        "kernels": _kernel_summary(rt),
        "accuracy": acc,
        "latency": lat,
        "goals": goals,
    }


def _synthetic_runtime(n_bytes: int) -> Runtime:
    """A runtime over an ``n_bytes`` arena of random int8 (a stand-in for a big model)."""
    b = gnm.ArenaBuilder()
    b.add("blob", np.random.default_rng(0).integers(-127, 128, n_bytes, dtype=np.int8))
    graph = gnm.ModelGraph(
        name="synthetic", input_shape=(-1, 1), output_labels=(), ops=(), tensors=b.tensors, meta={}
    )
    return Runtime.from_bytes(gnm.encode(graph, b.arena()))


def bench_scrub(
    *,
    artifacts: str | Path = ARTIFACTS,
    synthetic_mib: int = 16,
    repeats: int = 20,
) -> dict[str, Any]:
    """Scrub throughput (GB/s, one core) and the default policy's cost per inference.

    Goals: >= 3 GB/s full-arena scrub; default policy (one 4 KiB block checked per
    inference) costs < 1 % of an inference of cloudnet-s at batch 1.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        big = _synthetic_runtime(synthetic_mib << 20)
        t_full = _median_s(big.scrub, repeats)
        t_verify = _median_s(big.verify, max(3, repeats // 4))
        raw = big.arena
        t_crc = _median_s(lambda: crc32c(raw), repeats)
        out: dict[str, Any] = {
            "crc_backend": CRC_BACKEND,
            "crc_check": hex(crc32c(b"123456789")),
            "synthetic": {
                "arena_bytes": big.arena_bytes,
                "blocks": big.arena_blocks,
                "scrub_full_gbps": round(big.arena_bytes / t_full / 1e9, 3),
                "verify_per_block_gbps": round(big.arena_bytes / t_verify / 1e9, 3),
                "raw_crc32c_gbps": round(big.arena_bytes / t_crc / 1e9, 3),
            },
            "models": {},
        }
        x1 = torch.from_numpy(synth.make_tile(HOLDOUT_SEED).pixels[None].copy())
        for name in MODELS:
            rt = Runtime.load(Path(artifacts) / f"{name}.gnm")
            t_inf = _median_s(partial(rt.infer, x1), repeats * 5)
            t_pol = _median_s(partial(rt.scrub, DEFAULT_SCRUB_BUDGET_BYTES), repeats * 5)
            t_all = _median_s(rt.scrub, repeats * 5)
            out["models"][name] = {
                "arena_bytes": rt.arena_bytes,
                "blocks": rt.arena_blocks,
                "full_scrub_us": round(t_all * 1e6, 2),
                "full_scrub_gbps": round(rt.arena_bytes / t_all / 1e9, 3),
                "infer_batch1_us": round(t_inf * 1e6, 1),
                "policy_budget_bytes": DEFAULT_SCRUB_BUDGET_BYTES,
                "policy_scrub_us": round(t_pol * 1e6, 2),
                "policy_overhead_pct": round(100.0 * t_pol / t_inf, 3),
                "full_scrub_every_inference_pct": round(100.0 * t_all / t_inf, 3),
            }
        s = out["models"]["cloudnet-s"]
        out["goals"] = {
            "scrub_ge_3_gbps": out["synthetic"]["scrub_full_gbps"] >= 3.0,
            "policy_overhead_lt_1pct": s["policy_overhead_pct"] < 1.0,
        }
        return out
    finally:
        torch.set_num_threads(threads)
