"""The weights-only allow-list of mmengine's own checkpoint contents.

torch >= 2.6 loads checkpoints with ``weights_only=True`` by default.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``, so it can no
longer read the checkpoints it writes itself: besides tensors they hold the
``MessageHub`` state, whose ``HistoryBuffer`` objects carry numpy arrays and
references to ``HistoryBuffer``'s statistics methods. Resuming, and
``load_from`` of a Runner checkpoint, fail with "Weights only load failed".

:func:`register_mmengine_safe_globals` allow-lists exactly the globals those
checkpoints reference (found by saving a Runner checkpoint and listing the
GLOBAL opcodes of its pickle), and nothing else; weights-only loading stays
on. Anything else a checkpoint names is still refused.

``builtins.getattr`` needs care. A pickle (protocol 2, torch's default)
refers to a method such as ``HistoryBuffer.min`` as
``getattr(HistoryBuffer, 'min')``. Allow-listing the real ``getattr`` would
be unsafe: torch's weights-only unpickler applies it to whatever is on its
stack, so a crafted file can walk from an allowed function to its
``__globals__`` and from there to ``eval``, and call the result through
``torch._tensor._rebuild_from_type_v2`` (allowed by default, it calls its
first argument). ``tests/test_engine/test_checkpoint_compat.py`` keeps such
a file as a regression test. What is registered under the name
``builtins.getattr`` is therefore :func:`_checkpoint_getattr`, which
resolves only the listed attributes of the listed classes and refuses
everything else. (torch looks allowed globals up by name: code that also
allow-lists the real ``getattr`` makes the choice between the two
arbitrary. Don't.)

What stays open by mmengine's design: ``HistoryBuffer.__setstate__`` merges
the checkpoint's ``statistics_methods`` into a class-level registry, so a
crafted file can put other allow-listed callables there; called later as
statistics they can only fail, not run code of the file's choosing.
"""
import pickle
from typing import Any, Callable, Dict, FrozenSet, List, Tuple, Union

import numpy as np
import torch

__all__ = ['register_mmengine_safe_globals']

SafeGlobal = Union[Callable, Tuple[Callable, str]]

# What ``_checkpoint_getattr`` may resolve, per class: the statistics methods
# mmengine's HistoryBuffer keeps by reference in its pickled state
# (HistoryBuffer.__getstate__ adds ``statistics_methods``).
_GETATTR_ALLOWED: Dict[type, FrozenSet[str]] = {}


def _checkpoint_getattr(obj: Any, name: str) -> Any:
    """``getattr`` for weights-only loading, limited to class attributes
    named in ``_GETATTR_ALLOWED``.

    Raises:
        pickle.UnpicklingError: for any other object or attribute.
    """
    if isinstance(obj, type) and name in _GETATTR_ALLOWED.get(obj, ()):
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}) is not allowed in a weights-only load; '
        'mmcat only allows the methods that mmengine checkpoints reference '
        '(see mmcat/engine/checkpoint_compat.py)')


def _numpy_safe_globals() -> List[SafeGlobal]:
    """numpy arrays and scalars, under their numpy 1.x and 2.x names.

    numpy 2 pickles from ``numpy._core``; files written with numpy 1 name
    ``numpy.core``. Both names map to the functions of the installed numpy,
    so ``numpy.core`` (deprecated in numpy 2) is never imported.
    """
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    entries: List[SafeGlobal] = [
        # HistoryBuffer keeps its logs as arrays: ndarray.__reduce__ is
        # ``_reconstruct(ndarray, shape, dtype)`` plus a BUILD of the data.
        np.ndarray,
        # every array and scalar names its dtype: ``dtype(code, ...)``
        np.dtype,
    ]
    for package in ('numpy.core', 'numpy._core'):
        entries += [
            (multiarray._reconstruct, f'{package}.multiarray._reconstruct'),
            # numpy scalars (MessageHub's runtime_info['eta'] is an
            # np.float64) pickle as ``scalar(dtype, raw bytes)``
            (multiarray.scalar, f'{package}.multiarray.scalar'),
        ]
    # A dtype is rebuilt as an instance of its concrete class
    # (numpy.dtypes.Float64DType, ...) and then BUILD-ed, which the unpickler
    # allows only for allow-listed types. HistoryBuffer holds float64 logs
    # and int64 counts (numpy's default int; int32 on Windows with numpy 1,
    # hence that one too). Other dtypes, the object dtype above all, stay
    # refused.
    for name in ('float64', 'int64', 'int32'):
        entries.append(type(np.dtype(name)))
    return entries


def _mmengine_safe_globals() -> List[SafeGlobal]:
    """The mmengine classes a Runner checkpoint names."""
    from mmengine.logging import HistoryBuffer

    _GETATTR_ALLOWED[HistoryBuffer] = frozenset(
        ('min', 'max', 'mean', 'current'))
    return [
        # MessageHub.state_dict()['log_scalars'] values (loss, lr, time...)
        HistoryBuffer,
        # ``getattr(HistoryBuffer, 'min')`` and friends, restricted (above)
        (_checkpoint_getattr, 'builtins.getattr'),
    ]


def register_mmengine_safe_globals() -> None:
    """Allow-list the globals of mmengine's own checkpoints for
    ``torch.load(weights_only=True)``.

    Idempotent (torch keeps the allow-list as a set). Does nothing before
    torch 2.6, where ``weights_only`` defaults to False and
    ``add_safe_globals`` does not accept ``(global, name)`` pairs.
    """
    if torch.__version__ < '2.6':  # TorchVersion compares as a version
        return
    torch.serialization.add_safe_globals(_numpy_safe_globals() +
                                         _mmengine_safe_globals())
