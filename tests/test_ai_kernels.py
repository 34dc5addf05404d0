"""The int8 kernels: exact against integer accumulation, in place, chosen per machine, cached."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from fsw.ai import AiError, shipped_dir
from fsw.ai import kernels as kern
from fsw.ai.runtime import KERNELS, Runtime

SMALL = shipped_dir() / "cloudnet-s.gnm"


def _seed() -> int:
    seed = random.SystemRandom().randrange(2**32)
    print(f"seed {seed}")  # pytest shows it when the test fails
    return seed


def _int_ref_linear(a: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    acc = a.long() @ w.long().t()
    if b is not None:
        acc += b.long()
    return acc.float()  # the definition: exact int, rounded once to float32


@pytest.mark.req("AI-003")
def test_every_linear_kernel_is_exact_for_random_shapes_and_long_dot_products() -> None:
    g = torch.Generator().manual_seed(_seed())
    for _ in range(12):
        m = int(torch.randint(1, 70, (1,), generator=g))
        k = int(torch.randint(1, 3000, (1,), generator=g))  # past 1040: widen splits along K
        n = int(torch.randint(1, 40, (1,), generator=g))
        a = torch.randint(-127, 128, (m, k), generator=g).float()
        w = torch.randint(-127, 128, (n, k), generator=g, dtype=torch.int8)
        b = torch.randint(-(1 << 20), 1 << 20, (n,), generator=g, dtype=torch.int32)
        for bias in (b, None):
            ref = _int_ref_linear(a, w, bias)
            assert torch.equal(kern.reference_linear(a, w, bias), ref)
            for kernel in ("widen", "int_mm", "int_mm_t"):
                out = kern.linear_acc(kernel, a, w, bias)
                assert torch.equal(out, ref), (kernel, m, k, n)
                assert out.is_contiguous()  # downstream float reductions follow the layout


@pytest.mark.req("AI-003")
def test_widen_stays_exact_where_one_float32_sum_would_round() -> None:
    k = 2048  # all-127 products: the running sum passes 2**24 on an odd value
    a = torch.full((1, k), 127.0)
    w = torch.full((3, k), 127, dtype=torch.int8)
    w[1, ::2] = -127
    w[2, 0] = 126
    exact = a.double() @ w.double().t()
    assert float(exact[0, 2]) > 1 << 24
    assert torch.equal(kern.linear_acc("widen", a, w, None), exact.float())


@pytest.mark.req("AI-003")
def test_every_conv_kernel_is_exact_with_stride_and_padding() -> None:
    g = torch.Generator().manual_seed(_seed())
    for stride, pad, ksize in (((1, 1), (1, 1), 3), ((2, 2), (1, 1), 3), ((4, 4), (0, 0), 4)):
        a = torch.randint(0, 128, (3, 5, 17, 19), generator=g).float()
        w = torch.randint(-127, 128, (7, 5, ksize, ksize), generator=g, dtype=torch.int8)
        b = torch.randint(-5000, 5000, (7,), generator=g, dtype=torch.int32)
        ref = kern.reference_conv(a, w, b, stride, pad)
        for kernel in kern.KERNELS:
            out = kern.conv_acc(kernel, a, w, b, stride, pad)
            assert torch.equal(out, ref) and out.is_contiguous(), (kernel, stride, pad)


@pytest.mark.req("AI-003")
@pytest.mark.parametrize("kernel", kern.KERNELS)
def test_each_forced_kernel_reads_the_weights_in_place(kernel: str) -> None:
    rt = Runtime.load(SMALL, kernels=kernel)
    assert {c["kernel"] for v in rt.kernel_choices().values() for c in v.values()} <= {
        kernel,
        kernel.removesuffix("_strided"),
    }
    x = torch.rand(2, 4, 64, 64)
    before = rt.infer(x)
    lo, hi = rt.tensor_regions()["conv2.w"]
    rt.arena[lo:hi] = 0  # every conv2 weight zero: the next inference must see it
    assert not torch.equal(rt.infer(x), before)
    rt.scrub()
    assert torch.equal(rt.infer(x), before)


@pytest.mark.req("AI-003")
def test_auto_times_once_then_reuses_the_cached_choice(tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "kernels.json"
    first = Runtime.load(SMALL, kernel_cache=cache)
    assert {r.source for r in first.kernel_records} == {"timed"}
    doc = json.loads(cache.read_text())
    (section,) = doc["cpus"].values()
    assert section["cpu"]["torch"] == torch.__version__ and section["cpu"]["model"]
    second = Runtime.load(SMALL, kernel_cache=cache)
    assert {r.source for r in second.kernel_records} == {"cache"}
    assert [r.kernel for r in second.kernel_records] == [r.kernel for r in first.kernel_records]
    for per_rows in first.kernel_choices().values():
        for c in per_rows.values():
            times = c["times_ms"]
            assert c["kernel"] in times  # the winner was timed at the real shape
            # the fastest, or widen within the tie margin of the fastest (timing noise)
            fastest = min(times.values())
            assert times[c["kernel"]] == fastest or (
                c["kernel"] == "widen" and times["widen"] <= (1 + kern.TIE_MARGIN) * fastest
            ), times


@pytest.fixture
def batch1_planning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Time kernels at batch 1 only: the cache mechanics, not the choice, are under test
    (timing at batch 32 too costs seconds of CPU per load)."""
    import fsw.ai.runtime

    monkeypatch.setattr(fsw.ai.runtime, "PLAN_BATCHES", (1,))


