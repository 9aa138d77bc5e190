"""Every config loads, builds, has the paper's parameter count and recipe,
and has ResNet baselines that are the model zoo's models and differ from it
only in backbone and optimizer; each ablation config changes one backbone
option of CAT-S FCOS.
"""
import os.path as osp
from typing import Dict

import pytest
from config_testkit import (CONFIG_DIR, NAME_RE, PAPER_PARAMS_M,
                            baseline_names, config_names, load, load_mm,
                            mm_base, no_weight_init, parse_name)
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

import mmcat  # noqa: F401  (registers CAT)

ALL = config_names()
CAT = [n for n in ALL if '_cat_' in n]
RESNET = [n for n in ALL if '_cat_' not in n]

#: The configs of the paper's tables and their ResNet baselines.
EXPECTED = {
    f'{method}_{backbone}_{schedule}_coco.py'
    for method, schedules, backbones in [
        ('fcos', ['1x'], ['cat_t', 'cat_s', 'cat_b', 'r50', 'r101']),
        ('retinanet', ['1x'], ['cat_t', 'cat_s', 'cat_b', 'r50', 'r101']),
        ('atss', ['1x'], ['cat_s', 'cat_b', 'r50', 'r101']),
        ('mask-rcnn', ['1x', 'ms-1x'], ['cat_s', 'cat_b', 'r50', 'r101']),
        ('cascade-rcnn', ['1x', 'ms-1x'], ['cat_s', 'cat_b', 'r50', 'r101']),
    ] for schedule in schedules for backbone in backbones
} | {'mask-rcnn_cat_t_1x_coco.py'} | {
    f'sem-fpn_{backbone}_{schedule}_ade20k-512x512.py'
    for schedule in ('80k', '160k')
    for backbone in ('cat_s', 'cat_b', 'r50', 'r101')
}

#: The model-zoo config of each ResNet baseline's model: MMDetection's /
#: MMSegmentation's own R-50 and R-101 configs of the method. (MMSegmentation
#: 1.x's R-101 file assigns ``model`` twice, the second time without
#: ``depth=101``, so it builds an R-50; the zoo's R-101 checkpoint has depth
#: 101, which the comparison sets.)
ZOO_CONFIGS = {
    'fcos': ('fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
             'fcos/fcos_r101-caffe_fpn_gn-head-1x_coco.py'),
    'retinanet': ('retinanet/retinanet_r50_fpn_1x_coco.py',
                  'retinanet/retinanet_r101_fpn_1x_coco.py'),
    'atss': ('atss/atss_r50_fpn_1x_coco.py', 'atss/atss_r101_fpn_1x_coco.py'),
    'mask-rcnn': ('mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
                  'mask_rcnn/mask-rcnn_r101_fpn_1x_coco.py'),
    'cascade-rcnn': ('cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py',
                     'cascade_rcnn/cascade-rcnn_r101_fpn_1x_coco.py'),
    'sem-fpn': ('sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py',
                'sem_fpn/fpn_r101_4xb4-160k_ade20k-512x512.py'),
}

#: The baselines' sizes in millions, as configs/README.md states them.
BASELINE_PARAMS_M = {
    'fcos': (32.3, 51.3), 'atss': (32.3, 51.3), 'retinanet': (38.0, 57.0),
    'mask-rcnn': (44.4, 63.4), 'cascade-rcnn': (69.4, 88.4),
    'sem-fpn': (28.5, 47.5),
}

_counts: Dict[str, int] = {}


def _count(cfg: Config) -> int:
    init_default_scope(cfg.default_scope)
    with no_weight_init():
        model = MODELS.build(cfg.model)
    return sum(p.numel() for p in model.parameters())


def num_params(name: str) -> int:
    """Parameters of the model ``name`` builds (built once per session)."""
    if name not in _counts:
        _counts[name] = _count(load(name))
    return _counts[name]


