"""An optimizer wrapper that runs the forward pass under autocast, without a
loss scaler: bfloat16 mixed-precision training on the CPU."""
from contextlib import contextmanager
from typing import Optional, Union

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper
from mmengine.runner.amp import autocast

from ...registry import OPTIM_WRAPPERS
from .amp import AmpConfigError, amp_device, resolve_amp_dtype

__all__ = ['AutocastOptimWrapper']


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """mmengine's ``OptimWrapper`` whose ``optim_context`` (the data
    preprocessor and the forward pass of ``train_step``) runs under
    ``autocast(device_type, dtype)``.

    No loss scaler: meant for bfloat16, whose exponent range is float32's,
    so gradients do not underflow; it is what ``tools/train.py --amp`` uses
    on the CPU, where mmengine's ``AmpOptimWrapper`` (CUDA's gradient
    scaler) does not build. Parameters, gradients and the optimizer state
    stay float32; backward and the step are ``OptimWrapper``'s.

    Args:
        dtype: ``'bfloat16'`` (or ``torch.bfloat16``). float16 is refused:
            without a loss scaler its small gradients flush to zero.
        device_type: the autocast device; None: the device the Runner trains
            on (:func:`~mmcat.engine.optim.amp.amp_device`).
        **kwargs: ``OptimWrapper``'s (``optimizer``, ``clip_grad``,
            ``accumulative_counts``).
    """

    def __init__(self,
                 dtype: Union[str, torch.dtype] = 'bfloat16',
                 device_type: Optional[str] = None,
                 **kwargs) -> None:
        self.device_type = device_type or amp_device()
        name = resolve_amp_dtype(dtype, self.device_type)
        if name != 'bfloat16':
            raise AmpConfigError(
                f'AutocastOptimWrapper has no loss scaler, and {name} '
                f'gradients underflow without one: use dtype=\'bfloat16\', '
                f'or AmpOptimWrapper (dynamic loss scaling) on a GPU')
        super().__init__(**kwargs)
        self.cast_dtype = getattr(torch, name)

    @contextmanager
    def optim_context(self, model: nn.Module):
        """``OptimWrapper``'s context (no gradient sync while accumulating)
        under autocast to :attr:`cast_dtype`."""
        with super().optim_context(model), autocast(
                device_type=self.device_type, dtype=self.cast_dtype):
            yield

    def load_state_dict(self, state_dict: dict) -> None:
        """Load the optimizer's state; the ``loss_scaler`` state of a
        checkpoint written under ``AmpOptimWrapper`` (a GPU run resumed on
        the CPU) has nothing to go to and is left out."""
        state_dict = dict(state_dict)
        state_dict.pop('loss_scaler', None)
        super().load_state_dict(state_dict)
