"""RNGStateHook: random states travel with checkpoints, so a resumed run
draws what the uninterrupted one drew (in-process, a toy model with
dropout; ``tests/test_tools/test_resume_after_kill.py`` does it with
SIGKILL and ``tools/train.py``)."""
import random

import numpy as np
import pytest
import torch
from mmengine.runner import Runner

from mmcat.engine import register_mmengine_safe_globals
from mmcat.engine.hooks import RNGStateHook
from mmcat.engine.hooks.rng_state import get_rng_states, set_rng_states

from engine_testkit import ToyData, ToyModel, toy_runner


@pytest.fixture(autouse=True, scope='module')
def mmengine_checkpoints_load():
    """Resuming reads Runner checkpoints with torch's weights-only default
    (the tools allow-list mmengine's types through setup_runtime)."""
    register_mmengine_safe_globals()


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


def _runner(work_dir: str, max_iters: int, hooks: list, **kwargs) -> Runner:
    """A toy model with dropout (it draws at every iteration) on 6 samples,
    3 iterations an epoch."""
    torch.manual_seed(1)  # the model is built before the Runner seeds
    return toy_runner(
        work_dir, max_iters, model=ToyModel(dims=4, dropout=0.5),
        dataset=ToyData(length=6, dims=4, classes=('a', )), lr=0.1,
        ckpt_interval=4, custom_hooks=hooks, **kwargs)


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