@pytest.mark.req("AI-003")
def test_a_read_only_cache_location_still_loads_and_counts_the_failed_write(
    tmp_path: Path, batch1_planning: None
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    rt = Runtime.load(SMALL, kernel_cache=blocker / "gnomon" / "kernels.json")
    assert rt.kernel_cache is not None and rt.kernel_cache.write_errors == 1
    assert {r.source for r in rt.kernel_records} == {"timed"}
    assert rt.infer(torch.zeros(1, 4, 64, 64)).shape == (1, 2)


@pytest.mark.req("AI-003")
def test_a_damaged_cache_file_is_counted_and_replaced(
    tmp_path: Path, batch1_planning: None
) -> None:
    cache = tmp_path / "kernels.json"
    cache.write_text("{not json")
    rt = Runtime.load(SMALL, kernel_cache=cache)
    assert rt.kernel_cache is not None and rt.kernel_cache.read_errors == 1
    assert json.loads(cache.read_text())["version"] == kern.CACHE_VERSION


def test_no_cache_and_unknown_kernels(batch1_planning: None) -> None:
    rt = Runtime.load(SMALL, kernel_cache=False)
    assert rt.kernel_cache is None and {r.source for r in rt.kernel_records} == {"timed"}
    with pytest.raises(AiError, match="unknown kernel 'cuda'"):
        Runtime.load(SMALL, kernels="cuda")
    assert set(KERNELS) == {"auto", *kern.KERNELS}


def test_cache_location_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(kern.CACHE_ENV, "off")
    assert kern.default_cache_path() is None
    monkeypatch.delenv(kern.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", "/var/cache/x")
    assert kern.default_cache_path() == Path("/var/cache/x/gnomon/kernels.json")


def test_the_plan_uses_the_kernel_timed_nearest_the_batch() -> None:
    plan = kern.LayerPlan()
    plan.add(256, "widen")
    plan.add(8192, "int_mm")
    assert [plan.pick(m) for m in (1, 256, 1000, 2000, 8192, 10**6)] == [
        "widen",
        "widen",
        "widen",
        "int_mm",
        "int_mm",
        "int_mm",
    ]


def test_cpu_info_names_the_int8_flags() -> None:
    info = kern.cpu_info()
    assert info["torch"] == torch.__version__
    assert set(info["flags"]) <= set(kern.INT8_FLAGS)
    assert np.all([isinstance(f, str) for f in info["flags"]])
