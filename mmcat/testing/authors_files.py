"""Checkpoint files as the CAT authors' ImageNet training code writes them.

Their classification code (derived from Swin's) saves ``{'model',
'optimizer', 'lr_scheduler', 'max_accuracy', 'epoch', 'config'}`` with
``config`` a pickled ``yacs.config.CfgNode``.
:func:`save_authors_imagenet_file` writes such a file without yacs installed:
a stand-in ``yacs.config`` module is importable while the file is saved, so
the pickle names ``yacs.config.CfgNode`` exactly as the real files do.
"""
import sys
import types
from typing import Any, Dict, List, Mapping

import torch


def save_authors_imagenet_file(path: str,
                               state_dict: Mapping[str, torch.Tensor],
                               model_type: str = 'cat') -> List[Any]:
    """Save ``state_dict`` (the authors' classification layout) as their
    training script does, with a ``yacs.config.CfgNode`` config.

    Returns:
        A list that receives the state of every ``CfgNode`` the stand-in
        class rebuilds: it stays empty unless something unpickles the file
        with the stand-in importable, i.e. runs the file's code.
    """
    ran: List[Any] = []

    class CfgNode(dict):

        def __init__(self, d: Dict[str, Any] = None) -> None:
            super().__init__(d or {})
            self.__dict__['__immutable__'] = True
            self.__dict__['__deprecated_keys__'] = set()

        def __setstate__(self, state: Dict[str, Any]) -> None:
            ran.append(state)           # would run on an unsafe load
            self.__dict__.update(state)

    CfgNode.__module__, CfgNode.__qualname__ = 'yacs.config', 'CfgNode'
    yacs, config = types.ModuleType('yacs'), types.ModuleType('yacs.config')
    config.CfgNode = CfgNode
    saved = {name: sys.modules.get(name) for name in ('yacs', 'yacs.config')}
    sys.modules['yacs'], sys.modules['yacs.config'] = yacs, config
    try:
        torch.save({
            'model': dict(state_dict), 'optimizer': {'state': {}},
            'lr_scheduler': {}, 'max_accuracy': 81.8, 'epoch': 299,
            'config': CfgNode({'MODEL': CfgNode({'TYPE': model_type}),
                               'AMP_OPT_LEVEL': 'O1'})}, path)
    finally:
        for name, module in saved.items():
            if module is None:
                del sys.modules[name]
            else:
                sys.modules[name] = module
    return ran
