"""Stop training at the first NaN or infinite loss, saying where."""
import math
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


def _as_float(value) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().mean())
    return float(value)


@HOOKS.register_module()
class InvalidLossHook(Hook):
    """Raise ``FloatingPointError`` when the total loss is not finite.

    Unlike an assertion deep inside the optimizer step, the message names the
    iteration, the epoch and every loss term, so the user knows where the run
    went wrong and which checkpoint to resume from.

    Args:
        interval: check every ``interval`` iterations (1: every one).
    """

    priority = 'VERY_HIGH'

    def __init__(self, interval: int = 1) -> None:
        if interval < 1:
            raise ValueError(f'InvalidLossHook: interval must be >= 1, got '
                             f'{interval}')
        self.interval = interval

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs or 'loss' not in outputs or \
                not self.every_n_train_iters(runner, self.interval):
            return
        loss = _as_float(outputs['loss'])
        if math.isfinite(loss):
            return
        terms = ', '.join(f'{k}={_as_float(v):.4g}' for k, v in outputs.items()
                          if isinstance(v, (torch.Tensor, float, int)))
        raise FloatingPointError(
            f'The training loss is {loss} at iteration {runner.iter + 1} '
            f'(epoch {runner.epoch + 1}); loss terms: {terms}. Training was '
            f'stopped so that it does not go on with broken weights. Lower '
            f'the learning rate, enable gradient clipping '
            f'(optim_wrapper.clip_grad), or check the data; then resume '
            f'from the last checkpoint with --resume.')
