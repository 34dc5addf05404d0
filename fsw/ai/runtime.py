"""The int8 runtime: one checksummed weight arena, integer kernels, a self-repairing scrubber.

>>> from fsw.ai.runtime import Runtime
>>> rt = Runtime.load("fsw/ai/artifacts/cloudnet-s.gnm")
>>> x = torch.zeros(2, 4, 64, 64)
>>> rt.infer(x).shape
torch.Size([2, 2])
>>> rep = rt.scrub()
>>> rep.blocks_checked == rt.arena_blocks, rep.corrupted
(True, 0)

Memory model. After the file verifies (header, graph, both CRC tables, every block, the
SHA-256 and, with a key, the HMAC), its arena is copied once into an anonymous page-aligned
mapping. Every weight, bias and scale the kernels use is a ``torch.frombuffer`` view of
that mapping, and :attr:`Runtime.arena` is a numpy view of the same bytes: there is no
other copy of the weights. Each inference reads the arena afresh, so a flipped bit is
seen by the next inference and by the next scrub alike.

Arithmetic. Activations are unsigned 7-bit integers (0..127, the range x86 int8 kernels
use to avoid saturation), weights are per-output-channel symmetric int8, accumulators are
exact integers, and each layer requantizes with a per-channel multiplier, rounds half to
even and clamps to the calibrated range (the Ranger-style bound).

Kernels (:mod:`fsw.ai.kernels`). Every candidate reads the int8 weights in place from the
arena and returns the exact integer accumulator, so outputs are bit-identical whichever
runs. With ``kernels="auto"`` (default) each layer gets the fastest exact candidate for
this machine, timed at load on the layer's real shapes (batch 1 and 32 for an image
model) and cached per CPU model and torch version; ``kernels="widen"`` (float32 GEMM on
widened operands), ``"int_mm"``, ``"int_mm_t"`` (``torch._int_mm``, both orientations) or
their ``*_strided`` im2col variants force one kernel everywhere.
"""

from __future__ import annotations

import logging
import math
import mmap
import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from torch.nn import functional

from fsw.ai import gnm
from fsw.ai import golden as gold
from fsw.ai import kernels as kern
from fsw.ai.crc import crc32c_buffer
from fsw.ai.errors import AiError, ModelDisabledError, ModelIntegrityError

log = logging.getLogger(__name__)

KERNELS = kern.KERNEL_OPTIONS
#: Batch sizes an image model's kernels are timed at (the nearest one is used at run time).
PLAN_BATCHES = (1, 32)
#: (sentences, tokens) a text encoder's kernels are timed at: one query, a batch of records.
TEXT_PLAN_SHAPES = ((1, 32), (32, 128))
GROUP_BLOCKS = 16  # a fast scrub checks 16 blocks with one CRC, then localises on mismatch
DEFAULT_SCRUB_BUDGET_BYTES = gnm.BLOCK_SIZE  # one block per inference: the default policy

ActivationHook = Callable[[str, str, torch.Tensor], None]  # (op name, op kind, value)
EventSink = Callable[["AiEvent"], None]
PathLike = str | Path
#: ``None``: the default cache file (``fsw.ai.kernels.default_cache_path``); ``False``: none.
CacheOption = PathLike | Literal[False] | None


@dataclass(slots=True, frozen=True)
class Prediction:
    """The payload's answer for one tile.

    ``confidence`` is the probability of the chosen keep/discard decision (0.5..1); the
    cascade runs the large model when the small one is below its threshold.
    """

    keep: bool
    confidence: float
    cloud_fraction: float


@dataclass(slots=True, frozen=True)
class AiEvent:
    """Something an operator must hear about.

    ``kind`` is one of ``block_repaired``, ``block_unrepairable``, ``model_disabled``,
    ``model_enabled``, ``table_repaired``, and for the golden copies on storage
    ``golden_bad``, ``golden_healed``, ``golden_unhealable``.
    """

    kind: str
    model: str
    block: int | None
    detail: str


class ScrubReport(NamedTuple):
    """What one call of :meth:`Runtime.scrub` (or :meth:`Runtime.repair`) did.

    A named tuple (immutable, and cheap enough to build once per inference).
    """

    blocks_checked: int
    bytes_checked: int
    corrupted: int
    repaired: int
    unrepairable: int
    corrupted_blocks: tuple[int, ...]
    unrepairable_blocks: tuple[int, ...]
    seconds: float
    events: tuple[AiEvent, ...] = ()


@dataclass(slots=True, frozen=True)
class RuntimeStats:
    """Cumulative counters for housekeeping telemetry."""

    inferences: int
    scrubs: int
    blocks_checked: int
    corrupted: int
    repaired: int
    unrepairable: int
    enabled: bool


class HookHandle:
    """Returned by :meth:`Runtime.add_activation_hook`; call :meth:`remove` to detach."""

    __slots__ = ("_hook", "_hooks")

    def __init__(self, hooks: list[ActivationHook], hook: ActivationHook) -> None:
        self._hooks = hooks
        self._hook = hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


