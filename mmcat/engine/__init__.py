"""What mmcat adds to mmengine's training and testing.

Importing this package registers :class:`InvalidLossHook`,
:class:`RNGStateHook`, :class:`MMCATRunner` and
:class:`AutocastOptimWrapper`, and nothing else: the
runner-level fixes (atomic checkpoint writes, the weights-only allow-list of
mmengine's checkpoint types, CPU-only distributed runs) take effect only when
:func:`setup_runtime` is called (the tools do; so does ``MMCATRunner``).
:func:`cap_cpu_threads` (called by ``tools/train.py`` and ``tools/test.py``)
sets torch's thread count of a single-process CPU run.
"""
from .atomic_io import enable_atomic_local_writes
from .checkpoint_compat import register_mmengine_safe_globals
from .cpu_threads import cap_cpu_threads
from .dist import cpu_dist_env, init_cpu_dist, setup_cpu_distributed
from .hooks import InvalidLossHook, RNGStateHook
from .optim import AutocastOptimWrapper
from .runner import MMCATRunner, build_runner, register_scope_modules
from .runtime import setup_runtime

__all__ = [
    'AutocastOptimWrapper', 'InvalidLossHook', 'MMCATRunner', 'RNGStateHook',
    'build_runner', 'cap_cpu_threads', 'cpu_dist_env',
    'enable_atomic_local_writes', 'init_cpu_dist',
    'register_mmengine_safe_globals', 'register_scope_modules',
    'setup_cpu_distributed', 'setup_runtime'
]
