"""How the tools build a Runner, and the Runner type a config can name.

* :func:`build_runner`: what ``tools/train.py`` and ``tools/test.py`` share,
  the downstream codebase of a config registered and its Runner built, with
  checks of the model and data that fail early and clearly;
* :class:`MMCATRunner`: an mmengine ``Runner`` that applies
  :func:`~mmcat.engine.setup_runtime` itself, for configs run by other
  tools (MMDetection's or MMSegmentation's ``tools/train.py``):
  ``runner_type = 'MMCATRunner'`` with ``custom_imports`` of ``mmcat``.
"""
import copy
from typing import Optional

from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from .data_checks import check_data_on_build
from .model_checks import check_neck_widths
from .runtime import setup_runtime

__all__ = ['MMCATRunner', 'build_runner', 'register_scope_modules']


@RUNNERS.register_module()
class MMCATRunner(Runner):
    """A ``Runner`` built with mmcat's runtime fixes in place.

    ``from_cfg`` (what ``RUNNERS.build`` calls for ``runner_type``) applies
    :func:`~mmcat.engine.setup_runtime` to a copy of the config before the
    Runner starts its process group, wraps the model, loads or resumes a
    checkpoint and saves one. Everything else is mmengine's ``Runner``.
    """

    @classmethod
    def from_cfg(cls, cfg: Config) -> 'MMCATRunner':
        cfg = copy.deepcopy(cfg)
        setup_runtime(cfg)
        return super().from_cfg(cfg)


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

    Call :func:`~mmcat.engine.setup_runtime` with ``cfg`` first (the tools
    do): on a machine without CUDA a launched run needs its process group
    before the Runner is built. Registers the config's codebase, then builds
    ``cfg.runner_type`` through ``RUNNERS`` or a plain ``Runner``. The built
    model's neck must match its backbone (:func:`check_neck_widths`), and
    each data loader checks its data when the Runner builds it
    (:func:`~mmcat.engine.data_checks.check_data_on_build`).
    """
    register_scope_modules(cfg)
    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    check_neck_widths(runner.model)
    check_data_on_build(runner, cfg)
    return runner
