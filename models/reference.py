"""Reference executions of a shipped model, for benches and cross-checks.

* :func:`torch_int8_model` rebuilds the *same* int8 weights, biases and activation scales
  as torch's own quantized modules (fbgemm / x86 kernels with prepacked weights), so its
  accuracy and latency compare like for like with the Gnomon runtime. Note that its
  prepacked weights are a second, unchecked copy: it is a yardstick, not flight code.
* :func:`integer_reference` runs the graph in int64 numpy arithmetic, slowly and
  obviously: the oracle for the runtime's exactness tests.

>>> from fsw.ai import gnm
>>> m = gnm.decode(open("fsw/ai/artifacts/cloudnet-s.gnm", "rb").read())
>>> x = torch.rand(2, 4, 64, 64)
>>> torch_int8_model(m)(x).shape
torch.Size([2, 2])
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from fsw.ai import gnm
from models.errors import ModelError


def _t(m: gnm.GnmFile, name: str) -> np.ndarray:
    return m.tensor_array(name)


class _TorchInt8(nn.Module):
    def __init__(self, m: gnm.GnmFile, engine: str) -> None:
        super().__init__()
        from torch.ao.nn.intrinsic import quantized as nniq
        from torch.ao.nn.quantized import Linear

        torch.backends.quantized.engine = engine
        ops = m.graph.ops
        if not ops or ops[0].kind != "quantize":
            raise ModelError(f"{m.graph.name}: graph does not start with a quantize op")
        self.in_scale = 1.0 / float(_t(m, ops[0].tensors["inv_scale"])[0])
        scale = self.in_scale
        convs = []
        for op in ops[1:]:
            if op.kind == "conv2d":
                w = _t(m, op.tensors["weight"])
                s_w = _t(m, op.tensors["scale"]).astype(np.float64)
                mult = _t(m, op.tensors["multiplier"]).astype(np.float64)
                b = _t(m, op.tensors["bias"]).astype(np.float64) * scale * s_w
                s_out = float(scale * s_w[0] / mult[0])
                cout, cin, kh, kw = w.shape
                conv = nniq.ConvReLU2d(
                    cin, cout, (kh, kw), tuple(op.attrs["stride"]), tuple(op.attrs["padding"])
                )
                qw = torch._make_per_channel_quantized_tensor(
                    torch.from_numpy(w.copy()),
                    torch.from_numpy(s_w),
                    torch.zeros(cout, dtype=torch.int64),
                    0,
                )
                conv.set_weight_bias(qw, torch.from_numpy(b).float())
                conv.scale, conv.zero_point = s_out, 0
                convs.append(conv)
                scale = s_out
            elif op.kind == "linear":
                w = _t(m, op.tensors["weight"])
                s_w = _t(m, op.tensors["scale"]).astype(np.float64)
                b = _t(m, op.tensors["bias"]).astype(np.float64) * scale * s_w
                clip = _t(m, op.tensors["clip"]).astype(np.float64)
                lo, hi = float(clip[0].min()), float(clip[1].max())
                head = Linear(w.shape[1], w.shape[0])
                qw = torch._make_per_channel_quantized_tensor(
                    torch.from_numpy(w.copy()),
                    torch.from_numpy(s_w),
                    torch.zeros(w.shape[0], dtype=torch.int64),
                    0,
                )
                head.set_weight_bias(qw, torch.from_numpy(b).float())
                head.scale = (hi - lo) / 255.0
                head.zero_point = round(-lo / head.scale)
                self.head = head
        self.convs = nn.Sequential(*convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = torch.quantize_per_tensor(x, self.in_scale, 0, torch.quint8)
        q = self.convs(q)
        q = torch.nn.functional.adaptive_avg_pool2d(q, 1).flatten(1)
        return self.head(q).dequantize()


def torch_int8_model(m: gnm.GnmFile, engine: str = "fbgemm") -> nn.Module:
    """The artifact's int8 model on torch's quantized CPU kernels (``fbgemm`` or ``x86``)."""
    if engine not in torch.backends.quantized.supported_engines:
        raise ModelError(f"quantized engine {engine!r} is not available in this torch build")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _TorchInt8(m, engine).eval()


def integer_reference(m: gnm.GnmFile, x: np.ndarray) -> np.ndarray:
    """The graph in int64 arithmetic (float only where the format is float): (N, 2) logits.

    Slow (pure numpy loops over kernel taps); use it on a few tiles.
    """
    a: np.ndarray = x.astype(np.float32)
    for op in m.graph.ops:
        if op.kind == "quantize":
            inv = _t(m, op.tensors["inv_scale"])[0]
            lo, hi = op.attrs["clamp"]
            a = np.clip(np.rint(a * inv), lo, hi).astype(np.int64)
        elif op.kind == "conv2d":
            w = _t(m, op.tensors["weight"]).astype(np.int64)
            b = _t(m, op.tensors["bias"]).astype(np.int64)
            mult = _t(m, op.tensors["multiplier"])
            (sh, sw), (ph, pw) = op.attrs["stride"], op.attrs["padding"]
            n, _, h, wd = a.shape
            cout, _, kh, kw = w.shape
            ho, wo = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
            ap = np.pad(a, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
            acc = np.zeros((n, cout, ho, wo), dtype=np.int64)
            for dy in range(kh):
                for dx in range(kw):
                    patch = ap[:, :, dy : dy + sh * ho : sh, dx : dx + sw * wo : sw]
                    acc += np.einsum("nchw,oc->nohw", patch, w[:, :, dy, dx])
            acc += b[None, :, None, None]
            lo, hi = op.attrs["clamp"]
            y = acc.astype(np.float32) * mult[None, :, None, None]
            a = np.clip(np.rint(y), lo, hi).astype(np.int64)
        elif op.kind == "avgpool_global":
            s = a.sum(axis=(2, 3)).astype(np.float32)
            a = np.rint(s / np.float32(a.shape[2] * a.shape[3])).astype(np.int64)
        elif op.kind == "linear":
            w = _t(m, op.tensors["weight"]).astype(np.int64)
            b = _t(m, op.tensors["bias"]).astype(np.int64)
            acc = a @ w.T + b
            y = acc.astype(np.float32) * _t(m, op.tensors["dequant"])
            clip = _t(m, op.tensors["clip"])
            a = np.minimum(np.maximum(y, clip[0]), clip[1])
    return np.asarray(a, dtype=np.float32)