def zoo_params(method: str, depth: int) -> int:
    """Parameters of the model-zoo model of ``method`` with an R-``depth``."""
    key = f'zoo:{method}:{depth}'
    if key not in _counts:
        scope = 'mmseg' if method == 'sem-fpn' else 'mmdet'
        cfg = load_mm(f'{scope}::{ZOO_CONFIGS[method][depth == 101]}')
        cfg.model.backbone.depth = depth
        _counts[key] = _count(cfg)
    return _counts[key]


def test_the_expected_configs_exist_and_nothing_else() -> None:
    assert set(ALL) == EXPECTED


@pytest.mark.parametrize('name', ALL)
def test_name_follows_the_scheme(name: str) -> None:
    assert NAME_RE.match(name), name
    fields = parse_name(name)
    cfg = load(name)
    assert cfg.default_scope == ('mmseg' if fields['method'] == 'sem-fpn'
                                 else 'mmdet')


@pytest.mark.parametrize('name', CAT)
def test_cat_config_has_both_baselines(name: str) -> None:
    for base in baseline_names(name):
        assert osp.isfile(osp.join(CONFIG_DIR, base)), base


@pytest.mark.parametrize('name', ALL)
def test_builds_with_the_papers_parameter_count(name: str) -> None:
    count = num_params(name)
    fields = parse_name(name)
    paper = PAPER_PARAMS_M[fields['method']].get(fields['backbone'])
    if paper is not None:
        # The paper rounds to 1M; the largest difference is 0.465M.
        assert abs(count / 1e6 - paper) < 0.5, (name, count, paper)
    elif fields['backbone'] == 'cat_t':
        # Not in the paper: smaller than CAT-S with the same detector.
        assert count < num_params(name.replace('cat_t', 'cat_s'))
    else:
        depth = int(fields['backbone'][1:])
        stated = BASELINE_PARAMS_M[fields['method']][depth == 101]
        assert abs(count / 1e6 - stated) < 0.5, (name, count, stated)
        assert count == zoo_params(fields['method'], depth), name


# ----------------------------------------------------------- CAT configs
@pytest.mark.parametrize('name', CAT)
def test_cat_backbone_and_weights(name: str) -> None:
    cfg = load(name)
    size = {'t': 'tiny', 's': 'small', 'b': 'base'}[
        parse_name(name)['backbone'][-1]]
    assert cfg.custom_imports == dict(
        imports=['mmcat'], allow_failed_imports=False)
    backbone = cfg.model.backbone
    assert backbone.type == 'CAT' and backbone.arch == size
    assert backbone.drop_path_rate == 0.2
    assert cfg.pretrained == f'checkpoints/cat_{size}_in1k.pth'
    assert backbone.init_cfg == dict(
        type='Pretrained', checkpoint=cfg.pretrained)
    widths = [64 * 2**i for i in range(4)] if size == 'tiny' else \
        [96 * 2**i for i in range(4)]
    assert cfg.model.neck.in_channels == [
        widths[i] for i in backbone.out_indices]
    # every stage output the backbone makes goes into the FPN
    assert _fpn_stages(cfg) == tuple(backbone.out_indices)
    if cfg.default_scope == 'mmseg':
        assert cfg.model.get('pretrained') is None
    # RGB, ImageNet statistics: how CAT was pretrained.
    pre = cfg.model.data_preprocessor
    assert pre.bgr_to_rgb is True
    assert list(pre.mean) == [123.675, 116.28, 103.53]
    assert list(pre.std) == [58.395, 57.12, 57.375]


@pytest.mark.parametrize('name', CAT)
def test_cat_optimizer_is_the_papers(name: str) -> None:
    cfg = load(name)
    seg = cfg.default_scope == 'mmseg'
    wrapper = cfg.optim_wrapper
    assert wrapper.type == 'OptimWrapper' and 'clip_grad' not in wrapper
    assert wrapper.optimizer == dict(
        type='AdamW', lr=6e-5 if seg else 1e-4, betas=(0.9, 0.999),
        weight_decay=0.05)
    assert wrapper.paramwise_cfg == dict(custom_keys={
        key: dict(decay_mult=0.)
        for key in ('absolute_pos_embed', 'relative_position_bias_table',
                    'norm')
    })


