"""RNGStateHook: random states travel with checkpoints, so a resumed run
draws what the uninterrupted one drew (in-process, a toy model with
dropout; ``tests/test_tools/test_resume_after_kill.py`` does it with
SIGKILL and ``tools/train.py``)."""
import os.path as osp
import random

import numpy as np
import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

import mmcat  # noqa: F401  (registers the hook, allow-lists checkpoints)
from mmcat.engine.hooks import RNGStateHook
from mmcat.engine.hooks.rng_state import get_rng_states, set_rng_states


def _draw() -> tuple:
    return (random.random(), float(np.random.rand()),
            float(np.random.randn()), float(torch.rand(1)))


def test_states_round_trip_through_a_weights_only_file(tmp_path):
    np.random.randn()  # leaves a cached gaussian in numpy's state
    torch.save({'rng_states': get_rng_states()}, tmp_path / 's.pth')
    first = _draw()
    states = torch.load(tmp_path / 's.pth', weights_only=True)['rng_states']
    set_rng_states(states)
    assert _draw() == first


class DropoutModel(BaseModel):

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 1)
        self.drop = torch.nn.Dropout(0.5)

    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.linear(self.drop(torch.stack(inputs))).squeeze(1)
        if mode == 'loss':
            return dict(loss=((out - torch.stack(labels))**2).mean())
        return out


class ToyData(Dataset):
    metainfo = dict(classes=('a', ))

    def __len__(self) -> int:
        return 6  # 3 iterations an epoch

    def __getitem__(self, i: int) -> dict:
        return dict(inputs=torch.full((4, ), float(i)),
                    labels=torch.tensor(i % 2.))


def _runner(work_dir: str, max_iters: int, hooks: list, **kwargs) -> Runner:
    torch.manual_seed(1)  # the model is built before the Runner seeds
    return Runner(
        model=DropoutModel(),
        work_dir=work_dir,
        experiment_name=f'rng_{osp.basename(work_dir)}_{max_iters}',
        train_dataloader=dict(
            dataset=ToyData(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=2,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=4,
                            by_epoch=False)),
        custom_hooks=hooks,
        randomness=dict(seed=0),
        **kwargs)


@pytest.mark.parametrize('with_hook', [True, False])
def test_resume_draws_what_the_uninterrupted_run_drew(tmp_path, with_hook,
                                                      monkeypatch):
    monkeypatch.setattr('time.sleep', lambda s: None)  # epoch boundaries
    hooks = [dict(type='RNGStateHook')] if with_hook else []
    ref = _runner(str(tmp_path / 'ref'), 6, hooks)
    ref.train()
    _runner(str(tmp_path / 'cut'), 4, hooks).train()
    # resuming from iteration 4 skips back over the boundary at 3
    resumed = _runner(str(tmp_path / 'cut'), 6, hooks, resume=True,
                      load_from=str(tmp_path / 'cut' / 'iter_4.pth'))
    resumed.train()
    same = torch.equal(ref.model.linear.weight, resumed.model.linear.weight)
    assert same is with_hook


def test_a_fine_tuning_start_restores_nothing(tmp_path):
    """``load_from`` without ``resume`` starts at iteration 0: the states
    of the run that wrote the file are not for this one."""
    _runner(str(tmp_path / 'a'), 4, [dict(type='RNGStateHook')]).train()
    runner = _runner(str(tmp_path / 'b'), 1, [dict(type='RNGStateHook')],
                     load_from=str(tmp_path / 'a' / 'iter_4.pth'))
    hook = next(h for h in runner.hooks if isinstance(h, RNGStateHook))
    runner.train()
    assert hook._pending is None
    assert runner.train_loop.dataloader_iterator.__class__.__name__ == \
        '_InfiniteDataloaderIterator'
