"""What ``tools/train.py``, ``tools/test.py`` and ``tools/inspect_model.py``
guard against: a NaN loss, a neck that does not fit the backbone, a
checkpoint that would run code. In-process, through the tools' ``main``."""
import os.path as osp
import pickle
import sys

import pytest
import torch
from mmengine.config import Config

import mmcat  # noqa: F401
from mmcat.engine import build_runner

from reliability_testkit import write_det_config_with_hooks
from tool_loader import load_tool
from tools_testkit import make_tiny_coco, write_det_config


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory) -> str:
    return make_tiny_coco(str(tmp_path_factory.mktemp('coco')), num_images=4)


@pytest.fixture
def run_main(monkeypatch):
    """Run a tool's ``main`` with ``argv`` as its command line (one torch
    thread: tiny models only lose time to more on a busy machine)."""
    monkeypatch.setenv('LOCAL_RANK', '0')
    threads = torch.get_num_threads()

    def run(tool: str, *argv: str) -> None:
        module = load_tool(f'tools/{tool}.py')
        monkeypatch.setattr(sys, 'argv', [f'{tool}.py', *argv])
        torch.set_num_threads(1)
        module.main()
    yield run
    torch.set_num_threads(threads)


# ------------------------------------------------------------------- NaN
def test_default_hooks_are_added_once():
    add = load_tool('tools/train.py').add_default_hooks
    cfg = add(Config(dict(custom_hooks=[dict(type='EMAHook')])))
    assert [h['type'] for h in cfg.custom_hooks] == [
        'EMAHook', 'InvalidLossHook', 'RNGStateHook']
    cfg = add(Config(dict(custom_hooks=[
        dict(type='mmcat.InvalidLossHook', interval=5)])))
    assert [h['type'] for h in cfg.custom_hooks] == [
        'mmcat.InvalidLossHook', 'RNGStateHook']
    assert add(Config()).custom_hooks == [
        dict(type='InvalidLossHook'), dict(type='RNGStateHook')]


def test_nan_loss_stops_training_naming_the_iteration(tmp_path, coco_root,
                                                      run_main):
    config = write_det_config_with_hooks(
        str(tmp_path / 'retinanet_nan.py'), coco_root,
        str(tmp_path / 'work'),
        hooks=(dict(type='PoisonWeightsHook', at_iter=2), ), max_iters=4)
    with pytest.raises(FloatingPointError) as info:
        run_main('train', config, '--cfg-options',
                 'visualizer.name=vis_nan')
    msg = str(info.value)
    assert 'The training loss is nan at iteration 2' in msg
    assert 'loss_cls=nan' in msg and '--resume' in msg
    assert not osp.exists(str(tmp_path / 'work' / 'iter_4.pth'))


# ----------------------------------------------------------- neck widths
def test_build_runner_refuses_a_neck_that_does_not_fit(tmp_path, coco_root):
    path = write_det_config(str(tmp_path / 'retinanet_tiny.py'), coco_root,
                            str(tmp_path / 'work'))
    cfg = Config.fromfile(path)
    cfg.launcher = 'none'
    cfg.visualizer.name = 'vis_neck'
    cfg.model.neck.in_channels = [256, 512, 1024]
    with pytest.raises(ValueError) as info:
        build_runner(cfg)
    msg = str(info.value)
    assert 'in_channels=[256, 512, 1024]' in msg
    assert 'Set model.neck.in_channels=[16, 32, 64]' in msg


def test_inspect_model_refuses_a_neck_that_does_not_fit(tmp_path, coco_root,
                                                        run_main):
    path = write_det_config(str(tmp_path / 'retinanet_tiny.py'), coco_root,
                            str(tmp_path / 'work'))
    with pytest.raises(ValueError, match=r'model.neck.in_channels=\[16, 32, '
                       r'64\]'):
        run_main('inspect_model', path, '--shape', '64', '64',
                 '--cfg-options', 'model.neck.in_channels=[8,16,32]')


# ------------------------------------------------------------ checkpoints
class _WritesMarker:

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f'open({self.marker!r}, "w").close()', )


@pytest.mark.skipif(torch.__version__ < '2.6',
                    reason='weights_only is the default from 2.6')
def test_test_tool_refuses_a_checkpoint_that_runs_code(tmp_path, coco_root,
                                                       run_main,
                                                       monkeypatch):
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', raising=False)
    monkeypatch.delenv('TORCH_FORCE_WEIGHTS_ONLY_LOAD', raising=False)
    path = write_det_config(str(tmp_path / 'retinanet_tiny.py'), coco_root,
                            str(tmp_path / 'work'))
    marker = str(tmp_path / 'pwned')
    ckpt = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'meta': _WritesMarker(marker)}, ckpt)
    with pytest.raises(pickle.UnpicklingError) as info:
        run_main('test', path, ckpt, '--cfg-options',
                 'visualizer.name=vis_evil')
    msg = str(info.value)
    # torch's message: how to load a trusted file, and what was refused
    assert 'only if you trust the source of the checkpoint' in msg
    assert 'weights_only' in msg and 'GLOBAL exec' in msg
    assert not osp.exists(marker)
