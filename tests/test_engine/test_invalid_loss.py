"""InvalidLossHook: a non-finite loss stops training with the iteration
named; under mixed precision with a loss scaler only when the scaler cannot
recover (CPU bfloat16 autocast has none: fatal at once); in a distributed
run on every rank at the same iteration.

Mixed precision is simulated on the CPU: mmengine's ``AmpOptimWrapper``
asserts CUDA and builds CUDA's gradient scaler, here it gets torch's CPU
gradient scaler, which skips steps with non-finite gradients the same way.
"""
import functools
import time
from typing import Iterable, Optional

import pytest
import torch
import torch.distributed as torch_dist
import torch.nn as nn
from mmengine.model import BaseModel, MMDistributedDataParallel
from mmengine.optim.optimizer import amp_optimizer_wrapper
from mmengine.runner import Runner

from mmcat.engine import InvalidLossHook
from mmcat.engine.optim.amp import amp_optim_wrapper_cfg

from engine_testkit import run_in_gloo_group


class _ToyModel(BaseModel):
    """Regresses 1.0; its loss becomes NaN from call ``nan_from`` on, or at
    the calls in ``nan_at``, on the ranks in ``nan_ranks`` (all: None)."""

    def __init__(self, nan_from: Optional[int] = 3,
                 nan_at: Iterable[int] = (),
                 nan_ranks: Optional[Iterable[int]] = None) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.nan_from, self.nan_at = nan_from, set(nan_at)
        self.nan_ranks = nan_ranks
        self.calls = 0

    def forward(self, inputs, data_samples=None, mode='tensor'):
        self.calls += 1
        x = inputs
        loss = (x * self.w - 1).pow(2).mean()
        rank = torch_dist.get_rank() if torch_dist.is_initialized() else 0
        nan_now = self.calls in self.nan_at or (
            self.nan_from is not None and self.calls >= self.nan_from)
        if nan_now and (self.nan_ranks is None or rank in self.nan_ranks):
            loss = loss * float('nan')
        return dict(loss=loss)


def _loader():
    return dict(dataset=[dict(inputs=torch.ones(1))] * 8,
                sampler=dict(type='DefaultSampler', shuffle=False),
                batch_size=1, collate_fn=dict(type='default_collate'))


def _runner(work_dir: str, model: nn.Module, max_iters: int = 6,
            hook: Optional[dict] = None, optim_wrapper: Optional[dict] = None,
            **kwargs) -> Runner:
    return Runner(
        model=model, work_dir=work_dir,
        train_dataloader=_loader(),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=optim_wrapper or dict(
            optimizer=dict(type='SGD', lr=0.1)),
        custom_hooks=[hook or dict(type='InvalidLossHook')],
        default_hooks=dict(checkpoint=None, logger=None),
        default_scope='mmengine', **kwargs)


@pytest.fixture
def cpu_amp(monkeypatch) -> dict:
    """An ``AmpOptimWrapper`` config that builds on the CPU (scale 4)."""
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available',
                        lambda: True)
    monkeypatch.setattr(amp_optimizer_wrapper, 'GradScaler',
                        functools.partial(torch.amp.GradScaler, 'cpu'))
    return dict(type='AmpOptimWrapper', loss_scale=dict(init_scale=4.0),
                optimizer=dict(type='SGD', lr=0.1))


def test_nan_loss_stops_training_naming_the_iteration(tmp_path):
    runner = _runner(str(tmp_path), _ToyModel(nan_from=3))
    with pytest.raises(FloatingPointError, match='iteration 3') as err:
        runner.train()
    assert 'loss=nan' in str(err.value) and '--resume' in str(err.value)
    assert runner.iter == 2          # the third iteration did not complete


