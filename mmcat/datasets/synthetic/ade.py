"""The ADE20K semantic-segmentation writer:
``<out>/ade_demo/ADEChallengeData2016``.

8-bit label PNGs with ADE's conventions: 0 is "other" (the distractors),
ignored under ``reduce_zero_label=True``; 1 is wall, 2 floor, 3.. the shape
classes.
"""
from __future__ import annotations

import os
import os.path as osp
from dataclasses import asdict
from typing import Any

from ..classes import ade_classes
from .config import SceneConfig
from .files import clear, dump_json, save_jpeg, save_png
from .scene import draw_scene, scene_rng

__all__ = ['ADE_DIR', 'write_ade']

#: Dataset root under the output folder.
ADE_DIR = osp.join('ade_demo', 'ADEChallengeData2016')
_ADE_SPLITS = {'train': 'training', 'val': 'validation'}


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
            clear(folder, rf'ADE_{split}_\d{{8}}\.{ext}')
        for index in range(count):
            scene = draw_scene(scene_rng(seed, 'ade', split, index), cfg)
            stem = f'ADE_{split}_{index + 1:08d}'
            save_jpeg(scene.image, osp.join(img_dir, stem + '.jpg'))
            save_png(scene.semantic, osp.join(ann_dir, stem + '.png'))
        summary[split] = dict(img_dir=img_dir, ann_dir=ann_dir, images=count)
    dump_json(dict(classes=list(ade_classes(cfg.num_classes)), seed=seed,
                   config=asdict(cfg), reduce_zero_label=True),
              osp.join(osp.dirname(root), 'generation.json'))
    return summary
