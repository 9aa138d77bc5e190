"""RNGStateHook: random states travel with checkpoints, so a resumed run
draws what the uninterrupted one drew (in-process, a toy model with
dropout; ``tests/test_tools/test_resume_after_kill.py`` does it with
SIGKILL and ``tools/train.py``).

A GPU run loads checkpoints onto its device; here that is simulated with
tensors that say they live elsewhere than on the CPU, and CUDA's generator
functions are replaced by a stand-in with per-device states."""
import random
from typing import Dict, List

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.model import MMDistributedDataParallel
from mmengine.runner import Runner
from mmengine.runner import runner as runner_module
from torch.utils._pytree import tree_map

from mmcat.engine import RNGStateHook, register_mmengine_safe_globals
from mmcat.engine.hooks import rng_state
from mmcat.engine.hooks.rng_state import get_rng_states, set_rng_states

from engine_testkit import ToyData, ToyModel, run_in_gloo_group, toy_runner


@pytest.fixture(autouse=True, scope='module')
def mmengine_checkpoints_load():
    """Resuming reads Runner checkpoints with torch's weights-only default
    (the tools allow-list mmengine's types through setup_runtime)."""
    register_mmengine_safe_globals()


class OnDevice(torch.Tensor):
    """A tensor that says it lives on another device ('meta'): whatever
    needs a CPU tensor (``.numpy()``, ``torch.set_rng_state``) fails on it
    as on a CUDA tensor; ``.cpu()`` / ``.to('cpu')`` give the data back."""

    @staticmethod
    def __new__(cls, data: torch.Tensor) -> 'OnDevice':
        out = torch.Tensor._make_wrapper_subclass(
            cls, data.shape, dtype=data.dtype, device='meta')
        out.host = data
        return out

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*tree_map(cls._host, args), **tree_map(cls._host, kwargs))
        device = kwargs.get('device', None)
        if func is torch.ops.aten._to_copy.default and device is not None \
                and torch.device(device).type == 'cpu':
            return out
        return tree_map(
            lambda x: cls(x) if isinstance(x, torch.Tensor) else x, out)

    @staticmethod
    def _host(x):
        return x.host if isinstance(x, OnDevice) else x


def on_device(obj):
    """``obj`` with every tensor in it moved to :class:`OnDevice`."""
    return tree_map(
        lambda x: OnDevice(x) if isinstance(x, torch.Tensor) else x, obj)


class FakeCuda:
    """CUDA's generator functions over ``count`` simulated devices, checked
    as torch checks them: a state must be a CPU uint8 tensor, a device
    index must exist."""

    def __init__(self, monkeypatch, count: int, current: int = 0) -> None:
        self.count, self.current = count, current
        self.states = {i: torch.full((16, ), i, dtype=torch.uint8)
                       for i in range(count)}
        for name in ('is_available', 'is_initialized', 'device_count',
                     'current_device', 'get_rng_state', 'set_rng_state',
                     'get_rng_state_all', 'set_rng_state_all'):
            monkeypatch.setattr(torch.cuda, name, getattr(self, name))

    def is_available(self) -> bool:
        return True

    is_initialized = is_available

    def device_count(self) -> int:
        return self.count

    def current_device(self) -> int:
        return self.current

    def _index(self, device) -> int:
        index = torch.device('cuda', device).index if isinstance(
            device, int) else torch.device(device).index
        index = self.current if index is None else index
        if index >= self.count:
            raise IndexError('tuple index out of range')
        return index

    def get_rng_state(self, device='cuda') -> torch.Tensor:
        return self.states[self._index(device)].clone()

    def set_rng_state(self, state: torch.Tensor, device='cuda') -> None:
        if type(state) is not torch.Tensor or state.device.type != 'cpu' \
                or state.dtype != torch.uint8:
            raise TypeError('RNG state must be a torch.ByteTensor')
        self.states[self._index(device)] = state.clone()

    def get_rng_state_all(self) -> List[torch.Tensor]:
        return [self.get_rng_state(i) for i in range(self.count)]

    def set_rng_state_all(self, states) -> None:
        for i, state in enumerate(states):
            self.set_rng_state(state, i)


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


def test_states_loaded_onto_a_device_are_restored():
    np.random.randn()
    states = on_device(get_rng_states())
    assert states['torch'].device.type != 'cpu'
    first = _draw()
    set_rng_states(states)
    assert _draw() == first


