"""What the config tests share: the list of configs with the paper's
numbers, tiny COCO / ADE20K samples in the real formats, and the
``--cfg-options``-style overrides that point a config at them.

The samples come from :mod:`mmcat.datasets.synthetic`; only the COCO
categories are rewritten to the real 80 (ids 1..90 with COCO's gaps) because
MMDetection's ``CocoDataset`` and ``CocoMetric`` look classes up by COCO's
names: the synthetic classes 1..6 become person, bicycle, car, motorcycle,
airplane and bus, which are COCO's ids 1..6.
"""
import contextlib
import copy
import functools
import glob
import json
import os.path as osp
import re
from typing import Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config

HERE = osp.dirname(osp.abspath(__file__))
REPO_ROOT = osp.dirname(osp.dirname(HERE))
CONFIG_DIR = osp.join(REPO_ROOT, 'configs')

#: ``{method}_{backbone}_{schedule}_{dataset}.py``; methods use '-' inside.
NAME_RE = re.compile(
    r'^(?P<method>fcos|retinanet|atss|mask-rcnn|cascade-rcnn|sem-fpn)_'
    r'(?P<backbone>cat_[tsb]|r50|r101)_'
    r'(?P<schedule>1x|ms-1x|80k|160k)_'
    r'(?P<dataset>coco|ade20k-512x512)\.py$')

#: Parameters (millions) of the paper's results table, by
#: method and CAT size; CAT-T is not in the paper.
PAPER_PARAMS_M = {
    'fcos': {'cat_s': 45, 'cat_b': 59},
    'atss': {'cat_s': 45, 'cat_b': 59},
    'retinanet': {'cat_s': 47, 'cat_b': 62},
    'mask-rcnn': {'cat_s': 57, 'cat_b': 71},
    'cascade-rcnn': {'cat_s': 82, 'cat_b': 96},
    'sem-fpn': {'cat_s': 41, 'cat_b': 55},
}

#: COCO 2017's 80 category ids, in the order of ``CocoDataset``'s classes.
COCO_CAT_IDS = (list(range(1, 12)) + list(range(13, 26)) + [27, 28] +
                list(range(31, 45)) + list(range(46, 66)) + [67, 70] +
                list(range(72, 83)) + list(range(84, 91)))


def config_names(folder: str = '') -> List[str]:
    """Every config file of ``configs/`` (not ``_base_``), sorted; with
    ``folder`` (``'ablation'``, ``'demo'``), those of that sub-folder as
    paths relative to ``configs/``."""
    return sorted(
        osp.relpath(p, CONFIG_DIR)
        for p in glob.glob(osp.join(CONFIG_DIR, folder, '*.py')))


#: Configs that train and test for one iteration through mmengine's Runner
#: (test_config_run.py): the CAT-S config of every method (1x; 80k for
#: Semantic FPN) and the Semantic FPN R-50 baseline (SyncBN to revert).
#: Every other config trains one step without a Runner
#: (test_config_train_step.py).
RUNNER_CONFIGS = [
    'atss_cat_s_1x_coco.py', 'cascade-rcnn_cat_s_1x_coco.py',
    'fcos_cat_s_1x_coco.py', 'mask-rcnn_cat_s_1x_coco.py',
    'retinanet_cat_s_1x_coco.py', 'sem-fpn_cat_s_80k_ade20k-512x512.py',
    'sem-fpn_r50_80k_ade20k-512x512.py'
]


def mm_base(name: str) -> str:
    """The MMDetection / MMSegmentation config (``mmdet::...``) that the
    config ``name`` builds on, through its local bases."""
    def find(path: str) -> Optional[str]:
        for base in Config._get_base_files(path):
            if '::' in base:
                return base
            found = find(osp.normpath(osp.join(osp.dirname(path), base)))
            if found:
                return found
        return None

    base = find(osp.join(CONFIG_DIR, name))
    if base is None:
        raise ValueError(f'{name} builds on no MMDetection / MMSegmentation '
                         'config')
    return base


@functools.lru_cache(maxsize=None)
def _load_mm_cached(base: str) -> Config:
    return Config.fromstring(f'_base_ = {base!r}\n', '.py')


def load_mm(base: str) -> Config:
    """A private copy of the MMDetection / MMSegmentation config ``base``
    (``'mmdet::fcos/....py'``)."""
    return copy.deepcopy(_load_mm_cached(base))


def parse_name(name: str) -> Dict[str, str]:
    """The fields of a config name (see :data:`NAME_RE`)."""
    match = NAME_RE.match(name)
    if match is None:
        raise ValueError(f'{name} does not follow '
                         '{method}_{backbone}_{schedule}_{dataset}.py')
    return match.groupdict()


