"""torch's intra-op threads for a single-process run on CPUs.

torch starts one intra-op thread per core. The data loader's worker
processes need CPUs too: when threads and workers together outnumber the
CPUs, every operation of a step waits for a thread whose CPU a worker holds,
and a step of small operations (the demos' 128-px batches) runs far slower
than on fewer threads. :func:`cap_cpu_threads` leaves the loader workers
their CPUs. Whoever sets ``OMP_NUM_THREADS`` keeps their choice; launched
runs (several processes per machine) and runs on GPUs are left alone.
"""
import os
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.logging import print_log


def available_cpus() -> int:
    """CPUs this process may run on."""
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def loader_workers(cfg: Config, loader: str = 'train_dataloader') -> int:
    """Worker processes of the data loader ``loader`` of ``cfg`` (0 when
    the config has none): the train loader for a training run, the test
    loader for a test run."""
    if loader not in LOADERS:
        raise ValueError(f'loader must be one of {LOADERS}, not {loader!r}')
    return int((cfg.get(loader) or {}).get('num_workers', 0))


def cpu_threads_for(cfg: Config, cpus: int, threads: int,
                    loader: str = 'train_dataloader') -> int:
    """Intra-op threads for ``cfg`` on ``cpus`` CPUs when torch would start
    ``threads``: the CPUs the workers of ``loader`` leave, at least 1, never
    more than ``threads``."""
    return max(1, min(threads, cpus - loader_workers(cfg, loader)))


def cap_cpu_threads(cfg: Config,
                    loader: str = 'train_dataloader') -> Optional[int]:
    """Cap torch's intra-op threads for a single-process CPU run of
    ``cfg`` whose steps are fed by ``loader``; the new count, or None when
    left alone (``OMP_NUM_THREADS`` set, a launched run, CUDA available, or
    no change)."""
    if ('OMP_NUM_THREADS' in os.environ
            or cfg.get('launcher', 'none') != 'none'
            or torch.cuda.is_available()):
        return None
    cpus, threads = available_cpus(), torch.get_num_threads()
    capped = cpu_threads_for(cfg, cpus, threads, loader)
    if capped == threads:
        return None
    torch.set_num_threads(capped)
    print_log(
        f'CPU run: {capped} torch thread(s) instead of {threads}, leaving '
        f'{loader_workers(cfg, loader)} data-loader worker(s) ({loader}) '
        f'CPUs of their own ({cpus} CPUs); set OMP_NUM_THREADS to choose',
        logger='current')
    return capped
