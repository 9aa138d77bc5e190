"""A fallback from SyncBN to plain BN where SyncBN cannot run.

MMSegmentation's Semantic FPN bases (and so the ``sem-fpn_*`` configs) build
their ResNet and decode head with ``norm_cfg=dict(type='SyncBN')``. Whether
that works depends on the run, not on the config:

* one process (``--launcher none``): mmengine's ``Runner.wrap_model`` already
  swaps every SyncBN for BN, and torch's SyncBN falls back to BN when no
  process group exists, so nothing fails;
* several processes on GPUs: SyncBN is what the configs want;
* several processes on CPUs (gloo, see :mod:`mmcat.engine.dist`), or any
  code that starts a process group itself and trains a model on the CPU:
  torch refuses, ``DistributedDataParallel`` with "SyncBatchNorm layers only
  work with GPU modules" and the forward pass with "SyncBatchNorm expected
  input tensor to be on GPU".

The last case needs the swap *before* the model is wrapped in DDP, that is
before ``Runner`` is built: :func:`maybe_revert_sync_bn_cfg` rewrites the
model config, :func:`maybe_revert_sync_bn` converts a built model. BN and
SyncBN have the same parameters and buffers, so checkpoints load either way.
"""
import itertools
from typing import Any, Optional, Union

import torch
import torch.nn as nn
from mmengine.model import is_model_wrapper, revert_sync_batchnorm

__all__ = [
    'SYNC_BN_TYPES', 'sync_bn_supported', 'maybe_revert_sync_bn',
    'maybe_revert_sync_bn_cfg'
]

#: Norm layer names in mmcv's registry that synchronise across processes
#: (``SyncBN``: torch's, ``MMSyncBN``: mmcv's op).
SYNC_BN_TYPES = ('SyncBN', 'MMSyncBN')

Device = Union[str, torch.device]


def _default_device() -> torch.device:
    return torch.device('cuda' if torch.cuda.is_available() else 'cpu')


def sync_bn_supported(distributed: bool,
                      device: Optional[Device] = None) -> bool:
    """Whether SyncBN can train here.

    Args:
        distributed: the run has several processes (a launcher was given).
        device: where the model runs; None: CUDA if available, else CPU.

    Returns:
        True only for a distributed run on an accelerator (not the CPU).
    """
    device = torch.device(device) if device is not None else \
        _default_device()
    return distributed and device.type != 'cpu'


def _model_device(model: nn.Module) -> Optional[torch.device]:
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        return tensor.device
    return None


def maybe_revert_sync_bn(model: nn.Module,
                         distributed: bool,
                         device: Optional[Device] = None) -> nn.Module:
    """Replace every SyncBN of ``model`` by BN where SyncBN cannot run.

    Args:
        model: a built model, or a model wrapper (its ``.module`` is
            converted in place).
        distributed: the run has several processes.
        device: where the model will run; None: the device of the model's
            first parameter when that is an accelerator, else CUDA if
            available, else the CPU.

    Returns:
        ``model`` itself (children replaced in place), or a new module when
        ``model`` is itself a SyncBN layer; unchanged where SyncBN works.
    """
    if device is None:
        own = _model_device(model)
        device = own if own is not None and own.type != 'cpu' else None
    if sync_bn_supported(distributed, device):
        return model
    if is_model_wrapper(model):
        model.module = revert_sync_batchnorm(model.module)
        return model
    return revert_sync_batchnorm(model)


def _is_sync_bn(norm_type: Any) -> bool:
    if isinstance(norm_type, str):
        return norm_type in SYNC_BN_TYPES
    return isinstance(norm_type, type) and issubclass(
        norm_type, nn.SyncBatchNorm)


def _revert_in_cfg(node: Any) -> int:
    count = 0
    if isinstance(node, dict):
        if 'type' in node and _is_sync_bn(node['type']):
            node['type'] = 'BN'
            count += 1
        for value in node.values():
            count += _revert_in_cfg(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += _revert_in_cfg(value)
    return count


def maybe_revert_sync_bn_cfg(model_cfg: dict,
                             distributed: bool,
                             device: Optional[Device] = None) -> int:
    """Turn SyncBN norm configs into BN, in place, where SyncBN cannot run.

    Call it on ``cfg.model`` before the Runner is built. Every dict whose
    ``type`` is ``'SyncBN'``, ``'MMSyncBN'`` or a ``nn.SyncBatchNorm`` class
    becomes ``type='BN'``; its other keys (``requires_grad``, ``eps``, ...)
    are kept. Top-level variables such as a config's ``norm_cfg`` are left
    alone: only what the model is built from matters.

    Args:
        model_cfg: the model config (``cfg.model``).
        distributed: the run has several processes.
        device: where the model will run; None: CUDA if available, else CPU.

    Returns:
        How many norm configs were changed (0 where SyncBN works).
    """
    if sync_bn_supported(distributed, device):
        return 0
    return _revert_in_cfg(model_cfg)
