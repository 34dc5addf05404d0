"""Post-training int8 quantization of a CloudNet and export to a ``.gnm`` artifact.

Weights: per-output-channel symmetric int8 (-127..127), scale = max|w| / 127.
Activations: per-tensor unsigned 7-bit (0..127), scale = calibrated max / 127; the clamp
at 127 is also the Ranger-style bound on a corrupted activation. Biases: int32 in units
of (input scale x weight scale). Logits: clipped to the calibrated range (+10 % margin).

>>> from models.nets import ARCHS, CloudNet
>>> torch.manual_seed(0) and None
>>> net = CloudNet(ARCHS["cloudnet-s"]).eval()
>>> graph, arena = quantize(net, torch.rand(16, 4, 64, 64))
>>> [op.kind for op in graph.ops]
['quantize', 'conv2d', 'conv2d', 'conv2d', 'avgpool_global', 'linear']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from fsw.ai import gnm
from models.errors import ModelError
from models.nets import OUTPUT_LABELS, CloudNet

QMAX = 127
BIAS_LIMIT = 1 << 22
EXACT_LIMIT = 1 << 24  # float32 holds every integer below this exactly
LOGIT_CLIP_MARGIN = 0.10


@torch.no_grad()
def calibrate(net: CloudNet, x: torch.Tensor) -> dict[str, Any]:
    """Activation ranges of ``net`` over calibration tiles ``x``.

    Returns ``input_max``, ``conv_max`` (one per conv layer, after ReLU) and
    ``logit_min`` / ``logit_max`` (per output).
    """
    net.eval()
    conv_max = [0.0] * len(net.convs)
    a = x
    input_max = float(a.max())
    for i, conv in enumerate(net.convs):
        a = torch.relu(conv(a))
        conv_max[i] = float(a.max())
    logits = net.head(a.mean(dim=(2, 3)))
    return {
        "input_max": input_max,
        "conv_max": conv_max,
        "logit_min": logits.min(dim=0).values.tolist(),
        "logit_max": logits.max(dim=0).values.tolist(),
    }


def _weight_quant(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel symmetric int8: (int8 weights, float32 scales)."""
    flat = w.reshape(w.shape[0], -1).astype(np.float64)
    amax = np.abs(flat).max(axis=1)
    scale = np.where(amax > 0, amax / QMAX, 1.0).astype(np.float32)
    q = np.clip(np.rint(flat / scale[:, None].astype(np.float64)), -QMAX, QMAX)
    return q.astype(np.int8).reshape(w.shape), scale


def _bias_quant(b: np.ndarray, s_in: float, s_w: np.ndarray, name: str) -> np.ndarray:
    q = np.rint(b.astype(np.float64) / (float(s_in) * s_w.astype(np.float64)))
    if np.abs(q).max(initial=0) > BIAS_LIMIT:
        raise ModelError(
            f"{name}: bias too large for exact int32 arithmetic ({np.abs(q).max():.0f})"
        )
    return q.astype(np.int32)


