"""Radiation: upsets deterministic per seed, independent of stepping, more in the SAA."""

from __future__ import annotations

import pytest

from hil.sim.errors import WorldError
from hil.sim.radiation import RadiationEnvironment
from hil.sim.scenario import RadiationSpec

SPEC = RadiationSpec(seu_per_bit_day=1e-6, saa_factor=50.0)
N_BITS = 8 * 2**20  # a 1 MiB arena: 8.4 upsets a day outside the SAA


def _env(seed: int = 1, in_saa: bool = False) -> RadiationEnvironment:
    return RadiationEnvironment(SPEC, seed, lambda _t: in_saa)


def test_same_seed_same_upsets_whatever_the_stepping() -> None:
    one = _env().upsets(0.0, 86400.0, N_BITS, "arena")
    env = _env()
    stepped: list[object] = []
    t = 0.0
    for dt in [7.0, 60.0, 1.5, 600.0] * 400:
        if t >= 86400.0:
            break
        stepped += env.upsets(t, min(t + dt, 86400.0), N_BITS, "arena")
        t += dt
    assert one == tuple(stepped)
    assert one == _env().upsets(0.0, 86400.0, N_BITS, "arena")
    assert one != _env(seed=2).upsets(0.0, 86400.0, N_BITS, "arena")


def test_rate_matches_the_spec_and_saa_multiplies_it() -> None:
    days = 2.0
    quiet = len(_env().upsets(0.0, days * 86400.0, 10 * N_BITS))
    expected = SPEC.seu_per_bit_day * 10 * N_BITS * days  # 168
    assert abs(quiet - expected) < 4 * expected**0.5
    hot = len(_env(in_saa=True).upsets(0.0, 3600.0, 10 * N_BITS))
    hot_expected = 50 * expected / days / 24  # 175 in an hour inside the SAA
    assert abs(hot - hot_expected) < 4 * hot_expected**0.5


def test_upsets_are_in_range_and_ordered() -> None:
    ups = _env(in_saa=True).upsets(100.0, 5000.0, N_BITS, "tiny")
    assert ups and all(100.0 < u.t_tai <= 5000.0 and 0 <= u.bit < N_BITS for u in ups)
    assert [u.t_tai for u in ups] == sorted(u.t_tai for u in ups)
    assert {u.memory for u in ups} == {"tiny"}


def test_memories_are_independent() -> None:
    env = _env(in_saa=True)
    a = env.upsets(0.0, 3600.0, N_BITS, "a")
    b = env.upsets(0.0, 3600.0, N_BITS, "b")
    assert [u.bit for u in a] != [u.bit for u in b]


def test_bad_memory_size_is_refused() -> None:
    with pytest.raises(WorldError, match="n_bits"):
        _env().upsets(0.0, 1.0, 0)
