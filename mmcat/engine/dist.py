"""Distributed training and testing on machines without CUDA.

mmengine 0.10.7 assumes a GPU as soon as a launcher is given: its
``init_dist`` calls ``torch.cuda.set_device`` for the pytorch, slurm and mpi
launchers, and ``Runner.wrap_model`` builds ``MMDistributedDataParallel`` with
``device_ids=[LOCAL_RANK]``, which DDP rejects for a module on the CPU.

:func:`setup_cpu_distributed` works around both from the outside, before the
``Runner`` is built: it starts the process group itself with the ``gloo``
backend (the Runner then finds ``torch.distributed`` initialised and skips
``init_dist``) and makes the DDP wrapper config carry ``device_ids=None``.
On a machine with CUDA, or with ``launcher='none'``, it does nothing.
"""
import datetime
import os
import subprocess
from typing import Dict, Optional

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict
from torch.nn.parallel import DistributedDataParallel

__all__ = [
    'MPI_LOCAL_RANK_VARS', 'cpu_dist_env', 'init_cpu_dist', 'mpi_local_rank',
    'setup_cpu_distributed'
]

_DEFAULT_PORT = '29500'  # torch.distributed's default master port

#: Where MPI launchers put a process's rank on its node, first found wins:
#: Open MPI, MVAPICH2, MPICH / Intel MPI, Cray PMI, and srun.
MPI_LOCAL_RANK_VARS = ('OMPI_COMM_WORLD_LOCAL_RANK',
                       'MV2_COMM_WORLD_LOCAL_RANK', 'MPI_LOCALRANKID',
                       'PMI_LOCAL_RANK', 'SLURM_LOCALID')


def mpi_local_rank(default: str = '0') -> str:
    """This process's rank on its node under an MPI launcher (see
    :data:`MPI_LOCAL_RANK_VARS`), or ``default`` when none is set.

    mmengine's MPI set-up selects the GPU from it but does not export
    ``LOCAL_RANK``, from which its ``Runner`` takes DDP's ``device_ids``.
    """
    for name in MPI_LOCAL_RANK_VARS:
        if name in os.environ:
            return os.environ[name]
    return default


def _slurm_master_addr(node_list: str) -> str:
    """The first host of a slurm node list, as ``scontrol`` expands it."""
    out = subprocess.run(['scontrol', 'show', 'hostnames', node_list],
                         capture_output=True,
                         text=True,
                         check=True).stdout.split()
    if not out:
        raise RuntimeError(f'scontrol expanded {node_list!r} to no host')
    return out[0]


