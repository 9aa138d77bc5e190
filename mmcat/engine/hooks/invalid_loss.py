"""Stop training when the loss is NaN or infinite, saying where; on every
rank at once, and under mixed precision only when the loss scaler cannot
recover."""
import math
from typing import List, Optional

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapperDict
from mmengine.registry import HOOKS


def _as_float(value) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().mean())
    return float(value)


def _loss_scaler(optim_wrapper):
    """The enabled gradient scaler of ``optim_wrapper`` (an
    ``AmpOptimWrapper``'s ``loss_scaler``), or None."""
    wrappers = optim_wrapper.values() if isinstance(
        optim_wrapper, OptimWrapperDict) else [optim_wrapper]
    for wrapper in wrappers:
        scaler = getattr(wrapper, 'loss_scaler', None)
        if scaler is not None and getattr(scaler, 'is_enabled',
                                          lambda: True)():
            return scaler
    return None


def _autocast_dtype(optim_wrapper) -> Optional[torch.dtype]:
    """The dtype ``optim_wrapper`` autocasts the forward pass to
    (``AmpOptimWrapper``'s and ``AutocastOptimWrapper``'s ``cast_dtype``),
    or None."""
    wrappers = optim_wrapper.values() if isinstance(
        optim_wrapper, OptimWrapperDict) else [optim_wrapper]
    for wrapper in wrappers:
        dtype = getattr(wrapper, 'cast_dtype', None)
        if dtype is not None:
            return dtype
    return None


@HOOKS.register_module()
class InvalidLossHook(Hook):
    """Raise ``FloatingPointError`` when the training loss is not finite.

    Unlike an assertion deep inside the optimizer step, the message names the
    iteration, the epoch, the ranks that saw it and this rank's loss terms,
    so the user knows where the run went wrong and which checkpoint to
    resume from.

    Without a loss scaler (``OptimWrapper``, and ``AutocastOptimWrapper``'s
    bfloat16 autocast on the CPU) the first non-finite loss stops training
    (its gradients would reach the weights); under autocast the message
    names the dtype and suggests a float32 run. Under ``AmpOptimWrapper``
    (CUDA, float16 with dynamic loss scaling) the scaler
    skips such a step and lowers its scale, and training goes on; the hook
    stops only when the loss stays non-finite for ``patience`` checked
    iterations in a row, or the scale falls below ``min_loss_scale`` (the
    gradients overflow even at a tiny scale).

    In a distributed run every check all-reduces one flag per rank (a
    tensor of ``world_size + 1`` numbers), so all ranks stop at the same
    iteration instead of the others waiting in the next gradient all-reduce
    until the collective timeout.

    Args:
        interval: check every ``interval`` iterations (1: every one).
        patience: under a loss scaler, how many checked iterations in a row
            may have a non-finite loss before training stops.
        min_loss_scale: under a loss scaler, stop when its scale falls below
            this.
    """

    priority = 'VERY_HIGH'

    def __init__(self, interval: int = 1, patience: int = 10,
                 min_loss_scale: float = 1e-4) -> None:
        if interval < 1:
            raise ValueError(f'InvalidLossHook: interval must be >= 1, got '
                             f'{interval}')
        if patience < 1:
            raise ValueError(f'InvalidLossHook: patience must be >= 1, got '
                             f'{patience}')
        if not min_loss_scale > 0:
            raise ValueError(f'InvalidLossHook: min_loss_scale must be > 0, '
                             f'got {min_loss_scale}')
        self.interval = interval
        self.patience = patience
        self.min_loss_scale = min_loss_scale
        self._non_finite_in_a_row = 0

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs or 'loss' not in outputs or \
                not self.every_n_train_iters(runner, self.interval):
            return
        loss = _as_float(outputs['loss'])
        scaler = _loss_scaler(runner.optim_wrapper)
        scale = None if scaler is None else float(scaler.get_scale())
        # one flag per rank (non-finite loss) and one for the loss scale
        flags = torch.zeros(runner.world_size + 1)
        flags[runner.rank] = not math.isfinite(loss)
        flags[-1] = scale is not None and scale < self.min_loss_scale
        if runner.world_size > 1:
            all_reduce(flags)
        bad_ranks = flags[:-1].nonzero().flatten().tolist()
        self._non_finite_in_a_row = \
            self._non_finite_in_a_row + 1 if bad_ranks else 0
        if scaler is None and bad_ranks:
            dtype = _autocast_dtype(runner.optim_wrapper)
            precision = '' if dtype is None else (
                f'It was computed under {str(dtype).replace("torch.", "")} '
                f'autocast without a loss scaler; train in float32 (without '
                f'--amp) to tell whether the reduced precision is the cause. ')
            raise FloatingPointError(
                self._where(runner, loss, outputs, bad_ranks) +
                'Training was stopped so that it does not go on with broken '
                'weights. ' + precision + self._advice())
        if scaler is not None and self._non_finite_in_a_row >= self.patience:
            raise FloatingPointError(
                self._where(runner, loss, outputs, bad_ranks) +
                f'It was not finite at {self._non_finite_in_a_row} checked '
                f'iterations in a row; the loss scaler skipped those steps, '
                f'but it cannot mend the forward pass. ' + self._advice())
        if flags[-1] > 0:
            raise FloatingPointError(
                f'The loss scale fell to {scale:.3g} (below min_loss_scale='
                f'{self.min_loss_scale:g}) at iteration {runner.iter + 1} '
                f'(epoch {runner.epoch + 1}): the gradients overflow even at '
                f'a tiny scale. ' + self._advice())

    @staticmethod
    def _where(runner, loss: float, outputs: dict,
               bad_ranks: List[int]) -> str:
        terms = ', '.join(f'{k}={_as_float(v):.4g}' for k, v in outputs.items()
                          if isinstance(v, (torch.Tensor, float, int)))
        where = f'at iteration {runner.iter + 1} (epoch {runner.epoch + 1})'
        if runner.world_size == 1:
            return (f'The training loss is {loss} {where}; loss terms: '
                    f'{terms}. ')
        ranks = ', '.join(map(str, bad_ranks))
        return (f'The training loss is not finite on rank(s) {ranks} {where}; '
                f'this rank\'s loss is {loss}, loss terms: {terms}. ')

    @staticmethod
    def _advice() -> str:
        return ('Lower the learning rate, enable gradient clipping '
                '(optim_wrapper.clip_grad), or check the data; then resume '
                'from the last checkpoint with --resume.')
