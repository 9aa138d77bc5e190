"""The ADE20K writer: label maps equal to the drawn scenes, regeneration."""
from __future__ import annotations

import os
import os.path as osp

import numpy as np
from PIL import Image

from mmcat.datasets.synthetic import (SceneConfig, ade_classes, draw_scene,
                                      scene_rng, write_ade)


def test_ade_labels(demo) -> None:
    demo_root, seed, cfg = demo
    root = osp.join(demo_root, 'ade_demo', 'ADEChallengeData2016')
    num_labels = len(ade_classes())
    for split, folder, count in (('train', 'training', 4),
                                 ('val', 'validation', 6)):
        names = sorted(os.listdir(osp.join(root, 'annotations', folder)))
        assert names == [f'ADE_{split}_{i + 1:08d}.png' for i in range(count)]
        for index, name in enumerate(names):
            label = Image.open(osp.join(root, 'annotations', folder, name))
            assert label.mode == 'L'
            assert label.size == (cfg.width, cfg.height)
            image = Image.open(
                osp.join(root, 'images', folder, name[:-4] + '.jpg'))
            assert image.size == label.size
            label = np.asarray(label)
            assert label.max() <= num_labels
            scene = draw_scene(scene_rng(seed, 'ade', split, index), cfg)
            np.testing.assert_array_equal(label, scene.semantic)
            for inst in scene.instances:
                assert (label[inst.mask] == 3 + inst.label).all()


def test_regenerating_replaces_earlier_files(tmp_path) -> None:
    cfg = SceneConfig(height=48, width=48)
    write_ade(str(tmp_path), seed=0, num_train=3, num_val=1, cfg=cfg)
    summary = write_ade(str(tmp_path), seed=0, num_train=2, num_val=1,
                        cfg=cfg)
    assert len(os.listdir(summary['train']['img_dir'])) == 2
    assert len(os.listdir(summary['train']['ann_dir'])) == 2
