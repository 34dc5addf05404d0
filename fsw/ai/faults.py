"""Fault injection for the int8 runtime: single-event upsets in weights and activations.

Bits are addressed as (arena byte offset, bit) with bit 0 the least significant bit.
Flipping is an XOR, so applying the same flips twice restores the arena.

>>> arena = np.zeros(8192, dtype=np.uint8)
>>> rng = np.random.default_rng(1)
>>> flips = inject(arena, rng, mode="burst", burst_bits=4)
>>> len(flips), int(np.unpackbits(arena).sum())
(4, 4)
>>> apply(arena, flips); int(arena.sum())
0

Modes: ``single`` (one bit), ``double`` (two distinct bits of one 32-bit word, the typical
multi-cell upset of SRAM), ``burst`` (``burst_bits`` consecutive bits, possibly across
bytes). Targets: ``any`` (uniform), ``msb`` (bit 7 of a byte), ``sign`` (sign bit of an
element; needs the tensor table), ``exponent`` (top exponent bit of a float32; needs the
tensor table). :func:`flips_at_ber` draws independent upsets at a bit-error rate.
:class:`ActivationFaults` is a runtime hook flipping bits in activations.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fsw.ai.errors import AiError
from fsw.ai.gnm import DTYPES, TensorInfo

MODES = ("single", "double", "burst")
TARGETS = ("any", "msb", "sign", "exponent")


@dataclass(slots=True, frozen=True)
class Flip:
    """One flipped bit: arena byte offset and bit (0 = LSB)."""

    byte: int
    bit: int


def apply(arena: np.ndarray, flips: Iterable[Flip]) -> None:
    """XOR every flip into ``arena`` (a writable uint8 array, e.g. ``Runtime.arena``)."""
    for f in flips:
        if not 0 <= f.byte < arena.size or not 0 <= f.bit < 8:
            raise AiError(f"flip {f} is outside the arena ({arena.size} bytes)")
        arena[f.byte] ^= np.uint8(1 << f.bit)


def _pick_start(
    rng: np.random.Generator,
    n_bytes: int,
    target: str,
    tensors: Sequence[TensorInfo] | None,
) -> Flip:
    if target == "any":
        b = int(rng.integers(n_bytes * 8))
        return Flip(b // 8, b % 8)
    if target == "msb":
        return Flip(int(rng.integers(n_bytes)), 7)
    if not tensors:
        raise AiError(f"target {target!r} needs the tensor table (Runtime.graph.tensors)")
    if target == "sign":
        pool = [t for t in tensors if t.nbytes > 0]
    elif target == "exponent":
        pool = [t for t in tensors if t.dtype == "float32"]
    else:
        raise AiError(f"unknown fault target {target!r}: use one of {', '.join(TARGETS)}")
    if not pool:
        raise AiError(f"no tensor can take a {target!r} fault")
    sizes = np.array([t.nbytes for t in pool], dtype=np.float64)
    t = pool[int(rng.choice(len(pool), p=sizes / sizes.sum()))]
    itemsize = DTYPES[t.dtype].itemsize
    elem = int(rng.integers(t.nbytes // itemsize))
    top = t.offset + elem * itemsize + itemsize - 1  # little-endian: last byte holds the sign
    return Flip(top, 7 if target == "sign" else 6)


def random_event(
    n_bytes: int,
    rng: np.random.Generator,
    *,
    mode: str = "single",
    target: str = "any",
    tensors: Sequence[TensorInfo] | None = None,
    burst_bits: int = 4,
) -> list[Flip]:
    """The flips of one upset event in an arena of ``n_bytes`` (not applied)."""
    if n_bytes <= 0:
        raise AiError("cannot inject into an empty arena")
    if mode not in MODES:
        raise AiError(f"unknown fault mode {mode!r}: use one of {', '.join(MODES)}")
    first = _pick_start(rng, n_bytes, target, tensors)
    if mode == "single":
        return [first]
    if mode == "double":
        word = first.byte - first.byte % 4
        span = min(4, n_bytes - word) * 8
        first_bit = (first.byte - word) * 8 + first.bit
        other = int(rng.integers(span - 1))
        other += other >= first_bit
        return [first, Flip(word + other // 8, other % 8)]
    if not 2 <= burst_bits <= 64:
        raise AiError(f"burst length must be 2..64 bits, got {burst_bits}")
    start = first.byte * 8 + first.bit
    start = min(start, n_bytes * 8 - burst_bits)
    return [Flip((start + k) // 8, (start + k) % 8) for k in range(burst_bits)]


def inject(
    arena: np.ndarray,
    rng: np.random.Generator,
    *,
    mode: str = "single",
    target: str = "any",
    tensors: Sequence[TensorInfo] | None = None,
    burst_bits: int = 4,
) -> list[Flip]:
    """Draw one upset event, apply it to ``arena`` and return its flips."""
    flips = random_event(
        arena.size, rng, mode=mode, target=target, tensors=tensors, burst_bits=burst_bits
    )
    apply(arena, flips)
    return flips


def flips_at_ber(n_bytes: int, ber: float, rng: np.random.Generator) -> list[Flip]:
    """Independent upsets: each of the ``8 * n_bytes`` bits flips with probability ``ber``."""
    if not 0.0 <= ber <= 1.0:
        raise AiError(f"bit-error rate must be within 0..1, got {ber}")
    n_bits = n_bytes * 8
    k = int(rng.binomial(n_bits, ber))
    pos = rng.choice(n_bits, size=k, replace=False) if k else np.empty(0, dtype=np.int64)
    return [Flip(int(p) // 8, int(p) % 8) for p in np.sort(pos)]


def inject_ber(arena: np.ndarray, ber: float, rng: np.random.Generator) -> list[Flip]:
    """Apply :func:`flips_at_ber` to ``arena``; returns the flips."""
    flips = flips_at_ber(arena.size, ber, rng)
    apply(arena, flips)
    return flips


class ActivationFaults:
    """A runtime activation hook: each activation value is hit with probability ``rate``.

    A hit flips one random bit of the value as it is stored: with ``storage="float32"``
    (default; how the ``sgemm`` kernels hold activations in RAM) one of its 32 bits, with
    ``storage="code"`` one of the 8 bits of its integer code (an int8 activation buffer).
    The float logits of the ``linear`` head are always float32. ``ops`` limits it to some
    op names.

    >>> from fsw.ai.runtime import Runtime
    >>> rt = Runtime.load("fsw/ai/artifacts/cloudnet-s.gnm")
    >>> faults = ActivationFaults(1e-3, np.random.default_rng(0))
    >>> handle = rt.add_activation_hook(faults)
    >>> _ = rt.infer(torch.zeros(1, 4, 64, 64)); handle.remove()
    >>> faults.hits > 0
    True
    """

    def __init__(
        self,
        rate: float,
        rng: np.random.Generator,
        ops: Iterable[str] | None = None,
        storage: str = "float32",
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise AiError(f"activation fault rate must be within 0..1, got {rate}")
        if storage not in ("float32", "code"):
            raise AiError(f"activation storage must be 'float32' or 'code', got {storage!r}")
        self.storage = storage
        self.rate = rate
        self.rng = rng
        self.ops = None if ops is None else frozenset(ops)
        self.hits = 0

    def __call__(self, op_name: str, op_kind: str, t: torch.Tensor) -> None:
        if self.ops is not None and op_name not in self.ops:
            return
        n = t.numel()
        k = int(self.rng.binomial(n, self.rate))
        if k == 0:
            return
        flat = t.view(-1)
        idx = torch.from_numpy(self.rng.choice(n, size=k, replace=False))
        vals = flat[idx]
        if op_kind != "linear" and self.storage == "code":  # 8-bit integer codes
            bits = torch.from_numpy(self.rng.integers(0, 8, size=k))
            codes = vals.to(torch.int64) & 0xFF
            flat[idx] = (codes ^ (1 << bits)).to(t.dtype)
        else:
            bits = torch.from_numpy(self.rng.integers(0, 32, size=k))
            raw = vals.contiguous().view(torch.int32).to(torch.int64)
            flat[idx] = (raw ^ (1 << bits)).to(torch.int32).view(torch.float32)
        self.hits += k
