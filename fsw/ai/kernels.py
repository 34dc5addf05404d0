"""Integer GEMM kernels that read the weight arena in place, and the per-machine choice.

Every conv2d and linear layer of a model is an integer matrix product: int8 weights
(a ``torch.frombuffer`` view of the arena, never copied into a packed buffer) times integer
activation codes, plus an int32 bias. The *reference* is exact integer accumulation
(int32, no overflow: ``K * 127 * 127 + |bias|`` stays far below 2**31); a kernel returns
``float32(acc)``, the exact accumulator rounded once to float32. The candidates:

* ``widen`` -- operands widened to float32 per call, product on torch's float GEMM or
  convolution. Exact while every partial sum stays below 2**24; a layer with a longer
  dot product is split along K into chunks that each stay below it (summed in int32).
* ``int_mm`` -- ``torch._int_mm(activations (M, K), weightᵀ (K, N))``; the transposed
  weight is a strided view of the arena.
* ``int_mm_t`` -- the other orientation, ``torch._int_mm(weight (N, K), activationsᵀ)``.
* ``int_mm_strided``, ``int_mm_t_strided`` -- convolutions only: the same two GEMMs with
  im2col built by a strided int8 view of the padded input instead of ``unfold`` on
  float32 (four times less memory traffic).

On CPUs with int8 dot products (x86 VNNI/AMX, ARM SDOT) torch's ``_int_mm`` uses them and
is several times faster than float32; elsewhere (AVX2 without VNNI) it is a scalar loop
and ``widen`` wins. Rather than guess, :func:`choose` times the exact candidates on the
layer's real shape and real weights and keeps the fastest; the choice is cached per CPU
model and torch version (:class:`KernelCache`).

>>> w = torch.tensor([[1, -2, 3], [4, 5, -6]], dtype=torch.int8)
>>> a = torch.tensor([[127.0, 0.0, 1.0]])
>>> [linear_acc(k, a, w, None).tolist() for k in ("widen", "int_mm", "int_mm_t")]
[[[130.0, 502.0]], [[130.0, 502.0]], [[130.0, 502.0]]]
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional

from fsw.ai.errors import AiError

log = logging.getLogger(__name__)

KERNELS = ("widen", "int_mm", "int_mm_t", "int_mm_strided", "int_mm_t_strided")
#: What ``Runtime.load(kernels=...)`` accepts: ``auto`` (timed choice) or one kernel for all.
KERNEL_OPTIONS = ("auto", *KERNELS)
CODE_MAX = 127  # activation codes and weights are within -127..127 (0..127 for the CNNs)
EXACT_LIMIT = 1 << 24  # float32 holds every integer below this exactly
#: Rows of the activation matrix used for the first, cheap timing round.
PROBE_ROWS = 64
#: A candidate slower than this factor times the best in the probe round is dropped.
PROBE_DROP_FACTOR = 3.0
#: Another kernel must beat ``widen`` by more than this share to be chosen (timing noise).
TIE_MARGIN = 0.05
CACHE_ENV = "GNOMON_KERNEL_CACHE"
CACHE_VERSION = 2  # bump when a kernel or the choice rule changes: old choices are dropped
#: CPU features that decide which int8 kernels are fast (read from /proc/cpuinfo).
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "avx512bw", "avx2", "asimddp", "i8mm")


def _check_kernel(kernel: str) -> None:
    if kernel not in KERNELS:
        raise AiError(f"unknown kernel {kernel!r}: use one of {', '.join(KERNEL_OPTIONS)}")


def _k_chunk(bias_bound: int) -> int:
    """The longest dot product float32 still sums exactly (with ``bias_bound`` added)."""
    return max(1, (EXACT_LIMIT - 1 - bias_bound) // (CODE_MAX * CODE_MAX))


#: The exporters keep every int32 bias within this bound (models/quantize.py BIAS_LIMIT).
BIAS_BOUND = 1 << 22
_K_CHUNK = _k_chunk(0)  # 1040
_K_CHUNK_BIAS = _k_chunk(BIAS_BOUND)  # 780


def linear_acc(
    kernel: str, a: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """``float32(a @ wᵀ + bias)`` computed exactly: ``a`` (M, K) integer codes, ``w`` (N, K) int8.

    ``a`` may be float32 holding integers or int8; ``bias`` is int32 (N,) or ``None``.
    """
    if kernel == "widen":
        return _linear_widen(a, w, bias)
    _check_kernel(kernel)
    a8 = a if a.dtype == torch.int8 else a.to(torch.int8)
    if kernel.startswith("int_mm_t"):
        acc = torch._int_mm(w, a8.t()).t()
    else:
        acc = torch._int_mm(a8, w.t())
    if bias is not None:
        acc = acc + bias
    # Row-major like every other kernel's result: float32 reductions downstream (LayerNorm,
    # pooling) sum in memory order, so the layout must match for bit-identical outputs.
    return acc.float().contiguous()


def _linear_widen(a: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    k = w.shape[1]
    af = a if a.dtype == torch.float32 else a.float()
    if k <= (_K_CHUNK_BIAS if bias is not None else _K_CHUNK):
        wf = w.float()
        if bias is None:
            return af @ wf.t()
        return torch.addmm(bias.float(), af, wf.t())
    step = _K_CHUNK
    acc: torch.Tensor | None = None
    for lo in range(0, k, step):
        part = (af[:, lo : lo + step] @ w[:, lo : lo + step].float().t()).to(torch.int32)
        acc = part if acc is None else acc.add_(part)
    assert acc is not None
    if bias is not None:
        acc.add_(bias)
    return acc.float()


def conv_acc(
    kernel: str,
    a: torch.Tensor,
    w: torch.Tensor,
    bias: torch.Tensor,
    stride: tuple[int, ...],
    padding: tuple[int, ...],
) -> torch.Tensor:
    """``float32(conv2d(a, w) + bias)`` computed exactly; ``a`` (N, C, H, W) integer codes."""
    if kernel == "widen":
        return functional.conv2d(a, w.float(), bias.float(), stride, padding)
    _check_kernel(kernel)
    n, _, h, wd = a.shape
    cout, _, kh, kw = w.shape
    sh, sw = stride
    ph, pw = padding
    ho = (h + 2 * ph - kh) // sh + 1
    wo = (wd + 2 * pw - kw) // sw + 1
    if kernel.endswith("_strided"):
        cols = _im2col_strided(a, kh, kw, sh, sw, ph, pw, ho, wo)
    else:
        unf = functional.unfold(a, (kh, kw), padding=(ph, pw), stride=(sh, sw))  # (N, K, L)
        cols = unf.transpose(1, 2).reshape(n * ho * wo, -1).to(torch.int8)
    w2 = w.reshape(cout, -1)
    if kernel.startswith("int_mm_t"):
        acc = torch._int_mm(w2, cols.t()) + bias[:, None]  # (O, N*L)
        return acc.float().view(cout, n, ho, wo).permute(1, 0, 2, 3).contiguous()
    acc = torch._int_mm(cols, w2.t()) + bias  # (N*L, O)
    return acc.float().view(n, ho, wo, cout).permute(0, 3, 1, 2).contiguous()


def _im2col_strided(
    a: torch.Tensor, kh: int, kw: int, sh: int, sw: int, ph: int, pw: int, ho: int, wo: int
) -> torch.Tensor:
    """(N*Ho*Wo, C*kh*kw) int8 patches, in the weight's (C, kh, kw) order."""
    a8 = a.to(torch.int8)
    if ph or pw:
        a8 = functional.pad(a8, (pw, pw, ph, ph))
    a8 = a8.contiguous()
    n, c, _, _ = a8.shape
    s_n, s_c, s_h, s_w = a8.stride()
    patches = a8.as_strided((n, ho, wo, c, kh, kw), (s_n, s_h * sh, s_w * sw, s_c, s_h, s_w))
    return patches.reshape(n * ho * wo, c * kh * kw)


