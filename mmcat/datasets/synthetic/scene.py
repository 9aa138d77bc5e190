"""One synthetic scene: background, distractors, instances, camera effects.

Every step draws from the scene's own generator in a fixed order, so a scene
is a pure function of its seed (see :func:`scene_rng`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFilter

from ..classes import STUFF_CLASSES, shape_classes
from .config import SceneConfig
from .geometry import blob, place, rasterize, shape_outline
from .textures import (colour, gradient, grid, mix, object_texture,
                       stuff_texture)

__all__ = ['Instance', 'Scene', 'draw_scene', 'scene_rng']

_TASK_IDS = {'coco': 1, 'ade': 2}
_SPLIT_IDS = {'train': 1, 'val': 2}
#: Placements tried for one instance before it is dropped.
_ATTEMPTS = 12
#: Colours tried for an instance to differ from what is behind it.
_COLOUR_TRIES = 8
#: RGB distance from what is behind that counts as standing out.
_CONTRAST = 70


@dataclass
class Instance:
    """One visible instance of a scene.

    Args:
        label: 0-based index into :func:`shape_classes`.
        mask: (H, W) bool, the visible pixels.
        polygons: flat ``[x0, y0, x1, y1, ...]`` lists whose rasterisation is
            exactly ``mask`` (fully visible shapes without holes), else None.
        occluded: whether something in front hides part of it.
    """
    label: int
    mask: np.ndarray
    polygons: list[list[float]] | None = None
    occluded: bool = False


@dataclass
class Scene:
    """A drawn scene.

    Args:
        image: (H, W, 3) uint8 RGB.
        instances: the visible instances, back to front.
        semantic: (H, W) uint8 ADE labels (0 other, 1 wall, 2 floor, 3..
            shapes).
        dropped: placements given up because of too much occlusion.
    """
    image: np.ndarray
    instances: list[Instance] = field(default_factory=list)
    semantic: np.ndarray | None = None
    dropped: int = 0


@dataclass
class _Placed:
    """An instance while the scene is drawn: its whole (amodal) and still
    visible (H, W) masks, and its polygon if that is exact."""
    label: int
    amodal: np.ndarray
    visible: np.ndarray
    polygon: list[float] | None


def scene_rng(seed: int, task: str, split: str,
              index: int) -> np.random.Generator:
    """The generator of one image: ``task`` coco|ade, ``split`` train|val."""
    return np.random.default_rng(
        [seed, _TASK_IDS[task], _SPLIT_IDS[split], index])


def draw_scene(rng: np.random.Generator, cfg: SceneConfig) -> Scene:
    """Draw one scene from ``rng``.

    Returns:
        The image, its visible instances (back to front) and its ADE label
        map.
    """
    image, semantic = _background(rng, cfg.height, cfg.width)
    _paint_distractors(rng, cfg, image, semantic)
    placed, dropped = _paint_instances(rng, cfg, image, semantic)
    return Scene(image=_camera(rng, cfg, image),
                 instances=_visible_instances(placed), semantic=semantic,
                 dropped=dropped)


def _background(rng: np.random.Generator, h: int,
                w: int) -> tuple[np.ndarray, np.ndarray]:
    """Wall over floor under a wavy horizon.

    Returns:
        (H, W, 3) float32 image and (H, W) uint8 labels (1 wall, 2 floor).
    """
    x, y = grid(h, w)
    horizon = h * rng.uniform(0.3, 0.75) + h * rng.uniform(0, 0.06) * np.sin(
        2 * np.pi * x / (w * rng.uniform(0.5, 2)) + rng.uniform(0, 2 * np.pi))
    is_floor = y >= horizon
    image = np.where(is_floor[..., None], stuff_texture(rng, h, w, True),
                     stuff_texture(rng, h, w, False))
    semantic = np.where(is_floor, 2, 1).astype(np.uint8)
    return image, semantic


def _radius(rng: np.random.Generator, cfg: SceneConfig) -> float:
    """Half a log-uniform diameter between the configured scales."""
    scale = math.exp(
        rng.uniform(math.log(cfg.min_scale), math.log(cfg.max_scale)))
    return scale * min(cfg.height, cfg.width) / 2


def _paint_distractors(rng: np.random.Generator, cfg: SceneConfig,
                       image: np.ndarray, semantic: np.ndarray) -> None:
    """Paint unlabelled blobs (ADE label 0) in place, behind the instances."""
    h, w = cfg.height, cfg.width
    for _ in range(int(rng.integers(0, cfg.max_distractors + 1))):
        r = _radius(rng, cfg)
        pts = place(blob(r, rng), rng.uniform(0, w), rng.uniform(0, h), 0)
        m = rasterize([pts.ravel().tolist()], h, w)
        image[m] = object_texture(rng, h, w, colour(rng))[m]
        semantic[m] = 0


def _paint_instances(rng: np.random.Generator, cfg: SceneConfig,
                     image: np.ndarray,
                     semantic: np.ndarray) -> tuple[list[_Placed], int]:
    """Paint the instances in place, back to front.

    Returns:
        The placed instances and how many placements were dropped.
    """
    h, w = cfg.height, cfg.width
    classes = shape_classes(cfg.num_classes)
    placed: list[_Placed] = []
    dropped = 0
    for _ in range(int(rng.integers(cfg.min_objects, cfg.max_objects + 1))):
        label = int(rng.integers(len(classes)))
        found = _find_placement(rng, cfg, classes[label], placed)
        if found is None:
            dropped += 1
            continue
        pts, has_hole, m = found
        inside = bool((pts >= 0).all() and (pts[:, 0] <= w).all()
                      and (pts[:, 1] <= h).all())
        for p in placed:
            p.visible = p.visible & ~m
        exact = inside and not has_hole
        placed.append(_Placed(label, m, m.copy(),
                              pts.ravel().tolist() if exact else None))
        base = _contrasting_colour(rng, image[m].mean(0))
        image[m] = object_texture(rng, h, w, base)[m]
        semantic[m] = len(STUFF_CLASSES) + 1 + label
    return placed, dropped


def _find_placement(
        rng: np.random.Generator, cfg: SceneConfig, kind: str,
        placed: list[_Placed]
) -> tuple[np.ndarray, bool, np.ndarray] | None:
    """Try placements of a ``kind`` shape until one is large enough and
    leaves every earlier instance visible enough.

    Returns:
        Its (N, 2) outline in pixels, whether it has a hole and its (H, W)
        mask, or None when every attempt failed.
    """
    h, w = cfg.height, cfg.width
    for _attempt in range(_ATTEMPTS):
        r = _radius(rng, cfg)
        outline, hole = shape_outline(kind, r, rng)
        angle = rng.uniform(0, 2 * np.pi)
        cx = rng.uniform(0.35 * r, w - 0.35 * r)
        cy = rng.uniform(0.35 * r, h - 0.35 * r)
        pts = place(outline, cx, cy, angle)
        m = rasterize([pts.ravel().tolist()], h, w)
        if len(hole):
            inner = place(hole, cx, cy, angle)
            m &= ~rasterize([inner.ravel().tolist()], h, w)
        if m.sum() < cfg.min_pixels:
            continue
        if all((p.visible & ~m).sum() >= max(cfg.min_visible * p.amodal.sum(),
                                             cfg.min_pixels)
               for p in placed):
            return pts, bool(len(hole)), m
    return None


def _contrasting_colour(rng: np.random.Generator,
                        behind: np.ndarray) -> np.ndarray:
    """A colour that stands out from the mean RGB ``behind`` it."""
    base = colour(rng)
    for _try in range(_COLOUR_TRIES):
        if np.linalg.norm(base - behind) >= _CONTRAST:
            break
        base = colour(rng)
    return base


def _visible_instances(placed: list[_Placed]) -> list[Instance]:
    """The instances as written: an occluded one keeps no polygon."""
    instances = []
    for p in placed:
        occluded = bool((p.amodal & ~p.visible).any())
        instances.append(
            Instance(label=p.label, mask=p.visible, occluded=occluded,
                     polygons=[p.polygon] if p.polygon is not None
                     and not occluded else None))
    return instances


def _camera(rng: np.random.Generator, cfg: SceneConfig,
            image: np.ndarray) -> np.ndarray:
    """Lighting, blur and sensor noise: (H, W, 3) float32 to uint8."""
    h, w = cfg.height, cfg.width
    image = image * mix(np.full(3, rng.uniform(0.8, 1.0), np.float32),
                        np.full(3, rng.uniform(1.0, 1.2), np.float32),
                        gradient(rng, h, w))
    pil = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    radius = float(rng.uniform(0, cfg.max_blur))
    if radius > 0.2:
        pil = pil.filter(ImageFilter.GaussianBlur(radius))
    sigma = rng.uniform(*cfg.noise)
    image = np.asarray(pil, dtype=np.float32) + rng.normal(
        0, sigma, (h, w, 3)).astype(np.float32)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)
