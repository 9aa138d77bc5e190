"""CocoDemoDataset and ADE20KDemoDataset through real mmdet/mmseg pipelines."""
from __future__ import annotations

import os.path as osp

import numpy as np
import pytest
from mmengine.registry import DefaultScope
from pycocotools.coco import COCO

from mmcat.datasets import ADE20KDemoDataset, CocoDemoDataset
from mmcat.datasets.synthetic import ade_classes, shape_classes

COMMAND = 'python tools/generate_demo_data.py --out data'


def _coco_cfg(data_root: str) -> dict:
    return dict(
        type='CocoDemoDataset',
        data_root=data_root,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
            dict(type='PackDetInputs')
        ])


def _ade_cfg(data_root: str) -> dict:
    return dict(
        type='ADE20KDemoDataset',
        data_root=data_root,
        data_prefix=dict(
            img_path='images/validation',
            seg_map_path='annotations/validation'),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations'),
            dict(type='PackSegInputs')
        ])


def test_registered() -> None:
    from mmdet.registry import DATASETS as DET_DATASETS
    from mmseg.registry import DATASETS as SEG_DATASETS
    assert DET_DATASETS.get('CocoDemoDataset') is CocoDemoDataset
    assert SEG_DATASETS.get('ADE20KDemoDataset') is ADE20KDemoDataset
    assert CocoDemoDataset.METAINFO['classes'] == shape_classes()
    assert ADE20KDemoDataset.METAINFO['classes'] == ade_classes()


def test_coco_demo_dataset(demo) -> None:
    demo_root, seed, cfg = demo
    from mmdet.registry import DATASETS
    data_root = osp.join(demo_root, 'coco_demo')
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = DATASETS.build(_coco_cfg(data_root))
        coco = COCO(osp.join(data_root, 'annotations',
                             'instances_val2017.json'))
        assert len(dataset) == 6
        for index in range(len(dataset)):
            item = dataset[index]
            sample = item['data_samples']
            assert tuple(item['inputs'].shape) == (3, cfg.height, cfg.width)
            anns = coco.loadAnns(coco.getAnnIds(imgIds=sample.img_id))
            gt = sample.gt_instances
            assert len(gt) == len(anns) > 0
            assert gt.masks.masks.shape == (len(anns), cfg.height, cfg.width)
            for i, ann in enumerate(anns):
                np.testing.assert_array_equal(gt.masks.masks[i],
                                              coco.annToMask(ann))
                x, y, w, h = ann['bbox']
                np.testing.assert_allclose(gt.bboxes.tensor[i].numpy(),
                                           [x, y, x + w, y + h])
                assert int(gt.labels[i]) == ann['category_id'] - 1
            assert not sample.ignored_instances.bboxes.numel()


def test_ade_demo_dataset(demo) -> None:
    demo_root, seed, cfg = demo
    from mmseg.registry import DATASETS
    data_root = osp.join(demo_root, 'ade_demo', 'ADEChallengeData2016')
    num_classes = len(ade_classes())
    with DefaultScope.overwrite_default_scope('mmseg'):
        dataset = DATASETS.build(_ade_cfg(data_root))
        assert len(dataset) == 6
        seen = set()
        for index in range(len(dataset)):
            item = dataset[index]
            label = item['data_samples'].gt_sem_seg.data.numpy()
            assert label.shape == (1, cfg.height, cfg.width)
            values = set(np.unique(label).tolist())
            assert values <= set(range(num_classes)) | {255}
            seen |= values
        assert {0, 1} <= seen and len(seen - {0, 1, 255}) >= 3


def test_missing_data_says_how_to_make_it(tmp_path) -> None:
    from mmdet.registry import DATASETS as DET_DATASETS
    from mmseg.registry import DATASETS as SEG_DATASETS
    missing = str(tmp_path / 'nowhere')
    with DefaultScope.overwrite_default_scope('mmdet'):
        with pytest.raises(FileNotFoundError) as err:
            DET_DATASETS.build(_coco_cfg(osp.join(missing, 'coco_demo')))
    assert osp.join(missing, 'coco_demo', 'annotations',
                    'instances_val2017.json') in str(err.value)
    assert COMMAND in str(err.value)
    assert 'cocodataset.org' in str(err.value)
    with DefaultScope.overwrite_default_scope('mmseg'):
        with pytest.raises(FileNotFoundError) as err:
            SEG_DATASETS.build(_ade_cfg(osp.join(missing, 'ade_demo')))
    assert osp.join(missing, 'ade_demo', 'images',
                    'validation') in str(err.value)
    assert COMMAND in str(err.value)


def test_coco_metric_scores_ground_truth_as_perfect(demo) -> None:
    """mmdet's CocoMetric reads the val json: the truth scores mAP 1."""
    import torch
    from mmdet.evaluation import CocoMetric
    demo_root, seed, cfg = demo
    ann_file = osp.join(demo_root, 'coco_demo', 'annotations',
                        'instances_val2017.json')
    coco = COCO(ann_file)
    metric = CocoMetric(ann_file=ann_file, metric=['bbox', 'segm'])
    metric.dataset_meta = dict(classes=shape_classes())
    samples = []
    for img_id in coco.getImgIds():
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
        boxes = [[x, y, x + w, y + h] for x, y, w, h in
                 (a['bbox'] for a in anns)]
        samples.append(dict(
            img_id=img_id, ori_shape=(cfg.height, cfg.width),
            pred_instances=dict(
                bboxes=torch.tensor(boxes),
                scores=torch.ones(len(anns)),
                labels=torch.tensor([a['category_id'] - 1 for a in anns]),
                masks=torch.from_numpy(
                    np.stack([coco.annToMask(a) for a in anns]).astype(
                        bool)))))
    metric.process({}, samples)
    result = metric.evaluate(len(samples))
    assert result['coco/bbox_mAP'] == pytest.approx(1.0)
    assert result['coco/segm_mAP'] == pytest.approx(1.0)