# --- the exact reference --------------------------------------------------------------------


def reference_linear(a: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The definition: integer accumulation (float64 holds every sum exactly), then float32."""
    acc = a.double() @ w.double().t()
    if bias is not None:
        acc += bias.double()
    return acc.float()


def reference_conv(
    a: torch.Tensor,
    w: torch.Tensor,
    bias: torch.Tensor,
    stride: tuple[int, ...],
    padding: tuple[int, ...],
) -> torch.Tensor:
    """Integer convolution (float64, exact), then float32."""
    return functional.conv2d(a.double(), w.double(), bias.double(), stride, padding).float()


# --- the machine ------------------------------------------------------------------------------


def cpu_info() -> dict[str, Any]:
    """The CPU model, its int8-relevant flags and the torch build, as the cache key sees them.

    >>> sorted(cpu_info())
    ['capability', 'flags', 'machine', 'model', 'torch']
    """
    model, flags = platform.processor() or platform.machine(), set()
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model", "hardware") and value.strip():
            model = value.strip()
        elif key in ("flags", "features"):
            flags |= set(value.split())
    return {
        "model": model,
        "machine": platform.machine(),
        "flags": [f for f in INT8_FLAGS if f in flags],
        "torch": torch.__version__,
        "capability": torch.backends.cpu.get_cpu_capability(),
    }


def _cpu_key(info: Mapping[str, Any]) -> str:
    text = json.dumps(
        [info["model"], info["machine"], info["flags"], info["torch"], info["capability"]]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_cache_path() -> Path | None:
    """Where kernel choices are cached: ``$GNOMON_KERNEL_CACHE``, else the user cache dir.

    ``GNOMON_KERNEL_CACHE=off`` (or empty) disables the cache. The user cache dir is
    ``$XDG_CACHE_HOME/gnomon`` or ``~/.cache/gnomon``; ``None`` when there is no home.
    """
    env = os.environ.get(CACHE_ENV)
    if env is not None:
        return None if env.strip().lower() in ("", "off", "none", "0") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME")
    if base:
        return Path(base) / "gnomon" / "kernels.json"
    try:
        return Path.home() / ".cache" / "gnomon" / "kernels.json"
    except RuntimeError:
        return None


@dataclass(slots=True)
class KernelCache:
    """Kernel choices per layer shape, for one CPU model and torch version, in a JSON file.

    A cache that cannot be read starts empty; one that cannot be written (a read-only
    flight file system) is left alone: the runtime then chooses on every load. Both are
    counted (``read_errors``, ``write_errors``) and logged, never raised.
    """

    path: Path | None
    info: dict[str, Any] = field(default_factory=cpu_info)
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    read_errors: int = 0
    write_errors: int = 0
    hits: int = 0
    misses: int = 0
    _dirty: bool = False

    @classmethod
    def open(cls, path: Path | None) -> KernelCache:
        cache = cls(path)
        cache._read()
        return cache

    def _read(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            fresh = doc.get("version") == CACHE_VERSION
            mine = doc["cpus"].get(_cpu_key(self.info), {}) if fresh else {}
            self.entries = {
                str(k): dict(v) for k, v in mine.get("shapes", {}).items() if v["kernel"] in KERNELS
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            self.read_errors += 1
            log.warning("kernel cache %s unreadable (%s): choosing afresh", self.path, e)
            self.entries = {}

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored choice for a layer shape (``kernel`` and its timings), if any."""
        hit = self.entries.get(key)
        if hit is None:
            self.misses += 1
            return None
        self.hits += 1
        return hit

    def put(self, key: str, timing: Mapping[str, Any]) -> None:
        self.entries[key] = dict(timing)
        self._dirty = True

    def save(self) -> bool:
        """Write the file atomically (merged with other CPUs' sections); False if it failed."""
        if self.path is None or not self._dirty:
            return True
        try:
            doc: dict[str, Any] = {"version": CACHE_VERSION, "cpus": {}}
            if self.path.exists():
                try:
                    old = json.loads(self.path.read_text(encoding="utf-8"))
                    if old.get("version") == CACHE_VERSION and isinstance(old.get("cpus"), dict):
                        doc = old
                except ValueError:
                    pass
            doc["cpus"][_cpu_key(self.info)] = {"cpu": self.info, "shapes": self.entries}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".kernels-", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        except OSError as e:
            self.write_errors += 1
            log.info("kernel cache %s not written (%s): choices kept in memory", self.path, e)
            return False
        self._dirty = False
        return True


# --- choosing -----------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class GemmLayer:
    """One layer as the chooser sees it: its kind, weights (arena views) and input shape."""

    kind: str  # "conv2d" | "linear"
    weight: torch.Tensor
    bias: torch.Tensor | None
    input_shape: tuple[int, ...]  # (N, C, H, W) for conv2d, (M, K) for linear
    stride: tuple[int, ...] = (1, 1)
    padding: tuple[int, ...] = (0, 0)
    signed: bool = False  # activation codes -127..127 (else 0..127)

    @property
    def rows(self) -> int:
        """M, the rows of the activation matrix."""
        if self.kind == "linear":
            return int(self.input_shape[0])
        n, _, h, w = self.input_shape
        _, _, kh, kw = self.weight.shape
        ho = (h + 2 * self.padding[0] - kh) // self.stride[0] + 1
        wo = (w + 2 * self.padding[1] - kw) // self.stride[1] + 1
        return int(n * ho * wo)

    def key(self) -> str:
        """The cache key: everything but the weight values."""
        shape = "x".join(map(str, self.input_shape))
        wshape = "x".join(map(str, self.weight.shape))
        extra = (
            f":s{self.stride[0]}x{self.stride[1]}:p{self.padding[0]}x{self.padding[1]}"
            if self.kind == "conv2d"
            else ""
        )
        bias = "b" if self.bias is not None else "nb"
        return f"{self.kind}:in{shape}:w{wshape}{extra}:{bias}"

    def candidates(self) -> tuple[str, ...]:
        if self.kind == "conv2d":
            return KERNELS
        return ("widen", "int_mm", "int_mm_t")

    def run(self, kernel: str, a: torch.Tensor) -> torch.Tensor:
        if self.kind == "linear":
            return linear_acc(kernel, a, self.weight, self.bias)
        assert self.bias is not None
        return conv_acc(kernel, a, self.weight, self.bias, self.stride, self.padding)

    def reference(self, a: torch.Tensor) -> torch.Tensor:
        if self.kind == "linear":
            return reference_linear(a, self.weight, self.bias)
        assert self.bias is not None
        return reference_conv(a, self.weight, self.bias, self.stride, self.padding)

    def example(self, rows: int | None = None) -> torch.Tensor:
        """Random activation codes of the layer's input shape (``rows`` caps M or N)."""
        g = torch.Generator().manual_seed(1)
        shape = list(self.input_shape)
        if rows is not None:
            shape[0] = max(1, min(shape[0], rows))
        lo = -CODE_MAX if self.signed else 0
        return torch.randint(lo, CODE_MAX + 1, shape, generator=g).float()


def _times_ms(fns: Mapping[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median milliseconds of each function, timed in turn so machine noise hits all alike."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: round(1e3 * statistics.median(v), 4) for k, v in times.items()}


@dataclass(slots=True, frozen=True)
class Timing:
    """How the candidates of one layer fared: full-size and probe medians, refusals."""

    kernel: str
    rows: int
    times_ms: Mapping[str, float]  # measured at the layer's real shape (round-two survivors)
    probe_rows: int
    probe_ms: Mapping[str, float]  # every exact candidate at ``probe_rows`` rows
    refused: Mapping[str, str]  # candidate -> why (not exact, or cannot run here)

    def to_json(self) -> dict[str, Any]:
        return {
            "kernel": self.kernel,
            "rows": self.rows,
            "times_ms": dict(self.times_ms),
            "probe_rows": self.probe_rows,
            "probe_ms": dict(self.probe_ms),
            "refused": dict(self.refused),
        }


def choose(layer: GemmLayer, *, repeats: int = 3) -> Timing:
    """The fastest exact kernel for ``layer`` on this machine, with what was measured.

    A candidate whose output differs from :func:`reference_linear` /
    :func:`reference_conv` on random codes is refused (logged). A first round on at most
    :data:`PROBE_ROWS` rows (an eighth of the batch for a convolution) drops candidates
    more than :data:`PROBE_DROP_FACTOR` times slower than the best, so a scalar int8 loop
    costs little to rule out; the survivors are timed at the real shape (unless the probe
    already had it: batch 1, a short query). ``widen`` is kept
    unless another kernel beats it by more than :data:`TIE_MARGIN`.
    """
    refused: dict[str, str] = {}
    probe: dict[str, float] = {}
    n_probe = PROBE_ROWS if layer.kind == "linear" else max(1, layer.input_shape[0] // 8)
    a_probe = layer.example(n_probe)
    ref = layer.reference(a_probe)
    with torch.inference_mode():
        for k in layer.candidates():
            try:
                out = layer.run(k, a_probe)
            except RuntimeError as e:  # a kernel this torch build cannot run on this shape
                refused[k] = f"cannot run: {str(e).splitlines()[0][:80]}"
                continue
            if not torch.equal(out.contiguous(), ref):
                refused[k] = "not exact"
                log.warning("kernel %s is not exact for %s: refused", k, layer.key())
                continue
            probe[k] = 0.0
        if not probe:
            raise AiError(f"no exact kernel for layer {layer.key()}: {refused}")
        probe = _times_ms({k: partial(layer.run, k, a_probe) for k in probe}, 3)
        best = min(probe.values())
        survivors = [k for k, t in probe.items() if t <= PROBE_DROP_FACTOR * best]
        if a_probe.shape[0] >= layer.input_shape[0]:  # the probe was the real shape already
            times = {k: probe[k] for k in survivors}
        else:
            a = layer.example()
            for k in survivors:
                layer.run(k, a)  # warm-up
            times = _times_ms({k: partial(layer.run, k, a) for k in survivors}, repeats)
    probe_rows = GemmLayer(
        layer.kind, layer.weight, layer.bias, tuple(a_probe.shape), layer.stride, layer.padding
    ).rows
    fastest = min(survivors, key=lambda k: times[k])
    if "widen" in times and times["widen"] <= (1.0 + TIE_MARGIN) * times[fastest]:
        fastest = "widen"  # within timing noise: keep the kernel that needs no int8 GEMM
    return Timing(
        kernel=fastest,
        rows=layer.rows,
        times_ms=times,
        probe_rows=probe_rows,
        probe_ms=probe,
        refused=refused,
    )


@dataclass(slots=True)
class LayerPlan:
    """The kernel of one layer for each planned number of rows M (nearest M wins)."""

    by_rows: list[tuple[int, str]] = field(default_factory=list)
    _bounds: tuple[tuple[float, str], ...] = ()  # (upper M bound, kernel), geometric midpoints
    _last: str = "widen"

    def __post_init__(self) -> None:
        self._index()

    def add(self, rows: int, kernel: str) -> None:
        self.by_rows = sorted({**dict(self.by_rows), rows: kernel}.items())
        self._index()

    def _index(self) -> None:
        rows = self.by_rows
        self._bounds = tuple(
            (math.sqrt(max(m, 1) * max(rows[i + 1][0], 1)), k)
            for i, (m, k) in enumerate(rows[:-1])
            if any(k2 != k for _, k2 in rows[i + 1 :])
        )
        self._last = rows[-1][1] if rows else "widen"

    @property
    def fixed(self) -> str | None:
        """The one kernel of a layer whose plan does not depend on M, else ``None``."""
        return None if self._bounds else self._last

    def pick(self, rows: int) -> str:
        """The kernel planned for the M nearest ``rows`` (on a log scale)."""
        for bound, k in self._bounds:
            if rows < bound:
                return k
        return self._last


@dataclass(slots=True, frozen=True)
class PlanRecord:
    """How one layer's kernel was chosen at one M (for ``gnomon bench runtime``)."""

    op: str
    rows: int
    kernel: str
    source: str  # "timed" | "cache" | "forced"
    timing: Mapping[str, Any]  # Timing.to_json() (empty when forced)


def plan_layers(
    layers: Sequence[tuple[str, GemmLayer]],
    *,
    forced: str = "auto",
    cache: KernelCache | None = None,
) -> tuple[dict[str, LayerPlan], list[PlanRecord]]:
    """A plan for every ``(op name, layer)`` (one op may appear once per planned M).

    ``forced`` other than ``auto`` puts that kernel on every layer it applies to (a
    strided im2col variant means its plain GEMM orientation on a linear layer).
    """
    if forced not in KERNEL_OPTIONS:
        raise AiError(f"unknown kernel {forced!r}: use one of {', '.join(KERNEL_OPTIONS)}")
    plans: dict[str, LayerPlan] = {}
    records: list[PlanRecord] = []
    timed: dict[str, Timing] = {}
    for name, layer in layers:
        rows = layer.rows
        if forced != "auto":
            k = forced if forced in layer.candidates() else forced.removesuffix("_strided")
            rec = PlanRecord(name, rows, k, "forced", {})
        else:
            key = layer.key()
            hit = cache.get(key) if cache is not None else None
            if cache is not None and hit is not None and hit["kernel"] in layer.candidates():
                rec = PlanRecord(name, rows, str(hit["kernel"]), "cache", hit)
            else:
                if key not in timed:
                    timed[key] = choose(layer)
                    if cache is not None:
                        cache.put(key, timed[key].to_json())
                t = timed[key]
                rec = PlanRecord(name, rows, t.kernel, "timed", t.to_json())
        plans.setdefault(name, LayerPlan()).add(rec.rows, rec.kernel)
        records.append(rec)
    if cache is not None:
        cache.save()
    return plans, records


__all__ = [
    "KERNELS",
    "KERNEL_OPTIONS",
    "GemmLayer",
    "KernelCache",
    "LayerPlan",
    "PlanRecord",
    "Timing",
    "choose",
    "conv_acc",
    "cpu_info",
    "default_cache_path",
    "linear_acc",
    "plan_layers",
    "reference_conv",
    "reference_linear",
]
