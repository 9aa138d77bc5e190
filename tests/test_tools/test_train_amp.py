"""``tools/train.py --amp [--amp-dtype float16|bfloat16]``.

The demo FCOS and Semantic FPN train a few steps with ``--amp`` on the
device the Runner uses (the CPU: bfloat16 autocast without a loss scaler;
a GPU: float16 with dynamic loss scaling) with finite losses, every
convolution and linear layer computing in the autocast dtype; a run resumes
under ``--amp``. Choices the device cannot run stop the tool before the
model is built, with an error naming what to use instead.

The training runs go through the tool's own argument handling in-process
(``parse_args``, ``apply_args``, then the Runner, as its ``main`` does) on
the sample data of the config tests; one run is a real command line.
"""
import math
import os.path as osp
import sys
from typing import List

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.hooks import Hook

import mmcat.datasets  # noqa: F401  (the demo datasets)
from mmcat.engine import build_runner, setup_runtime
from mmcat.engine.optim import amp
from mmcat.engine.optim.amp import AmpConfigError
from mmcat.engine.resume import resolve_checkpoint
from tool_loader import load_tool
from tools_testkit import REPO_ROOT, run_tool, tail

sys.path.insert(0, osp.join(REPO_ROOT, 'tests', 'test_configs'))
from config_testkit import (sample_options, write_ade_sample,  # noqa: E402
                            write_demo_coco_sample)

DEMO = osp.join(REPO_ROOT, 'configs', 'demo')
ON_GPU = torch.cuda.is_available()
# what --amp gives on the device the Runner trains on
AMP_WRAPPER = 'AmpOptimWrapper' if ON_GPU else 'AutocastOptimWrapper'
AMP_DTYPE = torch.float16 if ON_GPU else torch.bfloat16


TOOL = load_tool('tools/train.py')


class AutocastProbe(Hook):
    """Record the output dtype of every convolution and linear layer in the
    training forward passes, and each iteration's loss."""

    def __init__(self) -> None:
        self.dtypes: List[torch.dtype] = []
        self.losses: List[float] = []

    def before_train(self, runner) -> None:
        for module in runner.model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.register_forward_hook(
                    lambda m, i, out: self.dtypes.append(out.dtype))

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self.losses.append(float(outputs['loss']))


def _args(monkeypatch, config: str, *argv: str):
    monkeypatch.setattr(sys, 'argv', ['train.py', config, *argv])
    return TOOL.parse_args()


def _train(monkeypatch, config: str, opts: dict, *argv: str):
    """What ``tools/train.py CONFIG *argv`` does, with ``opts`` merged as
    ``--cfg-options`` would; returns the Runner and its probe."""
    args = _args(monkeypatch, config, *argv)
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(opts)
    cfg = TOOL.apply_args(cfg, args)
    setup_runtime(cfg)
    resolve_checkpoint(cfg)
    runner = build_runner(cfg)
    probe = AutocastProbe()
    runner.register_hook(probe)
    runner.train()
    return runner, probe


def _check_amp_run(runner, probe: AutocastProbe, iters: int) -> None:
    assert type(runner.optim_wrapper).__name__ == AMP_WRAPPER
    assert runner.optim_wrapper.cast_dtype == AMP_DTYPE
    assert len(probe.losses) == iters
    assert all(math.isfinite(loss) for loss in probe.losses), probe.losses
    # the backbone's, neck's and head's layers all computed in the dtype
    assert len(probe.dtypes) > 20 and set(probe.dtypes) == {AMP_DTYPE}
    assert all(p.dtype == torch.float32 for p in runner.model.parameters())


@pytest.fixture(autouse=True)
def _native_bf16(monkeypatch):
    """No emulation warning in these runs (it has its own test)."""
    monkeypatch.setattr(amp, 'cpu_has_native_bf16', lambda: True)


def test_fcos_demo_trains_with_amp(tmp_path, monkeypatch):
    config = osp.join(DEMO, 'fcos_cat_demo.py')
    data_root = write_demo_coco_sample(str(tmp_path / 'data'), num_train=4)
    opts = sample_options(Config.fromfile(config), data_root,
                          str(tmp_path / 'work'))
    # 64x48 images, 2 steps of 2: a CPU without native bf16 emulates it
    opts.update({key: (64, 48) for key in opts
                 if key.startswith('train_dataloader.dataset.pipeline')
                 and key.endswith('.scale')})
    opts['train_dataloader.batch_size'] = 2
    runner, probe = _train(monkeypatch, config, opts, '--amp')
    _check_amp_run(runner, probe, iters=2)


