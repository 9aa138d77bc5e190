"""Loaded by every Python process of the GPU check (``tools/gpu_check.py``
puts this folder first on ``PYTHONPATH``); nothing else imports it.

The check builds mmcv with its CPU kernels only (its CUDA kernels take longer
to compile than the check may run), and MMDetection's ``FocalLoss`` (FCOS,
RetinaNet, ATSS) calls mmcv's ``sigmoid_focal_loss`` kernel for CUDA tensors.
When mmcv has no CUDA kernels, this points that call, once
``mmdet.models.losses.focal_loss`` is imported, at MMDetection's own PyTorch
formula (``py_sigmoid_focal_loss`` on one-hot targets: what ``FocalLoss``
computes on the CPU). With a full mmcv it changes nothing.
"""
import importlib.abc
import importlib.util
import os
import sys

_TARGET = 'mmdet.models.losses.focal_loss'


def _torch_sigmoid_focal_loss(pred, target, gamma=2.0, alpha=0.25,
                              weight=None, reduction='mean'):
    """mmcv's ``sigmoid_focal_loss(pred (N, C), target (N,) class indices,
    C = background)`` in PyTorch: the (N, C) loss for ``reduction='none'``."""
    import torch.nn.functional as F
    from mmdet.models.losses import focal_loss
    num_classes = pred.size(1)
    one_hot = F.one_hot(target, num_classes + 1)[:, :num_classes]
    return focal_loss.py_sigmoid_focal_loss(
        pred, one_hot.type_as(pred), weight, gamma, alpha, reduction)


def _patch(module) -> None:
    """Swap mmcv's kernel for the PyTorch formula if mmcv lacks CUDA ops."""
    from mmcv.ops import get_compiling_cuda_version
    if get_compiling_cuda_version() == 'not available':
        module._sigmoid_focal_loss = _torch_sigmoid_focal_loss


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    """Finds :data:`_TARGET` as usual and runs :func:`_patch` on it once it
    has been executed."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != _TARGET:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module) -> None:
            exec_module(module)
            _patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


def _run_next_sitecustomize() -> None:
    """Run the ``sitecustomize`` this file shadows, if the interpreter has
    one further down ``sys.path``."""
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        folder = os.path.abspath(entry or '.')
        path = os.path.join(folder, 'sitecustomize.py')
        if folder != here and os.path.isfile(path):
            with open(path) as f:
                exec(compile(f.read(), path, 'exec'),
                     {'__name__': 'sitecustomize', '__file__': path})
            return


sys.meta_path.insert(0, _PatchAfterImport())
_run_next_sitecustomize()
