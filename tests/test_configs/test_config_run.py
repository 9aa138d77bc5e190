"""Configs train for one iteration and test for one iteration on the CPU,
through mmengine's Runner, on tiny COCO / ADE20K samples in the real formats;
and their data pipelines are those of the MMDetection / MMSegmentation
configs they build on.

Which configs run through a Runner (one costs 10-50 s on 2 CPU cores):

* the CAT-S config of every method (1x; 80k for Semantic FPN): the models
  exactly as configured, only data, image sizes, loop lengths, pretrained
  weights and the test's score thresholds overridden
  (:func:`config_testkit.sample_options`,
  :func:`config_testkit.all_boxes_options`);
* the Semantic FPN R-50 baseline: SyncBN in its ResNet and head, which the
  Runner must turn into BN in a single CPU process, and the CAT lr schedule
  on SGD.

Every other config (CAT-T / CAT-B, ResNet baselines, ms-1x, 160k, ablation
and demo configs) trains one step without a Runner in
test_config_train_step.py; each train dataset is its base's (checked here),
and the pipelines of those bases run on the sample here.
"""
import math
import uuid
from typing import Dict

import pytest
from config_testkit import (RUNNER_CONFIGS, all_boxes_options, apply_options,
                            config_names, load, load_mm, mm_base,
                            register_scope, sample_options)
from mmengine.registry import DATASETS, init_default_scope
from mmengine.runner import Runner

import mmcat  # noqa: F401  (registers CAT)

ALL = config_names()
#: One config per distinct train dataset (data, annotations, pipeline).
PIPELINES = [
    'fcos_cat_s_1x_coco.py', 'mask-rcnn_cat_s_1x_coco.py',
    'cascade-rcnn_cat_s_ms-1x_coco.py', 'mask-rcnn_cat_s_ms-1x_coco.py',
    'sem-fpn_cat_s_80k_ade20k-512x512.py'
]
#: The train resize step of the ``ms-1x`` configs (the CAT paper's
#: multi-scale training) in place of their base's single-scale one.
MS_1X_RESIZE = dict(
    type='RandomChoiceResize',
    scales=[(1333, short) for short in range(480, 801, 32)],
    keep_ratio=True)
COCO_METRICS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')


def _root(scope: str, coco_root: str, ade_root: str) -> str:
    return ade_root if scope == 'mmseg' else coco_root


def _expected_metrics(cfg) -> set:
    if cfg.default_scope == 'mmseg':
        return {'aAcc', 'mIoU', 'mAcc'}
    kinds = cfg.test_evaluator.metric
    kinds = [kinds] if isinstance(kinds, str) else kinds
    return {f'coco/{kind}_{m}' for kind in kinds for m in COCO_METRICS}


@pytest.mark.parametrize('name', RUNNER_CONFIGS)
def test_one_train_and_one_test_iteration(name: str, coco_root: str,
                                          ade_root: str, tmp_path) -> None:
    cfg = load(name)
    scope = cfg.default_scope
    register_scope(scope)
    apply_options(
        cfg, sample_options(cfg, _root(scope, coco_root, ade_root),
                            str(tmp_path)))
    apply_options(cfg, all_boxes_options(cfg))
    # Isolation of Runners built in one process, and quiet logs.
    run_id = f'{name}-{uuid.uuid4().hex[:8]}'
    cfg.experiment_name = run_id
    cfg.visualizer.name = run_id
    cfg.log_level = 'WARNING'

    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1
    hub = runner.message_hub
    losses: Dict[str, float] = {
        key: hub.get_scalar(key).current()
        for key in hub.log_scalars if key.startswith('train/loss')
    }
    assert 'train/loss' in losses, losses
    assert all(math.isfinite(v) for v in losses.values()), losses
    metrics = runner.test()
    assert set(metrics) == _expected_metrics(cfg), metrics
    assert all(math.isfinite(v) for v in metrics.values()), metrics


@pytest.mark.parametrize('name', ALL)
def test_data_is_that_of_the_base(name: str) -> None:
    """Dataloaders (dataset, pipeline, batch, sampler) and evaluators are
    those of the MMDetection / MMSegmentation config the file builds on,
    except the train resize step of ms-1x."""
    cfg, base = load(name), load_mm(mm_base(name))
    if '_ms-1x_' in name:
        pipeline = base.train_dataloader.dataset.pipeline
        assert pipeline[2].type == 'Resize'
        pipeline[2] = MS_1X_RESIZE
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader',
                'val_evaluator', 'test_evaluator'):
        assert cfg[key] == base[key], key


@pytest.mark.parametrize('name', [n for n in ALL if n not in PIPELINES])
def test_every_train_dataset_is_one_that_runs(name: str) -> None:
    dataset = load(name).train_dataloader.dataset
    assert any(dataset == load(ref).train_dataloader.dataset
               for ref in PIPELINES), name


@pytest.mark.parametrize('name', PIPELINES)
def test_train_pipeline_runs_on_the_sample(name: str, coco_root: str,
                                           ade_root: str, tmp_path) -> None:
    """The config's own train dataset (its pipeline with the small sizes of
    the run test) gives images with annotations."""
    cfg = load(name)
    scope = cfg.default_scope
    register_scope(scope)
    init_default_scope(scope)
    apply_options(
        cfg, sample_options(cfg, _root(scope, coco_root, ade_root),
                            str(tmp_path)))
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    for index in range(len(dataset)):
        sample = dataset[index]
        assert sample['inputs'].shape[0] == 3
        data = sample['data_samples']
        if scope == 'mmseg':
            assert data.gt_sem_seg.data.shape[-2:] == sample['inputs'].shape[
                1:] and max(sample['inputs'].shape[1:]) <= 64
        else:
            assert len(data.gt_instances) > 0
            assert max(sample['inputs'].shape[1:]) <= 128
            if 'mask-rcnn' in name:
                assert len(data.gt_instances.masks) == len(
                    data.gt_instances)
