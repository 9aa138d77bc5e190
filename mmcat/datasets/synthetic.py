"""Synthetic shape scenes written in the real COCO and ADE20K formats.

Everything here is a pure function of a seed: each image is drawn from its own
``numpy.random.Generator`` seeded with ``(seed, task, split, index)``, so a
split of N images is a prefix of a split of N + 1 images, and two runs with the
same arguments write the same bytes (fixed JPEG/PNG parameters, sorted JSON).

A scene is a textured background split into two *stuff* regions, a wall
(top) and a floor (bottom) under a wavy horizon, with a few *thing* instances
painted over it in depth order: shapes of several classes with random colours
and textures (so the class is told by shape, not colour), sizes from
``min_scale`` to ``max_scale`` of the image side, overlaps, occlusion and
truncation at the border, plus unlabelled distractor blobs, blur and noise.

* COCO (``<out>/coco_demo``): one annotation per visible instance. Its mask is
  the visible part after occlusion, its ``bbox`` the visible extent and its
  ``area`` the visible pixel count. An instance that is fully visible, inside
  the image and without holes is written as a polygon, any other as RLE;
  polygons are rasterised with pycocotools when drawn, so ``annToMask`` gives
  back exactly the pixels that were painted.
* ADE20K (``<out>/ade_demo/ADEChallengeData2016``): 8-bit label PNGs with
  ADE's conventions: 0 is "other" (the distractors), ignored under
  ``reduce_zero_label=True``; 1 is wall, 2 floor, 3.. the shape classes.
"""
from __future__ import annotations

import json
import math
import os
import os.path as osp
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageFilter

__all__ = [
    'SHAPE_CLASSES', 'STUFF_CLASSES', 'DEFAULT_NUM_CLASSES', 'SceneConfig',
    'Instance', 'Scene', 'shape_classes', 'ade_classes', 'class_palette',
    'draw_scene', 'scene_rng', 'write_coco', 'write_ade', 'coco_statistics',
    'ade_statistics', 'COCO_DIR', 'ADE_DIR'
]

#: All shape ("thing") classes; a dataset uses the first ``num_classes``.
SHAPE_CLASSES = ('circle', 'square', 'triangle', 'star', 'ring', 'cross',
                 'ellipse', 'hexagon')
#: ADE's background ("stuff") classes, labels 1 and 2 in the PNGs.
STUFF_CLASSES = ('wall', 'floor')
DEFAULT_NUM_CLASSES = 6
#: Dataset roots under the output folder.
COCO_DIR = 'coco_demo'
ADE_DIR = osp.join('ade_demo', 'ADEChallengeData2016')

_TASK_IDS = {'coco': 1, 'ade': 2}
_SPLIT_IDS = {'train': 1, 'val': 2}
_COCO_SPLITS = {'train': 'train2017', 'val': 'val2017'}
_ADE_SPLITS = {'train': 'training', 'val': 'validation'}
#: COCO image ids: train images are 1..N, val images start after this.
_VAL_ID_OFFSET = 1_000_000
_JPEG_KWARGS = dict(format='JPEG', quality=92, subsampling=0, optimize=False)
_PNG_KWARGS = dict(format='PNG', optimize=False, compress_level=6)


def shape_classes(num_classes: int = DEFAULT_NUM_CLASSES) -> tuple[str, ...]:
    """The first ``num_classes`` shape class names (COCO categories)."""
    if not 1 <= num_classes <= len(SHAPE_CLASSES):
        raise ValueError(f'num_classes must be in 1..{len(SHAPE_CLASSES)}, '
                         f'got {num_classes}')
    return SHAPE_CLASSES[:num_classes]


def ade_classes(num_classes: int = DEFAULT_NUM_CLASSES) -> tuple[str, ...]:
    """ADE class names: the stuff classes, then the shape classes.

    Label ``i + 1`` in the PNGs is ``ade_classes()[i]``; with
    ``reduce_zero_label=True`` it becomes label ``i``.
    """
    return STUFF_CLASSES + shape_classes(num_classes)


