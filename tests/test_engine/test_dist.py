"""CPU-only distributed set-up: launcher environments and the DDP config."""
import os
import stat

import pytest
import torch
from mmengine.config import Config

from mmcat.engine.dist import (_cpu_model_wrapper_cfg, cpu_dist_env,
                               setup_cpu_distributed)


def _environ(monkeypatch, unset=(), **values: str) -> None:
    """Set ``values`` and remove ``unset`` in ``os.environ`` for one test."""
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    for key in unset:
        monkeypatch.delenv(key, raising=False)


def test_pytorch_env(monkeypatch):
    _environ(monkeypatch, RANK='3', WORLD_SIZE='4', LOCAL_RANK='1',
             MASTER_ADDR='10.0.0.1', unset=['MASTER_PORT'])
    assert cpu_dist_env('pytorch') == dict(
        RANK='3',
        WORLD_SIZE='4',
        LOCAL_RANK='1',
        MASTER_ADDR='10.0.0.1',
        MASTER_PORT='29500')


def test_slurm_env(monkeypatch, tmp_path):
    # a fake scontrol that expands the node list like slurm does
    scontrol = tmp_path / 'scontrol'
    scontrol.write_text('#!/bin/sh\necho node-7\necho node-8\n')
    scontrol.chmod(scontrol.stat().st_mode | stat.S_IEXEC)
    _environ(monkeypatch, PATH=f'{tmp_path}{os.pathsep}{os.environ["PATH"]}',
             SLURM_PROCID='5', SLURM_NTASKS='8', SLURM_LOCALID='1',
             SLURM_NODELIST='node-[7-8]', unset=['MASTER_ADDR', 'MASTER_PORT'])
    assert cpu_dist_env('slurm', port=12345) == dict(
        RANK='5',
        WORLD_SIZE='8',
        LOCAL_RANK='1',
        MASTER_ADDR='node-7',
        MASTER_PORT='12345')
    monkeypatch.setenv('MASTER_ADDR', 'given')
    assert cpu_dist_env('slurm')['MASTER_ADDR'] == 'given'
    assert cpu_dist_env('slurm')['MASTER_PORT'] == '29500'


def test_mpi_env(monkeypatch):
    _environ(monkeypatch, OMPI_COMM_WORLD_RANK='2', OMPI_COMM_WORLD_SIZE='3',
             OMPI_COMM_WORLD_LOCAL_RANK='0', unset=['MASTER_ADDR'])
    with pytest.raises(KeyError, match='MASTER_ADDR'):
        cpu_dist_env('mpi')
    _environ(monkeypatch, MASTER_ADDR='head', MASTER_PORT='2222')
    assert cpu_dist_env('mpi') == dict(
        RANK='2',
        WORLD_SIZE='3',
        LOCAL_RANK='0',
        MASTER_ADDR='head',
        MASTER_PORT='2222')
    with pytest.raises(ValueError, match='launcher'):
        cpu_dist_env('none')


def test_wrapper_cfg_default_mirrors_mmengine():
    cfg = Config(dict(find_unused_parameters=True))
    wrapper = _cpu_model_wrapper_cfg(cfg)
    assert wrapper == dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=True,
        device_ids=None)


def test_wrapper_cfg_keeps_user_settings():
    cfg = Config(
        dict(
            model_wrapper_cfg=dict(
                type='MMDistributedDataParallel',
                device_ids=[0],
                output_device=0,
                broadcast_buffers=True)))
    wrapper = _cpu_model_wrapper_cfg(cfg)
    assert wrapper['device_ids'] is None
    assert 'output_device' not in wrapper
    assert wrapper['broadcast_buffers'] is True
    # DDP subclasses pass device_ids on to the DDPs they build
    cfg = Config(
        dict(model_wrapper_cfg=dict(type='MMSeparateDistributedDataParallel')))
    assert _cpu_model_wrapper_cfg(cfg)['device_ids'] is None
    # a wrapper that is no DDP is not touched
    cfg = Config(dict(model_wrapper_cfg=dict(type='DataParallel')))
    assert 'device_ids' not in _cpu_model_wrapper_cfg(cfg)


def test_setup_is_noop_without_launcher():
    cfg = Config(
        dict(launcher='none', env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    assert setup_cpu_distributed(cfg) is False
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'
    assert 'model_wrapper_cfg' not in cfg


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only behaviour')
def test_setup_single_process_gloo(monkeypatch):
    """A world of one: gloo group up, config rewritten, DDP builds on CPU."""
    import torch.distributed as torch_dist
    from mmengine.registry import MODEL_WRAPPERS

    if torch_dist.is_initialized():
        pytest.skip('a process group already exists in this process')
    _environ(monkeypatch, RANK='0', WORLD_SIZE='1', LOCAL_RANK='0',
             MASTER_ADDR='127.0.0.1', MASTER_PORT=str(_free_port()))
    cfg = Config(
        dict(launcher='pytorch', env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    try:
        assert setup_cpu_distributed(cfg) is True
        assert torch_dist.get_backend() == 'gloo'
        assert cfg.env_cfg.dist_cfg.backend == 'gloo'
        model = torch.nn.Linear(2, 2)
        # mmengine passes device_ids=[LOCAL_RANK]; the config's None wins
        ddp = MODEL_WRAPPERS.build(
            cfg.model_wrapper_cfg,
            default_args=dict(module=model, device_ids=[0]))
        assert ddp.device_ids is None
    finally:
        torch_dist.destroy_process_group()


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
