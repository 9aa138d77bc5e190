"""Background ("stuff") and object textures: (H, W, 3) float32 RGB maps."""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

__all__ = ['grid', 'gradient', 'mix', 'colour', 'stuff_texture',
           'object_texture']


def grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) float32 x and y pixel coordinates."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return x, y


def _smooth_noise(rng: np.random.Generator, h: int, w: int,
                  cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1] (bicubic upsampling of a coarse grid)."""
    low = rng.random((cells, cells), dtype=np.float32)
    up = Image.fromarray(low).resize((w, h), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(up, dtype=np.float32), 0, 1)


def _stripes(rng: np.random.Generator, h: int, w: int, angle: float,
             period: float) -> np.ndarray:
    """(H, W) stripes in [0, 1] across direction ``angle``."""
    x, y = grid(h, w)
    phase = rng.uniform(0, 2 * np.pi)
    wave = np.sin(2 * np.pi * (x * math.cos(angle) + y * math.sin(angle)) /
                  period + phase)
    return np.clip(0.5 + 1.5 * wave, 0, 1)


def _checker(rng: np.random.Generator, h: int, w: int,
             period: float) -> np.ndarray:
    """(H, W) 0/1 checkerboard with squares of side ``period``."""
    x, y = grid(h, w)
    ox, oy = rng.uniform(0, period, 2)
    return (((x + ox) // period + (y + oy) // period) % 2).astype(np.float32)


def gradient(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(H, W) linear ramp from 0 to 1 in a random direction."""
    x, y = grid(h, w)
    a = rng.uniform(0, 2 * np.pi)
    t = x * math.cos(a) + y * math.sin(a)
    return (t - t.min()) / max(float(t.max() - t.min()), 1e-6)


def mix(c1: np.ndarray, c2: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(H, W, 3) blend of two RGB colours by a (H, W) weight."""
    return c1 + (c2 - c1) * t[..., None]


def colour(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random float32 RGB colour in 0..255."""
    return rng.uniform(0, 255, 3).astype(np.float32)


def _near(rng: np.random.Generator, c: np.ndarray, lo: float,
          hi: float) -> np.ndarray:
    """A colour at distance ``lo..hi`` from ``c`` (clipped to 0..255)."""
    d = rng.normal(size=3)
    d = d / max(np.linalg.norm(d), 1e-6) * rng.uniform(lo, hi)
    return np.clip(c + d, 0, 255).astype(np.float32)


def stuff_texture(rng: np.random.Generator, h: int, w: int,
                  floor: bool) -> np.ndarray:
    """A wall (vertical structure) or floor (horizontal structure) texture."""
    c1 = colour(rng) * 0.7 + 40
    c2 = _near(rng, c1, 25, 80)
    kind = int(rng.integers(3))
    if kind == 0:
        t = _smooth_noise(rng, h, w, int(rng.integers(3, 8)))
    elif floor and kind == 1:
        t = _checker(rng, h, w, rng.uniform(5, 16))
    elif floor:
        t = _stripes(rng, h, w, np.pi / 2 + rng.uniform(-0.2, 0.2),
                     rng.uniform(4, 12))
    elif kind == 1:
        t = _stripes(rng, h, w, rng.uniform(-0.2, 0.2), rng.uniform(4, 14))
    else:
        t = gradient(rng, h, w)
    return mix(c1, c2, t)


def object_texture(rng: np.random.Generator, h: int, w: int,
                   base: np.ndarray) -> np.ndarray:
    """Solid with shading, stripes, or mottled: class-independent."""
    kind = rng.choice(3, p=[0.5, 0.25, 0.25])
    if kind == 0:
        t = gradient(rng, h, w)
        return mix(base * 0.8, np.minimum(base * 1.2 + 10, 255), t)
    if kind == 1:
        t = _stripes(rng, h, w, rng.uniform(0, np.pi), rng.uniform(3, 8))
    else:
        t = _smooth_noise(rng, h, w, int(rng.integers(6, 16)))
    return mix(base, _near(rng, base, 40, 90), t)
