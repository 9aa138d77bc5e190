"""Summaries of generated datasets: counts, box sizes, overlaps, pixels."""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Any, Iterable

import numpy as np
from PIL import Image

__all__ = ['coco_statistics', 'ade_statistics']


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
    pairs, overlapping, images_with_overlap = _box_overlaps(
        by_image.values())
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


def _box_overlaps(
        images: Iterable[list[list[float]]]) -> tuple[int, int, int]:
    """Over the [x, y, w, h] boxes of each image: instance pairs,
    overlapping pairs and images with an overlap."""
    pairs = overlapping = images_with_overlap = 0
    for boxes in images:
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
    return pairs, overlapping, images_with_overlap


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
