"""The runner-level fixes mmcat applies to mmengine 0.10.7, in one call.

``import mmcat`` only registers modules; it changes nothing in torch or
mmengine. What a training or test run needs on top of a plain mmengine
``Runner`` is applied by :func:`setup_runtime`, explicitly:

* atomic checkpoint writes (:mod:`mmcat.engine.atomic_io`): a run killed
  while it saves leaves the previous checkpoint intact;
* the weights-only allow-list of mmengine's own checkpoint contents
  (:mod:`mmcat.engine.checkpoint_compat`): resuming and ``load_from`` work
  under torch's ``weights_only=True`` default, code in a file stays refused;
* given the config, a launched run on a machine without CUDA
  (:mod:`mmcat.engine.dist`, :mod:`mmcat.engine.sync_bn`): a gloo process
  group, DDP without ``device_ids`` and BN in place of SyncBN.

``tools/train.py`` and ``tools/test.py`` call it; a config gets the same with
``runner_type='MMCATRunner'`` (:class:`mmcat.engine.MMCATRunner`).
"""
from typing import Optional

from mmengine.config import Config

from .atomic_io import enable_atomic_local_writes
from .checkpoint_compat import register_mmengine_safe_globals
from .dist import setup_cpu_distributed
from .sync_bn import maybe_revert_sync_bn_cfg

__all__ = ['setup_runtime']


def setup_runtime(cfg: Optional[Config] = None) -> None:
    """Apply mmcat's runner-level fixes; call it before building a Runner.

    For scripts of your own that build an mmengine ``Runner`` (the tools and
    :class:`~mmcat.engine.MMCATRunner` call it already). Idempotent: a second
    call, with or without the same config, changes nothing more.

    Without ``cfg``, the process-wide fixes only: mmengine's local
    ``put``/``put_text`` write atomically, and
    ``torch.load(weights_only=True)`` accepts the types mmengine's
    checkpoints hold. With ``cfg``, also the
    run's own: for ``cfg.launcher`` other than ``'none'`` on a machine
    without CUDA, the process group is started over gloo and
    ``cfg.model_wrapper_cfg`` gets ``device_ids=None``; SyncBN in
    ``cfg.model`` becomes BN unless the run has several processes on an
    accelerator (torch refuses SyncBN on the CPU).

    Args:
        cfg: the full config (a ``Config`` or dict), after command-line
            overrides; changed in place. None: the process-wide fixes alone.
    """
    enable_atomic_local_writes()
    register_mmengine_safe_globals()
    if cfg is None:
        return
    setup_cpu_distributed(cfg)
    # SyncBN cannot run in CPU process groups: BN there (GPUs keep SyncBN;
    # a single process is handled by mmengine itself).
    maybe_revert_sync_bn_cfg(
        cfg['model'], distributed=cfg.get('launcher', 'none') != 'none')
