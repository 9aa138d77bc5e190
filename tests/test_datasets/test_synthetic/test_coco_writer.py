"""The COCO writer: exact annotations and the RLE-only format."""
from __future__ import annotations

import os.path as osp

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from mmcat.datasets import synthetic
from mmcat.datasets.synthetic import (SceneConfig, draw_scene, scene_rng,
                                      shape_classes, write_coco)


@pytest.mark.parametrize('split', ['train', 'val'])
def test_coco_annotations_are_exact(demo, split: str) -> None:
    demo_root, seed, cfg = demo
    ann_file = osp.join(demo_root, 'coco_demo', 'annotations',
                        f'instances_{split}2017.json')
    coco = COCO(ann_file)
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(
        shape_classes())
    img_ids = sorted(coco.getImgIds())
    assert len(img_ids) == {'train': 8, 'val': 6}[split]
    for index, img_id in enumerate(img_ids):
        info = coco.loadImgs(img_id)[0]
        image = Image.open(
            osp.join(demo_root, 'coco_demo', f'{split}2017',
                     info['file_name']))
        assert image.size == (cfg.width, cfg.height) == (info['width'],
                                                         info['height'])
        assert image.mode == 'RGB'
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
        assert anns, 'every image has an instance'
        scene = draw_scene(scene_rng(seed, 'coco', split, index), cfg)
        assert [a['category_id'] - 1 for a in anns] == [
            i.label for i in scene.instances]
        covered = np.zeros((cfg.height, cfg.width), np.int64)
        for ann, inst in zip(anns, scene.instances):
            mask = coco.annToMask(ann)
            assert mask.shape == (cfg.height, cfg.width)
            assert mask.sum() > 0
            assert mask.sum() == ann['area']
            np.testing.assert_array_equal(mask.astype(bool), inst.mask)
            ys, xs = np.nonzero(mask)
            assert ann['bbox'] == [xs.min(), ys.min(), xs.max() - xs.min() + 1,
                                   ys.max() - ys.min() + 1]
            assert ann['iscrowd'] == 0
            covered += mask
        assert covered.max() == 1, 'visible parts do not overlap'


def test_rle_only(tmp_path) -> None:
    summary = write_coco(str(tmp_path), num_train=2, num_val=1,
                         cfg=SceneConfig(height=48, width=48),
                         mask_format='rle')
    stats = synthetic.coco_statistics(summary['val']['ann_file'])
    assert stats['polygon_masks'] == 0 and stats['rle_masks'] > 0
