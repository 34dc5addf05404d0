"""SEU fault-injection campaigns against a shipped model: detection, repair, accuracy.

``gnomon seu campaign --model FILE --flips N --mode single|double|burst --json`` calls
:func:`run_campaign`. For each of N upset events it flips bits in the live arena, lets a
full scrub find and repair them, and checks that (a) every hit block was reported, (b) the
arena is byte-identical to the golden one and (c) the outputs on a probe batch are
bit-identical to the golden outputs. It then measures keep/discard accuracy at several
bit-error rates with and without the scrubber, and under activation upsets with and
without the Ranger-style clamp.

>>> rep = run_campaign("fsw/ai/artifacts/cloudnet-s.gnm",
...                    CampaignConfig(flips=20, eval_tiles=64, bers=(1e-4,), ber_trials=1))
>>> rep["detected_pct"], rep["repaired_pct"], rep["outputs_identical_after_repair"]
(100.0, 100.0, True)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsw.ai import faults as fi
from fsw.ai.runtime import Runtime
from models import synth
from models.errors import ModelError
from models.train import HOLDOUT_SEED, fp32_reference_path, load_fp32

Progress = Callable[[str, int, int], None]


@dataclass(slots=True, frozen=True)
class CampaignConfig:
    """What to inject and how much to measure."""

    flips: int = 1000  # upset events
    mode: str = "single"
    target: str = "any"
    burst_bits: int = 4
    seed: int = 0
    eval_tiles: int = 512
    probe_tiles: int = 16
    bers: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 1e-3)
    ber_trials: int = 3
    activation_rates: tuple[float, ...] = (1e-4, 1e-3)
    retrieval_flips: int = 0  # text encoders: unrepaired single flips vs top-1 retrieval


def _accuracy(logits: torch.Tensor, keep: torch.Tensor) -> float:
    return float(((logits[:, 0] >= 0) == keep).float().mean())


def run_campaign(
    model_path: str | Path,
    config: CampaignConfig | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the campaign on one thread; a JSON-able dict of the results."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared CPU makes multi-threaded small batches crawl
    try:
        return _campaign(model_path, config or CampaignConfig(), progress)
    finally:
        torch.set_num_threads(threads)


def _campaign(
    model_path: str | Path, cfg: CampaignConfig, progress: Progress | None
) -> dict[str, Any]:
    if cfg.flips < 0 or cfg.eval_tiles < 1 or cfg.probe_tiles < 1:
        raise ModelError("flips must be >= 0 and eval/probe tile counts >= 1")
    if cfg.mode not in fi.MODES:
        raise ModelError(f"unknown mode {cfg.mode!r}: use one of {', '.join(fi.MODES)}")
    t0 = time.perf_counter()
    path = Path(model_path)
    rt = Runtime.load(path)
    if rt.text:
        return _text_campaign(rt, path, cfg, progress)
    rng = np.random.default_rng(cfg.seed)
    golden_arena = rt.arena.copy()
    xs, _, keep_np = synth.make_dataset(cfg.eval_tiles, HOLDOUT_SEED)
    x, keep = torch.from_numpy(xs), torch.from_numpy(keep_np)
    golden = rt.infer(x)
    probe = x[: cfg.probe_tiles]
    golden_probe = golden[: cfg.probe_tiles]
    if not torch.equal(rt.infer(probe), golden_probe):
        raise ModelError("the runtime is not batch-size invariant: campaign aborted")

    flips = _flip_events(rt, cfg, rng, probe, golden_probe, golden_arena, progress)
    final_same = torch.equal(rt.infer(x), golden)

    fp32 = _fp32_reference(path, rt.graph.name)
    golden_acc = _accuracy(golden, keep)
    fp32_acc = None
    if fp32 is not None:
        with torch.no_grad():
            fp32_acc = _accuracy(fp32[0](x), keep)
    ber_rows = _ber_rows(rt, cfg, rng, x, keep, fp32, progress)
    act_rows = _activation_rows(rt, cfg, x, keep)
    detected, repaired = flips["detected"], flips["repaired"]
    n = max(cfg.flips, 1)
    return {
        "model": rt.name,
        "file": str(path),
        "mode": cfg.mode,
        "target": cfg.target,
        "flips_injected": cfg.flips,
        "bits_flipped": flips["bits"],
        "arena_bytes": rt.arena_bytes,
        "arena_blocks": rt.arena_blocks,
        "detected": detected,
        "detected_pct": round(100.0 * detected / n, 3) if cfg.flips else 100.0,
        "repaired": repaired,
        "repaired_pct": round(100.0 * repaired / n, 3) if cfg.flips else 100.0,
        "outputs_identical_after_repair": flips["identical"] == cfg.flips and final_same,
        "events_changing_output_before_repair": flips["visible"],
        "failures": flips["missed"],
        "eval_tiles": cfg.eval_tiles,
        "golden_accuracy": golden_acc,
        "fp32_accuracy": fp32_acc,
        "ber": ber_rows,
        "activation_faults": act_rows,
        "seconds": round(time.perf_counter() - t0, 3),
    }


def _text_campaign(
    rt: Runtime, path: Path, cfg: CampaignConfig, progress: Progress | None
) -> dict[str, Any]:
    """A text encoder: detection/repair on sentences, and the retrieval experiment."""
    from models.text_seu import run_text_campaign

    golden_arena = rt.arena.copy()

    def flip_events(
        rt: Runtime,
        probe: torch.Tensor,
        golden_probe: torch.Tensor,
        rng: np.random.Generator,
        progress: Progress | None,
    ) -> dict[str, Any]:
        return _flip_events(rt, cfg, rng, probe, golden_probe, golden_arena, progress)

    rep = run_text_campaign(
        rt,
        flips=cfg.flips,
        mode=cfg.mode,
        target=cfg.target,
        burst_bits=cfg.burst_bits,
        seed=cfg.seed,
        probe_sentences=cfg.probe_tiles,
        retrieval_flips=cfg.retrieval_flips,
        flip_events=flip_events,
        progress=progress,
    )
    return {"file": str(path), **rep}


def _flip_events(
    rt: Runtime,
    cfg: CampaignConfig,
    rng: np.random.Generator,
    probe: torch.Tensor,
    golden_probe: torch.Tensor,
    golden_arena: np.ndarray,
    progress: Progress | None,
) -> dict[str, Any]:
    """Inject ``cfg.flips`` upset events one at a time; after each, scrub and check that
    the scrub found and repaired exactly the damage (arena and outputs golden again)."""
    detected = repaired = identical = visible = bits = 0
    missed: list[dict[str, Any]] = []
    for k in range(cfg.flips):
        flips = fi.inject(
            rt.arena,
            rng,
            mode=cfg.mode,
            target=cfg.target,
            tensors=rt.graph.tensors,
            burst_bits=cfg.burst_bits,
        )
        bits += len(flips)
        hit = sorted({f.byte // rt.block_size for f in flips})
        if not torch.equal(rt.infer(probe), golden_probe):
            visible += 1
        rep = rt.scrub()
        ok_detect = set(hit) <= set(rep.corrupted_blocks)
        ok_repair = (
            ok_detect and rep.repaired == rep.corrupted and np.array_equal(rt.arena, golden_arena)
        )
        ok_same = torch.equal(rt.infer(probe), golden_probe)
        detected += ok_detect
        repaired += ok_repair
        identical += ok_same
        if not (ok_detect and ok_repair and ok_same) and len(missed) < 10:
            missed.append(
                {
                    "event": k,
                    "flips": [[f.byte, f.bit] for f in flips],
                    "reported_blocks": list(rep.corrupted_blocks),
                }
            )
        if not np.array_equal(rt.arena, golden_arena):  # keep the campaign going regardless
            rt.arena[:] = golden_arena
        if progress is not None and (k % 50 == 0 or k == cfg.flips - 1):
            progress("flips", k + 1, cfg.flips)
    return {
        "detected": detected,
        "repaired": repaired,
        "identical": identical,
        "visible": visible,
        "bits": bits,
        "missed": missed,
    }


def _ber_rows(
    rt: Runtime,
    cfg: CampaignConfig,
    rng: np.random.Generator,
    x: torch.Tensor,
    keep: torch.Tensor,
    fp32: tuple[torch.nn.Module, np.ndarray] | None,
    progress: Progress | None,
) -> list[dict[str, Any]]:
    """Accuracy at each bit error rate: unprotected, after a scrub, and for fp32 weights."""
    ber_rows = []
    for j, ber in enumerate(cfg.bers):
        row: dict[str, Any] = {"ber": ber, "trials": cfg.ber_trials}
        acc_u, acc_p, nbits, acc_f = [], [], [], []
        for _ in range(cfg.ber_trials):
            flips = fi.inject_ber(rt.arena, ber, rng)
            nbits.append(len(flips))
            acc_u.append(_accuracy(rt.infer(x), keep))
            rt.scrub()
            acc_p.append(_accuracy(rt.infer(x), keep))
            if fp32 is not None:
                acc_f.append(_fp32_under_ber(fp32[0], fp32[1], ber, rng, x, keep))
        row["bits_flipped_mean"] = float(np.mean(nbits))
        row["accuracy_unprotected"] = float(np.mean(acc_u))
        row["accuracy_protected"] = float(np.mean(acc_p))
        if acc_f:
            row["accuracy_fp32_unprotected"] = float(np.mean(acc_f))
        ber_rows.append(row)
        if progress is not None:
            progress("ber", j + 1, len(cfg.bers))
    return ber_rows


def _activation_rows(
    rt: Runtime, cfg: CampaignConfig, x: torch.Tensor, keep: torch.Tensor
) -> list[dict[str, Any]]:
    """Accuracy under activation upsets at each rate, with and without the Ranger clamp."""
    act_rows = []
    for rate in cfg.activation_rates:
        row: dict[str, Any] = {"rate": rate, "storage": "float32"}
        for clip in (True, False):
            rt.clip_activations = clip
            hook = fi.ActivationFaults(rate, np.random.default_rng(cfg.seed + 1))
            h = rt.add_activation_hook(hook)
            try:
                row["accuracy_clipped" if clip else "accuracy_unclipped"] = _accuracy(
                    rt.infer(x), keep
                )
            finally:
                h.remove()
            row["values_hit"] = hook.hits
        rt.clip_activations = True
        act_rows.append(row)
    return act_rows


def _fp32_reference(path: Path, name: str) -> tuple[torch.nn.Module, np.ndarray] | None:
    npy = fp32_reference_path(name, path)
    if not npy.exists():
        return None
    net = load_fp32(name, npy)
    return net, net.flat_parameters()


def _fp32_under_ber(
    net: Any,
    flat: np.ndarray,
    ber: float,
    rng: np.random.Generator,
    x: torch.Tensor,
    keep: torch.Tensor,
) -> float:
    """Accuracy of the float32 model with its weights hit at ``ber`` (no protection)."""
    raw = flat.copy().view(np.uint8)
    fi.inject_ber(raw, ber, rng)
    net.load_flat_parameters(raw.view(np.float32))
    try:
        with torch.no_grad():
            y = torch.nan_to_num(net(x), nan=0.0)
        return _accuracy(y, keep)
    finally:
        net.load_flat_parameters(flat)