def baseline_names(name: str) -> Tuple[str, ...]:
    """The ResNet baselines of a CAT config: R-50 for CAT-T/S, R-101 for
    CAT-B, and both listed for the README (R-50 first)."""
    backbone = parse_name(name)['backbone']
    return tuple(
        name.replace(backbone, depth, 1) for depth in ('r50', 'r101'))


@functools.lru_cache(maxsize=None)
def _load_cached(name: str) -> Config:
    return Config.fromfile(osp.join(CONFIG_DIR, name))


def load(name: str) -> Config:
    """``Config.fromfile`` of ``configs/<name>``: a private copy of a config
    parsed once per session (parsing the bases takes most of a second)."""
    return copy.deepcopy(_load_cached(name))


@contextlib.contextmanager
def no_weight_init() -> Iterator[None]:
    """Skip the random initialisation of Linear/Conv/Norm layers while
    building: parameter counts and shapes do not depend on the values, and
    the large box heads of the R-CNNs take seconds to initialise."""
    classes = [
        nn.Linear, nn.modules.conv._ConvNd, nn.modules.batchnorm._NormBase,
        nn.LayerNorm, nn.GroupNorm
    ]
    saved = [(c, c.__dict__.get('reset_parameters')) for c in classes]
    try:
        for cls, _ in saved:
            cls.reset_parameters = lambda self: None
        yield
    finally:
        for cls, method in saved:
            if method is None:
                del cls.reset_parameters
            else:
                cls.reset_parameters = method


# ------------------------------------------------------------------ data
def write_coco_sample(out_dir: str, num_train: int = 2, num_val: int = 1,
                      height: int = 96, width: int = 128) -> str:
    """A COCO 2017 layout (``annotations/instances_{train,val}2017.json``,
    ``train2017/``, ``val2017/``) with real COCO categories; returns its
    root, the counterpart of ``data/coco/``."""
    from mmdet.datasets import CocoDataset

    from mmcat.datasets.synthetic import SceneConfig, write_coco
    summary = write_coco(
        out_dir, seed=0, num_train=num_train, num_val=num_val,
        cfg=SceneConfig(height=height, width=width, max_objects=3))
    names = CocoDataset.METAINFO['classes']
    categories = [dict(id=i, name=n, supercategory='')
                  for i, n in zip(COCO_CAT_IDS, names)]
    for split in ('train', 'val'):
        path = summary[split]['ann_file']
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
        assert {a['category_id'] for a in data['annotations']} <= set(
            COCO_CAT_IDS[:6])
        data['categories'] = categories
        with open(path, 'w', encoding='utf-8') as f:
            json.dump(data, f)
    return summary['root'] + '/'


def write_demo_coco_sample(out_dir: str, num_train: int = 2,
                           num_val: int = 1) -> str:
    """The generated COCO layout as the demo configs read it (their own
    classes); returns its root, the counterpart of ``data/coco_demo/``."""
    from mmcat.datasets.synthetic import SceneConfig, write_coco
    summary = write_coco(
        out_dir, seed=0, num_train=num_train, num_val=num_val,
        cfg=SceneConfig(height=96, width=128, max_objects=3))
    return summary['root'] + '/'


def write_ade_sample(out_dir: str, num_train: int = 4, num_val: int = 1,
                     size: int = 64) -> str:
    """An ``ADEChallengeData2016`` layout (``images/`` and 8-bit label PNGs
    in ``annotations/``, 0 = other); returns its root."""
    from mmcat.datasets.synthetic import SceneConfig, write_ade
    summary = write_ade(
        out_dir, seed=0, num_train=num_train, num_val=num_val,
        cfg=SceneConfig(height=size, width=size, max_objects=3))
    return summary['root']


# ------------------------------------------------------------- overrides
def _pipeline_options(prefix: str, pipeline: List[dict],
                      scale: Tuple[int, int]) -> Dict[str, object]:
    """Dotted-key options that shrink every resize step of a pipeline."""
    opts: Dict[str, object] = {}
    w, h = scale
    for i, step in enumerate(pipeline):
        kind = step['type']
        if kind == 'Resize' and 'scale' in step:
            opts[f'{prefix}.{i}.scale'] = scale
        elif kind == 'RandomChoiceResize':
            opts[f'{prefix}.{i}.scales'] = [(w, h - 16), (w, h)]
        elif kind == 'RandomResize':
            opts[f'{prefix}.{i}.scale'] = scale
        elif kind == 'RandomCrop':
            opts[f'{prefix}.{i}.crop_size'] = (h, h)
    return opts


#: RPN proposals per sample image (train and test) of the two-stage
#: detectors.
SAMPLE_PROPOSALS = 100


