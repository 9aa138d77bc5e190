"""What the operating system says about a process's memory (Linux /proc) and
how glibc hands memory back to it (``mallopt``, ``malloc_trim``)."""
import ctypes
import gc
import os
import resource
from typing import Optional

#: ``--malloc`` choices: glibc as it comes, or keeping freed memory.
MALLOC_MODES = ('default', 'retain')
#: glibc's mallopt parameters and the environment variables of the same.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_RETAIN_SETTINGS = (('MALLOC_MMAP_THRESHOLD_', _M_MMAP_THRESHOLD, 1 << 30),
                    ('MALLOC_TRIM_THRESHOLD_', _M_TRIM_THRESHOLD, 2**31 - 1))


def _proc_status_kb(field_name: str, pid: str = 'self') -> Optional[int]:
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith(field_name + ':'):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def rss_bytes(pid: str = 'self') -> Optional[int]:
    """Current resident set size (Linux), or None."""
    kb = _proc_status_kb('VmRSS', pid)
    return None if kb is None else kb * 1024


def peak_rss_bytes() -> int:
    """The peak-RSS mark of this process (``VmHWM``; ``ru_maxrss`` where
    /proc is missing)."""
    kb = _proc_status_kb('VmHWM')
    if kb is None:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb * 1024


def reset_peak_rss() -> bool:
    """Reset this process's peak-RSS mark to its current RSS (Linux >= 4.0:
    ``5`` to ``/proc/self/clear_refs``). Returns whether it worked."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        return False
    hwm, rss = _proc_status_kb('VmHWM'), _proc_status_kb('VmRSS')
    return hwm is not None and rss is not None and hwm <= rss + 1024


def available_memory_bytes() -> Optional[int]:
    """``MemAvailable`` from /proc/meminfo, or None."""
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def retain_freed_memory() -> str:
    """Make glibc keep freed memory for reuse, in this process (``mallopt``)
    and in the workers it starts (the ``MALLOC_*_`` variables).

    By default glibc serves every block above its mmap threshold (adapted at
    run time) with a fresh ``mmap`` and returns heap tops above its trim
    threshold to the kernel, so a model's large temporaries touch new pages,
    zeroed by the kernel, on every forward. With this setting, as with
    jemalloc or tcmalloc (which PyTorch's CPU tuning guide recommends), they
    are reused after the first forward (docs/benchmark.md).

    Returns:
        The settings, for the report.

    Raises:
        RuntimeError: not glibc (no ``mallopt``), or glibc refused a value.
    """
    try:
        mallopt = ctypes.CDLL('libc.so.6').mallopt
    except (OSError, AttributeError) as err:
        raise RuntimeError(
            f'--malloc retain needs glibc (mallopt): {err}; use --malloc '
            'default, or preload jemalloc/tcmalloc yourself') from err
    for env, param, value in _RETAIN_SETTINGS:
        if mallopt(param, ctypes.c_int(value)) != 1:
            raise RuntimeError(f'glibc refused mallopt({param}, {value})')
        os.environ[env] = str(value)
    return ', '.join(f'{env}={value}' for env, _, value in _RETAIN_SETTINGS)


def release_free_memory() -> None:
    """Collect garbage and give glibc's free heap pages back to the kernel,
    so that RSS is what is in use."""
    gc.collect()
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass
