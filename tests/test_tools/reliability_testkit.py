"""Fault injection for the reliability tests of ``tools/``: hooks that stall,
fail or poison a run at a chosen iteration, and the configs that use them.

The configs written here import this module (``custom_imports``); the tests
run the tools with this directory on ``PYTHONPATH`` (``tools_testkit``'s
:func:`~tools_testkit.tool_env`).
"""
import math
import os
import time

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from tools_testkit import write_det_config

STALL_AT_ITER = 'MMCAT_TEST_STALL_AT_ITER'
STALL_IN_SAVE = 'MMCAT_TEST_STALL_IN_SAVE'


@HOOKS.register_module(force=True)
class StallHook(Hook):
    """Block the run for good at a chosen point, so a test can kill it there.

    ``$MMCAT_TEST_STALL_AT_ITER=n``: at the start of iteration n + 1 (its
    batch already fetched). ``$MMCAT_TEST_STALL_IN_SAVE=n``: in the middle
    of writing the checkpoint of iteration n (its bytes are in a temporary
    file, the ``fsync`` before the rename never returns). Does nothing when
    neither is set: one config serves the run to kill, the run that resumes
    it and the reference run.
    """

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        at = os.environ.get(STALL_AT_ITER)
        if at is not None and runner.iter == int(at):
            time.sleep(3600)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        at = os.environ.get(STALL_IN_SAVE)
        if at is not None and checkpoint['meta']['iter'] == int(at):
            os.fsync = lambda fd: time.sleep(3600)


@HOOKS.register_module(force=True)
class FailOnRankHook(Hook):
    """On rank ``rank``, at the start of iteration ``at_iter`` (1-based),
    raise (``mode='raise'``) or stop taking part without exiting
    (``mode='hang'``, the other ranks then wait in the next all-reduce)."""

    def __init__(self, rank: int = 1, at_iter: int = 2,
                 mode: str = 'raise') -> None:
        self.rank, self.at_iter, self.mode = rank, at_iter, mode

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if runner.rank != self.rank or runner.iter + 1 != self.at_iter:
            return
        if self.mode == 'hang':
            time.sleep(3600)
        raise RuntimeError(f'injected failure on rank {runner.rank} at '
                           f'iteration {self.at_iter}')


@HOOKS.register_module(force=True)
class PoisonWeightsHook(Hook):
    """Fill the model's first parameter with NaN before iteration
    ``at_iter`` (1-based): that iteration's loss is NaN."""

    def __init__(self, at_iter: int = 2) -> None:
        self.at_iter = at_iter

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if runner.iter + 1 != self.at_iter:
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        with torch.no_grad():
            next(model.parameters()).fill_(math.nan)


CAT_DET_CONFIG = '''\
_base_ = [{base!r}]
custom_imports = dict(
    imports=['tools_testkit', 'reliability_testkit', 'mmcat'],
    allow_failed_imports=False)
# A narrow CAT with stochastic depth: training draws from torch's RNG at
# every iteration, so an exact resume needs the RNG state of the checkpoint.
model = dict(
    backbone=dict(
        _delete_=True,
        type='CAT',
        arch=dict(embed_dims=8, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2)),
        patch_size=4,
        drop_path_rate=0.3,
        out_indices=(1, 2, 3)))
randomness = dict(seed=0, deterministic=True)
custom_hooks = {hooks!r}
'''


def write_cat_det_config(path: str, data_root: str, work_dir: str,
                         max_iters: int = 8, ckpt_interval: int = 2,
                         hooks: tuple = (dict(type='StallHook'), )) -> str:
    """A tiny RetinaNet with a narrow CAT (stochastic depth 0.3) on
    :func:`~tools_testkit.make_tiny_coco` data, plus ``hooks``; no random
    augmentation, ``num_workers=0``. Writes ``path`` and its ``_base_`` next
    to it; returns ``path``."""
    base = path[:-len('.py')] + '_base.py'
    write_det_config(base, data_root, work_dir, max_iters=max_iters,
                     ckpt_interval=ckpt_interval)
    with open(path, 'w') as f:
        f.write(CAT_DET_CONFIG.format(base=os.path.basename(base),
                                      hooks=list(hooks)))
    return path


def write_det_config_with_hooks(path: str, data_root: str, work_dir: str,
                                hooks: tuple, max_iters: int = 4,
                                **overrides) -> str:
    """:func:`~tools_testkit.write_det_config`'s tiny RetinaNet with
    ``custom_hooks=hooks`` and top-level ``overrides``; returns ``path``."""
    base = path[:-len('.py')] + '_base.py'
    write_det_config(base, data_root, work_dir, max_iters=max_iters)
    lines = [f'_base_ = [{os.path.basename(base)!r}]',
             "custom_imports = dict(imports=['tools_testkit', "
             "'reliability_testkit'], allow_failed_imports=False)",
             f'custom_hooks = {list(hooks)!r}']
    lines += [f'{k} = {v!r}' for k, v in overrides.items()]
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path