def test_each_process_keeps_its_own_device_state(monkeypatch):
    cuda = FakeCuda(monkeypatch, count=2, current=1)
    saved = get_rng_states()
    assert torch.equal(saved['cuda'], cuda.states[1])

    cuda.states = {0: torch.zeros(16, dtype=torch.uint8),
                   1: torch.zeros(16, dtype=torch.uint8)}
    set_rng_states(on_device(saved))
    assert torch.equal(cuda.states[1], torch.ones(16, dtype=torch.uint8))
    assert not cuda.states[0].any()  # another process's device: untouched


def test_fewer_visible_gpus_on_resume(monkeypatch):
    """Saved with 2 visible GPUs, restored with 1: the process restores its
    own device (what a launcher gives every rank as its device 0)."""
    FakeCuda(monkeypatch, count=2, current=0)
    saved = get_rng_states()
    cuda = FakeCuda(monkeypatch, count=1, current=0)
    cuda.states[0] = torch.full((16, ), 9, dtype=torch.uint8)
    set_rng_states(saved)
    assert not cuda.states[0].any()
    # files of earlier versions hold every visible GPU's state
    cuda.states[0] = torch.full((16, ), 9, dtype=torch.uint8)
    set_rng_states(dict(saved, cuda=[torch.zeros(16, dtype=torch.uint8),
                                     torch.ones(16, dtype=torch.uint8)]))
    assert not cuda.states[0].any()


class StateProbe(Hook):
    """Records the CPU generator's state before every training iteration
    (reading it draws nothing)."""

    def __init__(self) -> None:
        self.states: Dict[int, torch.Tensor] = {}

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self.states[runner.iter] = torch.get_rng_state()


def _runner(work_dir: str, max_iters: int, hooks: list, length: int = 6,
            ddp: bool = False, **kwargs) -> Runner:
    """A toy model with dropout (it draws at every iteration) on ``length``
    samples in batches of 2 (6: 3 iterations an epoch in one process);
    ``ddp``: wrapped for a CPU process group."""
    torch.manual_seed(1)  # the model is built before the Runner seeds
    model = ToyModel(dims=4, dropout=0.5)
    if ddp:
        model = MMDistributedDataParallel(
            model, device_ids=None, broadcast_buffers=False)
    return toy_runner(
        work_dir, max_iters, model=model,
        dataset=ToyData(length=length, dims=4, classes=('a', )), lr=0.1,
        ckpt_interval=4, custom_hooks=hooks, **kwargs)


def _probe(runner: Runner) -> StateProbe:
    return next(h for h in runner.hooks if isinstance(h, StateProbe))


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


def test_a_resume_onto_a_device_draws_what_the_uninterrupted_run_drew(
        tmp_path, monkeypatch):
    """A GPU run's resume loads the saved states onto the GPU."""
    monkeypatch.setattr('time.sleep', lambda s: None)
    hooks = [dict(type='RNGStateHook')]
    ref = _runner(str(tmp_path / 'ref'), 6, hooks)
    ref.train()
    _runner(str(tmp_path / 'cut'), 4, hooks).train()
    load = runner_module._load_checkpoint

    def load_onto_device(*args, **kwargs):
        checkpoint = load(*args, **kwargs)
        checkpoint['rng_states'] = on_device(checkpoint['rng_states'])
        return checkpoint

    # what Runner.resume's map_location does to these tensors on a GPU
    monkeypatch.setattr(runner_module, '_load_checkpoint', load_onto_device)
    resumed = _runner(str(tmp_path / 'cut'), 6, hooks, resume=True,
                      load_from=str(tmp_path / 'cut' / 'iter_4.pth'))
    resumed.train()
    assert torch.equal(ref.model.linear.weight, resumed.model.linear.weight)


def test_a_fine_tuning_start_restores_nothing(tmp_path, monkeypatch):
    """``load_from`` without ``resume`` starts at iteration 0: the states
    of the run that wrote the file are not for this one, so the run draws
    what it draws without the hook."""
    monkeypatch.setattr('time.sleep', lambda s: None)
    _runner(str(tmp_path / 'a'), 4, [dict(type='RNGStateHook')]).train()
    probes = []
    for name, hooks in (('b', [dict(type='RNGStateHook')]), ('c', [])):
        runner = _runner(str(tmp_path / name), 2,
                         hooks + [StateProbe()],
                         load_from=str(tmp_path / 'a' / 'iter_4.pth'))
        runner.train()
        probes.append(_probe(runner).states)
    assert probes[0].keys() == probes[1].keys() == {0, 1}
    assert all(torch.equal(probes[0][i], probes[1][i]) for i in (0, 1))


