"""Synthetic multispectral Earth-observation tiles with procedural clouds.

Every tile is 4 bands (blue, green, red, near-infrared) of 64x64 reflectance-like values
in 0..1, drawn from one seed: a surface (land, water, desert or urban) under a cloud
layer that is thick, thin (cirrus-like) or thick with its shadow on the ground. The label
is the cloud fraction and the keep/discard flag of ESA's Phi-Sat-1 (discard when more than
70 % of the tile is cloud).

>>> t = make_tile(7)
>>> t.pixels.shape, t.pixels.dtype.name
((4, 64, 64), 'float32')
>>> t.keep == (t.cloud_fraction <= KEEP_MAX_CLOUD_FRACTION)
True
>>> bool((make_tile(7).pixels == t.pixels).all())
True

Generation costs well under a millisecond per tile: noise is built from a few small
random grids up-sampled by precomputed interpolation matrices.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from models.errors import ModelError

TILE_PX = 64
BANDS = ("blue", "green", "red", "nir")
SURFACES = ("land", "water", "desert", "urban")
CLOUD_KINDS = ("clear", "thick", "thin", "shadowed")
KEEP_MAX_CLOUD_FRACTION = 0.7
# A pixel counts as cloud when the cloud layer's opacity there is at least this.
CLOUD_OPACITY_THRESHOLD = 0.2

# Mean reflectance per band (blue, green, red, NIR) of each cover type.
_VEGETATION = np.array([0.04, 0.08, 0.05, 0.38], dtype=np.float32)
_SOIL = np.array([0.10, 0.14, 0.18, 0.26], dtype=np.float32)
_WATER = np.array([0.07, 0.06, 0.03, 0.015], dtype=np.float32)
_SAND = np.array([0.22, 0.32, 0.42, 0.48], dtype=np.float32)
_ROAD = np.array([0.09, 0.10, 0.11, 0.12], dtype=np.float32)
_ROOF = np.array([0.17, 0.18, 0.20, 0.22], dtype=np.float32)
_CLOUD = np.array([0.80, 0.78, 0.76, 0.72], dtype=np.float32)


@dataclass(slots=True, frozen=True)
class Tile:
    """One synthetic tile and its labels."""

    pixels: np.ndarray  # float32 (4, 64, 64), reflectance-like 0..1
    cloud_fraction: float  # 0..1
    keep: bool  # cloud_fraction <= 0.7
    surface: str  # 'land' | 'water' | 'desert' | 'urban'


@cache
def _interp_matrix(cells: int) -> np.ndarray:
    """(64, cells + 1) matrix doing bilinear up-sampling of a (cells+1)^2 grid to 64 px."""
    pos = (np.arange(TILE_PX, dtype=np.float64) + 0.5) * cells / TILE_PX
    lo = np.floor(pos).astype(np.int64)
    frac = pos - lo
    frac = frac * frac * (3.0 - 2.0 * frac)  # smoothstep: no grid-line creases
    m = np.zeros((TILE_PX, cells + 1), dtype=np.float32)
    m[np.arange(TILE_PX), lo] = 1.0 - frac
    m[np.arange(TILE_PX), lo + 1] += frac
    m.setflags(write=False)
    return m


def _fractal(rng: np.random.Generator, base_cells: int, octaves: int, gain: float) -> np.ndarray:
    """Fractal value noise in roughly -1..1, shape (64, 64)."""
    out = np.zeros((TILE_PX, TILE_PX), dtype=np.float32)
    amp, total, cells = 1.0, 0.0, base_cells
    for _ in range(octaves):
        a = _interp_matrix(cells)
        g = rng.uniform(-1.0, 1.0, size=(cells + 1, cells + 1)).astype(np.float32)
        out += np.float32(amp) * (a @ g @ a.T)
        total += amp
        amp *= gain
        cells = min(cells * 2, TILE_PX // 2)
    out /= np.float32(total)
    return out


def _blend(mask: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel mix of two band spectra: mask 1 -> a, 0 -> b. Result (4, 64, 64)."""
    return mask[None] * a[:, None, None] + (1.0 - mask[None]) * b[:, None, None]


def _surface(rng: np.random.Generator, surface: str) -> np.ndarray:
    texture = _fractal(rng, 4, 4, 0.55)
    detail = _fractal(rng, 16, 2, 0.5)
    if surface == "land":
        veg = np.clip(0.5 + 1.6 * texture, 0.0, 1.0)
        img = _blend(veg, _VEGETATION, _SOIL)
        img *= 1.0 + 0.15 * detail[None]
    elif surface == "water":
        shore = _fractal(rng, 2, 3, 0.5)
        land_share = rng.uniform(-0.9, -0.2)  # most of the tile is water
        land = np.clip((shore - land_share - 0.5) * 8.0, 0.0, 1.0)
        img = _blend(land, _VEGETATION, _WATER)
        turbidity = rng.uniform(0.0, 0.04)
        img[:3] += (turbidity * (1.0 - land) * (1.0 + texture))[None]
        img *= 1.0 + 0.05 * detail[None]
    elif surface == "desert":
        theta = rng.uniform(0.0, np.pi)
        period_px = rng.uniform(5.0, 12.0)
        yy, xx = np.mgrid[0:TILE_PX, 0:TILE_PX].astype(np.float32)
        phase = (xx * np.cos(theta) + yy * np.sin(theta)) * (2.0 * np.pi / period_px)
        dunes = np.sin(phase + 3.0 * texture).astype(np.float32)
        img = _SAND[:, None, None] * (1.0 + 0.12 * dunes + 0.10 * detail)[None]
    elif surface == "urban":
        block_px = int(rng.integers(6, 14))
        road_px = int(rng.integers(1, 3))
        ox, oy = rng.integers(0, block_px, size=2)
        idx = np.arange(TILE_PX)
        road = ((idx[:, None] + oy) % block_px < road_px) | (
            (idx[None, :] + ox) % block_px < road_px
        )
        n_blocks = TILE_PX // block_px + 2
        shade = rng.uniform(0.6, 1.6, size=(n_blocks, n_blocks)).astype(np.float32)
        by = (idx + oy) // block_px
        bx = (idx + ox) // block_px
        roofs = shade[by[:, None], bx[None, :]]
        parks = (texture > 0.35).astype(np.float32)
        img = _ROOF[:, None, None] * roofs[None]
        img = parks[None] * _VEGETATION[:, None, None] + (1.0 - parks[None]) * img
        img = np.where(road[None], _ROAD[:, None, None], img)
        img *= 1.0 + 0.08 * detail[None]
    else:
        raise ModelError(f"unknown surface {surface!r}: use one of {', '.join(SURFACES)}")
    return img.astype(np.float32)