def quantize(
    net: CloudNet, calib_x: torch.Tensor, meta: Mapping[str, Any] | None = None
) -> tuple[gnm.ModelGraph, bytes]:
    """The ``.gnm`` graph and arena of ``net``, calibrated on ``calib_x``."""
    ranges = calibrate(net, calib_x)
    b = gnm.ArenaBuilder()
    ops: list[gnm.OpSpec] = []
    s_in = max(ranges["input_max"], 1e-6) / QMAX
    b.add("input.inv_scale", np.array([1.0 / s_in], dtype=np.float32))
    ops.append(
        gnm.OpSpec(
            "quantize",
            "quantize",
            "image",
            "q0",
            {"inv_scale": "input.inv_scale"},
            {"clamp": [0, QMAX]},
        )
    )
    prev = "q0"
    for i, (conv, amax) in enumerate(zip(net.convs, ranges["conv_max"], strict=True)):
        name = f"conv{i + 1}"
        assert isinstance(conv, nn.Conv2d)
        w = conv.weight.detach().numpy()
        k = int(np.prod(w.shape[1:]))
        wq, s_w = _weight_quant(w)
        assert conv.bias is not None
        bq = _bias_quant(conv.bias.detach().numpy(), s_in, s_w, name)
        s_out = max(amax, 1e-6) / QMAX
        _check_exact(name, k, bq)
        mult = (np.float64(s_in) * s_w.astype(np.float64) / s_out).astype(np.float32)
        for role, arr in (("w", wq), ("b", bq), ("s", s_w), ("m", mult)):
            b.add(f"{name}.{role}", arr)
        stride, pad = conv.stride, conv.padding
        assert isinstance(pad, tuple)
        ops.append(
            gnm.OpSpec(
                "conv2d",
                name,
                prev,
                name,
                {
                    "weight": f"{name}.w",
                    "bias": f"{name}.b",
                    "scale": f"{name}.s",
                    "multiplier": f"{name}.m",
                },
                {"stride": list(stride), "padding": list(pad), "clamp": [0, QMAX]},
            )
        )
        prev, s_in = name, s_out
    ops.append(gnm.OpSpec("avgpool_global", "pool", prev, "pool"))
    w = net.head.weight.detach().numpy()
    wq, s_w = _weight_quant(w)
    bq = _bias_quant(net.head.bias.detach().numpy(), s_in, s_w, "head")
    _check_exact("head", w.shape[1], bq)
    deq = (np.float64(s_in) * s_w.astype(np.float64)).astype(np.float32)
    lo = np.array(ranges["logit_min"], dtype=np.float64)
    hi = np.array(ranges["logit_max"], dtype=np.float64)
    margin = LOGIT_CLIP_MARGIN * np.maximum(hi - lo, 1e-3)
    clip = np.stack([lo - margin, hi + margin]).astype(np.float32)
    for role, arr in (("w", wq), ("b", bq), ("s", s_w), ("d", deq), ("clip", clip)):
        b.add(f"head.{role}", arr)
    ops.append(
        gnm.OpSpec(
            "linear",
            "head",
            "pool",
            "logits",
            {
                "weight": "head.w",
                "bias": "head.b",
                "scale": "head.s",
                "dequant": "head.d",
                "clip": "head.clip",
            },
        )
    )
    full_meta: dict[str, Any] = {
        "arch": net.spec.name,
        "macs_per_tile": net.spec.macs_per_tile(),
        "calibration": {"tiles": int(calib_x.shape[0]), **ranges},
        "activation_bits": 7,
        "weight_quant": "per-channel symmetric int8",
    }
    full_meta.update(meta or {})
    graph = gnm.ModelGraph(
        name=net.spec.name,
        input_shape=(-1, net.spec.in_channels, net.spec.tile_px, net.spec.tile_px),
        output_labels=OUTPUT_LABELS,
        ops=tuple(ops),
        tensors=b.tensors,
        meta=full_meta,
    )
    return graph, b.arena()


def _check_exact(name: str, k: int, bq: np.ndarray) -> None:
    bound = k * QMAX * QMAX + int(np.abs(bq.astype(np.int64)).max(initial=0))
    if bound >= EXACT_LIMIT:
        raise ModelError(
            f"{name}: worst-case accumulator {bound} exceeds 2**24; the float32 kernels "
            "would no longer be exact (use fewer input channels per layer)"
        )


def export(
    net: CloudNet,
    calib_x: torch.Tensor,
    meta: Mapping[str, Any] | None = None,
    *,
    hmac_key: bytes | None = None,
) -> bytes:
    """The complete ``.gnm`` file for ``net`` (deterministic for the same weights)."""
    graph, arena = quantize(net, calib_x, meta)
    return gnm.encode(graph, arena, hmac_key=hmac_key)