def cpu_dist_env(launcher: str,
                 port: Optional[int] = None) -> Dict[str, str]:
    """The ``env://`` variables a launcher implies, as mmengine derives them.

    Args:
        launcher: 'pytorch' (torchrun already exports everything), 'slurm'
            (from ``SLURM_PROCID``/``SLURM_NTASKS``/``SLURM_LOCALID``/
            ``SLURM_NODELIST``) or 'mpi' (from ``OMPI_COMM_WORLD_*``, the
            local rank from :func:`mpi_local_rank`; the caller must export
            ``MASTER_ADDR``).
        port: master port for slurm; otherwise ``MASTER_PORT`` or 29500.

    Returns:
        The values of ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
        ``MASTER_ADDR`` and ``MASTER_PORT``.
    """
    env = os.environ
    if launcher == 'pytorch':
        out = {k: env[k] for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR')}
        out['LOCAL_RANK'] = env.get('LOCAL_RANK', '0')
        out['MASTER_PORT'] = env.get('MASTER_PORT', _DEFAULT_PORT)
    elif launcher == 'slurm':
        out = dict(
            RANK=env['SLURM_PROCID'],
            WORLD_SIZE=env['SLURM_NTASKS'],
            LOCAL_RANK=env.get('SLURM_LOCALID', '0'))
        out['MASTER_ADDR'] = env.get('MASTER_ADDR') or _slurm_master_addr(
            env['SLURM_NODELIST'])
        out['MASTER_PORT'] = (
            str(port) if port is not None else env.get(
                'MASTER_PORT', _DEFAULT_PORT))
    elif launcher == 'mpi':
        if 'MASTER_ADDR' not in env:
            raise KeyError('The environment variable MASTER_ADDR is not set')
        out = dict(
            RANK=env['OMPI_COMM_WORLD_RANK'],
            WORLD_SIZE=env['OMPI_COMM_WORLD_SIZE'],
            LOCAL_RANK=mpi_local_rank(),
            MASTER_ADDR=env['MASTER_ADDR'],
            MASTER_PORT=env.get('MASTER_PORT', _DEFAULT_PORT))
    else:
        raise ValueError(f'Invalid launcher type: {launcher!r}')
    return out


def init_cpu_dist(launcher: str,
                  backend: str = 'gloo',
                  port: Optional[int] = None,
                  timeout: Optional[float] = None) -> None:
    """Start ``torch.distributed`` without touching CUDA.

    The CPU counterpart of ``mmengine.dist.init_dist``: the launcher's
    variables are exported (other code, mmengine's included, reads
    ``LOCAL_RANK`` and friends) and the default group is created through
    ``env://``. Does nothing when a group already exists.

    Args:
        launcher: 'pytorch', 'slurm' or 'mpi'.
        backend: a CPU-capable backend, 'gloo' (or 'mpi').
        port: master port for slurm.
        timeout: collective timeout in seconds (``env_cfg.dist_cfg.timeout``;
            torch's default is 30 minutes). A rank that raises ends the job
            at once (torchrun stops the others); one that stops taking part
            without exiting ends it only when this timeout expires.
    """
    if torch_dist.is_initialized():
        return
    env = cpu_dist_env(launcher, port)
    os.environ.update(env)
    kwargs = {}
    if timeout is not None:
        kwargs['timeout'] = datetime.timedelta(seconds=timeout)
    torch_dist.init_process_group(
        backend=backend,
        init_method='env://',
        rank=int(env['RANK']),
        world_size=int(env['WORLD_SIZE']),
        **kwargs)


def _cpu_model_wrapper_cfg(cfg: Config) -> Optional[ConfigDict]:
    """``cfg.model_wrapper_cfg`` with ``device_ids=None`` for DDP wrappers.

    Without a wrapper config mmengine builds ``MMDistributedDataParallel``
    with ``broadcast_buffers=False`` and ``cfg.find_unused_parameters``; the
    returned config states the same, plus ``device_ids=None``. Wrappers
    that are not DDP subclasses are returned untouched.
    """
    from mmengine.registry import MODEL_WRAPPERS

    wrapper_cfg = cfg.get('model_wrapper_cfg', None)
    if wrapper_cfg is None:
        return ConfigDict(
            type='MMDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False),
            device_ids=None)
    wrapper_cfg = ConfigDict(wrapper_cfg)
    wrapper_cfg.setdefault('type', 'MMDistributedDataParallel')
    wrapper_type = wrapper_cfg['type']
    if isinstance(wrapper_type, str):
        wrapper_type = MODEL_WRAPPERS.get(wrapper_type)
    if isinstance(wrapper_type, type) and issubclass(
            wrapper_type, DistributedDataParallel):
        # mmengine only fills device_ids when the config lacks it.
        wrapper_cfg['device_ids'] = None
        wrapper_cfg.pop('output_device', None)
    return wrapper_cfg


def setup_cpu_distributed(cfg: Config) -> bool:
    """Prepare a launched (non-'none') run for a machine without CUDA.

    Reads ``cfg.launcher`` and ``cfg.env_cfg.dist_cfg``; on a CPU-only
    machine sets the backend to ``gloo`` (unless the config asks for
    ``mpi``), initialises the process group and rewrites
    ``cfg.model_wrapper_cfg`` so DDP gets ``device_ids=None``.

    Args:
        cfg: the full config (a ``Config`` or dict), after command-line
            overrides.

    Returns:
        Whether anything was changed (False with CUDA or without launcher).
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return False
    env_cfg = cfg.setdefault('env_cfg', ConfigDict())
    dist_cfg = env_cfg.setdefault('dist_cfg', ConfigDict())
    if dist_cfg.get('backend') not in ('gloo', 'mpi'):
        dist_cfg['backend'] = 'gloo'
    init_cpu_dist(
        launcher,
        backend=dist_cfg['backend'],
        port=dist_cfg.get('port'),
        timeout=dist_cfg.get('timeout'))
    cfg['model_wrapper_cfg'] = _cpu_model_wrapper_cfg(cfg)
    return True