def _check_det_schedule(cfg: Config, name: str) -> None:
    assert cfg.train_cfg.max_epochs == 12
    steps = [s for s in cfg.param_scheduler if s.type == 'MultiStepLR']
    assert len(steps) == 1 and steps[0].milestones == [8, 11]
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.auto_scale_lr.base_batch_size == 16
    resize = cfg.train_dataloader.dataset.pipeline[2]
    if 'ms-1x' in name:
        assert resize.type == 'RandomChoiceResize' and resize.keep_ratio
        assert resize.scales == [(1333, s) for s in range(480, 801, 32)]
    else:
        assert resize == dict(type='Resize', scale=(1333, 800),
                              keep_ratio=True)


def _check_seg_schedule(cfg: Config, name: str) -> None:
    iters = 80000 if '_80k_' in name else 160000
    assert cfg.train_cfg.max_iters == iters
    assert cfg.train_cfg.val_interval == iters // 10
    assert cfg.default_hooks.checkpoint.interval == iters // 10
    warmup, poly = cfg.param_scheduler
    assert warmup.type == 'LinearLR' and (warmup.begin, warmup.end) == (0,
                                                                        1500)
    assert poly.type == 'PolyLR' and (poly.begin, poly.end) == (1500, iters)
    assert poly.eta_min == 0.0
    assert cfg.train_dataloader.batch_size == 4  # x 4 GPUs = 16
    assert cfg.auto_scale_lr.base_batch_size == 16
    assert cfg.crop_size == (512, 512)
    assert cfg.model.decode_head.num_classes == 150


@pytest.mark.parametrize('name', ALL)
def test_schedule_and_data(name: str) -> None:
    cfg = load(name)
    if cfg.default_scope == 'mmseg':
        _check_seg_schedule(cfg, name)
        assert cfg.train_dataloader.dataset.data_root == \
            'data/ade/ADEChallengeData2016'
    else:
        _check_det_schedule(cfg, name)
        assert cfg.train_dataloader.dataset.data_root == 'data/coco/'


@pytest.mark.parametrize('name', [n for n in CAT if '_cat_b_' in n])
def test_cat_b_is_cat_s_with_another_arch(name: str) -> None:
    big, small = load(name), load(name.replace('_cat_b_', '_cat_s_'))
    assert big.model.backbone.pop('arch') == 'base'
    assert small.model.backbone.pop('arch') == 'small'
    assert big.model.backbone.pop('init_cfg').checkpoint == \
        'checkpoints/cat_base_in1k.pth'
    small.model.backbone.pop('init_cfg')
    big.pop('pretrained'), small.pop('pretrained')
    assert big.to_dict() == small.to_dict()


# ------------------------------------------------------- ResNet baselines
@pytest.mark.parametrize('name', RESNET)
def test_resnet_baseline_keeps_its_model_zoo_optimizer(name: str) -> None:
    """The rule of every ResNet baseline: the optimizer of its MMDetection /
    MMSegmentation model-zoo config (SGD), not CAT's AdamW."""
    cfg = load(name)
    assert cfg.optim_wrapper.optimizer.type == 'SGD'
    assert 'custom_imports' not in cfg
    depth = 101 if '_r101_' in name else 50
    assert cfg.model.backbone.depth == depth
    assert cfg.model.backbone.type in ('ResNet', 'ResNetV1c')


def _heads(cfg: Config) -> dict:
    model = cfg.model
    return {
        key: model[key]
        for key in ('bbox_head', 'rpn_head', 'roi_head', 'decode_head',
                    'auxiliary_head', 'train_cfg', 'test_cfg', 'type')
        if key in model
    }


def _fpn_stages(cfg: Config) -> tuple:
    """The backbone stages whose outputs the FPN uses."""
    neck = cfg.model.neck
    stages = tuple(cfg.model.backbone.get('out_indices', (0, 1, 2, 3)))
    end = neck.get('end_level', -1)
    return stages[neck.get('start_level', 0):None if end == -1 else end]


