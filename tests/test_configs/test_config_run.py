"""Configs train for one iteration and test for one iteration on the CPU,
through mmengine's Runner, on tiny COCO / ADE20K samples in the real formats.

Which configs run (one Runner costs 10-30 s on 2 CPU cores, so not all):

* the CAT-S config of every method (1x; 80k for Semantic FPN): the models
  exactly as configured, only data, image sizes, loop lengths and pretrained
  weights overridden (:func:`config_testkit.sample_options`);
* the Semantic FPN R-50 baseline: SyncBN in its ResNet and head, which the
  Runner must turn into BN in a single CPU process, and the CAT lr schedule
  on SGD;
* not run: CAT-T / CAT-B / ResNet-101 configs, the ms-1x / 160k variants and
  the COCO R-50 baselines. They differ from a run config only in
  ``arch``/``depth``, the train resize step or the loop length, or are
  MMDetection's model-zoo configs with the batch restated. Every one of them
  is built and counted in test_config_build.py, which also checks that each
  baseline equals its CAT config in everything but backbone and optimizer;
  and every train dataset config is one of those whose pipeline runs on the
  sample here (``test_every_train_dataset_is_one_that_runs``).
"""
import uuid
from typing import Dict

import pytest
from config_testkit import (apply_options, config_names, load,
                            sample_options)
from mmengine.registry import DATASETS, init_default_scope
from mmengine.runner import Runner

import mmcat  # noqa: F401  (registers CAT)

ALL = config_names()
RUN = [
    n for n in ALL if '_cat_s_' in n and '_ms-1x_' not in n and
    '_160k_' not in n
] + ['sem-fpn_r50_80k_ade20k-512x512.py']
#: One config per distinct train dataset (data, annotations, pipeline).
PIPELINES = [
    'fcos_cat_s_1x_coco.py', 'mask-rcnn_cat_s_1x_coco.py',
    'cascade-rcnn_cat_s_ms-1x_coco.py', 'mask-rcnn_cat_s_ms-1x_coco.py',
    'sem-fpn_cat_s_80k_ade20k-512x512.py'
]


def _register(scope: str) -> None:
    if scope == 'mmseg':
        from mmseg.utils import register_all_modules
    else:
        from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)


def _root(scope: str, coco_root: str, ade_root: str) -> str:
    return ade_root if scope == 'mmseg' else coco_root


@pytest.mark.parametrize('name', RUN)
def test_one_train_and_one_test_iteration(name: str, coco_root: str,
                                          ade_root: str, tmp_path) -> None:
    cfg = load(name)
    scope = cfg.default_scope
    _register(scope)
    apply_options(
        cfg, sample_options(cfg, _root(scope, coco_root, ade_root),
                            str(tmp_path)))
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
    assert losses and all(v == v for v in losses.values()), losses  # no NaN
    metrics = runner.test()
    assert isinstance(metrics, dict)
    if scope == 'mmseg':
        assert 'mIoU' in metrics


@pytest.mark.parametrize('name', ALL)
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
    _register(scope)
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
