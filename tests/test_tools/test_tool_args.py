"""How ``tools/train.py`` and ``tools/test.py`` fold their command line into
the config, for mmdet and mmseg configs (in-process, no training)."""
import os
import os.path as osp
import sys

import pytest
from mmengine.config import Config

from mmcat.engine import register_scope_modules
from mmcat.engine.optim import amp
from tool_loader import load_tool


train_tool = load_tool('tools/train.py')
test_tool = load_tool('tools/test.py')


def _train_args(monkeypatch, *argv: str):
    monkeypatch.setattr(sys, 'argv', ['train.py', 'configs/x_tiny.py', *argv])
    return train_tool.parse_args()


def _test_args(monkeypatch, *argv: str):
    monkeypatch.setattr(sys, 'argv',
                        ['test.py', 'configs/x_tiny.py', 'ckpt.pth', *argv])
    return test_tool.parse_args()


def _cfg(**kwargs) -> Config:
    base = dict(
        optim_wrapper=dict(
            type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)))
    base.update(kwargs)
    return Config(base)


@pytest.mark.parametrize('argv, resume, load_from', [
    ((), False, 'pre.pth'),
    (('--resume', ), True, None),
    (('--resume', 'w/iter_8.pth'), True, 'w/iter_8.pth'),
])
def test_train_resume(monkeypatch, argv, resume, load_from):
    cfg = train_tool.apply_args(
        _cfg(resume=False, load_from='pre.pth'),
        _train_args(monkeypatch, *argv))
    assert cfg.resume is resume and cfg.load_from == load_from


def test_train_work_dir_and_options(monkeypatch):
    cfg = train_tool.apply_args(
        _cfg(), _train_args(monkeypatch, '--cfg-options', 'a.b=3'))
    assert cfg.work_dir == osp.join('./work_dirs', 'x_tiny')
    assert cfg.a.b == 3 and cfg.launcher == 'none'
    cfg = train_tool.apply_args(
        _cfg(work_dir='cfg_dir'),
        _train_args(monkeypatch, '--work-dir', 'cli_dir', '--launcher',
                    'pytorch'))
    assert cfg.work_dir == 'cli_dir' and cfg.launcher == 'pytorch'


def test_train_amp(monkeypatch):
    """On a GPU (simulated); the CPU's choice: test_train_amp.py."""
    monkeypatch.setattr(amp, 'get_device', lambda: 'cuda')
    cfg = train_tool.apply_args(_cfg(), _train_args(monkeypatch, '--amp'))
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    cfg = _cfg(optim_wrapper=dict(type='AmpOptimWrapper', loss_scale=512.))
    cfg = train_tool.apply_args(cfg, _train_args(monkeypatch, '--amp'))
    assert cfg.optim_wrapper.loss_scale == 512.
    with pytest.raises(ValueError, match='OptimWrapper'):
        train_tool.apply_args(
            _cfg(optim_wrapper=dict(type='Other')),
            _train_args(monkeypatch, '--amp'))


def test_train_auto_scale_lr(monkeypatch):
    cfg = _cfg(auto_scale_lr=dict(enable=False, base_batch_size=16))
    cfg = train_tool.apply_args(cfg,
                                _train_args(monkeypatch, '--auto-scale-lr'))
    assert cfg.auto_scale_lr.enable is True
    with pytest.raises(RuntimeError, match='auto_scale_lr'):
        train_tool.apply_args(_cfg(),
                              _train_args(monkeypatch, '--auto-scale-lr'))


def test_local_rank_exported(monkeypatch):
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    _train_args(monkeypatch, '--local-rank', '3')
    assert os.environ['LOCAL_RANK'] == '3'
    monkeypatch.delenv('LOCAL_RANK')
    _test_args(monkeypatch, '--local_rank', '2')
    assert os.environ['LOCAL_RANK'] == '2'


def _test_cfg(scope: str) -> Config:
    hook = 'DetVisualizationHook' if scope == 'mmdet' else \
        'SegVisualizationHook'
    return Config(
        dict(
            default_scope=scope,
            model=dict(type='M'),
            default_hooks=dict(visualization=dict(type=hook)),
            visualizer=dict(type='V'),
            test_dataloader=dict(dataset=dict(pipeline=['test'])),
            test_evaluator=dict(type='E')))


def test_test_mmdet_args(monkeypatch):
    args = _test_args(monkeypatch, '--show-dir', 'vis', '--out', 'r.pkl')
    cfg = test_tool.apply_args(_test_cfg('mmdet'), args)
    assert cfg.load_from == 'ckpt.pth'
    hook = cfg.default_hooks.visualization
    assert hook.draw is True and hook.test_out_dir == 'vis'
    assert 'output_dir' not in cfg.test_evaluator  # DumpDetResults instead


def test_test_mmseg_args(monkeypatch):
    args = _test_args(monkeypatch, '--show-dir', 'vis', '--out', 'pred')
    cfg = test_tool.apply_args(_test_cfg('mmseg'), args)
    hook = cfg.default_hooks.visualization
    assert hook.draw is True and hook.interval == 1
    assert cfg.visualizer.save_dir == 'vis'
    assert cfg.test_evaluator.output_dir == 'pred'
    assert cfg.test_evaluator.keep_results is True


def test_test_tta(monkeypatch):
    args = _test_args(monkeypatch, '--tta')
    with pytest.raises(RuntimeError, match='tta_model'):
        test_tool.apply_args(_test_cfg('mmseg'), args)
    cfg = _test_cfg('mmseg')
    cfg.tta_model = dict(type='SegTTAModel')
    cfg.tta_pipeline = ['tta']
    cfg = test_tool.apply_args(cfg, args)
    assert cfg.model.type == 'SegTTAModel'
    assert cfg.model.module == dict(type='M')
    assert cfg.test_dataloader.dataset.pipeline == ['tta']


def test_register_scope_modules():
    assert register_scope_modules(Config(dict(default_scope='mmdet'))) == \
        'mmdet'
    from mmdet.registry import MODELS as DET_MODELS
    assert 'RetinaNet' in DET_MODELS.module_dict
    assert register_scope_modules(Config(dict(default_scope='mmseg'))) == \
        'mmseg'
    from mmseg.registry import MODELS as SEG_MODELS
    assert 'EncoderDecoder' in SEG_MODELS.module_dict
    assert register_scope_modules(Config(dict())) is None
