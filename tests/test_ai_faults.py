"""Fault injection: flips land where asked, undo cleanly, and follow the bit-error rate."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fsw.ai import AiError, shipped_dir
from fsw.ai import faults as fi
from fsw.ai.runtime import Runtime

SMALL = shipped_dir() / "cloudnet-s.gnm"


def bits_set(a: np.ndarray) -> int:
    return int(np.unpackbits(a).sum())


@pytest.mark.parametrize("mode,n", [("single", 1), ("double", 2), ("burst", 4)])
def test_modes_flip_the_right_number_of_bits_and_undo(mode: str, n: int) -> None:
    rng = np.random.default_rng(3)
    arena = np.zeros(10000, dtype=np.uint8)
    for _ in range(200):
        flips = fi.inject(arena, rng, mode=mode)
        assert len(flips) == n == bits_set(arena)
        assert len({(f.byte, f.bit) for f in flips}) == n
        fi.apply(arena, flips)
        assert bits_set(arena) == 0


def test_double_stays_in_one_word_and_burst_is_contiguous() -> None:
    rng = np.random.default_rng(5)
    for _ in range(300):
        a, b = fi.random_event(4097, rng, mode="double")
        assert a.byte // 4 == b.byte // 4 and b.byte < 4097
        burst = fi.random_event(4097, rng, mode="burst", burst_bits=7)
        pos = [f.byte * 8 + f.bit for f in burst]
        assert pos == list(range(pos[0], pos[0] + 7)) and pos[-1] < 4097 * 8


def test_targets_hit_sign_and_exponent_bits() -> None:
    rt = Runtime.load(SMALL)
    rng = np.random.default_rng(0)
    floats = {t.name: t for t in rt.graph.tensors if t.dtype == "float32"}
    for _ in range(100):
        (f,) = fi.random_event(rt.arena.size, rng, target="msb")
        assert f.bit == 7
        (f,) = fi.random_event(rt.arena.size, rng, target="exponent", tensors=rt.graph.tensors)
        assert f.bit == 6 and any(
            t.offset <= f.byte < t.offset + t.nbytes and (f.byte - t.offset) % 4 == 3
            for t in floats.values()
        )
        (f,) = fi.random_event(rt.arena.size, rng, target="sign", tensors=rt.graph.tensors)
        assert f.bit == 7
    with pytest.raises(AiError, match="tensor table"):
        fi.random_event(100, rng, target="sign")


def test_bit_error_rate_extremes_and_mean() -> None:
    rng = np.random.default_rng(1)
    assert fi.flips_at_ber(1000, 0.0, rng) == []
    arena = np.zeros(100, dtype=np.uint8)
    fi.inject_ber(arena, 1.0, rng)
    assert bits_set(arena) == 800
    counts = [len(fi.flips_at_ber(10000, 1e-3, rng)) for _ in range(50)]
    assert 70 < np.mean(counts) < 90  # expected 80


@pytest.mark.parametrize(
    "call",
    [
        lambda: fi.apply(np.zeros(4, np.uint8), [fi.Flip(4, 0)]),
        lambda: fi.apply(np.zeros(4, np.uint8), [fi.Flip(0, 8)]),
        lambda: fi.random_event(0, np.random.default_rng()),
        lambda: fi.random_event(10, np.random.default_rng(), mode="triple"),
        lambda: fi.random_event(10, np.random.default_rng(), mode="burst", burst_bits=1),
        lambda: fi.flips_at_ber(10, 1.5, np.random.default_rng()),
        lambda: fi.ActivationFaults(-0.1, np.random.default_rng()),
    ],
)
def test_bad_requests_raise_ai_error(call: object) -> None:
    with pytest.raises(AiError):
        call()  # type: ignore[operator]


@given(st.integers(1, 50000), st.sampled_from(fi.MODES), st.integers(2, 64), st.integers(0, 999))
def test_events_always_fall_inside_the_arena(n: int, mode: str, burst: int, seed: int) -> None:
    if mode == "burst" and burst > 8 * n:
        return
    flips = fi.random_event(n, np.random.default_rng(seed), mode=mode, burst_bits=burst)
    assert all(0 <= f.byte < n and 0 <= f.bit < 8 for f in flips)


def test_activation_faults_hit_at_the_requested_rate() -> None:
    rt = Runtime.load(SMALL)
    x = torch.rand(4, 4, 64, 64)
    clean = rt.infer(x)
    none = fi.ActivationFaults(0.0, np.random.default_rng(0))
    h = rt.add_activation_hook(none)
    assert torch.equal(rt.infer(x), clean) and none.hits == 0
    h.remove()
    heavy = fi.ActivationFaults(0.05, np.random.default_rng(0))
    h = rt.add_activation_hook(heavy)
    hit = rt.infer(x)
    h.remove()
    assert heavy.hits > 0 and not torch.equal(hit, clean)
    only = fi.ActivationFaults(1.0, np.random.default_rng(0), ops={"head"})
    h = rt.add_activation_hook(only)
    rt.infer(x)
    h.remove()
    assert only.hits == x.shape[0] * 2


@pytest.mark.parametrize("storage", ["code", "float32"])
def test_activation_fault_storage_models(storage: str) -> None:
    rt = Runtime.load(SMALL)
    rt.clip_activations = False
    seen: list[torch.Tensor] = []
    faults = fi.ActivationFaults(0.02, np.random.default_rng(2), ops={"conv2"}, storage=storage)
    h1 = rt.add_activation_hook(faults)
    h2 = rt.add_activation_hook(
        lambda name, kind, t: seen.append(t.clone()) if name == "conv2" else None
    )
    rt.infer(torch.rand(2, 4, 64, 64))
    h1.remove()
    h2.remove()
    (act,) = seen
    if storage == "code":  # an 8-bit code stays an integer 0..255
        assert bool((act == act.round()).all()) and 127 < float(act.max()) <= 255
    else:  # a float32 bit flip can leave the integer grid or blow the range up
        assert not bool((act == act.round()).all()) or float(act.abs().max()) > 255
    with pytest.raises(AiError):
        fi.ActivationFaults(0.1, np.random.default_rng(), storage="int4")