def sample_options(cfg: Config, data_root: str, work_dir: str
                   ) -> Dict[str, object]:
    """The ``--cfg-options`` that run ``cfg`` for one training iteration and
    one test iteration on a sample from :func:`write_coco_sample` or
    :func:`write_ade_sample`, on the CPU, without pretrained weights.

    Only data, image sizes, loop lengths, workers, the pretrained weights and
    the two-stage detectors' proposal counts change (to
    :data:`SAMPLE_PROPOSALS` per image: a 128x96 image has a few thousand
    anchors, and COCO's 1000-2000 proposals through a 12.8M-weight box head
    would make the R-CNNs' step many times the others'); the model is the
    config's.
    """
    seg = cfg.default_scope == 'mmseg'
    scale = (256, 64) if seg else (128, 96)
    opts: Dict[str, object] = {
        'work_dir': work_dir,
        'model.backbone.init_cfg': None,
        'default_hooks.checkpoint': None,
        'val_dataloader': None,
        'val_cfg': None,
        'val_evaluator': None,
    }
    if seg:
        opts.update({
            'model.pretrained': None,
            'model.data_preprocessor.size': (64, 64),
            'train_cfg.max_iters': 1,
        })
    else:
        opts['train_cfg.max_epochs'] = 1
        opts['test_evaluator.ann_file'] = osp.join(
            data_root, 'annotations/instances_val2017.json')
    for stage in ('train_cfg.rpn_proposal', 'test_cfg.rpn'):
        part, key = stage.split('.')
        if key in (cfg.model.get(part) or {}):
            opts[f'model.{stage}.max_per_img'] = SAMPLE_PROPOSALS
    for loader in ('train_dataloader', 'test_dataloader'):
        opts.update({
            f'{loader}.dataset.data_root': data_root,
            f'{loader}.num_workers': 0,
            f'{loader}.persistent_workers': False,
        })
        opts.update(
            _pipeline_options(f'{loader}.dataset.pipeline',
                              cfg[loader].dataset.pipeline, scale))
    return opts


def all_boxes_options(cfg: Config) -> Dict[str, object]:
    """Score thresholds of 0 in a detector's test: after one iteration from
    random weights every class score is below the configs' 0.05, and without
    a box ``CocoMetric`` returns no metric at all."""
    test_cfg = cfg.model.get('test_cfg') or {}
    if 'rcnn' in test_cfg:
        return {'model.test_cfg.rcnn.score_thr': 0.}
    if 'score_thr' in test_cfg:
        return {'model.test_cfg.score_thr': 0.}
    return {}


def apply_options(cfg: Config, opts: Dict[str, object]) -> Config:
    """Merge options the way ``--cfg-options`` does."""
    cfg.merge_from_dict(opts)
    return cfg


def scope_of(cfg: Config) -> Optional[str]:
    """The config's default scope (``mmdet`` or ``mmseg``)."""
    return cfg.get('default_scope', None)


def register_scope(scope: str) -> None:
    """Register MMDetection's or MMSegmentation's modules."""
    if scope == 'mmseg':
        from mmseg.utils import register_all_modules
    else:
        from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)


def train_one_step(cfg: Config
                   ) -> Tuple[Dict[str, float], Dict[str, Tuple[int, int]]]:
    """One optimizer step of ``cfg`` without a Runner: its model (weights
    initialised, SyncBN reverted as the Runner does outside a process group),
    its optimizer wrapper and its train dataset's pipeline, on one batch
    (of the config's size, or the whole sample if smaller).

    Returns:
        The losses, and for each part of the model (``backbone``, ``neck``,
        ``bbox_head``, ...) how many of its trainable parameters the step
        changed, out of how many.
    """
    from mmengine.dataset import pseudo_collate
    from mmengine.model import revert_sync_batchnorm
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DATASETS, MODELS, init_default_scope
    register_scope(cfg.default_scope)
    init_default_scope(cfg.default_scope)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.init_weights()
    model.train()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    size = min(len(dataset), cfg.train_dataloader.batch_size)
    batch = pseudo_collate([dataset[i] for i in range(size)])
    before = {n: p.detach().clone() for n, p in model.named_parameters()
              if p.requires_grad}
    losses = model.train_step(batch, wrapper)
    parts: Dict[str, Tuple[int, int]] = {}
    for name, p in model.named_parameters():
        if name in before:
            part = name.split('.')[0]
            changed, total = parts.get(part, (0, 0))
            parts[part] = (changed + (not torch.equal(p.detach(),
                                                      before[name])),
                           total + 1)
    return {k: float(v) for k, v in losses.items()}, parts
