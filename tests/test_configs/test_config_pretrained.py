"""CAT-S detectors built from their configs load ImageNet weights in the CAT
authors' layout through ``init_cfg``: every backbone tensor is the file's
(converted), and only what an ImageNet file cannot hold is not."""
from typing import Dict, Tuple

import pytest
import torch
from config_testkit import load, register_scope
from mmengine.registry import MODELS, init_default_scope

import mmcat  # noqa: F401  (registers CAT)
from mmcat.models.layers.convs import conv_weight_to_slice_weight
from mmcat.models.utils import cat_converter
from mmcat.testing.cat_reference import ReferenceCAT

PLAIN = 'fcos_cat_s_1x_coco.py'
SLICE = 'ablation/fcos_cat_s-slice-embed_1x_coco.py'
DWSEP = 'ablation/fcos_cat_s-dwsep-embed_1x_coco.py'


@pytest.fixture(scope='module')
def in1k(tmp_path_factory) -> Tuple[str, Dict[str, torch.Tensor]]:
    """An ImageNet CAT-S file of the authors' code (random values) and its
    tensors in mmcat's layout."""
    ref = ReferenceCAT(classification=True).randomize_(21)
    path = str(tmp_path_factory.mktemp('in1k') / 'cat_small_in1k.pth')
    torch.save({'model': ref.state_dict(), 'epoch': 299,
                'max_accuracy': 81.8}, path)
    return path, cat_converter(ref.state_dict())


def _detector(name: str, checkpoint: str) -> torch.nn.Module:
    cfg = load(name)
    assert cfg.model.backbone.init_cfg.type == 'Pretrained'
    cfg.model.backbone.init_cfg.checkpoint = checkpoint
    register_scope('mmdet')
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.eval()


@pytest.mark.parametrize('name', [PLAIN, SLICE, DWSEP])
def test_backbone_holds_the_files_tensors(name: str, in1k) -> None:
    path, expected = in1k
    expected = dict(expected)
    if name == SLICE:
        weight = expected.pop('patch_embed.proj.weight')
        expected['patch_embed.proj.conv.weight'] = \
            conv_weight_to_slice_weight(weight)
        expected['patch_embed.proj.conv.bias'] = expected.pop(
            'patch_embed.proj.bias')
    if name == DWSEP:   # the file's 4x4 conv is left out, by the config
        del expected['patch_embed.proj.weight'], expected[
            'patch_embed.proj.bias']
    backbone = _detector(name, path).backbone
    own = backbone.state_dict()
    # An ImageNet file has one output norm, after the last stage: the
    # detector's norms of earlier stages are new, LayerNorm's identity.
    new_norms = {f'norm{i}.{p}' for i in backbone.out_indices
                 if i < backbone.num_stages - 1 for p in ('weight', 'bias')}
    fresh = {k for k in own if name == DWSEP and
             k.startswith('patch_embed.proj.')}
    assert set(own) == set(expected) - {'head.weight', 'head.bias'} | \
        new_norms | fresh
    for key, value in own.items():
        if key in new_norms:
            assert torch.equal(value, torch.ones_like(value) if key.endswith(
                'weight') else torch.zeros_like(value)), key
        elif key not in fresh:
            assert torch.equal(value, expected[key]), key
    assert fresh == ({'patch_embed.proj.depthwise.weight',
                      'patch_embed.proj.pointwise.weight',
                      'patch_embed.proj.pointwise.bias'}
                     if name == DWSEP else set())


def test_slice_ablation_computes_what_the_plain_config_does(in1k) -> None:
    path, _ = in1k
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        plain = _detector(PLAIN, path).backbone(x)
        sliced = _detector(SLICE, path).backbone(x)
    for a, b in zip(plain, sliced):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
