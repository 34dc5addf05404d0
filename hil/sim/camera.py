"""The simulated camera: frames over land in daylight, each a synthetic tile.

Frame slots sit on a fixed grid (``start + k * frame_interval_s``, the imaging plan the
flight side also knows); a slot fires when the sub-satellite point is over land (per
the built-in mask, if ``land_only``) with the Sun at least ``min_sun_elevation_deg`` up.
Each frame carries a seed derived from the world seed and its slot number, a surface
(land, desert or urban over land, water otherwise) and its target priority; the pixels
and ground truth (cloud fraction, keep/discard) come from ``models.synth.make_tile``
on demand (:meth:`Frame.tile`), so scheduling studies never pay for pixels.

>>> # World.frames_due(t0, t1) returns Frame records; frame.tile() makes the pixels
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fsw.power import astro
from fsw.power.landmask import LandMask
from fsw.power.predictor import ImagingPlan
from hil.sim.orbit import OrbitTable

if TYPE_CHECKING:
    from models.synth import Tile


def frame_seed(world_seed: int, slot: int) -> int:
    """Deterministic 31-bit tile seed for a frame slot."""
    state = np.random.SeedSequence([world_seed & 0xFFFFFFFF, slot & 0xFFFFFFFF, 0xCA3E])
    return int(state.generate_state(1)[0] & 0x7FFFFFFF)


@dataclass(slots=True, frozen=True)
class Frame:
    """One camera frame: when, where, what surface, its tile seed and priority."""

    frame_id: int
    t_tai: float
    lat_deg: float
    lon_deg: float
    surface: str
    seed: int
    priority: float

    def tile(self) -> Tile:
        """The synthetic tile (pixels, cloud fraction, keep flag) for this frame."""
        from models.synth import make_tile

        return make_tile(self.seed, self.surface)


def scene_tiles(pixels: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` tiles of a frame's scene, (n, bands, height, width), from its synthetic
    tile: the tile under its 8 rotations and reflections, then cyclically shifted by
    quarter tiles. Every variant shows the same cloud cover (the frame's truth) with the
    pixels rearranged, so the models really run on ``n`` different inputs while the scene
    costs one synthetic tile (~1-5 ms) instead of ``n``.

    >>> px = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    >>> tiles = scene_tiles(px, 10)
    >>> tiles.shape, bool((tiles[0] == px).all()), bool((tiles[9] != px).any())
    ((10, 2, 4, 4), True, True)
    >>> sorted(tiles[5].ravel().tolist()) == sorted(px.ravel().tolist())
    True
    """
    variants = []
    for k in range(4):
        rot = np.rot90(pixels, k, axes=(1, 2))
        variants += [rot, rot[:, :, ::-1]]
    h = pixels.shape[-1]
    out = np.empty((n, *pixels.shape), dtype=pixels.dtype)
    for i in range(n):
        shift = (i // 8) * max(1, h // 4)
        out[i] = np.roll(variants[i % 8], shift, axis=(1, 2)) if shift else variants[i % 8]
    return out


def _surface(seed: int, lat_deg: float, land: bool) -> str:
    if not land:
        return "water"
    u = (seed % 10007) / 10007.0
    if u < 0.05:
        return "urban"
    if 15.0 <= abs(lat_deg) <= 35.0 and u < 0.55:
        return "desert"
    return "land"


class Camera:
    """All frames of a run, computed once from the orbit; queried by time interval."""

    __slots__ = ("_times", "frames", "plan")

    def __init__(
        self, plan: ImagingPlan, orbit: OrbitTable, land: LandMask, world_seed: int
    ) -> None:
        self.plan = plan
        slots = plan.slots(orbit.start_tai, orbit.end_tai)
        frames: list[Frame] = []
        if slots.size:
            r = astro.teme_to_ecef(astro.propagate_teme(orbit.sat, slots), slots)
            lat, lon, _alt = astro.ecef_to_geodetic(r)
            sun = astro.teme_to_ecef(astro.sun_position_km(slots), slots)
            lit = astro.ground_sun_elevation_deg(lat, lon, sun) >= plan.min_sun_elevation_deg
            is_land = land.is_land(lat, lon)
            ok = lit & is_land if plan.land_only else lit
            prio = plan.priority(lat, lon)
            k0 = round((slots[0] - plan.start_tai) / plan.frame_interval_s)
            for i in np.flatnonzero(ok):
                slot = k0 + int(i)
                seed = frame_seed(world_seed, slot)
                frames.append(
                    Frame(
                        frame_id=slot,
                        t_tai=float(slots[i]),
                        lat_deg=float(lat[i]),
                        lon_deg=float(lon[i]),
                        surface=_surface(seed, float(lat[i]), bool(is_land[i])),
                        seed=seed,
                        priority=float(prio[i]),
                    )
                )
        self.frames: tuple[Frame, ...] = tuple(frames)
        self._times = [f.t_tai for f in frames]

    def due(self, t0_tai: float, t1_tai: float) -> tuple[Frame, ...]:
        """Frames taken in (t0, t1]."""
        i = bisect.bisect_right(self._times, t0_tai)
        j = bisect.bisect_right(self._times, t1_tai)
        return self.frames[i:j]
