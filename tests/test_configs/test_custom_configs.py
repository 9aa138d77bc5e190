"""The fine-tuning templates of ``configs/custom/``, used as the guide
(docs/custom_dataset.md) says: copy one, set the data block (the classes
line printed by ``browse_dataset.py --print-classes``), browse a few
annotated images, train, evaluate, on a generated dataset whose classes
are not the demo's."""
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from config_testkit import (CONFIG_DIR, REPO_ROOT, _pipeline_options,
                            all_boxes_options, no_weight_init, register_scope)
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

import mmcat  # noqa: F401  (registers CAT)
from mmcat.engine import register_mmengine_safe_globals

CLASSES = ('apple', 'kiwi', 'plum')
TEMPLATES = ('fcos_cat_s_custom.py', 'mask-rcnn_cat_s_custom.py')


def _run(args, cwd=REPO_ROOT) -> str:
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO_ROOT)
    proc = subprocess.run([sys.executable] + [str(a) for a in args],
                          cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


@pytest.fixture(scope='module')
def fruit_data(tmp_path_factory) -> str:
    """A COCO-format dataset of three classes of its own, in a layout of its
    own: ``fruit/ann/{train,val}.json``, ``fruit/img/{train,val}/``."""
    from mmcat.datasets.synthetic import SceneConfig, write_coco
    out = tmp_path_factory.mktemp('custom')
    summary = write_coco(
        str(out / 'gen'), seed=3, num_train=4, num_val=2,
        cfg=SceneConfig(height=96, width=128, num_classes=len(CLASSES),
                        max_objects=3))
    root = out / 'fruit'
    os.makedirs(root / 'ann')
    os.makedirs(root / 'img')
    for split in ('train', 'val'):
        with open(summary[split]['ann_file']) as f:
            data = json.load(f)
        for cat, name in zip(sorted(data['categories'], key=lambda c: c['id']),
                             CLASSES):
            cat['name'] = name
        with open(root / 'ann' / f'{split}.json', 'w') as f:
            json.dump(data, f)
        os.rename(osp.join(summary['root'], f'{split}2017'),
                  root / 'img' / split)
    return str(root) + '/'


def _user_config(template: str, data_root: str, out: str,
                 classes_line: str) -> str:
    """The template with its data block set, as a user's copy."""
    with open(osp.join(CONFIG_DIR, 'custom', template)) as f:
        text = f.read()
    values = {
        'data_root': repr(data_root),
        'train_ann_file': "'ann/train.json'",
        'train_img_dir': "'img/train/'",
        'val_ann_file': "'ann/val.json'",
        'val_img_dir': "'img/val/'",
        'pretrained': 'None',
    }
    for key, value in values.items():
        text, n = re.subn(rf'^{key} = .*$', f'{key} = {value}', text,
                          count=1, flags=re.M)
        assert n == 1, key
    text, n = re.subn(r'^classes = .*$', classes_line, text, count=1,
                      flags=re.M)
    assert n == 1
    # the copy lives elsewhere: its base by absolute path
    text = text.replace("_base_ = '../", f"_base_ = '{CONFIG_DIR}/")
    path = osp.join(out, 'my_' + template)
    with open(path, 'w') as f:
        f.write(text)
    return path


def _classes_line(config: str) -> str:
    out = _run(['tools/analysis_tools/browse_dataset.py', config,
                '--print-classes'])
    return [line for line in out.splitlines()
            if line.startswith('classes = ')][-1]


@pytest.mark.parametrize('template', TEMPLATES)
def test_heads_follow_the_classes(template, fruit_data, tmp_path):
    first = _user_config(template, fruit_data, str(tmp_path), 'classes = ()')
    line = _classes_line(first)
    assert line == f'classes = {CLASSES!r}'
    cfg = Config.fromfile(_user_config(template, fruit_data, str(tmp_path),
                                       line))
    register_scope(cfg.default_scope)
    init_default_scope(cfg.default_scope)
    with no_weight_init():
        model = MODELS.build(cfg.model)
    if hasattr(model, 'roi_head'):
        heads = [model.roi_head.bbox_head.fc_cls.out_features - 1,
                 model.roi_head.mask_head.conv_logits.out_channels]
    else:
        heads = [model.bbox_head.conv_cls.out_channels]
    assert heads == [len(CLASSES)] * len(heads)
    for split in ('train', 'val'):
        dataset = cfg[f'{split}_dataloader'].dataset
        assert dataset.metainfo['classes'] == CLASSES
        assert osp.isfile(osp.join(dataset.data_root, dataset.ann_file))
    assert cfg.val_evaluator.ann_file == fruit_data + 'ann/val.json'
    assert cfg.model.backbone.init_cfg is None and cfg.load_from is None


def test_fcos_template_browses_trains_and_evaluates(fruit_data, tmp_path):
    config = _user_config('fcos_cat_s_custom.py', fruit_data, str(tmp_path),
                          f'classes = {CLASSES!r}')
    out = _run(['tools/analysis_tools/browse_dataset.py', config, '--out',
                tmp_path / 'browse', '--num', 2])
    assert len(os.listdir(tmp_path / 'browse')) == 2
    assert 'classes: apple, kiwi, plum' in out

    # CPU-sized: 128-px images, 2 steps of 2 images, evaluation after them,
    # every box scored (two steps leave all scores below 0.05)
    cfg = Config.fromfile(config)
    work_dir = str(tmp_path / 'work')
    opts = dict(all_boxes_options(cfg), **{
        'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 1,
        'default_hooks.checkpoint.interval': 1,
    })
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts.update({f'{loader}.num_workers': 0,
                     f'{loader}.persistent_workers': False,
                     f'{loader}.batch_size': 2})
        opts.update(_pipeline_options(f'{loader}.dataset.pipeline',
                                      cfg[loader].dataset.pipeline,
                                      (128, 96)))
    cfg.merge_from_dict(opts)
    small = str(tmp_path / 'my_fcos_small.py')
    cfg.dump(small)

    log = _run(['tools/train.py', small, '--work-dir', work_dir])
    assert re.search(r'coco/bbox_mAP: [\d.]+', log), log[-3000:]
    register_mmengine_safe_globals()
    ckpt = torch.load(osp.join(work_dir, 'epoch_1.pth'), map_location='cpu',
                      weights_only=True)
    assert ckpt['meta']['dataset_meta']['classes'] == CLASSES
    assert ckpt['state_dict']['bbox_head.conv_cls.weight'].shape[0] == 3

    log = _run(['tools/test.py', small, osp.join(work_dir, 'epoch_1.pth'),
                '--work-dir', str(tmp_path / 'test')])
    assert re.search(r'coco/bbox_mAP: [\d.]+', log), log[-3000:]