def class_palette(num: int) -> list[tuple[int, int, int]]:
    """A fixed, well spread RGB palette of ``num`` colours."""
    palette = []
    for i in range(num):
        hue = (i * 0.618033988749895) % 1.0
        rgb = _hsv_to_rgb(hue, 0.75, 0.95)
        palette.append(tuple(int(round(c * 255)) for c in rgb))
    return palette


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[float, float, float]:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v),
            (v, p, q)][i]


@dataclass(frozen=True)
class SceneConfig:
    """What a scene may contain.

    Args:
        height, width: image size in pixels.
        num_classes: how many of :data:`SHAPE_CLASSES` are used.
        min_objects, max_objects: instances tried per image (uniform); a
            placement that would hide an earlier instance too much is retried
            and finally dropped, so an image has at least one instance.
        min_scale, max_scale: an object's diameter as a fraction of the
            shorter image side (log-uniform).
        min_visible: the least visible fraction of an instance's in-image
            area after occlusion.
        min_pixels: the least visible pixel count of an instance.
        max_distractors: unlabelled blobs drawn behind the instances.
        noise: range of the additive Gaussian noise's sigma (0..255 scale).
        max_blur: largest Gaussian blur radius in pixels.
    """
    height: int = 128
    width: int = 128
    num_classes: int = DEFAULT_NUM_CLASSES
    min_objects: int = 1
    max_objects: int = 5
    min_scale: float = 0.12
    max_scale: float = 0.45
    min_visible: float = 0.4
    min_pixels: int = 20
    max_distractors: int = 1
    noise: tuple[float, float] = (2.0, 8.0)
    max_blur: float = 0.8

    def __post_init__(self) -> None:
        shape_classes(self.num_classes)  # validates
        if self.height < 32 or self.width < 32:
            raise ValueError('images must be at least 32x32')
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError('need 1 <= min_objects <= max_objects')
        if not 0 < self.min_scale <= self.max_scale <= 1:
            raise ValueError('need 0 < min_scale <= max_scale <= 1')


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


