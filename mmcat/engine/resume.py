"""Checkpoints checked before a run resumes or loads from them.

A truncated copy, an empty file or a file that is not a checkpoint would
otherwise end a run in torch's raw ``PytorchStreamReader failed reading zip
archive`` traceback. :func:`resolve_checkpoint` reads the checkpoint a config
names first: an explicit one that does not load is a
:class:`CheckpointError` naming the file and why; with a bare ``--resume``
the newest checkpoint of the work dir that loads is chosen, each one skipped
with a warning. Nothing is deleted (the resumed run's own checkpoint of the
same name replaces a skipped file when it gets there).
"""
import glob
import os
import os.path as osp
import warnings
import zipfile
from typing import List, Optional, Tuple

import torch
from mmengine.config import Config

__all__ = [
    'CheckpointError', 'checkpoint_problem', 'resolve_checkpoint',
    'work_dir_checkpoints'
]


class CheckpointError(RuntimeError):
    """A checkpoint to resume or load from cannot be read."""


def checkpoint_problem(path: str) -> Optional[str]:
    """Why ``path`` is not a loadable checkpoint, or None if it is one.

    Reads the whole file as mmengine will (``torch.load`` with
    ``weights_only=True``; call :func:`~mmcat.engine.setup_runtime` first so
    that mmengine's own types load) and requires a dict with a
    ``state_dict``.
    """
    if not osp.exists(path):
        return 'it does not exist'
    if osp.isdir(path):
        return 'it is a directory'
    size = osp.getsize(path)
    if size == 0:
        return 'it is empty (0 bytes)'
    try:
        data = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # noqa: BLE001  (any reason is reported)
        if not zipfile.is_zipfile(path):
            return (f'torch.load failed: its {size} bytes are no zip archive '
                    "(torch.save's format): a truncated copy or not a "
                    'checkpoint')
        # torch's first sentence (its messages go on with advice)
        reason = str(e).strip().split('. ')[0].splitlines()[0]
        return (f'torch.load failed ({type(e).__name__}: {reason}); '
                f'{size} bytes: a damaged copy or not a checkpoint')
    if not isinstance(data, dict) or 'state_dict' not in data:
        kind = type(data).__name__
        return f'it holds a {kind} without "state_dict": not a checkpoint'
    return None


def work_dir_checkpoints(work_dir: str) -> List[str]:
    """The ``*.pth`` files of ``work_dir``, newest first (by modification
    time; the one mmengine's ``last_checkpoint`` names first among equals).
    """
    paths = glob.glob(osp.join(work_dir, '*.pth'))
    last = None
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            last = osp.abspath(f.read().strip())
    return sorted(
        paths,
        key=lambda p: (os.stat(p).st_mtime, osp.abspath(p) == last),
        reverse=True)


def _newest_loadable(work_dir: str) -> Tuple[Optional[str], List[str]]:
    """The newest loadable checkpoint of ``work_dir`` and the lines of those
    skipped before it."""
    skipped = []
    for path in work_dir_checkpoints(work_dir):
        problem = checkpoint_problem(path)
        if problem is None:
            return path, skipped
        skipped.append(f'{path}: {problem}')
    return None, skipped


def resolve_checkpoint(cfg: Config) -> Optional[str]:
    """Check or choose the checkpoint ``cfg`` resumes or loads from.

    * ``cfg.resume`` with no ``cfg.load_from`` (a bare ``--resume``): the
      newest checkpoint in ``cfg.work_dir`` that loads becomes
      ``cfg.load_from``; each newer one that does not is skipped with a
      warning naming it and why. No checkpoint at all: the run starts from
      scratch, as mmengine does.
    * ``cfg.load_from`` a local file (resumed or only loaded): it must load.

    Args:
        cfg: the full config, after the command line; changed in place.

    Returns:
        The checkpoint the run will read, or None.

    Raises:
        CheckpointError: an explicit checkpoint that does not load, or a
            work dir whose checkpoints all fail to load (each listed).
    """
    load_from = cfg.get('load_from', None)
    if cfg.get('resume', False) and not load_from:
        work_dir = cfg.work_dir
        path, skipped = _newest_loadable(work_dir)
        if path is None and skipped:
            raise CheckpointError(
                f'--resume: no checkpoint in {work_dir} loads:\n  ' +
                '\n  '.join(skipped) +
                '\nResume from another file with --resume PATH, or move '
                'these away to start from scratch.')
        for line in skipped:
            # left in place; a checkpoint of the same name that the resumed
            # run saves replaces it
            warnings.warn(f'--resume skips {line}', stacklevel=2)
        if path is not None:
            if skipped:
                warnings.warn(f'--resume continues from {path}, the newest '
                              'checkpoint that loads', stacklevel=2)
            cfg.load_from = path
        return path
    if not load_from or '://' in str(load_from):
        return load_from or None  # remote files are mmengine's to fetch
    problem = checkpoint_problem(load_from)
    if problem is not None:
        what = 'resume from' if cfg.get('resume', False) else 'load'
        raise CheckpointError(f'cannot {what} {load_from}: {problem}')
    return load_from
