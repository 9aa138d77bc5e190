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


def config_names() -> List[str]:
    """Every config file of ``configs/`` (not ``_base_``), sorted."""
    return sorted(
        osp.basename(p) for p in glob.glob(osp.join(CONFIG_DIR, '*.py')))


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


def fair_baseline(name: str) -> str:
    """The baseline of similar size: R-101 for CAT-B, R-50 otherwise."""
    r50, r101 = baseline_names(name)
    return r101 if parse_name(name)['backbone'] == 'cat_b' else r50


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


def sample_options(cfg: Config, data_root: str, work_dir: str
                   ) -> Dict[str, object]:
    """The ``--cfg-options`` that run ``cfg`` for one training iteration and
    one test iteration on a sample from :func:`write_coco_sample` or
    :func:`write_ade_sample`, on the CPU, without pretrained weights.

    Only data, image sizes, loop lengths, workers and the pretrained weights
    change; the model is the config's.
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


def apply_options(cfg: Config, opts: Dict[str, object]) -> Config:
    """Merge options the way ``--cfg-options`` does."""
    cfg.merge_from_dict(opts)
    return cfg


def scope_of(cfg: Config) -> Optional[str]:
    """The config's default scope (``mmdet`` or ``mmseg``)."""
    return cfg.get('default_scope', None)
