"""One CAT source, found and trained by MMDetection and MMSegmentation."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.registry import MODELS as ROOT_MODELS

import mmcat  # noqa: F401
from mmcat.models import CAT

MINI = dict(embed_dims=16, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8))


def test_registered_once_and_visible_everywhere():
    from mmdet.registry import MODELS as DET
    from mmseg.registry import MODELS as SEG
    assert ROOT_MODELS.get('CAT') is CAT
    assert DET.get('CAT') is CAT
    assert SEG.get('CAT') is CAT
    assert 'CAT' not in DET.module_dict and 'CAT' not in SEG.module_dict


def _train_step(model, data, optim) -> dict:
    from mmengine.optim import OptimWrapper
    wrapper = OptimWrapper(optim)
    losses = model.train_step(data, wrapper)
    assert all(torch.isfinite(v).all() for v in losses.values())
    return losses


def test_fcos_with_fpn_builds_runs_and_trains():
    from mmdet.registry import MODELS as DET
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    cfg = Config.fromfile('configs/fcos_cat_s_1x_coco.py')
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = DET.build(cfg.model)
    model.init_weights()
    assert isinstance(model.backbone, CAT)
    sample = DetDataSample(metainfo=dict(img_shape=(96, 128),
                                         pad_shape=(96, 128),
                                         ori_shape=(96, 128),
                                         scale_factor=(1., 1.)))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[10., 12., 60., 70.]]), labels=torch.tensor([3]))
    data = dict(inputs=[torch.randint(0, 255, (3, 96, 128),
                                      dtype=torch.uint8)],
                data_samples=[sample])
    before = model.backbone.stages[0].blocks[0].cpsa.attn.qkv.weight.clone()
    optim = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = _train_step(model, data, optim)
    assert {'loss_cls', 'loss_bbox', 'loss_centerness'} <= set(losses)
    after = model.backbone.stages[0].blocks[0].cpsa.attn.qkv.weight
    assert not torch.equal(before, after)          # the backbone trained
    model.eval()
    with torch.no_grad():
        results = model.test_step(data)
    assert results[0].pred_instances.bboxes.shape[1] == 4


def test_semantic_fpn_builds_runs_and_trains(tmp_path):
    from mmseg.registry import MODELS as SEG
    from mmseg.structures import SegDataSample
    from mmengine.structures import PixelData
    cfg_file = tmp_path / 'sem_fpn_cat.py'
    cfg_file.write_text(
        "_base_ = 'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py'\n")
    cfg = Config.fromfile(str(cfg_file))
    cfg.model.pretrained = None
    cfg.model.backbone = dict(type='CAT', arch=MINI, out_indices=(0, 1, 2, 3))
    cfg.model.neck.in_channels = [16, 32, 64, 128]
    cfg.model.decode_head.norm_cfg = dict(type='BN', requires_grad=True)
    cfg.model.data_preprocessor.size = (64, 64)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = SEG.build(cfg.model)
    model.init_weights()
    sample = SegDataSample(metainfo=dict(img_shape=(64, 64),
                                         pad_shape=(64, 64),
                                         ori_shape=(64, 64)))
    sample.gt_sem_seg = PixelData(
        data=torch.randint(0, 150, (1, 64, 64)))
    data = dict(inputs=[torch.randint(0, 255, (3, 64, 64),
                                      dtype=torch.uint8)] * 2,
                data_samples=[sample, sample])
    optim = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = _train_step(model, data, optim)
    assert 'decode.loss_ce' in losses
    model.eval()
    with torch.no_grad():
        results = model.test_step(data)
    assert results[0].pred_sem_seg.data.shape == (1, 64, 64)


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_build_from_plain_dict_under_each_scope(scope):
    with DefaultScope.overwrite_default_scope(scope):
        model = ROOT_MODELS.build(dict(type='CAT', arch='tiny'))
    assert isinstance(model, CAT)
