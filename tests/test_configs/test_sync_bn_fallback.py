"""The SyncBN -> BN fallback of :mod:`mmcat.engine.sync_bn`, with the
Semantic FPN configs (whose MMSegmentation bases use SyncBN)."""
from typing import Iterator

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
from config_testkit import load, no_weight_init
from mmengine.registry import MODELS, init_default_scope

from mmcat.engine.sync_bn import (maybe_revert_sync_bn,
                                  maybe_revert_sync_bn_cfg,
                                  sync_bn_supported)


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 1), nn.SyncBatchNorm(4), nn.ReLU())


def _has_sync_bn(model: nn.Module) -> bool:
    return any(isinstance(m, nn.SyncBatchNorm) for m in model.modules())


@pytest.fixture
def cpu_process_group() -> Iterator[None]:
    """A one-process gloo group, as a CPU run with a launcher has; removed
    afterwards so later Runners do not think they are distributed."""
    assert not dist.is_initialized()
    dist.init_process_group(
        'gloo', store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize('distributed, device, expected',
                         [(False, 'cpu', False), (True, 'cpu', False),
                          (False, 'cuda', False), (True, 'cuda', True)])
def test_sync_bn_supported(distributed: bool, device: str,
                           expected: bool) -> None:
    assert sync_bn_supported(distributed, device) is expected


def test_sync_bn_fails_in_a_cpu_group_and_the_fallback_trains(
        cpu_process_group: None) -> None:
    model = _net().train()
    x = torch.randn(2, 3, 5, 5)
    with pytest.raises(ValueError, match='GPU'):
        model(x)
    with pytest.raises(ValueError, match='GPU'):
        nn.parallel.DistributedDataParallel(model)

    weight = model[1].weight
    model = maybe_revert_sync_bn(model, distributed=True)
    assert not _has_sync_bn(model)
    assert isinstance(model[1], nn.modules.batchnorm._BatchNorm)
    assert model[1].weight is weight  # same parameters: optimizers still see
    ddp = nn.parallel.DistributedDataParallel(model)
    ddp(x).sum().backward()
    assert weight.grad is not None


def test_model_left_alone_where_sync_bn_works() -> None:
    model = _net()
    assert maybe_revert_sync_bn(model, True, device='cuda') is model
    assert _has_sync_bn(model)
    assert not _has_sync_bn(maybe_revert_sync_bn(_net(), False))


def test_a_lone_sync_bn_layer_is_replaced() -> None:
    layer = maybe_revert_sync_bn(nn.SyncBatchNorm(3), distributed=False)
    assert type(layer) is not nn.SyncBatchNorm
    assert isinstance(layer, nn.modules.batchnorm._BatchNorm)


@pytest.mark.parametrize('name, changed', [
    ('sem-fpn_r50_80k_ade20k-512x512.py', 2),  # backbone and decode head
    ('sem-fpn_cat_s_80k_ade20k-512x512.py', 1),  # decode head (CAT: LN)
])
def test_config_fallback(name: str, changed: int) -> None:
    cfg = load(name)
    assert maybe_revert_sync_bn_cfg(cfg.model, True, device='cuda') == 0
    assert cfg.model.decode_head.norm_cfg.type == 'SyncBN'

    assert maybe_revert_sync_bn_cfg(cfg.model, True, device='cpu') == changed
    assert cfg.model.decode_head.norm_cfg == dict(type='BN',
                                                  requires_grad=True)
    init_default_scope('mmseg')
    with no_weight_init():
        model = MODELS.build(cfg.model)
    assert not _has_sync_bn(model)
    assert maybe_revert_sync_bn_cfg(cfg.model, False) == 0  # nothing left


def test_config_fallback_knows_every_sync_bn_spelling() -> None:
    model_cfg = dict(
        a=dict(norm_cfg=dict(type='MMSyncBN')),
        b=[dict(type=nn.SyncBatchNorm, eps=1e-3)],
        c=dict(norm_cfg=dict(type='GN', num_groups=2)))
    assert maybe_revert_sync_bn_cfg(model_cfg, distributed=False) == 2
    assert model_cfg['a']['norm_cfg'] == dict(type='BN')
    assert model_cfg['b'][0] == dict(type='BN', eps=1e-3)
    assert model_cfg['c']['norm_cfg']['type'] == 'GN'