def _ranks_resume(rank: int, world_size: int, root: str) -> None:
    """In each of 2 processes (different seeds per rank): an uninterrupted
    run of 6 iterations, one cut at 4, its resume, and the resume of a
    checkpoint that a single process wrote (``root/single``). 10 samples:
    3 iterations an epoch here, 5 in one process; iteration 4 starts no
    epoch in either, so the state there is the one saved after 4."""
    import time

    import torch.distributed as dist

    from mmcat.engine import register_mmengine_safe_globals

    register_mmengine_safe_globals()
    time.sleep = lambda s: None  # epoch boundaries
    kwargs = dict(
        length=10,
        launcher='pytorch',
        ddp=True,
        randomness=dict(seed=0, diff_rank_seed=True))
    hooks = [dict(type='RNGStateHook')]
    out = {}
    ref = _runner(f'{root}/ref', 6, hooks + [StateProbe()], **kwargs)
    ref.train()
    out['ref'] = _probe(ref).states
    out['ref_weight'] = ref.model.module.linear.weight.detach().clone()
    _runner(f'{root}/cut', 4, hooks, **kwargs).train()
    dist.barrier()  # rank 0 has written iter_4.pth
    resumed = _runner(f'{root}/cut', 6, hooks + [StateProbe()], resume=True,
                      load_from=f'{root}/cut/iter_4.pth', **kwargs)
    resumed.train()
    out['resumed'] = _probe(resumed).states
    out['resumed_weight'] = resumed.model.module.linear.weight.detach()
    grown = _runner(f'{root}/single', 6, hooks + [StateProbe()], resume=True,
                    load_from=f'{root}/single/iter_4.pth', **kwargs)
    grown.train()
    out['grown'] = _probe(grown).states
    torch.save(out, f'{root}/rank{rank}.pth')


def test_every_rank_resumes_its_own_states_and_world_size_changes(
        tmp_path, capsys, monkeypatch):
    monkeypatch.setattr('time.sleep', lambda s: None)
    root = str(tmp_path)
    # a checkpoint of a single process, for 2 processes to resume
    _runner(f'{root}/single', 4, [dict(type='RNGStateHook')],
            length=10).train()
    single = torch.load(f'{root}/single/iter_4.pth')['rng_states']
    run_in_gloo_group(_ranks_resume, 2, root)
    out = [torch.load(f'{root}/rank{r}.pth') for r in (0, 1)]
    saved = torch.load(f'{root}/cut/iter_4.pth')['rng_states']
    assert len(saved) == 2
    for rank in (0, 1):
        assert torch.equal(saved[rank]['torch'], out[rank]['ref'][4])
        for i in (4, 5):
            assert torch.equal(out[rank]['resumed'][i], out[rank]['ref'][i])
        assert torch.equal(out[rank]['resumed_weight'],
                           out[rank]['ref_weight'])
    assert not torch.equal(out[0]['ref'][4], out[1]['ref'][4])
    # 1 record, 2 ranks: rank 0 restores it, rank 1 keeps its seeded state
    assert torch.equal(out[0]['grown'][4], single[0]['torch'])
    assert not torch.equal(out[1]['grown'][4], single[0]['torch'])

    # 2 records, 1 process: rank 0 restores its own, and is told
    capsys.readouterr()
    shrunk = _runner(f'{root}/shrunk', 6,
                     [dict(type='RNGStateHook'), StateProbe()], length=10,
                     resume=True, load_from=f'{root}/cut/iter_4.pth')
    shrunk.train()
    assert torch.equal(_probe(shrunk).states[4], saved[0]['torch'])
    assert 'holds the random states of 2 process(es)' in \
        capsys.readouterr().out


class _ResumedRunner:
    """What RNGStateHook reads of a Runner that resumed at iteration 4."""
    rank, world_size, iter, epoch = 0, 1, 4, 1
    train_loop, hooks = object(), []


@pytest.mark.parametrize('deterministic', [False, True])
def test_a_gpu_resume_says_when_it_cannot_be_exact(monkeypatch,
                                                   deterministic):
    """Without deterministic kernels a GPU run differs in the last bits
    from one that was never interrupted, states restored or not."""
    logged = []
    monkeypatch.setattr(rng_state, 'print_log',
                        lambda msg, **kwargs: logged.append(msg))
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(deterministic)
    try:
        hook = RNGStateHook()
        hook.after_load_checkpoint(
            _ResumedRunner(), dict(rng_states=[get_rng_states()]))
        hook.before_train(_ResumedRunner())
    finally:
        torch.use_deterministic_algorithms(was)
    warned = any('CUBLAS_WORKSPACE_CONFIG=:4096:8' in m for m in logged)
    assert warned is not deterministic
