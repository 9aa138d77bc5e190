"""What ``tools/train.py`` and ``tools/test.py`` share: the downstream
codebase a config belongs to, and how its Runner is built."""
from typing import Optional

from mmengine.config import Config
from mmengine.runner import Runner

from .data_checks import check_data_on_build
from .dist import setup_cpu_distributed
from .sync_bn import maybe_revert_sync_bn_cfg
from .model_checks import check_neck_widths

__all__ = ['build_runner', 'register_scope_modules']


def register_scope_modules(cfg: Config) -> Optional[str]:
    """Register the modules of the codebase named by ``cfg.default_scope``.

    MMDetection configs carry ``default_scope='mmdet'`` and MMSegmentation
    ones ``'mmseg'``; their ``register_all_modules`` imports every module of
    that codebase so its registries are complete. The default scope itself
    is left to the Runner, which sets it from the same config key.

    Args:
        cfg: a loaded config.

    Returns:
        The scope name, or None when the config names none.
    """
    scope = cfg.get('default_scope', None)
    if scope == 'mmdet':
        from mmdet.utils import register_all_modules
        register_all_modules(init_default_scope=False)
    elif scope == 'mmseg':
        from mmseg.utils import register_all_modules
        register_all_modules(init_default_scope=False)
    return scope


def build_runner(cfg: Config) -> Runner:
    """Build the Runner a finished config asks for.

    Registers the config's codebase, prepares a CPU-only distributed run
    (see :func:`mmcat.utils.setup_cpu_distributed`), then builds
    ``cfg.runner_type`` through ``RUNNERS`` or a plain ``Runner``. The built
    model's neck must match its backbone (:func:`check_neck_widths`), and
    each data loader checks its data when the Runner builds it
    (:func:`~mmcat.utils.data_checks.check_data_on_build`).
    """
    register_scope_modules(cfg)
    setup_cpu_distributed(cfg)
    # SyncBN cannot run in CPU process groups: BN there (GPUs keep SyncBN;
    # a single process is handled by mmengine itself).
    maybe_revert_sync_bn_cfg(
        cfg.model, distributed=cfg.get('launcher', 'none') != 'none')
    if 'runner_type' in cfg:
        from mmengine.registry import RUNNERS
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    check_neck_widths(runner.model)
    check_data_on_build(runner, cfg)
    return runner