# ---------------------------------------------------------------- geometry
def _rasterize(polygons: Sequence[Sequence[float]], height: int,
               width: int) -> np.ndarray:
    """Rasterise flat polygons with pycocotools (what ``annToMask`` does)."""
    from pycocotools import mask as mask_utils
    rles = mask_utils.frPyObjects([list(p) for p in polygons], height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def _regular(n: int, radius: float, phase: float) -> np.ndarray:
    """(n, 2) vertices of a regular n-gon around the origin."""
    a = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([radius * np.cos(a), radius * np.sin(a)], 1)


def _ellipse(rx: float, ry: float) -> np.ndarray:
    n = int(np.clip(2 * np.pi * max(rx, ry) / 2, 16, 64))
    a = 2 * np.pi * np.arange(n) / n
    return np.stack([rx * np.cos(a), ry * np.sin(a)], 1)


def _shape_outline(kind: str, r: float,
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
        t = r * rng.uniform(0.28, 0.38)
        outline = np.array([[t, -r], [t, -t], [r, -t], [r, t], [t, t], [t, r],
                            [-t, r], [-t, t], [-r, t], [-r, -t], [-t, -t],
                            [-t, -r]])
    elif kind == 'hexagon':
        outline = _regular(6, r, 0.0)
    else:
        raise ValueError(f'unknown shape {kind!r}')
    return outline, hole


def _blob(r: float, rng: np.random.Generator) -> np.ndarray:
    """An irregular, star-convex distractor outline of radius about ``r``."""
    n = int(rng.integers(9, 15))
    a = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = r * rng.uniform(0.55, 1.0, n)
    return np.stack([radii * np.cos(a), radii * np.sin(a)], 1)


def _place(points: np.ndarray, cx: float, cy: float,
           angle: float) -> np.ndarray:
    """Rotate by ``angle``, move to (cx, cy), round to 0.01 px."""
    c, s = math.cos(angle), math.sin(angle)
    x = points[:, 0] * c - points[:, 1] * s + cx
    y = points[:, 0] * s + points[:, 1] * c + cy
    return np.round(np.stack([x, y], 1), 2)


# ---------------------------------------------------------------- textures
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
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
    x, y = _grid(h, w)
    phase = rng.uniform(0, 2 * np.pi)
    wave = np.sin(2 * np.pi * (x * math.cos(angle) + y * math.sin(angle)) /
                  period + phase)
    return np.clip(0.5 + 1.5 * wave, 0, 1)


def _checker(rng: np.random.Generator, h: int, w: int,
             period: float) -> np.ndarray:
    x, y = _grid(h, w)
    ox, oy = rng.uniform(0, period, 2)
    return (((x + ox) // period + (y + oy) // period) % 2).astype(np.float32)


def _gradient(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    x, y = _grid(h, w)
    a = rng.uniform(0, 2 * np.pi)
    t = x * math.cos(a) + y * math.sin(a)
    return (t - t.min()) / max(float(t.max() - t.min()), 1e-6)


def _mix(c1: np.ndarray, c2: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(H, W, 3) blend of two RGB colours by a (H, W) weight."""
    return c1 + (c2 - c1) * t[..., None]


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, 3).astype(np.float32)


def _near(rng: np.random.Generator, c: np.ndarray, lo: float,
          hi: float) -> np.ndarray:
    """A colour at distance ``lo..hi`` from ``c`` (clipped to 0..255)."""
    d = rng.normal(size=3)
    d = d / max(np.linalg.norm(d), 1e-6) * rng.uniform(lo, hi)
    return np.clip(c + d, 0, 255).astype(np.float32)


def _stuff_texture(rng: np.random.Generator, h: int, w: int,
                   floor: bool) -> np.ndarray:
    """A wall (vertical structure) or floor (horizontal structure) texture."""
    c1 = _colour(rng) * 0.7 + 40
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
        t = _gradient(rng, h, w)
    return _mix(c1, c2, t)


def _object_texture(rng: np.random.Generator, h: int, w: int,
                    base: np.ndarray) -> np.ndarray:
    """Solid with shading, stripes, or mottled: class-independent."""
    kind = rng.choice(3, p=[0.5, 0.25, 0.25])
    if kind == 0:
        t = _gradient(rng, h, w)
        return _mix(base * 0.8, np.minimum(base * 1.2 + 10, 255), t)
    if kind == 1:
        t = _stripes(rng, h, w, rng.uniform(0, np.pi), rng.uniform(3, 8))
    else:
        t = _smooth_noise(rng, h, w, int(rng.integers(6, 16)))
    return _mix(base, _near(rng, base, 40, 90), t)


# ---------------------------------------------------------------- scenes
def _radius(rng: np.random.Generator, cfg: SceneConfig) -> float:
    """Half a log-uniform diameter between the configured scales."""
    scale = math.exp(
        rng.uniform(math.log(cfg.min_scale), math.log(cfg.max_scale)))
    return scale * min(cfg.height, cfg.width) / 2


def draw_scene(rng: np.random.Generator, cfg: SceneConfig) -> Scene:
    """Draw one scene from ``rng``.

    Returns:
        The image, its visible instances (back to front) and its ADE label
        map.
    """
    h, w = cfg.height, cfg.width
    classes = shape_classes(cfg.num_classes)

    # Background: wall over floor under a wavy horizon.
    x, y = _grid(h, w)
    horizon = h * rng.uniform(0.3, 0.75) + h * rng.uniform(0, 0.06) * np.sin(
        2 * np.pi * x / (w * rng.uniform(0.5, 2)) + rng.uniform(0, 2 * np.pi))
    is_floor = y >= horizon
    image = np.where(is_floor[..., None], _stuff_texture(rng, h, w, True),
                     _stuff_texture(rng, h, w, False))
    semantic = np.where(is_floor, 2, 1).astype(np.uint8)

    # Distractors: unlabelled blobs behind the instances (ADE label 0).
    for _ in range(int(rng.integers(0, cfg.max_distractors + 1))):
        r = _radius(rng, cfg)
        pts = _place(_blob(r, rng), rng.uniform(0, w), rng.uniform(0, h), 0)
        m = _rasterize([pts.ravel().tolist()], h, w)
        image[m] = _object_texture(rng, h, w, _colour(rng))[m]
        semantic[m] = 0

    # Instances, back to front.
    amodal: list[np.ndarray] = []
    visible: list[np.ndarray] = []
    labels: list[int] = []
    polys: list[list[float] | None] = []
    dropped = 0
    for _ in range(int(rng.integers(cfg.min_objects, cfg.max_objects + 1))):
        label = int(rng.integers(len(classes)))
        for _attempt in range(12):
            r = _radius(rng, cfg)
            outline, hole = _shape_outline(classes[label], r, rng)
            angle = rng.uniform(0, 2 * np.pi)
            cx = rng.uniform(0.35 * r, w - 0.35 * r)
            cy = rng.uniform(0.35 * r, h - 0.35 * r)
            pts = _place(outline, cx, cy, angle)
            m = _rasterize([pts.ravel().tolist()], h, w)
            if len(hole):
                inner = _place(hole, cx, cy, angle)
                m &= ~_rasterize([inner.ravel().tolist()], h, w)
            if m.sum() < cfg.min_pixels:
                continue
            if all((v & ~m).sum() >= max(cfg.min_visible * a.sum(),
                                         cfg.min_pixels)
                   for a, v in zip(amodal, visible)):
                break
        else:
            dropped += 1
            continue
        inside = bool((pts >= 0).all() and (pts[:, 0] <= w).all()
                      and (pts[:, 1] <= h).all())
        visible = [v & ~m for v in visible]
        amodal.append(m)
        visible.append(m.copy())
        labels.append(label)
        exact = inside and not len(hole)
        polys.append(pts.ravel().tolist() if exact else None)

        # A colour that stands out from what is behind it.
        behind = image[m].mean(0)
        base = _colour(rng)
        for _try in range(8):
            if np.linalg.norm(base - behind) >= 70:
                break
            base = _colour(rng)
        image[m] = _object_texture(rng, h, w, base)[m]
        semantic[m] = len(STUFF_CLASSES) + 1 + label

    instances = []
    for a, v, label, poly in zip(amodal, visible, labels, polys):
        occluded = bool((a & ~v).any())
        instances.append(
            Instance(label=label, mask=v, occluded=occluded,
                     polygons=[poly] if poly is not None and not occluded
                     else None))

    # Lighting, blur, sensor noise.
    image = image * _mix(np.full(3, rng.uniform(0.8, 1.0), np.float32),
                         np.full(3, rng.uniform(1.0, 1.2), np.float32),
                         _gradient(rng, h, w))
    pil = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    radius = float(rng.uniform(0, cfg.max_blur))
    if radius > 0.2:
        pil = pil.filter(ImageFilter.GaussianBlur(radius))
    sigma = rng.uniform(*cfg.noise)
    image = np.asarray(pil, dtype=np.float32) + rng.normal(
        0, sigma, (h, w, 3)).astype(np.float32)
    image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    return Scene(image=image, instances=instances, semantic=semantic,
                 dropped=dropped)


def scene_rng(seed: int, task: str, split: str,
              index: int) -> np.random.Generator:
    """The generator of one image: ``task`` coco|ade, ``split`` train|val."""
    return np.random.default_rng(
        [seed, _TASK_IDS[task], _SPLIT_IDS[split], index])


# ---------------------------------------------------------------- writers
def _encode_rle(mask: np.ndarray) -> dict[str, Any]:
    from pycocotools import mask as mask_utils
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': [int(s) for s in rle['size']],
            'counts': rle['counts'].decode('ascii')}


def _bbox(mask: np.ndarray) -> list[float]:
    """[x, y, w, h] of the mask's extent, in whole pixels."""
    ys = np.flatnonzero(mask.any(1))
    xs = np.flatnonzero(mask.any(0))
    return [float(xs[0]), float(ys[0]), float(xs[-1] - xs[0] + 1),
            float(ys[-1] - ys[0] + 1)]


def _dump_json(obj: Any, path: str) -> None:
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(obj, f, sort_keys=True, separators=(',', ':'))
        f.write('\n')


def _clear(folder: str, pattern: str) -> None:
    """Remove earlier generated files (those matching ``pattern``) only."""
    if osp.isdir(folder):
        for name in sorted(os.listdir(folder)):
            if re.fullmatch(pattern, name):
                os.remove(osp.join(folder, name))


def write_coco(out_dir: str, seed: int = 0, num_train: int = 400,
               num_val: int = 100, cfg: SceneConfig = SceneConfig(),
               mask_format: str = 'mixed') -> dict[str, Any]:
    """Write a COCO-format instance dataset to ``<out_dir>/coco_demo``.

    Args:
        out_dir: parent folder (e.g. ``data``).
        seed: the seed; same arguments give the same bytes.
        num_train, num_val: image counts.
        cfg: what the scenes contain.
        mask_format: ``'mixed'`` (polygons for fully visible shapes without
            holes, RLE otherwise) or ``'rle'`` (RLE for all).

    Returns:
        A summary: the root, per split the annotation file, image count,
        instance count, occluded instances and dropped placements.
    """
    if mask_format not in ('mixed', 'rle'):
        raise ValueError(f'mask_format must be mixed or rle: {mask_format!r}')
    if num_train >= _VAL_ID_OFFSET:
        raise ValueError(f'num_train must be < {_VAL_ID_OFFSET}')
    root = osp.join(out_dir, COCO_DIR)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    classes = shape_classes(cfg.num_classes)
    categories = [dict(id=i + 1, name=n, supercategory='shape')
                  for i, n in enumerate(classes)]
    summary: dict[str, Any] = dict(root=root)
    for split, count in (('train', num_train), ('val', num_val)):
        img_dir = osp.join(root, _COCO_SPLITS[split])
        os.makedirs(img_dir, exist_ok=True)
        _clear(img_dir, r'\d{12}\.jpg')
        images, anns = [], []
        occluded = dropped = 0
        for index in range(count):
            scene = draw_scene(scene_rng(seed, 'coco', split, index), cfg)
            image_id = index + 1 + (_VAL_ID_OFFSET if split == 'val' else 0)
            file_name = f'{image_id:012d}.jpg'
            Image.fromarray(scene.image).save(
                osp.join(img_dir, file_name), **_JPEG_KWARGS)
            images.append(dict(id=image_id, file_name=file_name,
                               height=cfg.height, width=cfg.width))
            dropped += scene.dropped
            for inst in scene.instances:
                occluded += inst.occluded
                if inst.polygons is not None and mask_format == 'mixed':
                    segm: Any = inst.polygons
                else:
                    segm = _encode_rle(inst.mask)
                anns.append(dict(
                    id=len(anns) + 1, image_id=image_id,
                    category_id=inst.label + 1, bbox=_bbox(inst.mask),
                    area=float(inst.mask.sum()), iscrowd=0,
                    segmentation=segm))
        ann_file = osp.join(root, 'annotations',
                            f'instances_{_COCO_SPLITS[split]}.json')
        _dump_json(
            dict(info=dict(description='mmcat synthetic shapes, COCO format',
                           contributor='tools/generate_demo_data.py',
                           version='1.0', seed=seed,
                           config=asdict(cfg), mask_format=mask_format),
                 licenses=[], images=images, annotations=anns,
                 categories=categories), ann_file)
        summary[split] = dict(ann_file=ann_file, images=count,
                              instances=len(anns), occluded=occluded,
                              dropped=dropped)
    return summary


def write_ade(out_dir: str, seed: int = 0, num_train: int = 400,
              num_val: int = 100,
              cfg: SceneConfig = SceneConfig()) -> dict[str, Any]:
    """Write an ADE20K-format semantic segmentation dataset.

    The layout is ``<out_dir>/ade_demo/ADEChallengeData2016/{images,
    annotations}/{training,validation}/ADE_{train,val}_%08d.{jpg,png}``; the
    label PNGs are 8-bit single channel with 0 = other (ignored with
    ``reduce_zero_label=True``) and ``i + 1`` = ``ade_classes()[i]``.

    Returns:
        A summary: the root and per split the image count.
    """
    root = osp.join(out_dir, ADE_DIR)
    summary: dict[str, Any] = dict(root=root)
    for split, count in (('train', num_train), ('val', num_val)):
        img_dir = osp.join(root, 'images', _ADE_SPLITS[split])
        ann_dir = osp.join(root, 'annotations', _ADE_SPLITS[split])
        for folder, ext in ((img_dir, 'jpg'), (ann_dir, 'png')):
            os.makedirs(folder, exist_ok=True)
            _clear(folder, rf'ADE_{split}_\d{{8}}\.{ext}')
        for index in range(count):
            scene = draw_scene(scene_rng(seed, 'ade', split, index), cfg)
            stem = f'ADE_{split}_{index + 1:08d}'
            Image.fromarray(scene.image).save(
                osp.join(img_dir, stem + '.jpg'), **_JPEG_KWARGS)
            Image.fromarray(scene.semantic).save(
                osp.join(ann_dir, stem + '.png'), **_PNG_KWARGS)
        summary[split] = dict(img_dir=img_dir, ann_dir=ann_dir, images=count)
    _dump_json(dict(classes=list(ade_classes(cfg.num_classes)), seed=seed,
                    config=asdict(cfg), reduce_zero_label=True),
               osp.join(osp.dirname(root), 'generation.json'))
    return summary


# ---------------------------------------------------------------- statistics
def coco_statistics(ann_file: str) -> dict[str, Any]:
    """Counts, box sizes and overlaps of a COCO annotation file.

    Two instances of one image overlap when their boxes intersect.
    """
    with open(ann_file, encoding='utf-8') as f:
        data = json.load(f)
    names = {c['id']: c['name'] for c in data['categories']}
    per_class = {n: 0 for n in names.values()}
    by_image: dict[int, list[list[float]]] = {}
    areas, sides = [], []
    polygons = 0
    for ann in data['annotations']:
        per_class[names[ann['category_id']]] += 1
        x, y, w, h = ann['bbox']
        areas.append(w * h)
        sides.append(max(w, h))
        polygons += isinstance(ann['segmentation'], list)
        by_image.setdefault(ann['image_id'], []).append(ann['bbox'])
    pairs = overlapping = images_with_overlap = 0
    for boxes in by_image.values():
        hit = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                pairs += 1
                a, b = boxes[i], boxes[j]
                iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
                ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
                if iw > 0 and ih > 0:
                    overlapping += 1
                    hit = True
        images_with_overlap += hit
    num_images = len(data['images'])
    return dict(
        images=num_images, instances=len(data['annotations']),
        per_class=per_class,
        instances_per_image=len(data['annotations']) / max(num_images, 1),
        box_area_min=min(areas, default=0.0),
        box_area_max=max(areas, default=0.0),
        box_side_min=min(sides, default=0.0),
        box_side_max=max(sides, default=0.0),
        polygon_masks=polygons, rle_masks=len(areas) - polygons,
        instance_pairs=pairs, overlapping_pairs=overlapping,
        images_with_overlap=images_with_overlap)


def ade_statistics(ann_dir: str, num_labels: int) -> dict[str, Any]:
    """Pixel fraction of each PNG label (0 = other) and images per label."""
    pixels = np.zeros(num_labels + 1, np.int64)
    images = np.zeros(num_labels + 1, np.int64)
    names = sorted(n for n in os.listdir(ann_dir) if n.endswith('.png'))
    for name in names:
        seg = np.asarray(Image.open(osp.join(ann_dir, name)))
        counts = np.bincount(seg.ravel(), minlength=num_labels + 1)
        pixels += counts[:num_labels + 1]
        images += counts[:num_labels + 1] > 0
    total = max(int(pixels.sum()), 1)
    return dict(images=len(names),
                pixel_fraction=[float(p) / total for p in pixels],
                images_with_label=[int(i) for i in images])
