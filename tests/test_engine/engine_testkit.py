"""A toy model, data set and Runner for the tests of ``mmcat.engine``.

:class:`ToyModel` and :class:`ToyData` register into mmengine's root
registries, so configs can name them too: a test that runs a config in a
fresh interpreter puts this directory on ``PYTHONPATH`` and lists
``engine_testkit`` in its ``custom_imports``.
"""
import os.path as osp
from typing import Optional, Sequence

import torch
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
               **kwargs) -> Runner:
    """A Runner that trains ``model`` (default :class:`ToyModel`) on
    ``dataset`` (default :class:`ToyData`) with SGD, batches of 2, for
    ``max_iters`` iterations, saving every ``ckpt_interval``; ``kwargs``
    go to ``Runner`` as they are."""
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
        randomness=dict(seed=0),
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
