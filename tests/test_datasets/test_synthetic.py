"""The generator: formats, exactness, reproducibility, statistics."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from mmcat.datasets import synthetic
from mmcat.datasets.synthetic import (SceneConfig, ade_classes, draw_scene,
                                      scene_rng, shape_classes, write_ade,
                                      write_coco)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _hash_tree(root: str) -> dict[str, str]:
    digests = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = osp.join(folder, name)
            with open(path, 'rb') as f:
                digests[osp.relpath(path, root)] = hashlib.sha256(
                    f.read()).hexdigest()
    return digests


def _generate(out: str, seed: int) -> dict[str, str]:
    cfg = SceneConfig(height=64, width=64)
    write_coco(out, seed=seed, num_train=3, num_val=2, cfg=cfg)
    write_ade(out, seed=seed, num_train=3, num_val=2, cfg=cfg)
    return _hash_tree(out)


def test_reproducible_byte_for_byte(tmp_path) -> None:
    first = _generate(str(tmp_path / 'a'), seed=7)
    again = _generate(str(tmp_path / 'b'), seed=7)
    other = _generate(str(tmp_path / 'c'), seed=8)
    assert len(first) == (3 + 2) + 2 + (3 + 2) * 2 + 1
    assert first == again
    assert first.keys() == other.keys()
    images = [k for k in first if k.endswith(('.jpg', '.png'))]
    assert all(first[k] != other[k] for k in images)


def test_regenerating_replaces_earlier_files(tmp_path) -> None:
    cfg = SceneConfig(height=48, width=48)
    write_ade(str(tmp_path), seed=0, num_train=3, num_val=1, cfg=cfg)
    summary = write_ade(str(tmp_path), seed=0, num_train=2, num_val=1,
                        cfg=cfg)
    assert len(os.listdir(summary['train']['img_dir'])) == 2
    assert len(os.listdir(summary['train']['ann_dir'])) == 2


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


def test_statistics(tmp_path) -> None:
    cfg = SceneConfig(height=96, width=96)
    summary = write_coco(str(tmp_path), seed=0, num_train=40, num_val=1,
                         cfg=cfg)
    stats = synthetic.coco_statistics(summary['train']['ann_file'])
    print(stats)
    assert stats['images'] == 40
    assert stats['instances'] >= 80
    assert sum(n > 0 for n in stats['per_class'].values()) == len(
        shape_classes())
    assert stats['box_side_min'] <= 0.2 * 96
    assert stats['box_side_max'] >= 0.4 * 96
    assert stats['box_area_max'] >= 8 * stats['box_area_min']
    assert stats['overlapping_pairs'] > 0
    assert summary['train']['occluded'] > 0
    assert stats['polygon_masks'] > 0 and stats['rle_masks'] > 0

    ade = write_ade(str(tmp_path), seed=0, num_train=10, num_val=1, cfg=cfg)
    pixels = synthetic.ade_statistics(ade['train']['ann_dir'],
                                      len(ade_classes()))
    assert pixels['images_with_label'][1] == pixels['images_with_label'][
        2] == 10
    assert sum(f > 0 for f in pixels['pixel_fraction'][3:]) >= 4


def test_rle_only(tmp_path) -> None:
    summary = write_coco(str(tmp_path), num_train=2, num_val=1,
                         cfg=SceneConfig(height=48, width=48),
                         mask_format='rle')
    stats = synthetic.coco_statistics(summary['val']['ann_file'])
    assert stats['polygon_masks'] == 0 and stats['rle_masks'] > 0


def test_bad_config() -> None:
    with pytest.raises(ValueError):
        SceneConfig(num_classes=len(synthetic.SHAPE_CLASSES) + 1)
    with pytest.raises(ValueError):
        SceneConfig(min_objects=3, max_objects=2)
    with pytest.raises(ValueError):
        SceneConfig(height=16)
    with pytest.raises(ValueError):
        write_coco('unused', mask_format='polygon')


def test_cli(tmp_path, capsys) -> None:
    spec = importlib.util.spec_from_file_location(
        'generate_demo_data', osp.join(ROOT, 'tools', 'generate_demo_data.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main(['--out', str(tmp_path), '--num-train', '2', '--num-val', '1',
               '--image-size', '48', '64', '--num-classes', '4',
               '--noise', '0', '1', '--max-blur', '0'])
    out = capsys.readouterr().out
    assert 'COCO' in out and 'ADE20K' in out
    coco = COCO(str(tmp_path / 'coco_demo' / 'annotations' /
                    'instances_train2017.json'))
    assert len(coco.getImgIds()) == 2 and len(coco.getCatIds()) == 4
    assert coco.loadImgs(1)[0]['height'] == 48
    assert coco.loadImgs(1)[0]['width'] == 64
    assert len(os.listdir(tmp_path / 'ade_demo' / 'ADEChallengeData2016' /
                          'images' / 'validation')) == 1
