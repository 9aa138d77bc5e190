"""torch/mmengine compatibility and what the train/test tools share.

Importing this package (``import mmcat`` does) allow-lists mmengine's own
checkpoint contents for torch >= 2.6's weights-only ``torch.load``.
"""
from .compat import register_mmengine_safe_globals
from .dist import cpu_dist_env, init_cpu_dist, setup_cpu_distributed
from .foreign_checkpoints import register_foreign_config_stand_ins
from .setup_env import build_runner, register_scope_modules

register_mmengine_safe_globals()
register_foreign_config_stand_ins()  # the CAT authors' ImageNet files

__all__ = [
    'build_runner', 'cpu_dist_env', 'init_cpu_dist',
    'register_foreign_config_stand_ins', 'register_mmengine_safe_globals',
    'register_scope_modules',
    'setup_cpu_distributed'
]
