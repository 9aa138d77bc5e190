"""The COCO instance-segmentation writer: ``<out>/coco_demo``.

One annotation per visible instance. Its mask is the visible part after
occlusion, its ``bbox`` the visible extent and its ``area`` the visible pixel
count. An instance that is fully visible, inside the image and without holes
is written as a polygon, any other as RLE.
"""
from __future__ import annotations

import os
import os.path as osp
from dataclasses import asdict
from typing import Any

import numpy as np

from ..classes import shape_classes
from .config import SceneConfig
from .files import clear, dump_json, save_jpeg
from .scene import Instance, draw_scene, scene_rng

__all__ = ['COCO_DIR', 'write_coco']

#: Dataset root under the output folder.
COCO_DIR = 'coco_demo'
_COCO_SPLITS = {'train': 'train2017', 'val': 'val2017'}
#: COCO image ids: train images are 1..N, val images start after this.
_VAL_ID_OFFSET = 1_000_000


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
    summary: dict[str, Any] = dict(root=root)
    for split, count in (('train', num_train), ('val', num_val)):
        summary[split] = _write_split(root, split, count, seed, cfg,
                                      mask_format)
    return summary


def _write_split(root: str, split: str, count: int, seed: int,
                 cfg: SceneConfig, mask_format: str) -> dict[str, Any]:
    """Write one split's images and annotation file; return its summary."""
    img_dir = osp.join(root, _COCO_SPLITS[split])
    os.makedirs(img_dir, exist_ok=True)
    clear(img_dir, r'\d{12}\.jpg')
    images, anns = [], []
    occluded = dropped = 0
    for index in range(count):
        scene = draw_scene(scene_rng(seed, 'coco', split, index), cfg)
        image_id = index + 1 + (_VAL_ID_OFFSET if split == 'val' else 0)
        file_name = f'{image_id:012d}.jpg'
        save_jpeg(scene.image, osp.join(img_dir, file_name))
        images.append(dict(id=image_id, file_name=file_name,
                           height=cfg.height, width=cfg.width))
        dropped += scene.dropped
        for inst in scene.instances:
            occluded += inst.occluded
            anns.append(_annotation(inst, len(anns) + 1, image_id,
                                    mask_format))
    ann_file = osp.join(root, 'annotations',
                        f'instances_{_COCO_SPLITS[split]}.json')
    dump_json(
        dict(info=dict(description='mmcat synthetic shapes, COCO format',
                       contributor='tools/generate_demo_data.py',
                       version='1.0', seed=seed,
                       config=asdict(cfg), mask_format=mask_format),
             licenses=[], images=images, annotations=anns,
             categories=_categories(cfg.num_classes)), ann_file)
    return dict(ann_file=ann_file, images=count, instances=len(anns),
                occluded=occluded, dropped=dropped)


def _categories(num_classes: int) -> list[dict[str, Any]]:
    """COCO categories, ids 1..num_classes."""
    return [dict(id=i + 1, name=n, supercategory='shape')
            for i, n in enumerate(shape_classes(num_classes))]


def _annotation(inst: Instance, ann_id: int, image_id: int,
                mask_format: str) -> dict[str, Any]:
    """The COCO annotation of one visible instance."""
    if inst.polygons is not None and mask_format == 'mixed':
        segm: Any = inst.polygons
    else:
        segm = _encode_rle(inst.mask)
    return dict(id=ann_id, image_id=image_id, category_id=inst.label + 1,
                bbox=_bbox(inst.mask), area=float(inst.mask.sum()),
                iscrowd=0, segmentation=segm)


def _encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """Uncompressed-JSON form of the COCO RLE of an (H, W) bool mask."""
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
