"""Missing data says where it is expected and how to get it; an unreadable
image or label map says which file it is."""
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DATASETS, init_default_scope

import mmcat  # noqa: F401
from mmcat.engine import build_runner, register_scope_modules
from mmcat.engine.data_checks import check_dataset_paths, name_sample_errors

from tools_testkit import make_tiny_coco, make_tiny_seg, write_det_config


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models only lose time to more threads on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------- missing data
def test_missing_coco_says_where_and_how(tmp_path):
    root = str(tmp_path / 'data' / 'coco') + '/'
    cfg = dict(type='CocoDataset', data_root=root,
               ann_file='annotations/instances_train2017.json',
               data_prefix=dict(img='train2017/'))
    with pytest.raises(FileNotFoundError) as info:
        check_dataset_paths(cfg, 'train_dataloader.dataset')
    msg = str(info.value)
    assert f'{root} does not exist' in msg
    assert 'python tools/generate_demo_data.py --out data' in msg
    assert 'https://cocodataset.org' in msg
    assert 'train_dataloader.dataset.data_root' in msg

    # the folder is there but not the annotations: that file is named
    os.makedirs(osp.join(root, 'train2017'))
    with pytest.raises(FileNotFoundError,
                       match='annotations/instances_train2017.json does '
                       'not exist'):
        check_dataset_paths(cfg, 'train_dataloader.dataset')


def test_missing_ade20k_inside_a_wrapper(tmp_path):
    root = str(tmp_path / 'ADEChallengeData2016')
    os.makedirs(osp.join(root, 'images', 'training'))
    cfg = dict(type='RepeatDataset', times=2, dataset=dict(
        type='ADE20KDataset', data_root=root,
        data_prefix=dict(img_path='images/training',
                         seg_map_path='annotations/training')))
    with pytest.raises(FileNotFoundError) as info:
        check_dataset_paths(cfg, 'train_dataloader.dataset')
    msg = str(info.value)
    assert osp.join(root, 'annotations/training') + ' does not exist' in msg
    assert 'ADE20K' in msg and 'sceneparsing.csail.mit.edu' in msg
    assert 'generate_demo_data.py' in msg
    assert 'train_dataloader.dataset.dataset.data_prefix.seg_map_path' in msg


def test_other_datasets_get_the_path_and_key(tmp_path):
    cfg = dict(type='VOCDataset', data_root=str(tmp_path / 'VOC2012'))
    with pytest.raises(FileNotFoundError, match=r'VOC2012 does not exist: '
                       r'the VOCDataset dataset of val_dataloader.dataset'):
        check_dataset_paths(cfg, 'val_dataloader.dataset')
    check_dataset_paths(dict(type='CocoDataset', data_root=str(tmp_path)))


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory) -> str:
    return make_tiny_coco(str(tmp_path_factory.mktemp('coco')), num_images=4)


def _det_cfg(tmp_path, data_root: str, **options) -> Config:
    path = write_det_config(str(tmp_path / 'retinanet_tiny.py'), data_root,
                            str(tmp_path / 'work'), max_iters=1)
    cfg = Config.fromfile(path)
    cfg.launcher = 'none'
    cfg.visualizer.name = f'vis_{tmp_path.name}'
    cfg.merge_from_dict(options)
    return cfg


def test_runner_checks_each_loader_when_it_builds_it(tmp_path, coco_root):
    """Training needs the training data; testing only the test data."""
    missing = str(tmp_path / 'nowhere' / 'coco')
    cfg = _det_cfg(tmp_path, coco_root, **{
        'train_dataloader.dataset.data_root': missing})
    runner = build_runner(cfg)
    with pytest.raises(FileNotFoundError) as info:
        runner.train()
    msg = str(info.value)
    assert f'{missing} does not exist' in msg
    assert 'generate_demo_data.py' in msg and 'cocodataset.org' in msg
    assert '--cfg-options train_dataloader.dataset.data_root=PATH' in msg
    # the test loader's data is there: it builds
    assert len(runner.build_dataloader(cfg.test_dataloader).dataset) == 4


# -------------------------------------------------------- unreadable files
def _garbage(path: str) -> None:
    with open(path, 'wb') as f:
        f.write(os.urandom(300))


def _empty(path: str) -> None:
    open(path, 'wb').close()


def _coco_dataset(root: str, backend: str = 'cv2'):
    init_default_scope('mmdet')
    register_scope_modules(Config(dict(default_scope='mmdet')))
    return DATASETS.build(dict(
        type='CocoDataset', data_root=root, ann_file='ann.json',
        data_prefix=dict(img='img/'), metainfo=dict(classes=('square',
                                                             'bar')),
        pipeline=[dict(type='LoadImageFromFile', imdecode_backend=backend),
                  dict(type='LoadAnnotations', with_bbox=True),
                  dict(type='PackDetInputs')]))


@pytest.mark.parametrize('spoil, backend', [(_empty, 'cv2'),
                                            (_garbage, 'cv2'),
                                            (_garbage, 'pillow')])
def test_unreadable_image_is_named(tmp_path, spoil, backend):
    root = make_tiny_coco(str(tmp_path / 'coco'), num_images=2)
    bad = osp.join(root, 'img', '1.png')
    spoil(bad)
    dataset = _coco_dataset(root, backend)
    assert dataset[0]['inputs'].shape[-2:] == (64, 64)
    name_sample_errors(dataset)
    with pytest.raises(Exception) as info:
        dataset[1]
    assert f"img_path='{bad}'" in str(info.value)
    assert 'sample_idx=1' in str(info.value)
    assert 'ignore_empty=True' in str(info.value)
    assert info.value.__cause__ is not None  # mmcv's error is chained


def test_unreadable_image_without_the_wrapper_is_anonymous(tmp_path):
    """Why the wrapper exists: cv2 on an empty file, or pillow on garbage,
    fail without naming the file."""
    root = make_tiny_coco(str(tmp_path / 'coco'), num_images=2)
    _empty(osp.join(root, 'img', '1.png'))
    with pytest.raises(Exception) as info:
        _coco_dataset(root)[1]
    assert '1.png' not in str(info.value)


def test_unreadable_label_map_is_named(tmp_path):
    root = make_tiny_seg(str(tmp_path / 'seg'), num_images=2)
    bad = osp.join(root, 'ann', '0.png')
    _garbage(bad)
    init_default_scope('mmseg')
    register_scope_modules(Config(dict(default_scope='mmseg')))
    dataset = DATASETS.build(dict(
        type='BaseSegDataset', data_root=root, img_suffix='.png',
        seg_map_suffix='.png',
        metainfo=dict(classes=('background', 'box'),
                      palette=[[0, 0, 0], [255, 0, 0]]),
        data_prefix=dict(img_path='img', seg_map_path='ann'),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations'),
                  dict(type='PackSegInputs')]))
    name_sample_errors(dataset)
    with pytest.raises(Exception, match=f"seg_map_path='{bad}'"):
        dataset[0]


def test_training_on_a_corrupt_image_names_it(tmp_path):
    """End to end: build_runner wraps the pipelines it builds."""
    root = make_tiny_coco(str(tmp_path / 'coco'), num_images=2)
    for name in ('0.png', '1.png'):
        _empty(osp.join(root, 'img', name))
    runner = build_runner(_det_cfg(tmp_path, root))
    with pytest.raises(Exception, match=r"img_path='.*/img/[01]\.png'"):
        runner.train()
