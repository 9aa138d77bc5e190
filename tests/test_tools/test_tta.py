"""``tools/test.py --tta``: the demo Semantic FPN through MMSegmentation's
``SegTTAModel`` (the ADE20K ratios 0.5-1.75, each with and without a flip)
and the demo FCOS through MMDetection's ``DetTTAModel``: every test image is
seen in each augmented view, the views are merged, and the metrics come
back. Every config that claims TTA builds its TTA model and pipeline."""
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.hooks import Hook
from mmengine.registry import MODELS, init_default_scope

import mmcat.datasets  # noqa: F401  (the demo datasets)
from mmcat.engine import build_runner, setup_runtime
from tool_loader import load_tool
from tools_testkit import REPO_ROOT

sys.path.insert(0, osp.join(REPO_ROOT, 'tests', 'test_configs'))
from config_testkit import (all_boxes_options, config_names,  # noqa: E402
                            load, no_weight_init, register_scope,
                            sample_options,
                            write_ade_sample, write_demo_coco_sample)

DEMO = osp.join(REPO_ROOT, 'configs', 'demo')


TOOL = load_tool('tools/test.py')


class ViewsHook(Hook):
    """Record how many views of an image each test iteration gets."""

    def __init__(self) -> None:
        self.views = []

    def before_test_iter(self, runner, batch_idx, data_batch=None) -> None:
        inputs = data_batch['inputs']
        self.views.append(len(inputs) if isinstance(inputs[0], (list, tuple))
                          else 1)


def _checkpoint(cfg: Config, path: str) -> str:
    register_scope(cfg.default_scope)
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict()), path)
    return path


def _run_test_tool(monkeypatch, config: str, ckpt: str, opts: dict,
                   tta: bool):
    """tools/test.py's own argument handling, then its Runner, in-process."""
    argv = ['test.py', config, ckpt] + (['--tta'] if tta else [])
    monkeypatch.setattr(sys, 'argv', argv)
    args = TOOL.parse_args()
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(opts)
    cfg = TOOL.apply_args(cfg, args)
    setup_runtime(cfg)
    runner = build_runner(cfg)
    hook = ViewsHook()
    runner.register_hook(hook)
    metrics = runner.test()
    return runner, hook.views, metrics


def _small_tta_pipeline(cfg: Config, key: str, scales) -> dict:
    """The TTA pipeline with its resize steps at the sample's sizes."""
    pipeline = cfg.tta_pipeline
    steps = pipeline[1].transforms[0]
    for step, scale in zip(steps, scales):
        step[key] = scale
    return {'tta_pipeline': pipeline}


def test_seg_tta(tmp_path, monkeypatch):
    config = osp.join(DEMO, 'sem-fpn_cat_demo.py')
    cfg = Config.fromfile(config)
    data_root = write_ade_sample(str(tmp_path / 'data'), num_val=2)
    opts = sample_options(cfg, data_root, str(tmp_path / 'work'))
    opts['test_dataloader.batch_size'] = 1
    ckpt = _checkpoint(cfg, str(tmp_path / 'seg.pth'))

    runner, views, plain = _run_test_tool(monkeypatch, config, ckpt, opts,
                                          tta=False)
    assert type(runner.model).__name__ == 'EncoderDecoder'
    assert views == [1, 1]
    runner, views, metrics = _run_test_tool(monkeypatch, config, ckpt, opts,
                                            tta=True)
    assert type(runner.model).__name__ == 'SegTTAModel'
    ratios = [t['scale_factor']
              for t in runner.cfg.tta_pipeline[1].transforms[0]]
    assert ratios == [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    assert views == [12, 12]  # six ratios x (no flip, flip)
    assert set(metrics) == set(plain) and 'mIoU' in metrics


def test_det_tta(tmp_path, monkeypatch):
    config = osp.join(DEMO, 'fcos_cat_demo.py')
    cfg = Config.fromfile(config)
    data_root = write_demo_coco_sample(str(tmp_path / 'data'), num_val=2)
    opts = sample_options(cfg, data_root, str(tmp_path / 'work'))
    opts.update(all_boxes_options(cfg))
    opts['test_dataloader.batch_size'] = 1
    opts.update(_small_tta_pipeline(cfg, 'scale',
                                    [(128, 96), (96, 72), (160, 120)]))
    ckpt = _checkpoint(cfg, str(tmp_path / 'det.pth'))

    runner, views, plain = _run_test_tool(monkeypatch, config, ckpt, opts,
                                          tta=False)
    assert views == [1, 1]
    runner, views, metrics = _run_test_tool(monkeypatch, config, ckpt, opts,
                                            tta=True)
    assert type(runner.model).__name__ == 'DetTTAModel'
    assert views == [6, 6]  # three scales x (flip, no flip)
    assert 'coco/bbox_mAP' in metrics and set(metrics) == set(plain)


def test_tta_needs_the_configs_tta_model(tmp_path, monkeypatch):
    config = osp.join(DEMO, 'mask-rcnn_cat_demo.py')
    monkeypatch.setattr(sys, 'argv', ['test.py', config, 'x.pth', '--tta'])
    with pytest.raises(RuntimeError, match='--tta needs tta_model and '
                       'tta_pipeline'):
        TOOL.apply_args(Config.fromfile(config), TOOL.parse_args())


CLAIMS_TTA = [n for n in config_names() if 'tta_model' in load(n)]


def test_which_configs_claim_tta():
    # every Semantic FPN (MMSegmentation's ADE20K TTA) and every RetinaNet
    # (MMDetection's RetinaNet TTA), CAT and ResNet alike
    assert CLAIMS_TTA == [n for n in config_names()
                          if n.startswith(('retinanet_', 'sem-fpn_'))]


@pytest.mark.parametrize('name', CLAIMS_TTA)
def test_tta_model_builds(name, monkeypatch):
    config = osp.join(REPO_ROOT, 'configs', name)
    monkeypatch.setattr(sys, 'argv', ['test.py', config, 'x.pth', '--tta'])
    cfg = TOOL.apply_args(load(name), TOOL.parse_args())
    register_scope(cfg.default_scope)
    init_default_scope(cfg.default_scope)
    with no_weight_init():
        model = MODELS.build(cfg.model)
    assert type(model).__name__ in ('SegTTAModel', 'DetTTAModel')
    assert type(model.module.backbone).__name__ in ('CAT', 'ResNet',
                                                    'ResNetV1c')
    Compose(cfg.test_dataloader.dataset.pipeline)
