"""Shape outlines as polygons, placed and rasterised as pycocotools does."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ['rasterize', 'shape_outline', 'blob', 'place']


def rasterize(polygons: Sequence[Sequence[float]], height: int,
              width: int) -> np.ndarray:
    """Rasterise flat polygons with pycocotools (what ``annToMask`` does).

    Returns:
        (height, width) bool mask of their union.
    """
    from pycocotools import mask as mask_utils
    rles = mask_utils.frPyObjects([list(p) for p in polygons], height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def _regular(n: int, radius: float, phase: float) -> np.ndarray:
    """(n, 2) vertices of a regular n-gon around the origin."""
    a = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([radius * np.cos(a), radius * np.sin(a)], 1)


def _ellipse(rx: float, ry: float) -> np.ndarray:
    """(N, 2) vertices of an axis-aligned ellipse, 16..64 of them."""
    n = int(np.clip(2 * np.pi * max(rx, ry) / 2, 16, 64))
    a = 2 * np.pi * np.arange(n) / n
    return np.stack([rx * np.cos(a), ry * np.sin(a)], 1)


def _cross(r: float, t: float) -> np.ndarray:
    """(12, 2) vertices of a plus sign of half-size ``r``, half-width ``t``."""
    return np.array([[t, -r], [t, -t], [r, -t], [r, t], [t, t], [t, r],
                     [-t, r], [-t, t], [-r, t], [-r, -t], [-t, -t], [-t, -r]])


def shape_outline(kind: str, r: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Outline (and hole, possibly empty) of a shape of radius ``r``.

    Returns (N, 2) and (M, 2) vertex arrays centred on the origin, before
    rotation.
    """
    hole = np.zeros((0, 2))
    if kind == 'circle':
        outline = _ellipse(r, r)
    elif kind == 'ellipse':
        outline = _ellipse(r, r * rng.uniform(0.4, 0.65))
    elif kind == 'square':
        outline = _regular(4, r * 0.95, np.pi / 4)
    elif kind == 'triangle':
        a = np.pi / 2 + 2 * np.pi * np.arange(3) / 3 + rng.uniform(
            -0.15, 0.15, 3)
        outline = np.stack([r * np.cos(a), r * np.sin(a)], 1)
    elif kind == 'star':
        outer = _regular(5, r, -np.pi / 2)
        inner = _regular(5, r * rng.uniform(0.38, 0.5), -np.pi / 2 + np.pi / 5)
        outline = np.stack([outer, inner], 1).reshape(-1, 2)
    elif kind == 'ring':
        outline = _ellipse(r, r)
        ri = r * rng.uniform(0.45, 0.6)
        hole = _ellipse(ri, ri)
    elif kind == 'cross':
        outline = _cross(r, r * rng.uniform(0.28, 0.38))
    elif kind == 'hexagon':
        outline = _regular(6, r, 0.0)
    else:
        raise ValueError(f'unknown shape {kind!r}')
    return outline, hole


def blob(r: float, rng: np.random.Generator) -> np.ndarray:
    """An irregular, star-convex distractor outline of radius about ``r``."""
    n = int(rng.integers(9, 15))
    a = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = r * rng.uniform(0.55, 1.0, n)
    return np.stack([radii * np.cos(a), radii * np.sin(a)], 1)


def place(points: np.ndarray, cx: float, cy: float,
          angle: float) -> np.ndarray:
    """Rotate (N, 2) points by ``angle``, move to (cx, cy), round to 0.01."""
    c, s = math.cos(angle), math.sin(angle)
    x = points[:, 0] * c - points[:, 1] * s + cx
    y = points[:, 0] * s + points[:, 1] * c + cy
    return np.round(np.stack([x, y], 1), 2)