def _cloud_opacity(rng: np.random.Generator, coverage: float, max_opacity: float) -> np.ndarray:
    """Opacity 0..max_opacity whose footprint covers about ``coverage`` of the tile."""
    field = _fractal(rng, int(rng.integers(2, 5)), 4, 0.5)
    if coverage <= 0.0:
        return np.zeros_like(field)
    thr = np.quantile(field, 1.0 - coverage) if coverage < 1.0 else field.min() - 0.05
    softness = rng.uniform(0.03, 0.15)
    ramp = np.clip((field - thr) / softness, 0.0, 1.0)
    return (max_opacity * ramp).astype(np.float32)


def make_tile(seed: int, surface: str | None = None) -> Tile:
    """A deterministic tile for ``seed`` (same seed, same pixels and labels).

    ``surface`` forces the ground type; by default the seed picks one.

    >>> t = make_tile(3, surface="desert")
    >>> t.surface, 0.0 <= t.cloud_fraction <= 1.0
    ('desert', True)
    """
    if seed < 0:
        raise ModelError(f"tile seed must be >= 0, got {seed}")
    if surface is not None and surface not in SURFACES:
        raise ModelError(f"unknown surface {surface!r}: use one of {', '.join(SURFACES)}")
    rng = np.random.default_rng(seed)
    chosen = surface if surface is not None else SURFACES[int(rng.integers(len(SURFACES)))]
    ground = _surface(rng, chosen)
    ground *= np.float32(rng.uniform(0.85, 1.15))  # illumination / season

    kind = CLOUD_KINDS[int(rng.choice(4, p=[0.12, 0.38, 0.25, 0.25]))]
    # Skewed towards overcast, as the real Earth is: about 60 % of tiles are kept.
    coverage = 0.0 if kind == "clear" else float(rng.uniform(0.02, 1.0) ** 0.6)
    thin = kind == "thin"
    max_opacity = float(rng.uniform(0.35, 0.6) if thin else rng.uniform(0.85, 1.0))
    opacity = _cloud_opacity(rng, coverage, max_opacity)

    if kind == "shadowed":
        dy, dx = (int(v) for v in rng.integers(-9, 10, size=2))
        shadow = np.roll(opacity, (dy, dx), axis=(0, 1))
        darkening = np.float32(rng.uniform(0.45, 0.7))
        ground *= (1.0 - darkening * np.clip(shadow / max_opacity, 0.0, 1.0))[None]

    cloud_tex = 1.0 + 0.08 * _fractal(rng, 8, 3, 0.5)
    cloud = _CLOUD[:, None, None] * cloud_tex[None]
    img = opacity[None] * cloud + (1.0 - opacity[None]) * ground
    img += rng.normal(0.0, 0.004, size=img.shape).astype(np.float32)  # sensor noise
    np.clip(img, 0.0, 1.0, out=img)

    cloud_fraction = float(np.mean(opacity >= CLOUD_OPACITY_THRESHOLD))
    return Tile(
        pixels=img.astype(np.float32, copy=False),
        cloud_fraction=cloud_fraction,
        keep=cloud_fraction <= KEEP_MAX_CLOUD_FRACTION,
        surface=chosen,
    )


def tile_seed(dataset_seed: int, index: int) -> int:
    """The seed of tile ``index`` of ``make_dataset(n, dataset_seed)``.

    >>> tile_seed(0, 5)
    5
    """
    if dataset_seed < 0 or not 0 <= index < 2**32:
        raise ModelError(
            f"dataset seed must be >= 0 and index < 2**32 (got {dataset_seed}, {index})"
        )
    return (dataset_seed << 32) | index


def make_dataset(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` tiles: (pixels float32 (n,4,64,64), cloud_fraction float32 (n,), keep bool (n,)).

    Tile ``i`` is ``make_tile(tile_seed(seed, i))``, so a longer data set starts with the
    shorter one.

    >>> x, cf, keep = make_dataset(8, seed=1)
    >>> x.shape, cf.dtype.name, keep.dtype.name
    ((8, 4, 64, 64), 'float32', 'bool')
    """
    if n < 0:
        raise ModelError(f"dataset size must be >= 0, got {n}")
    pixels = np.empty((n, len(BANDS), TILE_PX, TILE_PX), dtype=np.float32)
    cloud = np.empty(n, dtype=np.float32)
    keep = np.empty(n, dtype=bool)
    for i in range(n):
        t = make_tile(tile_seed(seed, i))
        pixels[i] = t.pixels
        cloud[i] = t.cloud_fraction
        keep[i] = t.keep
    return pixels, cloud, keep
