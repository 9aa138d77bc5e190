"""Keep the random generators' states in checkpoints, so that a resumed run
draws the same random numbers as one that was never interrupted.

mmengine's resume restores weights, optimizer, schedulers and the position in
the data, but the random generators restart from the seed. Anything random
in the training step (stochastic depth, dropout, random augmentation in the
main process, a data loader's per-epoch seed) then differs from the
uninterrupted run, and so do the final weights.
"""
import random
from typing import Any, Dict, Iterator, Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

__all__ = ['RNGStateHook', 'get_rng_states', 'set_rng_states']

_KEY = 'rng_states'


def get_rng_states() -> Dict[str, Any]:
    """The states of Python's, numpy's and torch's global generators (CUDA's
    too where initialised), in types a weights-only ``torch.load`` reads."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    states: Dict[str, Any] = dict(
        python=random.getstate(),
        numpy=dict(keys=torch.from_numpy(keys.astype(np.int64)), pos=pos,
                   has_gauss=has_gauss, cached_gaussian=cached),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: Dict[str, Any]) -> None:
    """Restore what :func:`get_rng_states` returned."""
    version, keys, gauss = states['python']
    random.setstate((version, tuple(keys), gauss))
    np_state = states['numpy']
    np.random.set_state(
        ('MT19937', np_state['keys'].numpy().astype(np.uint32),
         int(np_state['pos']), int(np_state['has_gauss']),
         float(np_state['cached_gaussian'])))
    torch.set_rng_state(states['torch'])
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states['cuda'])


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
    """Save the generators' states with every checkpoint; restore them when
    training resumes from one.

    The states are restored where the saved run stood: for an
    ``IterBasedTrainLoop`` after mmengine has skipped the batches already
    trained on, before the first new batch is fetched; for an epoch loop at
    the start of the next epoch. A checkpoint given as ``load_from`` without
    ``resume`` (a fine-tuning start) restores nothing.

    Only rank 0 writes checkpoints, so its states are saved; at a resume
    every rank takes them, which is exact when the ranks share a seed
    (mmengine's default). With ``randomness.diff_rank_seed=True`` only rank 0
    restores, and a warning says so. Data loader workers
    (``num_workers > 0``) draw from generators seeded per epoch, not from
    these.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._pending: Optional[Dict[str, Any]] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[_KEY] = get_rng_states()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._pending = checkpoint.get(_KEY)

    def before_train(self, runner) -> None:
        states, self._pending = self._pending, None
        if states is None or (runner.iter == 0 and runner.epoch == 0):
            return  # nothing saved, or not a resume
        randomness = runner.cfg.get('randomness', None) or {}
        if randomness.get('diff_rank_seed', False) and runner.world_size > 1:
            if runner.rank != 0:
                print_log(
                    'RNGStateHook: randomness.diff_rank_seed=True, so only '
                    'rank 0 restores its random state from the checkpoint; '
                    'the other ranks restart from their seeds.',
                    logger='current', level=30)
                return
        loop = runner.train_loop
        if hasattr(loop, 'dataloader_iterator'):
            loop.dataloader_iterator = _RestoreAfterSkip(loop, states,
                                                         runner.iter)
        else:
            set_rng_states(states)
