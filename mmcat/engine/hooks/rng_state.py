"""Keep the random generators' states in checkpoints, so that a resumed run
draws the same random numbers as one that was never interrupted.

mmengine's resume restores weights, optimizer, schedulers and the position in
the data, but the random generators restart from the seed. Anything random
in the training step (stochastic depth, dropout, random augmentation in the
main process, a data loader's per-epoch seed) then differs from the
uninterrupted run, and so do the final weights.
"""
import functools
import random
from typing import Any, Callable, Dict, Iterator, List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

__all__ = ['RNGStateHook', 'get_rng_states', 'set_rng_states']

_KEY = 'rng_states'

# The stages in which mmengine's CheckpointHook saves; every rank runs them.
_SAVING_STAGES = ('after_train_iter', 'after_train_epoch', 'after_val_epoch')


def _cpu_bytes(state: torch.Tensor) -> torch.Tensor:
    """A generator state as torch's ``set_state`` takes it: a CPU uint8
    tensor (a checkpoint loaded with ``map_location='cuda'`` has it on the
    GPU)."""
    return state.detach().to(device='cpu', dtype=torch.uint8).contiguous()


def get_rng_states() -> Dict[str, Any]:
    """This process's generator states, in types a weights-only
    ``torch.load`` reads.

    Returns:
        ``python``, ``numpy`` and ``torch`` (the CPU generator); with CUDA
        initialised also ``cuda``, the state of this process's own device
        (``torch.cuda.current_device()``), a uint8 tensor.
    """
    _, keys, pos, has_gauss, cached = np.random.get_state()
    states: Dict[str, Any] = dict(
        python=random.getstate(),
        numpy=dict(keys=torch.from_numpy(keys.astype(np.int64)), pos=pos,
                   has_gauss=has_gauss, cached_gaussian=cached),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state(torch.cuda.current_device())
    return states


def _device_state(states: Dict[str, Any]) -> Optional[torch.Tensor]:
    """The saved state for this process's CUDA device, or None when there
    is none to restore (no CUDA here, or none saved for this device)."""
    saved = states.get('cuda', None)
    if saved is None or not torch.cuda.is_available():
        return None
    if isinstance(saved, torch.Tensor):
        return saved
    # Files of earlier versions hold a list: every visible GPU's state.
    device = torch.cuda.current_device()
    return saved[device] if device < len(saved) else None


def set_rng_states(states: Dict[str, Any]) -> None:
    """Restore what :func:`get_rng_states` returned, wherever the tensors
    were loaded to (they are copied to the CPU first).

    The CUDA state goes to this process's current device; without CUDA it is
    ignored, and without a saved one the device keeps its state.
    """
    version, keys, gauss = states['python']
    random.setstate((version, tuple(keys), gauss))
    np_state = states['numpy']
    np.random.set_state(
        ('MT19937', np_state['keys'].cpu().numpy().astype(np.uint32),
         int(np_state['pos']), int(np_state['has_gauss']),
         float(np_state['cached_gaussian'])))
    torch.set_rng_state(_cpu_bytes(states['torch']))
    device_state = _device_state(states)
    if device_state is not None:
        torch.cuda.set_rng_state(
            _cpu_bytes(device_state), torch.cuda.current_device())


def _per_rank(saved: Any) -> List[Dict[str, Any]]:
    """The per-rank records of a checkpoint; files of earlier versions hold
    one record (rank 0's)."""
    return [saved] if isinstance(saved, dict) else list(saved)


class _RestoreAfterSkip:
    """Stands in for ``IterBasedTrainLoop.dataloader_iterator`` at a resume.

    The loop first fetches ``skip`` batches to get back to its place in the
    data; the generators must be restored after those (fetching can draw
    random numbers: an epoch boundary seeds a new data loader iterator) and
    before the first new batch, which is where the saved run stood when it
    wrote the checkpoint. Then the real iterator is put back.
    """

    def __init__(self, loop, states: Dict[str, Any], skip: int) -> None:
        self._loop = loop
        self._iterator = loop.dataloader_iterator
        self._states = states
        self._left = skip

    def __iter__(self) -> Iterator:
        return self

    def __next__(self):
        if self._left > 0:
            self._left -= 1
        else:
            set_rng_states(self._states)
            self._loop.dataloader_iterator = self._iterator
        return next(self._iterator)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._iterator, name)


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save every rank's generator states with each checkpoint; restore each
    rank's own when training resumes from one.

    The states are restored where the saved run stood: for an
    ``IterBasedTrainLoop`` after mmengine has skipped the batches already
    trained on, before the first new batch is fetched; for an epoch loop at
    the start of the next epoch. A checkpoint given as ``load_from`` without
    ``resume`` (a fine-tuning start) restores nothing.

    The checkpoint holds one record per rank (Python's, numpy's and torch's
    CPU generators, and the rank's own CUDA device), gathered from every rank
    when mmengine's ``CheckpointHook`` saves. So ranks restore their own
    states, with ``randomness.diff_rank_seed=True`` too. A checkpoint saved
    by ``runner.save_checkpoint`` called outside that hook holds rank 0's
    record only (gathering there could wait for ranks that never come).

    Resuming with another number of processes than the saved run had:
    ranks that have a record restore it; the others keep the states their
    seed gave them, and a warning says that the run will not repeat the
    interrupted one exactly. A saved CUDA state is ignored on a machine
    without CUDA. Data loader workers (``num_workers > 0``) draw from
    generators seeded per epoch, not from these.

    On GPUs the resumed run repeats the interrupted one bit for bit only
    with deterministic kernels: ``randomness=dict(seed=...,
    deterministic=True)`` and ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` in the
    environment (a warning says so at a resume without them). Ops without a
    deterministic CUDA kernel then raise, and mmcv's own CUDA ops (RoIAlign)
    may still add in a varying order.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._loaded: Optional[List[Dict[str, Any]]] = None
        self._gathered: Optional[List[Dict[str, Any]]] = None
        self._every_rank_saves = False

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[_KEY] = self._gathered or [get_rng_states()]

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        saved = checkpoint.get(_KEY)
        self._loaded = None if saved is None else _per_rank(saved)

    def before_train(self, runner) -> None:
        if runner.world_size > 1:
            self._gather_when_saving(runner)
        records, self._loaded = self._loaded, None
        if records is None or (runner.iter == 0 and runner.epoch == 0):
            return  # nothing saved, or not a resume
        if len(records) != runner.world_size:
            print_log(
                f'RNGStateHook: the checkpoint holds the random states of '
                f'{len(records)} process(es), this run has '
                f'{runner.world_size}. Ranks below {len(records)} restore '
                f'theirs, the others keep the states their seed gave them: '
                f'the resumed run does not repeat the interrupted one '
                f'exactly.',
                logger='current', level=30)
        if torch.cuda.is_available() and \
                not torch.are_deterministic_algorithms_enabled():
            print_log(
                'RNGStateHook: random states restored, but this GPU run '
                'does not use deterministic kernels, so it follows the '
                'interrupted run closely, not bit for bit. For an exact '
                'resume set randomness=dict(seed=..., deterministic=True) '
                'and export CUBLAS_WORKSPACE_CONFIG=:4096:8.',
                logger='current', level=30)
        if runner.rank >= len(records):
            return
        states = records[runner.rank]
        loop = runner.train_loop
        if hasattr(loop, 'dataloader_iterator'):
            loop.dataloader_iterator = _RestoreAfterSkip(loop, states,
                                                         runner.iter)
        else:
            set_rng_states(states)

    def _gather_when_saving(self, runner) -> None:
        """Make ``runner.save_checkpoint`` gather every rank's states when a
        ``CheckpointHook`` calls it (it does on every rank; the gather is a
        collective, so it is done only there)."""
        if getattr(runner.save_checkpoint, '_gathers_rng_states', False):
            return  # a second ``train()`` of the same runner
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook):
                for stage in _SAVING_STAGES:
                    setattr(hook, stage, self._on_every_rank(
                        getattr(hook, stage)))
        save = runner.save_checkpoint

        @functools.wraps(save)
        def save_checkpoint(*args, **kwargs):
            if self._every_rank_saves:
                self._gathered = all_gather_object(get_rng_states())
            try:
                return save(*args, **kwargs)
            finally:
                self._gathered = None

        save_checkpoint._gathers_rng_states = True
        runner.save_checkpoint = save_checkpoint

    def _on_every_rank(self, stage: Callable) -> Callable:
        """``stage`` of a ``CheckpointHook``, run with the gather allowed."""

        @functools.wraps(stage)
        def run(*args, **kwargs):
            self._every_rank_saves = True
            try:
                return stage(*args, **kwargs)
            finally:
                self._every_rank_saves = False

        return run
