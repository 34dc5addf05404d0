"""The simulated RF channel between the ground station and the spacecraft.

Nothing gets through outside a ground pass (the world's pass windows). During a pass
each uplink CLTU and each downlink CADU may be dropped whole (``*_drop``: a fade, a
missed acquisition) and otherwise has its bits flipped independently at the bit-error
rate (``*_ber``). The link layers then do what they do on a real link: BCH(63,56)
corrects one bit per codeblock of a CLTU (more and the frame's FECF or the CLTU decoder
rejects it, and COP-1 retransmits), and a TM frame with any error fails its FECF on the
ground and is lost with its packets. The downlink runs at ``downlink_bps``: the SITL
runner takes only as many packets off the flight's queue as the rate allows, so TM
waits on board between passes.

Draws come from one generator seeded by the run seed: the same calls give the same
errors.

>>> ch = RfChannel(ChannelConfig(uplink_ber=0.0, uplink_drop=0.0), [(10.0, 20.0)], seed=1)
>>> ch.uplink(b"\\xeb\\x90", 5.0), ch.uplink(b"\\xeb\\x90", 15.0)
(b'', b'\\xeb\\x90')
>>> ch.stats["cltus_blocked"], ch.stats["cltus_sent"]
(1, 1)
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hil.sim.errors import WorldError


@dataclass(slots=True, frozen=True)
class ChannelConfig:
    """Channel impairments and the downlink rate.

    ``passes_only=False`` keeps the link up all the time (an interactive bench).
    """

    uplink_ber: float = 1e-5
    downlink_ber: float = 2e-7
    uplink_drop: float = 0.05
    downlink_drop: float = 0.01
    downlink_bps: float = 9600.0
    passes_only: bool = True

    def __post_init__(self) -> None:
        for name in ("uplink_ber", "downlink_ber", "uplink_drop", "downlink_drop"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise WorldError(f"channel {name} = {v} must be in [0, 1)")
        if not self.downlink_bps > 0.0:
            raise WorldError(f"downlink_bps = {self.downlink_bps} must be > 0")


def _flip_bits(data: bytes, ber: float, rng: np.random.Generator) -> tuple[bytes, int]:
    """``data`` with bits flipped independently at ``ber``; (new bytes, bits flipped)."""
    n_bits = len(data) * 8
    if ber <= 0.0 or n_bits == 0:
        return data, 0
    k = int(rng.binomial(n_bits, ber))
    if k == 0:
        return data, 0
    pos = np.unique(rng.integers(0, n_bits, size=k))
    buf = bytearray(data)
    for p in pos.tolist():
        buf[p >> 3] ^= 0x80 >> (p & 7)
    return bytes(buf), len(pos)


class RfChannel:
    """Pass-gated, lossy, noisy channel (see the module docstring).

    ``windows`` are the (AOS, LOS) TAI times of the passes, sorted by AOS.
    """

    def __init__(
        self,
        config: ChannelConfig,
        windows: Sequence[tuple[float, float]],
        seed: int = 0,
        cadu_len: int = 1119,
    ) -> None:
        self.config = config
        merged: list[tuple[float, float]] = []
        for a, b in sorted(windows):
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        self.windows = merged
        self._starts = [a for a, _ in merged]
        self.cadu_len = cadu_len
        self._rng = np.random.default_rng([seed & 0xFFFFFFFF, 0x5EED_C4A7])
        self._budget_bytes = 0.0
        self.stats = {
            "cltus_sent": 0,
            "cltus_dropped": 0,
            "cltus_corrupted": 0,
            "cltus_blocked": 0,
            "bits_flipped_up": 0,
            "cadus_sent": 0,
            "cadus_dropped": 0,
            "cadus_corrupted": 0,
            "bits_flipped_down": 0,
            "bytes_down": 0,
            "bytes_up": 0,
        }

    def add_window(self, aos_tai: float, los_tai: float) -> None:
        """Open the link for one more window (a contact granted while flying); windows
        that touch or overlap merge."""
        if not los_tai > aos_tai:
            return
        i = bisect.bisect_left(self._starts, aos_tai)
        self.windows.insert(i, (aos_tai, los_tai))
        merged: list[tuple[float, float]] = []
        for a, b in self.windows:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        self.windows = merged
        self._starts = [a for a, _ in merged]

    def visible(self, t_tai: float) -> bool:
        """True when the link is up (inside a pass, or always without ``passes_only``)."""
        if not self.config.passes_only:
            return True
        i = bisect.bisect_right(self._starts, t_tai) - 1
        return i >= 0 and t_tai <= self.windows[i][1]

    # ------------------------------------------------------------------ uplink
    def uplink(self, cltu: bytes, t_tai: float) -> bytes:
        """What the spacecraft receives of one CLTU sent at ``t_tai`` (``b""``: nothing)."""
        st = self.stats
        if not self.visible(t_tai):
            st["cltus_blocked"] += 1
            return b""
        st["cltus_sent"] += 1
        st["bytes_up"] += len(cltu)
        cfg = self.config
        if cfg.uplink_drop and self._rng.random() < cfg.uplink_drop:
            st["cltus_dropped"] += 1
            return b""
        out, n = _flip_bits(cltu, cfg.uplink_ber, self._rng)
        if n:
            st["cltus_corrupted"] += 1
            st["bits_flipped_up"] += n
        return out

    # ------------------------------------------------------------------ downlink
    def refill(self, dt_s: float, t_tai: float) -> None:
        """Add ``dt_s`` worth of downlink rate to the byte budget (only during passes).

        The budget may not bank more than one second of rate, so a pass does not start
        with a burst saved up before it.
        """
        if not self.visible(t_tai):
            self._budget_bytes = min(self._budget_bytes, 0.0)
            return
        rate = self.config.downlink_bps / 8.0
        self._budget_bytes = min(self._budget_bytes + rate * dt_s, max(rate, self.cadu_len))

    @property
    def budget_bytes(self) -> float:
        """Bytes the downlink may still carry now (negative: a frame sent on credit)."""
        return self._budget_bytes

    def downlink(self, cadus: bytes, t_tai: float) -> bytes:
        """What the ground receives of ``cadus`` sent at ``t_tai`` (whole CADUs).

        The bytes are charged to the rate budget (see :meth:`refill`).
        """
        if not cadus:
            return b""
        if len(cadus) % self.cadu_len:
            raise WorldError(
                f"downlink of {len(cadus)} bytes is not whole {self.cadu_len}-byte CADUs"
            )
        st = self.stats
        if not self.visible(t_tai):
            return b""
        self._budget_bytes -= len(cadus)
        cfg = self.config
        out = bytearray()
        for k in range(0, len(cadus), self.cadu_len):
            cadu = cadus[k : k + self.cadu_len]
            st["cadus_sent"] += 1
            st["bytes_down"] += len(cadu)
            if cfg.downlink_drop and self._rng.random() < cfg.downlink_drop:
                st["cadus_dropped"] += 1
                continue
            noisy, n = _flip_bits(cadu, cfg.downlink_ber, self._rng)
            if n:
                st["cadus_corrupted"] += 1
                st["bits_flipped_down"] += n
            out += noisy
        return bytes(out)


__all__ = ["ChannelConfig", "RfChannel"]