def test_sem_fpn_demo_trains_and_resumes_with_amp(tmp_path, monkeypatch):
    config = osp.join(DEMO, 'sem-fpn_cat_demo.py')
    data_root = write_ade_sample(str(tmp_path / 'data'), num_train=4)
    opts = sample_options(Config.fromfile(config), data_root,
                          str(tmp_path / 'work'))
    opts.update({'train_dataloader.batch_size': 2, 'train_cfg.max_iters': 1,
                 'default_hooks.checkpoint': dict(
                     type='CheckpointHook', interval=1, by_epoch=False)})
    dtype = str(AMP_DTYPE).replace('torch.', '')
    runner, probe = _train(monkeypatch, config, opts, '--amp',
                           '--amp-dtype', dtype)
    _check_amp_run(runner, probe, iters=1)

    opts['train_cfg.max_iters'] = 2
    runner, probe = _train(monkeypatch, config, opts, '--amp-dtype', dtype,
                           '--resume')
    assert runner.iter == 2
    _check_amp_run(runner, probe, iters=1)


# ------------------------------------------------------------ the choice
def _cfg(**optim_wrapper) -> Config:
    return Config(dict(optim_wrapper=dict(
        dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)),
        **optim_wrapper)))


@pytest.fixture
def cpu(monkeypatch):
    monkeypatch.setattr(amp, 'get_device', lambda: 'cpu')


def test_cpu_amp_is_bf16_autocast(monkeypatch, cpu):
    for argv in (['--amp'], ['--amp-dtype', 'bfloat16'],
                 ['--amp', '--amp-dtype', 'bfloat16']):
        cfg = TOOL.apply_args(_cfg(), _args(monkeypatch, 'x.py', *argv))
        assert cfg.optim_wrapper.type == 'AutocastOptimWrapper', argv
        assert cfg.optim_wrapper.dtype == 'bfloat16'
    # a config that asks for AmpOptimWrapper trains on the CPU too
    cfg = TOOL.apply_args(_cfg(type='AmpOptimWrapper', loss_scale=512.),
                          _args(monkeypatch, 'x.py'))
    assert cfg.optim_wrapper.type == 'AutocastOptimWrapper'
    assert 'loss_scale' not in cfg.optim_wrapper
    # without --amp a plain config stays float32
    cfg = TOOL.apply_args(_cfg(), _args(monkeypatch, 'x.py'))
    assert cfg.optim_wrapper.type == 'OptimWrapper'


def test_config_dtype_is_honoured(monkeypatch, cpu):
    with pytest.raises(AmpConfigError, match='use --amp-dtype bfloat16'):
        TOOL.apply_args(_cfg(type='AmpOptimWrapper', dtype='float16'),
                        _args(monkeypatch, 'x.py'))
    cfg = TOOL.apply_args(_cfg(type='AmpOptimWrapper', dtype='float16'),
                          _args(monkeypatch, 'x.py', '--amp-dtype',
                                'bfloat16'))
    assert cfg.optim_wrapper.dtype == 'bfloat16'


def test_float16_on_the_cpu_stops_the_tool(tmp_path):
    """A real command line: exit status 1, one ``error:`` line saying what
    to use, no traceback, nothing built (no work dir)."""
    work_dir = tmp_path / 'work'
    log = str(tmp_path / 'log.txt')
    rc = run_tool([sys.executable, 'tools/train.py',
                   osp.join(DEMO, 'sem-fpn_cat_demo.py'), '--work-dir',
                   str(work_dir), '--amp', '--amp-dtype', 'float16'], log,
                  timeout=120, CUDA_VISIBLE_DEVICES='')
    text = tail(log)
    assert rc == 1, text
    assert ('error: float16 mixed-precision training is not supported on '
            'the CPU') in text and 'use --amp-dtype bfloat16' in text
    assert 'Traceback' not in text and not work_dir.exists()


def test_bf16_on_a_gpu_without_it_stops_the_tool(monkeypatch, tmp_path):
    """The same before the model is built, on a (simulated) V100."""
    monkeypatch.setattr(amp, 'get_device', lambda: 'cuda')
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda *a: False)
    monkeypatch.setattr(torch.cuda, 'get_device_name',
                        lambda *a: 'Tesla V100-SXM2-16GB')

    def build_runner(cfg):
        raise AssertionError('the Runner was built')
    monkeypatch.setattr(TOOL, 'build_runner', build_runner)
    monkeypatch.setattr(sys, 'argv', [
        'train.py', osp.join(DEMO, 'fcos_cat_demo.py'), '--work-dir',
        str(tmp_path), '--amp', '--amp-dtype', 'bfloat16'])
    with pytest.raises(SystemExit) as err:
        TOOL.main()
    assert str(err.value).startswith('error: bfloat16 mixed-precision')
    assert 'Tesla V100' in str(err.value)
    assert 'use --amp-dtype float16' in str(err.value)
    # float16 is what the GPU gets by default
    cfg = TOOL.apply_args(_cfg(), _args(monkeypatch, 'x.py', '--amp'))
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'float16'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