def test_finite_losses_pass_and_bad_arguments_are_refused():
    hook = InvalidLossHook()

    class _R:
        iter, epoch, rank, world_size = 0, 0, 0, 1
        optim_wrapper = None
    hook.after_train_iter(_R(), 0, outputs=dict(loss=torch.tensor(0.5)))
    with pytest.raises(ValueError, match='interval'):
        InvalidLossHook(interval=0)
    with pytest.raises(ValueError, match='patience'):
        InvalidLossHook(patience=0)
    with pytest.raises(ValueError, match='min_loss_scale'):
        InvalidLossHook(min_loss_scale=0)


def test_amp_a_skipped_step_is_not_fatal(tmp_path, cpu_amp):
    model = _ToyModel(nan_from=None, nan_at=(3, ))
    runner = _runner(str(tmp_path), model, optim_wrapper=cpu_amp)
    runner.train()
    assert runner.iter == 6
    assert torch.isfinite(model.w).all()
    assert runner.optim_wrapper.loss_scaler.get_scale() == 2.0  # backed off


def test_amp_a_loss_that_stays_non_finite_stops(tmp_path, cpu_amp):
    runner = _runner(str(tmp_path), _ToyModel(nan_from=2),
                     hook=dict(type='InvalidLossHook', patience=3),
                     optim_wrapper=cpu_amp)
    with pytest.raises(FloatingPointError, match='iteration 4') as err:
        runner.train()
    assert '3 checked iterations in a row' in str(err.value)


def test_amp_a_collapsing_loss_scale_stops(tmp_path, cpu_amp):
    """Every other loss is NaN: never 2 in a row, but each halves the
    scale: 4, 2 (iteration 2), 1 (4), 0.5 (6)."""
    runner = _runner(str(tmp_path), _ToyModel(nan_from=None, nan_at=(2, 4, 6)),
                     max_iters=8, optim_wrapper=cpu_amp,
                     hook=dict(type='InvalidLossHook', min_loss_scale=1.0))
    with pytest.raises(FloatingPointError,
                       match='loss scale fell to 0.5 .* iteration 6'):
        runner.train()


def test_cpu_bf16_autocast_a_nan_loss_is_fatal(tmp_path):
    """``--amp`` on the CPU: bfloat16 autocast without a loss scaler, so
    nothing skips the step; the first NaN stops training, naming the dtype.
    """
    wrapper = amp_optim_wrapper_cfg(dict(optimizer=dict(type='SGD', lr=0.1)),
                                    device='cpu')
    runner = _runner(str(tmp_path), _ToyModel(nan_from=3),
                     optim_wrapper=wrapper)
    with pytest.raises(FloatingPointError, match='iteration 3') as err:
        runner.train()
    assert type(runner.optim_wrapper).__name__ == 'AutocastOptimWrapper'
    assert 'under bfloat16 autocast without a loss scaler' in str(err.value)
    assert 'without --amp' in str(err.value)
    assert runner.iter == 2


def _nan_on_rank_1(rank: int, world_size: int, root: str) -> None:
    """Rank 1's loss is NaN at its third iteration; each rank writes where
    it stopped and what it was told."""
    torch.manual_seed(0)
    model = MMDistributedDataParallel(
        _ToyModel(nan_from=None, nan_at=(3, ), nan_ranks=(1, )),
        device_ids=None)
    runner = _runner(root, model, launcher='pytorch')
    start = time.monotonic()
    try:
        runner.train()
        result = dict(error=None)
    except Exception as error:  # what matters is where each rank stopped
        result = dict(error=f'{type(error).__name__}: {error}')
    result.update(iter=runner.iter, seconds=time.monotonic() - start)
    torch.save(result, f'{root}/rank{rank}.pth')


def test_all_ranks_stop_together(tmp_path):
    run_in_gloo_group(_nan_on_rank_1, 2, str(tmp_path))
    for rank in (0, 1):
        result = torch.load(tmp_path / f'rank{rank}.pth')
        assert result['error'] is not None, f'rank {rank} went on'
        assert result['error'].startswith('FloatingPointError'), result
        assert 'on rank(s) 1 at iteration 3' in result['error']
        assert result['iter'] == 2
        assert result['seconds'] < 30
