"""A toy model, data set and Runner for the tests of ``mmcat.engine``.

:class:`ToyModel` and :class:`ToyData` register into mmengine's root
registries, so configs can name them too: a test that runs a config in a
fresh interpreter puts this directory on ``PYTHONPATH`` and lists
``engine_testkit`` in its ``custom_imports``.
"""
import datetime
import os
import os.path as osp
import tempfile
import time
from typing import Callable, Optional, Sequence

import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, MODELS
from mmengine.runner import Runner
from torch.utils.data import Dataset

HERE = osp.dirname(osp.abspath(__file__))


@MODELS.register_module(force=True)
class ToyModel(BaseModel):
    """``linear(dropout(x))`` on ``dims`` inputs; squared error as loss.

    Args:
        dims: input width.
        dropout: drop probability (0: no dropout layer, no random draws).
    """

    def __init__(self, dims: int = 2, dropout: float = 0.) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(dims, 1)
        self.drop = torch.nn.Dropout(dropout) if dropout else \
            torch.nn.Identity()

    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.linear(self.drop(torch.stack(inputs))).squeeze(1)
        if mode == 'loss':
            return dict(loss=((out - torch.stack(labels))**2).mean())
        return out


@DATASETS.register_module(force=True)
class ToyData(Dataset):
    """``length`` samples: ``inputs`` is ``dims`` times ``float(i)``,
    ``labels`` is ``i % 2``."""

    def __init__(self, length: int = 8, dims: int = 2,
                 classes: Sequence[str] = ('a', 'b')) -> None:
        self.length, self.dims = length, dims
        self.metainfo = dict(classes=tuple(classes))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict:
        return dict(inputs=torch.full((self.dims, ), float(i)),
                    labels=torch.tensor(i % 2.))


def toy_runner(work_dir: str,
               max_iters: int,
               model: Optional[torch.nn.Module] = None,
               dataset: Optional[Dataset] = None,
               lr: float = 0.01,
               ckpt_interval: int = 2,
               randomness: Optional[dict] = None,
               **kwargs) -> Runner:
    """A Runner that trains ``model`` (default :class:`ToyModel`) on
    ``dataset`` (default :class:`ToyData`) with SGD, batches of 2, for
    ``max_iters`` iterations, saving every ``ckpt_interval``, seeded with
    ``randomness`` (default ``dict(seed=0)``); ``kwargs`` go to ``Runner``
    as they are."""
    return Runner(
        model=model if model is not None else ToyModel(),
        work_dir=work_dir,
        experiment_name=f'toy_{osp.basename(work_dir)}_{max_iters}',
        train_dataloader=dict(
            dataset=dataset if dataset is not None else ToyData(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=2,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=lr, momentum=0.9)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=ckpt_interval,
                            by_epoch=False)),
        randomness=randomness or dict(seed=0),
        **kwargs)


TOY_CONFIG = '''\
custom_imports = dict(imports=['mmcat', 'engine_testkit'],
                      allow_failed_imports=False)
runner_type = {runner_type!r}
work_dir = {work_dir!r}
model = dict(type='ToyModel')
train_dataloader = dict(
    dataset=dict(type='ToyData'),
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_size=2,
    num_workers=0)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
train_cfg = dict(by_epoch=False, max_iters={max_iters})
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False))
randomness = dict(seed=0)
resume = {resume!r}
'''


def write_toy_config(path: str, work_dir: str, max_iters: int,
                     runner_type: str = 'MMCATRunner',
                     resume: bool = False) -> str:
    """Write a config of the toy Runner that names ``runner_type``;
    returns ``path``."""
    with open(path, 'w') as f:
        f.write(TOY_CONFIG.format(runner_type=runner_type, work_dir=work_dir,
                                  max_iters=max_iters, resume=resume))
    return path


def _gloo_entry(rank: int, fn: Callable, world_size: int, store: str,
                args: tuple) -> None:
    """One process of :func:`run_in_gloo_group`."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    torch_dist.init_process_group(
        'gloo', init_method=f'file://{store}', rank=rank,
        world_size=world_size, timeout=datetime.timedelta(seconds=60))
    try:
        fn(rank, world_size, *args)
    finally:
        torch_dist.destroy_process_group()


def run_in_gloo_group(fn: Callable, world_size: int, *args,
                      timeout: float = 240) -> None:
    """Run ``fn(rank, world_size, *args)`` in ``world_size`` fresh processes
    joined in a gloo group (``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``
    exported), as a launched CPU run has them.

    ``fn`` must be importable (a module-level function of a module on
    ``sys.path``). A process that raises fails the call with its traceback;
    one still running after ``timeout`` seconds is killed and fails it too.
    """
    with tempfile.TemporaryDirectory() as tmp:
        context = mp.start_processes(
            _gloo_entry, args=(fn, world_size, osp.join(tmp, 'store'), args),
            nprocs=world_size, join=False, start_method='spawn')
        deadline = time.monotonic() + timeout
        while not context.join(timeout=1):
            if time.monotonic() > deadline:
                for process in context.processes:
                    process.kill()
                raise TimeoutError(f'{fn.__name__} did not end within '
                                   f'{timeout} s')
