"""Single-event upsets: a rate per bit per day, raised inside the South Atlantic Anomaly.

Time is cut into fixed bins (60 s). In bin k a memory of ``n_bits`` bits sees a Poisson
number of upsets with mean ``rate(k) * n_bits * bin_s``, each at a uniform time in the
bin and a uniform bit address; ``rate(k)`` is the base rate, times ``saa_factor`` when
the sub-satellite point at the bin's middle is inside the SAA box. Every bin draws from
its own generator keyed by (world seed, memory name, bin), so the upsets in (t0, t1]
are the same however the run is stepped and whichever other memories subscribe.

>>> # World.upsets(t0, t1, n_bits=8 * 2**20, memory="arena") -> tuple[Upset, ...]
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hil.sim.errors import WorldError
from hil.sim.scenario import RadiationSpec

BIN_S = 60.0
DAY_S = 86400.0


@dataclass(slots=True, frozen=True)
class Upset:
    """One bit flip: when, which bit, in which memory."""

    t_tai: float
    bit: int
    memory: str


class RadiationEnvironment:
    """Upset generator for any number of memories (see module docstring)."""

    __slots__ = ("_cache", "_in_saa", "_seed", "spec")

    def __init__(self, spec: RadiationSpec, seed: int, in_saa: Callable[[float], bool]) -> None:
        self.spec = spec
        self._seed = seed & 0xFFFFFFFF
        self._in_saa = in_saa
        # Draws of recently used bins (a step of a few seconds re-reads the same bin).
        self._cache: dict[tuple[int, int, int], list[tuple[float, int]]] = {}

    def in_saa_box(self, lat_deg: float, lon_deg: float) -> bool:
        s = self.spec
        return (
            s.saa_lat_min_deg <= lat_deg <= s.saa_lat_max_deg
            and s.saa_lon_min_deg <= lon_deg <= s.saa_lon_max_deg
        )

    def rate_per_bit_s(self, t_tai: float) -> float:
        """Upset rate per bit per second at ``t_tai`` (SAA included)."""
        base = self.spec.seu_per_bit_day / DAY_S
        return base * self.spec.saa_factor if self._in_saa(t_tai) else base

    def upsets(
        self, t0_tai: float, t1_tai: float, n_bits: int, memory: str = "memory"
    ) -> tuple[Upset, ...]:
        """Upsets in (t0, t1] for a memory of ``n_bits`` bits, in time order."""
        if not isinstance(n_bits, int) or n_bits <= 0:
            raise WorldError(f"memory {memory!r}: n_bits must be a positive integer")
        if t1_tai <= t0_tai:
            return ()
        key = zlib.crc32(memory.encode("utf-8"))
        out: list[Upset] = []
        for k in range(math.floor(t0_tai / BIN_S), math.floor(t1_tai / BIN_S) + 1):
            for t, bit in self._bin(key, n_bits, k):
                if t0_tai < t <= t1_tai:
                    out.append(Upset(t, bit, memory))
        return tuple(out)

    def _bin(self, key: int, n_bits: int, k: int) -> list[tuple[float, int]]:
        ck = (key, n_bits, k)
        hit = self._cache.get(ck)
        if hit is not None:
            return hit
        b0 = k * BIN_S
        lam = self.rate_per_bit_s(b0 + 0.5 * BIN_S) * n_bits * BIN_S
        events: list[tuple[float, int]] = []
        if lam > 0.0:
            rng = np.random.default_rng([self._seed, key, k & 0xFFFFFFFF, k >> 32])
            count = int(rng.poisson(lam))
            if count:
                times = b0 + BIN_S * rng.random(count)
                bits = rng.integers(0, n_bits, size=count)
                events = sorted(zip(times.tolist(), bits.tolist(), strict=True))
        if len(self._cache) >= 256:
            self._cache.clear()
        self._cache[ck] = events
        return events