def _neck(cfg: Config) -> dict:
    """The FPN but for which backbone outputs feed it (in_channels and
    start_level: CAT may return only the stages the FPN uses)."""
    neck = cfg.model.neck.to_dict()
    neck.pop('in_channels')
    neck.pop('start_level', None)
    return neck


def _pipelines(cfg: Config) -> dict:
    return {
        loader: cfg[loader].dataset.pipeline
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader')
    }


@pytest.mark.parametrize('name', CAT)
def test_baselines_share_everything_but_backbone_and_optimizer(
        name: str) -> None:
    cat = load(name)
    for base_name in baseline_names(name):
        base = load(base_name)
        assert _pipelines(base) == _pipelines(cat), base_name
        assert base.train_cfg == cat.train_cfg, base_name
        assert base.val_cfg == cat.val_cfg and base.test_cfg == cat.test_cfg
        assert base.param_scheduler == cat.param_scheduler, base_name
        assert base.train_dataloader.batch_size == \
            cat.train_dataloader.batch_size
        assert base.train_dataloader.sampler == cat.train_dataloader.sampler
        assert base.auto_scale_lr == cat.auto_scale_lr
        assert _neck(base) == _neck(cat), base_name
        assert _fpn_stages(base) == _fpn_stages(cat), base_name
        assert _heads(base) == _heads(cat), base_name
        assert base.test_evaluator == cat.test_evaluator


# ------------------------------------------------------------------ README
def test_readme_table_lists_every_config() -> None:
    with open(osp.join(CONFIG_DIR, 'README.md'), encoding='utf-8') as f:
        text = f.read()
    for name in ALL:
        assert name in text, name


# -------------------------------------------------------------- ablations
def _embed_conv_weights(c: int) -> int:
    return 3 * 16 * c + c                  # 4x4 conv of 3 channels, bias


#: What each ablation config changes in CAT-S FCOS's backbone, and by how
#: many parameters (C = 96: the embedding's width; the projections reduce
#: 4C -> 2C at C = 96, 192, 384 without bias).
ABLATIONS = {
    'ablation/fcos_cat_s-slice-embed_1x_coco.py':
        (dict(embed_conv_cfg=dict(type='SliceConv2d')), 0),
    'ablation/fcos_cat_s-dwsep-embed_1x_coco.py':
        (dict(embed_conv_cfg=dict(type='DepthwiseSeparableConv2d'),
              fresh_embed_conv=True),
         (3 * 16 + 3 * 96 + 96) - _embed_conv_weights(96)),
    'ablation/fcos_cat_s-multihead-cpsa_1x_coco.py':
        (dict(cpsa_num_heads=7), 0),
    'ablation/fcos_cat_s-shuffled-proj_1x_coco.py':
        (dict(projection_conv_cfg=dict(type='ShuffledGroupedConv2d',
                                       groups=4)),
         # grouped 4C -> 2C and pointwise 2C -> 2C in 4 groups, for 4C*2C
         sum(4 * c * 2 * c // 4 + 2 * c * 2 * c // 4 - 4 * c * 2 * c
             for c in (96, 192, 384))),
}


def test_every_ablation_config_is_listed() -> None:
    assert config_names('ablation') == sorted(ABLATIONS)


@pytest.mark.parametrize('name', sorted(ABLATIONS))
def test_ablation_changes_one_backbone_option(name: str) -> None:
    options, extra_params = ABLATIONS[name]
    base_name = 'fcos_cat_s_1x_coco.py'
    cfg, base = load(name), load(base_name)
    backbone, base_backbone = cfg.model.pop('backbone'), \
        base.model.pop('backbone')
    assert cfg.to_dict() == base.to_dict()
    changed = {k: v for k, v in backbone.items()
               if base_backbone.get(k) != v}
    assert changed == options
    assert set(base_backbone) <= set(backbone)
    assert num_params(name) - num_params(base_name) == extra_params
