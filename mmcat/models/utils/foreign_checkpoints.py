"""Weights-only loading of the CAT authors' ImageNet checkpoints.

The authors' classification code (derived from Swin's) saves
``{'model', 'optimizer', 'lr_scheduler', 'max_accuracy', 'epoch', 'config'}``
where ``config`` is a ``yacs.config.CfgNode``. torch >= 2.6 refuses such a
file with ``weights_only=True`` ("Unsupported global: yacs.config.CfgNode"),
and turning weights-only off would run whatever code a downloaded file holds.

Instead, ``collections.OrderedDict`` stands in for ``CfgNode`` during
weights-only loads: the config's keys load as a plain mapping (its attribute
state lands in the instance ``__dict__``) and none of yacs' code runs (yacs
need not be installed). torch's weights-only unpickler fills and builds
``OrderedDict`` itself, which it does for no user-defined class.
"""
from collections import OrderedDict

import torch

__all__ = ['register_foreign_config_stand_ins']

# Config classes that training code pickles next to the weights.
_STAND_IN_FOR = ('yacs.config.CfgNode', )


def register_foreign_config_stand_ins() -> None:
    """Allow-list ``OrderedDict`` under the names in ``_STAND_IN_FOR`` for
    ``torch.load(weights_only=True)`` (idempotent)."""
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:   # torch < 2.4: no weights-only allow-list to extend
        return
    add([(OrderedDict, name) for name in _STAND_IN_FOR])
