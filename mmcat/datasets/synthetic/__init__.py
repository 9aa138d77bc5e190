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

* COCO (``<out>/coco_demo``, :mod:`.coco`): one annotation per visible
  instance, a polygon where that is exact, else RLE; polygons are rasterised
  with pycocotools when drawn, so ``annToMask`` gives back exactly the pixels
  that were painted.
* ADE20K (``<out>/ade_demo/ADEChallengeData2016``, :mod:`.ade`): 8-bit label
  PNGs with ADE's conventions (0 other, 1 wall, 2 floor, 3.. shapes).

The steps: :mod:`.geometry` (shape outlines), :mod:`.textures`,
:mod:`.scene` (drawing one scene), the writers and :mod:`.statistics`.
"""
from ..classes import (DEFAULT_NUM_CLASSES, SHAPE_CLASSES, STUFF_CLASSES,
                       ade_classes, class_palette, shape_classes)
from .ade import ADE_DIR, write_ade
from .coco import COCO_DIR, write_coco
from .config import SceneConfig
from .scene import Instance, Scene, draw_scene, scene_rng
from .statistics import ade_statistics, coco_statistics

__all__ = [
    'SHAPE_CLASSES', 'STUFF_CLASSES', 'DEFAULT_NUM_CLASSES', 'SceneConfig',
    'Instance', 'Scene', 'shape_classes', 'ade_classes', 'class_palette',
    'draw_scene', 'scene_rng', 'write_coco', 'write_ade', 'coco_statistics',
    'ade_statistics', 'COCO_DIR', 'ADE_DIR'
]
