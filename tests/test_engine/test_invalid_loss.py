import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner

from mmcat.engine import InvalidLossHook


class _ToyModel(BaseModel):
    """Regresses 1.0; its loss becomes NaN from iteration ``nan_from`` on."""

    def __init__(self, nan_from: int = 3) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.nan_from = nan_from
        self.calls = 0

    def forward(self, inputs, data_samples=None, mode='tensor'):
        self.calls += 1
        x = inputs
        loss = (x * self.w - 1).pow(2).mean()
        if self.calls >= self.nan_from:
            loss = loss * float('nan')
        return dict(loss=loss)


def _loader():
    return dict(dataset=[dict(inputs=torch.ones(1))] * 8,
                sampler=dict(type='DefaultSampler', shuffle=False),
                batch_size=1, collate_fn=dict(type='default_collate'))


def test_nan_loss_stops_training_naming_the_iteration(tmp_path):
    runner = Runner(
        model=_ToyModel(nan_from=3), work_dir=str(tmp_path),
        train_dataloader=_loader(),
        train_cfg=dict(by_epoch=False, max_iters=6),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        custom_hooks=[dict(type='InvalidLossHook')],
        default_hooks=dict(checkpoint=None, logger=None),
        default_scope='mmengine')
    with pytest.raises(FloatingPointError, match='iteration 3') as err:
        runner.train()
    assert 'loss=nan' in str(err.value) and '--resume' in str(err.value)
    assert runner.iter == 2          # the third iteration did not complete


def test_finite_losses_pass_and_bad_interval_is_refused():
    hook = InvalidLossHook()

    class _R:
        iter, epoch = 0, 0
    hook.after_train_iter(_R(), 0, outputs=dict(loss=torch.tensor(0.5)))
    with pytest.raises(ValueError, match='interval'):
        InvalidLossHook(interval=0)
