"""The demo configs (``configs/demo/``): they build, and each ResNet baseline
is trained exactly like its CAT model (same data, pipeline, neck and head,
optimizer, schedule), with a backbone of about the same size."""
import copy
import os.path as osp

import pytest
from config_testkit import CONFIG_DIR, no_weight_init
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

import mmcat  # noqa: F401  (registers CAT)

DEMO_DIR = osp.join(CONFIG_DIR, 'demo')
PAIRS = [(f'{method}_cat_demo.py', f'{method}_r18_demo.py')
         for method in ('fcos', 'mask-rcnn', 'sem-fpn')]


def _load(name: str) -> Config:
    return Config.fromfile(osp.join(DEMO_DIR, name))


def _backbone_params(cfg: Config) -> int:
    init_default_scope(cfg.default_scope)
    with no_weight_init():
        model = MODELS.build(cfg.model)
    return sum(p.numel() for p in model.backbone.parameters())


def _without_backbone(cfg: Config) -> dict:
    """The config as a dict, less what may differ: the backbone, the neck's
    input widths and the Python names that bases leave behind."""
    d = copy.deepcopy(cfg.to_dict())
    d['model'].pop('backbone')
    d['model']['neck'].pop('in_channels')
    return {k: v for k, v in d.items()
            if not k.startswith('r18_half') and k not in ('pretrained', )}


@pytest.mark.parametrize('cat_name,r18_name', PAIRS)
def test_baseline_is_trained_like_cat(cat_name: str, r18_name: str) -> None:
    cat, r18 = _load(cat_name), _load(r18_name)
    assert cat.model.backbone.type == 'CAT'
    assert r18.model.backbone.type == 'ResNet'
    assert _without_backbone(cat) == _without_backbone(r18)


@pytest.mark.parametrize('cat_name,r18_name', PAIRS)
def test_backbones_of_about_the_same_size(cat_name: str,
                                          r18_name: str) -> None:
    cat = _backbone_params(_load(cat_name))
    r18 = _backbone_params(_load(r18_name))
    assert 0.75 < cat / r18 < 1.33, (cat, r18)