class _Step:
    """One compiled op: tensors are views into the arena, read on every call."""

    __slots__ = (
        "attrs",
        "bias",
        "clamp_hi",
        "clamp_lo",
        "clip",
        "input",
        "kind",
        "mult",
        "name",
        "output",
        "padding",
        "plan",
        "stride",
        "views",
        "weight",
    )

    def __init__(self, op: gnm.OpSpec, views: dict[str, torch.Tensor]) -> None:
        self.kind = op.kind
        self.name = op.name
        self.input = op.input
        self.output = op.output
        self.weight = views.get("weight")
        self.bias = views.get("bias")
        self.mult = views.get("multiplier", views.get("dequant", views.get("inv_scale")))
        self.clip = views.get("clip")
        clamp = op.attrs.get("clamp", (-128, 127))
        self.clamp_lo, self.clamp_hi = float(clamp[0]), float(clamp[1])
        self.stride = tuple(op.attrs.get("stride", (1, 1)))
        self.padding = tuple(op.attrs.get("padding", (0, 0)))
        self.plan = kern.LayerPlan([(1, "widen")])  # replaced by the load-time choice
        self.views = views
        self.attrs = dict(op.attrs)


class Runtime:
    """A loaded, verified model. Create with :meth:`load` (or :meth:`from_bytes`)."""

    def __init__(
        self,
        model: gnm.GnmFile,
        *,
        golden_paths: Sequence[PathLike] = (),
        name: str | None = None,
        on_event: EventSink | None = None,
        kernels: str = "auto",
        kernel_cache: CacheOption = None,
    ) -> None:
        if kernels not in KERNELS:
            raise AiError(f"unknown kernel {kernels!r}: use one of {', '.join(KERNELS)}")
        h = model.header
        self.graph = model.graph
        self.name = name or model.graph.name
        self.sha256 = model.sha256
        self.signed = h.signed
        self.kernels = kernels
        self.block_size = h.block_size
        self.arena_blocks = h.n_blocks
        self.arena_bytes = h.arena_size
        self.golden_paths: tuple[Path, ...] = gold.copies_for([Path(p) for p in golden_paths])
        self._arena_offset = h.arena_offset
        self._fmap = gold.FileMap.of(model.data)
        self.on_event = on_event
        # The arena: one anonymous page-aligned mapping, the only copy of the weights.
        pages = max(1, -(-h.arena_size // mmap.PAGESIZE))
        self._mm = mmap.mmap(-1, pages * mmap.PAGESIZE)
        self._mm[: h.arena_size] = model.arena
        self.arena: np.ndarray = np.frombuffer(self._mm, dtype=np.uint8, count=h.arena_size)
        # Expected block CRCs: an array (buffer for its own CRC, fast int indexing).
        self._table = _u32_array(model.crc_table)
        self._table_crc = crc32c_buffer(self._table)
        mv = memoryview(self._mm)
        bs = self.block_size
        self._blocks = [mv[i * bs : min((i + 1) * bs, h.arena_size)] for i in range(h.n_blocks)]
        self._groups = h.n_blocks // GROUP_BLOCKS
        group_bytes = GROUP_BLOCKS * bs
        self._group_views = [
            mv[g * group_bytes : (g + 1) * group_bytes] for g in range(self._groups)
        ]
        if self.verify():
            raise ModelIntegrityError("arena", "arena copy in RAM does not match its CRC table")
        self._group_crc = [crc32c_buffer(v) for v in self._group_views]
        self._cursor = 0
        self._enabled = True
        self._unrepaired: set[int] = set()
        self._hooks: list[ActivationHook] = []
        self._input_probe: Callable[[str, str, torch.Tensor], None] | None = None
        self.clip_activations = True
        self._views = self._make_views()
        self._steps = [self._compile(op) for op in self.graph.ops]
        self._input_shape = self.graph.input_shape
        #: A text encoder takes token ids (N, T) and returns one embedding per row.
        self.text = self.graph.meta.get("input") == "token_ids"
        self._vocab, self._max_tokens = self._text_limits()
        self._n = {
            "inferences": 0,
            "scrubs": 0,
            "blocks_checked": 0,
            "corrupted": 0,
            "repaired": 0,
            "unrepairable": 0,
        }
        self.golden = gold.GoldenSet(self._fmap, self.golden_paths, self._ram_block)
        self._check_runnable()
        self.kernel_records: tuple[kern.PlanRecord, ...] = ()
        self.kernel_cache: kern.KernelCache | None = None
        self._plan_kernels(kernels, kernel_cache)

    def _check_runnable(self) -> None:
        """Refuse a graph whose data flow or shapes do not fit (checked once, on a zero tile)."""
        ops = self.graph.ops
        if not ops:
            return
        known = {ops[0].input}
        for op in ops:
            if op.input not in known:
                raise ModelIntegrityError(
                    "graph", f"op {op.name!r} reads {op.input!r}, which no earlier op produces"
                )
            known.add(op.output)
        if (
            (list(self._input_shape).count(-1) > 1 and not self.text)
            or any(d < 1 and d != -1 for d in self._input_shape)
            or math.prod(abs(d) for d in self._input_shape) > 1 << 24
        ):
            raise ModelIntegrityError("graph", f"bad input shape {self._input_shape}")
        shape = [1 if d == -1 else d for d in self._input_shape]
        if len(shape) != 4 and any(op.kind in ("conv2d", "avgpool_global") for op in ops):
            raise ModelIntegrityError("graph", f"conv graph needs a 4-d input, not {shape}")
        if self.text and (len(shape) != 2 or ops[0].kind != "embed"):
            raise ModelIntegrityError("graph", "a token-id graph must start with an embed op")
        try:
            self._run(torch.zeros(shape, dtype=torch.int64 if self.text else torch.float32))
        except RuntimeError as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ModelIntegrityError("graph", f"graph cannot run: {first}") from None

    def _plan_inputs(self) -> list[torch.Tensor]:
        """Example inputs at the batch sizes the kernels are timed for."""
        if self.text:
            return [torch.zeros(n, t, dtype=torch.int64) for n, t in TEXT_PLAN_SHAPES]
        shape = list(self._input_shape)
        out = []
        for n in PLAN_BATCHES:
            out.append(torch.zeros([n if d == -1 else d for d in shape]))
        return out

    def _text_limits(self) -> tuple[int, int]:
        """(vocabulary size, longest sequence) of a text encoder; (0, 0) otherwise."""
        if not self.text or not self._steps or self._steps[0].kind != "embed":
            return 0, 0
        views = self._steps[0].views
        return int(views["word"].shape[0]), int(views["position"].shape[0])

    def _gemm_layers(self) -> list[tuple[str, kern.GemmLayer]]:
        """Every conv/linear layer with the input shape it sees at each planned batch."""
        if self.text:
            return self._text_gemm_layers()
        return self._probed_gemm_layers()

    def _text_gemm_layers(self) -> list[tuple[str, kern.GemmLayer]]:
        """A text encoder's dense layers at each planned shape, without running the graph.

        Every ``dense`` op multiplies one row per token (``n * t`` rows) until a
        ``mean_pool`` leaves one row per text. Running the graph at 32 x 128 tokens to
        learn this cost a whole batch inference at every load, cached choices or not.
        """
        seen: list[tuple[str, kern.GemmLayer]] = []
        for n, t in TEXT_PLAN_SHAPES:
            rows = n * t
            for st in self._steps:
                if st.kind == "mean_pool":
                    rows = n
                elif st.kind == "dense":
                    w = st.views["weight"]
                    shape = (rows, int(w.shape[1]))
                    seen.append((st.name, kern.GemmLayer("linear", w, None, shape, signed=True)))
        return seen

    def _probed_gemm_layers(self) -> list[tuple[str, kern.GemmLayer]]:
        """The layers and input shapes seen by running the graph at each planned batch."""
        seen: list[tuple[str, kern.GemmLayer]] = []
        by_name = {st.name: st for st in self._steps}

        def record(name: str, kind: str, a: torch.Tensor) -> None:
            st = by_name[name]
            assert st.weight is not None
            if kind == "conv2d":
                layer = kern.GemmLayer(
                    "conv2d", st.weight, st.bias, tuple(a.shape), st.stride, st.padding
                )
            elif kind == "dense":  # int8 codes -127..127, no integer bias
                layer = kern.GemmLayer("linear", st.weight, None, tuple(a.shape), signed=True)
            else:
                layer = kern.GemmLayer("linear", st.weight, st.bias, tuple(a.shape))
            seen.append((name, layer))

        self._input_probe = record
        try:
            for x in self._plan_inputs():
                self._run(x)
        finally:
            self._input_probe = None
        return seen

    def _plan_kernels(self, kernels: str, cache_option: CacheOption) -> None:
        """Choose every layer's kernel (timed, cached or forced); see :mod:`fsw.ai.kernels`."""
        if kernels != "auto":  # forced: no timing, and no planning runs of the graph
            gemm = [st for st in self._steps if st.kind in ("conv2d", "linear", "dense")]
            records = []
            for st in gemm:
                k = kernels if st.kind == "conv2d" else kernels.removesuffix("_strided")
                st.plan = kern.LayerPlan([(1, k)])
                records.append(kern.PlanRecord(st.name, 0, k, "forced", {}))
            self.kernel_records = tuple(records)
            return
        layers = self._gemm_layers()
        cache = None
        if kernels == "auto" and cache_option is not False:
            path = kern.default_cache_path() if cache_option is None else Path(cache_option)
            cache = kern.KernelCache.open(path)
        plans, records = kern.plan_layers(layers, forced=kernels, cache=cache)
        for st in self._steps:
            if st.name in plans:
                st.plan = plans[st.name]
        self.kernel_records = tuple(records)
        self.kernel_cache = cache

    def kernel_choices(self) -> dict[str, dict[str, Any]]:
        """Per layer and planned row count: the kernel, where the choice came from, the times.

        >>> rt = Runtime.load("fsw/ai/artifacts/cloudnet-s.gnm", kernels="widen")
        >>> rt.kernel_choices()["conv1"]
        {'any M': {'kernel': 'widen', 'source': 'forced'}}
        """
        out: dict[str, dict[str, Any]] = {}
        for r in self.kernel_records:
            out.setdefault(r.op, {})[f"M={r.rows}" if r.rows else "any M"] = {
                "kernel": r.kernel,
                "source": r.source,
                **{k: v for k, v in r.timing.items() if k not in ("kernel", "rows")},
            }
        return out

    # --- construction -------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        path: PathLike,
        *,
        golden_paths: Sequence[PathLike] = (),
        hmac_key: bytes | None = None,
        name: str | None = None,
        on_event: EventSink | None = None,
        kernels: str = "auto",
        kernel_cache: CacheOption = None,
    ) -> Runtime:
        """Verify ``path`` completely and load it.

        ``path`` is the first golden source for repairs, ``golden_paths`` the next ones.
        With ``hmac_key`` the file must carry a valid signature. Raises
        :class:`ModelIntegrityError` naming the first damaged region (and block).
        """
        p = Path(path)
        try:
            data = p.read_bytes()
        except OSError as e:
            raise ModelIntegrityError("file", f"cannot read {p}: {e.strerror or e}") from None
        try:
            model = gnm.decode(data, hmac_key=hmac_key)
        except ModelIntegrityError as e:
            raise ModelIntegrityError(
                e.region, f"{p.name}: {e.detail}", block=e.block, offset=e.offset
            ) from None
        return cls(
            model,
            golden_paths=(p, *golden_paths),
            name=name,
            on_event=on_event,
            kernels=kernels,
            kernel_cache=kernel_cache,
        )

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        golden_paths: Sequence[PathLike] = (),
        hmac_key: bytes | None = None,
        name: str | None = None,
        on_event: EventSink | None = None,
        kernels: str = "auto",
        kernel_cache: CacheOption = None,
    ) -> Runtime:
        """Like :meth:`load` for a file already in memory (repairs use ``golden_paths``)."""
        return cls(
            gnm.decode(data, hmac_key=hmac_key),
            golden_paths=golden_paths,
            name=name,
            on_event=on_event,
            kernels=kernels,
            kernel_cache=kernel_cache,
        )

    def _make_views(self) -> dict[str, torch.Tensor]:
        tdt = {
            "int8": torch.int8,
            "uint8": torch.uint8,
            "int32": torch.int32,
            "float32": torch.float32,
        }
        views = {}
        for t in self.graph.tensors:
            itemsize = gnm.DTYPES[t.dtype].itemsize
            v = torch.frombuffer(
                self._mm, dtype=tdt[t.dtype], count=t.nbytes // itemsize, offset=t.offset
            )
            views[t.name] = v.view(t.shape)
        return views

    def _compile(self, op: gnm.OpSpec) -> _Step:
        return _Step(op, {role: self._views[tname] for role, tname in op.tensors.items()})

    # --- properties -----------------------------------------------------------------------

    @property
    def block_crcs(self) -> tuple[int, ...]:
        """The verified CRC-32C of every arena block (what a hardware scrubber compares to)."""
        return tuple(self._table)

    @property
    def enabled(self) -> bool:
        """False after a block could not be repaired; inference then raises."""
        return self._enabled

    def stats(self) -> RuntimeStats:
        """A snapshot of the cumulative counters."""
        return RuntimeStats(enabled=self._enabled, **self._n)

    def tensor_regions(self) -> dict[str, tuple[int, int]]:
        """Arena byte range ``[start, end)`` of every tensor (for targeted fault injection)."""
        return {t.name: (t.offset, t.offset + t.nbytes) for t in self.graph.tensors}

    def tensor(self, name: str) -> torch.Tensor:
        """The live arena view of one tensor (shares memory with :attr:`arena`)."""
        return self._views[name]

    def add_activation_hook(self, hook: ActivationHook) -> HookHandle:
        """Call ``hook(op_name, op_kind, activation)`` after every op; it may edit it in place.

        Integer activations arrive as float32 tensors holding the integer codes. After the
        hooks the runtime re-applies the calibrated clamp (unless ``clip_activations`` is
        False), which is what bounds the damage of a corrupted activation.
        """
        self._hooks.append(hook)
        return HookHandle(self._hooks, hook)

    # --- inference --------------------------------------------------------------------------

    def infer(self, x: torch.Tensor | np.ndarray, *, verify: bool = False) -> torch.Tensor:
        """Run the network on ``x`` (float32, (N, 4, 64, 64) reflectance): (N, 2) logits.

        The output is bit-for-bit deterministic, independent of batch size and thread count.
        With ``verify=True`` every block is checked (and repaired) before and after the run,
        and the run repeated if a block went bad during it: use it when a result must be
        trusted. Raises :class:`ModelDisabledError` when the model is disabled.
        """
        xt = self._check_input(x)
        if verify:
            self._ensure_intact()
        if not self._enabled:
            raise ModelDisabledError(
                f"model {self.name!r} is disabled: arena blocks {sorted(self._unrepaired)} "
                "could not be repaired; use the fallback model"
            )
        out = self._run(xt)
        if verify and self.verify():
            self._ensure_intact()
            out = self._run(xt)
            if self.verify():
                raise ModelIntegrityError("arena", "weights keep changing during inference")
        self._n["inferences"] += 1
        return out

    def classify(self, x: torch.Tensor | np.ndarray, *, verify: bool = False) -> list[Prediction]:
        """:meth:`infer`, then one :class:`Prediction` per tile (keep if P(keep) >= 0.5)."""
        if self.text:
            raise AiError(f"model {self.name!r} is a text encoder: use infer() or fsw.ai.text")
        logits = self.infer(x, verify=verify)
        p = torch.sigmoid(logits.double())
        out = []
        for p_keep, cloud in p.tolist():
            keep = p_keep >= 0.5
            out.append(
                Prediction(
                    keep=keep, confidence=p_keep if keep else 1.0 - p_keep, cloud_fraction=cloud
                )
            )
        return out

    def _check_input(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        if self.text:
            return self._check_tokens(x)
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        if not isinstance(x, torch.Tensor):
            raise AiError(f"input must be a float32 tensor, got {type(x).__name__}")
        want = self._input_shape
        if x.dim() != len(want) or any(
            w != -1 and w != s for w, s in zip(want, x.shape, strict=True)
        ):
            shape = "x".join("N" if w == -1 else str(w) for w in want)
            raise AiError(f"input shape {tuple(x.shape)} does not match the model ({shape})")
        if x.dtype != torch.float32:
            x = x.float()
        return x

    def _check_tokens(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(np.asarray(x))
        if not isinstance(x, torch.Tensor):
            raise AiError(f"input must be a tensor of token ids, got {type(x).__name__}")
        if x.dtype.is_floating_point or x.dtype == torch.bool or x.dim() != 2:
            raise AiError(
                f"input must be integer token ids of shape (N, T), got {x.dtype} {tuple(x.shape)}"
            )
        if not 1 <= x.shape[1] <= self._max_tokens or x.shape[0] < 1:
            raise AiError(f"{x.shape[1]} tokens per row: this model takes 1..{self._max_tokens}")
        if int(x.min()) < 0 or int(x.max()) >= self._vocab:
            raise AiError(f"token ids must lie in 0..{self._vocab - 1}")
        return x.to(torch.int64)

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        env: dict[str, torch.Tensor] = {}
        first = self.graph.ops[0].input if self.graph.ops else "input"
        env[first] = x
        cur = x
        with torch.inference_mode():
            for st in self._steps:
                cur = self._exec(st, env[st.input], env)
                if self._hooks:
                    cur = cur.contiguous()  # hooks may edit a flat view in place
                    for hook in self._hooks:
                        hook(st.name, st.kind, cur)
                    if self.clip_activations:
                        self._reclip(st, cur)
                env[st.output] = cur
        return cur

    def _exec(self, st: _Step, a: torch.Tensor, env: dict[str, torch.Tensor]) -> torch.Tensor:
        if st.kind in _TEXT_OPS:
            return self._exec_text(st, a, env)
        if st.kind == "quantize":
            assert st.mult is not None
            # item() reads the arena now; a python scalar takes torch's vectorised path.
            return (a * st.mult.item()).round_().clamp_(st.clamp_lo, st.clamp_hi)
        if st.kind == "avgpool_global":
            return a.mean(dim=(2, 3)).round_()
        assert st.weight is not None and st.bias is not None and st.mult is not None
        if self._input_probe is not None:
            self._input_probe(st.name, st.kind, a)
        kernel = st.plan.fixed or st.plan.pick(_rows(st, a))
        if st.kind == "conv2d":
            acc = kern.conv_acc(kernel, a, st.weight, st.bias, st.stride, st.padding)
            acc.mul_(st.mult.view(1, -1, 1, 1))
            return acc.round_().clamp_(st.clamp_lo, st.clamp_hi)
        # linear: float logits, clipped to the calibrated output range
        acc = kern.linear_acc(kernel, a, st.weight, st.bias)
        acc.mul_(st.mult)
        assert st.clip is not None
        # NaN (possible only from a corrupted float scale) becomes 0, then the Ranger clip.
        return torch.maximum(torch.minimum(acc.nan_to_num_(0.0), st.clip[1]), st.clip[0])

    def _exec_text(self, st: _Step, a: torch.Tensor, env: dict[str, torch.Tensor]) -> torch.Tensor:
        """The text-encoder ops (format 1.1); float32 except the int8 GEMMs of ``dense``."""
        v = st.views
        if st.kind == "embed":
            t = a.shape[1]
            x = v["word"][a].float().mul_(v["word_scale"][a].unsqueeze(-1))
            x += v["position"][:t].float() * v["position_scale"][:t, None]
            x += v["token_type"]
            h = x.shape[-1]
            return functional.layer_norm(x, (h,), v["ln_weight"], v["ln_bias"], st.attrs["eps"])
        if st.kind == "dense":
            return self._dense(st, a)
        if st.kind == "attention":
            return _attention(a, env[st.attrs["mask"]], int(st.attrs["heads"]))
        if st.kind == "add_layernorm":
            x = a + env[st.attrs["residual"]]
            w = v["weight"]
            return functional.layer_norm(x, (w.shape[0],), w, v["bias"], st.attrs["eps"])
        if st.kind == "gelu":
            return functional.gelu(a)
        if st.kind == "mean_pool":
            mask = (env[st.attrs["mask"]] != 0).unsqueeze(-1).float()
            return (a * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1e-9)
        return functional.normalize(a, p=2.0, dim=-1)  # l2_normalize

    def _dense(self, st: _Step, a: torch.Tensor) -> torch.Tensor:
        """Clip to the calibrated range, smooth, int8 per token, exact GEMM, back to float.

        ``smooth`` (SmoothQuant) divides each input channel by the factor the exporter
        multiplied into that weight column. Codes are symmetric (``q = round(x / s)``)
        or, with ``act_quant="asymmetric"``, shifted by a per-token zero point
        (``q = round(x / s) + z``, corrected with the weight row sums). Everything after
        the integer GEMM is the same float32 code for every kernel: bit-identical outputs.
        """
        v = st.views
        w = v["weight"]
        k = w.shape[1]
        clip = v["clip"]
        x = torch.clamp(a.reshape(-1, k), min=clip[0], max=clip[1]).nan_to_num_(0.0)
        x.mul_(v["smooth"])
        if st.attrs.get("act_quant") == "asymmetric":
            lo = x.amin(dim=1, keepdim=True)
            scale = ((x.amax(dim=1, keepdim=True) - lo) / 254.0).clamp_min_(1e-12)
            zero = (-lo / scale).round_().sub_(kern.CODE_MAX)
            q = (x / scale).round_().add_(zero).clamp_(-kern.CODE_MAX, kern.CODE_MAX)
        else:
            scale = (x.abs().amax(dim=1, keepdim=True) / kern.CODE_MAX).clamp_min_(1e-12)
            zero = None
            q = (x / scale).round_().clamp_(-kern.CODE_MAX, kern.CODE_MAX)
        if self._input_probe is not None:
            self._input_probe(st.name, st.kind, q)
        kernel = st.plan.fixed or st.plan.pick(q.shape[0])
        acc = kern.linear_acc(kernel, q, w, None)
        if zero is not None:
            acc.sub_(zero * w.sum(dim=1, dtype=torch.int32).float())
        y = acc.mul_(scale).mul_(v["scale"]).add_(v["bias"])
        return y.view(*a.shape[:-1], w.shape[0])

    def _reclip(self, st: _Step, t: torch.Tensor) -> None:
        if st.kind == "linear":
            assert st.clip is not None
            torch.maximum(torch.minimum(t.nan_to_num_(0.0), st.clip[1]), st.clip[0], out=t)
        elif st.kind in ("conv2d", "quantize"):
            t.round_().clamp_(st.clamp_lo, st.clamp_hi)
        elif st.kind == "avgpool_global":
            t.round_().clamp_(0.0, 127.0)
        # text ops: the next dense op clips its input to the calibrated range

    # --- integrity ---------------------------------------------------------------------------

    def _block(self, i: int) -> memoryview:
        return self._blocks[i]

    def verify(self) -> list[int]:
        """Indices of the arena blocks whose CRC-32C no longer matches (no repair)."""
        self._check_table(repair=True)
        table, blocks = self._table, self._blocks
        return [i for i in range(self.arena_blocks) if crc32c_buffer(blocks[i]) != table[i]]

    def scrub(
        self, budget_bytes: int | None = None, *, golden_paths: Sequence[PathLike] | None = None
    ) -> ScrubReport:
        """Check blocks round-robin and repair the bad ones from the golden file(s).

        ``budget_bytes=None`` checks the whole arena; otherwise at least one block and at
        most ``budget_bytes`` worth of blocks, continuing where the last call stopped.
        ``golden_paths`` overrides the repair sources for this call.
        """
        t0 = time.perf_counter()
        events: list[AiEvent] = []
        if crc32c_buffer(self._table) != self._table_crc and self._check_table(
            repair=True, sources=golden_paths
        ):
            events.append(self._emit("table_repaired", None, "CRC table in RAM reloaded"))
        n = self.arena_blocks
        if budget_bytes is None:
            todo, i = n, 0
        else:
            if budget_bytes < 0:
                raise AiError(f"scrub budget must be >= 0 bytes, got {budget_bytes}")
            todo, i = min(n, max(1, budget_bytes // self.block_size)), self._cursor
        bad: list[int] = []
        failed_groups: list[int] = []
        checked = nbytes = 0
        table, blocks, unrepaired = self._table, self._blocks, self._unrepaired
        group_bytes = GROUP_BLOCKS * self.block_size
        while checked < todo:
            if (
                i % GROUP_BLOCKS == 0
                and todo - checked >= GROUP_BLOCKS
                and (i // GROUP_BLOCKS < self._groups)
            ):
                g = i // GROUP_BLOCKS
                if crc32c_buffer(self._group_views[g]) == self._group_crc[g]:
                    checked += GROUP_BLOCKS
                    nbytes += group_bytes
                    i = (i + GROUP_BLOCKS) % n
                    continue
                failed_groups.append(g)  # localise: fall through to block-by-block checks
            blk = blocks[i]
            if crc32c_buffer(blk) != table[i]:
                bad.append(i)
            elif unrepaired and i in unrepaired:
                unrepaired.discard(i)  # repaired by someone else (e.g. repair())
            checked += 1
            nbytes += len(blk)
            i = (i + 1) % n
        if budget_bytes is not None:
            self._cursor = i
        self._n["scrubs"] += 1
        if not bad and not events and not failed_groups and self._enabled == (not unrepaired):
            self._n["blocks_checked"] += checked  # the common case: nothing to repair
            return ScrubReport(checked, nbytes, 0, 0, 0, (), (), time.perf_counter() - t0)
        rep = self._repair(bad, golden_paths, events, t0, checked, nbytes)
        self._refresh_groups(failed_groups)  # a hit on a group CRC itself heals here
        return rep

    def repair(
        self, blocks: Iterable[int] | None = None, *, golden_paths: Sequence[PathLike] | None = None
    ) -> ScrubReport:
        """Check ``blocks`` (default: all) and repair the bad ones, e.g. from a new golden path."""
        t0 = time.perf_counter()
        wanted = range(self.arena_blocks) if blocks is None else sorted(set(blocks))
        events: list[AiEvent] = []
        if self._check_table(repair=True, sources=golden_paths):
            events.append(self._emit("table_repaired", None, "CRC table in RAM reloaded"))
        bad = []
        nbytes = 0
        for i in wanted:
            if not 0 <= i < self.arena_blocks:
                raise AiError(f"block {i} is outside the arena (0..{self.arena_blocks - 1})")
            nbytes += len(self._blocks[i])
            if crc32c_buffer(self._blocks[i]) != self._table[i]:
                bad.append(i)
            else:
                self._unrepaired.discard(i)
        return self._repair(bad, golden_paths, events, t0, len(wanted), nbytes)

    def _repair(
        self,
        bad: list[int],
        golden_paths: Sequence[PathLike] | None,
        events: list[AiEvent],
        t0: float,
        checked: int,
        nbytes: int,
    ) -> ScrubReport:
        repaired: list[int] = []
        lost: list[int] = []
        sources = self._sources(golden_paths)
        for i in bad:
            src = self._fetch_block(i, sources)
            if src is None:
                lost.append(i)
                if i not in self._unrepaired:
                    self._unrepaired.add(i)
                    events.append(
                        self._emit(
                            "block_unrepairable",
                            i,
                            f"no golden copy of block {i} verifies "
                            f"(tried {', '.join(str(p) for p in sources) or 'no golden file'})",
                        )
                    )
            else:
                self._unrepaired.discard(i)
                repaired.append(i)
                events.append(self._emit("block_repaired", i, f"block {i} restored from {src}"))
        self._refresh_groups({i // GROUP_BLOCKS for i in repaired})
        if self._unrepaired and self._enabled:
            self._enabled = False
            events.append(
                self._emit(
                    "model_disabled",
                    None,
                    f"blocks {sorted(self._unrepaired)} unrepairable: inference disabled",
                )
            )
        elif not self._unrepaired and not self._enabled:
            self._enabled = True
            events.append(self._emit("model_enabled", None, "all blocks verify again"))
        self._n["blocks_checked"] += checked
        self._n["corrupted"] += len(bad)
        self._n["repaired"] += len(repaired)
        self._n["unrepairable"] += len(lost)
        return ScrubReport(
            blocks_checked=checked,
            bytes_checked=nbytes,
            corrupted=len(bad),
            repaired=len(repaired),
            unrepairable=len(lost),
            corrupted_blocks=tuple(bad),
            unrepairable_blocks=tuple(lost),
            seconds=time.perf_counter() - t0,
            events=tuple(events),
        )

    def _ensure_intact(self) -> None:
        bad = self.verify()
        if bad:
            self.repair(bad)
        if not self._enabled:
            raise ModelDisabledError(
                f"model {self.name!r} is disabled: arena blocks {sorted(self._unrepaired)} "
                "could not be repaired; use the fallback model"
            )

    def _emit(self, kind: str, block: int | None, detail: str) -> AiEvent:
        ev = AiEvent(kind=kind, model=self.name, block=block, detail=detail)
        log.log(
            logging.INFO
            if kind in ("block_repaired", "model_enabled", "golden_healed")
            else logging.WARNING,
            "%s: %s",
            self.name,
            detail,
        )
        if self.on_event is not None:
            self.on_event(ev)
        return ev

    def _sources(self, override: Sequence[PathLike] | None) -> tuple[Path, ...]:
        return self.golden_paths if override is None else tuple(Path(p) for p in override)

    def _fetch_block(self, i: int, sources: Sequence[Path]) -> Path | None:
        """Copy block ``i`` from the first golden source whose copy verifies; its path.

        The block is read at the offset of this model's verified file and accepted only
        if its CRC matches, so a golden copy with a damaged header still serves.
        """
        lo = i * self.block_size
        size = min(self.block_size, self.arena_bytes - lo)
        seg = gold.Segment("arena", self._arena_offset + lo, size, self._table[i], i)
        found = gold.read_segment(sources, seg)
        if found is None:
            log.warning("%s: no golden copy of block %d verifies", self.name, i)
            return None
        self._mm[lo : lo + size] = found[0]
        return found[1] if crc32c_buffer(self._blocks[i]) == self._table[i] else None

    def _check_table(self, *, repair: bool, sources: Sequence[PathLike] | None = None) -> bool:
        """Check the RAM copy of the CRC table; reload it from a golden file if hit.

        Returns True if it was reloaded. Raises if it is damaged and cannot be reloaded.
        """
        if crc32c_buffer(self._table) == self._table_crc:
            return False
        if repair:
            tables = [s for s in self._fmap.segments if s.region in ("table-a", "table-b")]
            for seg in tables:  # copy A of every source first, then copy B
                found = gold.read_segment(self._sources(sources), seg)
                if found is not None:
                    t = gnm.read_table(found[0], 0, self.arena_blocks)
                    if t is not None:
                        self._table = _u32_array(t)
                        self._table_crc = crc32c_buffer(self._table)
                        return True
        self._enabled = False
        raise ModelIntegrityError(
            "table", "CRC table in RAM is damaged and no golden copy verifies"
        )

    # --- golden copies -------------------------------------------------------------------------

    def _ram_block(self, i: int) -> bytes | None:
        """Arena block ``i`` from RAM if it verifies (a source for healing a golden copy)."""
        blk = self._blocks[i]
        return bytes(blk) if crc32c_buffer(blk) == self._table[i] else None

    def check_golden(self, budget_bytes: int | None = None) -> gold.GoldenReport:
        """Check the next ``budget_bytes`` of the golden copies and heal what is bad.

        ``None`` checks every copy whole. Each bad segment of a copy (a header bit, a
        block, a table...) is rewritten from another copy or the verified RAM arena,
        with a ``golden_bad`` event and then ``golden_healed`` or ``golden_unhealable``.
        """
        if budget_bytes is not None and budget_bytes < 0:
            raise AiError(f"golden check budget must be >= 0 bytes, got {budget_bytes}")
        rep = self.golden.check(budget_bytes)
        for f in rep.findings:
            self._emit("golden_bad", None, f"golden copy {f.path}: {f.what} is damaged")
            if f.healed:
                self._emit(
                    "golden_healed",
                    None,
                    f"golden copy {f.path}: {f.what} rewritten from {f.source}",
                )
            else:
                self._emit(
                    "golden_unhealable",
                    None,
                    f"golden copy {f.path}: {f.what} not rewritten (no good source or read-only)",
                )
        return rep

    def _refresh_groups(self, groups: Iterable[int]) -> None:
        """Recompute group CRCs, but only of groups whose every block verifies."""
        for g in set(groups):
            if g < self._groups and all(
                crc32c_buffer(self._blocks[i]) == self._table[i]
                for i in range(g * GROUP_BLOCKS, (g + 1) * GROUP_BLOCKS)
            ):
                self._group_crc[g] = crc32c_buffer(self._group_views[g])


_TEXT_OPS = frozenset(
    {"embed", "dense", "attention", "add_layernorm", "gelu", "mean_pool", "l2_normalize"}
)


def _attention(qkv: torch.Tensor, tokens: torch.Tensor, heads: int) -> torch.Tensor:
    """Multi-head self-attention in float32 over fused (N, T, 3H) projections; pads masked."""
    n, t, h3 = qkv.shape
    h = h3 // 3
    d = h // heads
    q, k, v = qkv.view(n, t, 3, heads, d).permute(2, 0, 3, 1, 4)  # each (N, heads, T, d)
    scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(d))
    pad = (tokens == 0).view(n, 1, 1, t)
    scores = scores.masked_fill_(pad, torch.finfo(torch.float32).min)
    ctx = torch.softmax(scores, dim=-1) @ v  # (N, heads, T, d)
    return ctx.transpose(1, 2).reshape(n, t, h)


def _rows(st: _Step, a: torch.Tensor) -> int:
    """M, the rows of the GEMM a conv2d or linear step runs on input ``a``."""
    if st.kind != "conv2d":
        return int(math.prod(a.shape[:-1]))
    assert st.weight is not None
    n, _, h, w = a.shape
    kh, kw = st.weight.shape[2], st.weight.shape[3]
    ho = (h + 2 * st.padding[0] - kh) // st.stride[0] + 1
    return int(n * ho * ((w + 2 * st.padding[1] - kw) // st.stride[1] + 1))


def _u32_array(values: np.ndarray) -> array[int]:
    """An ``array('I')`` of 32-bit words: a flat buffer with fast Python-int indexing."""
    out = array("I", (int(v) for v in values))
    if out.itemsize != 4:  # pragma: no cover - 'I' is 32 bits on every supported platform
        out = array("L", (int(v) for v in values))
    return out
