"""``tools/train.py`` (with ``--resume``) and ``tools/test.py`` in one
process, on an MMDetection and an MMSegmentation config.

Each tool run is a fresh interpreter that imports the whole OpenMMLab
stack, so the runs are few: train 2 iterations, resume to 4, test the first
checkpoint (mmdet), and train 2 iterations of a segmentor (mmseg).
"""
import os.path as osp
import pickle
import sys

import pytest
import torch

from tools_testkit import (load_checkpoint, make_tiny_coco, make_tiny_seg,
                           rank_iters, run_tool, tail, write_det_config,
                           write_seg_config)

PY = sys.executable


@pytest.fixture(scope='module')
def det_run(tmp_path_factory):
    """A 2-iteration mmdet run: (config, work_dir)."""
    root = tmp_path_factory.mktemp('det')
    data_root = make_tiny_coco(str(root / 'data'))
    work_dir = str(root / 'work')
    config = write_det_config(
        str(root / 'retinanet_tiny.py'), data_root, work_dir, max_iters=2,
        ckpt_interval=2)
    log = str(root / 'train.txt')
    assert run_tool([PY, 'tools/train.py', config], log) == 0, tail(log)
    return config, work_dir


def test_train_then_resume(det_run, tmp_path):
    config, work_dir = det_run
    assert rank_iters(work_dir) == dict(
        start_iter=0, end_iter=2, world_size=1, wrapper='RetinaNet')
    first = load_checkpoint(osp.join(work_dir, 'iter_2.pth'))

    log = str(tmp_path / 'resume.txt')
    rc = run_tool([
        PY, 'tools/train.py', config, '--resume', '--cfg-options',
        'train_cfg.max_iters=4'
    ], log)
    assert rc == 0, tail(log)
    # bare --resume found iter_2.pth and the loop went on from there
    assert rank_iters(work_dir) == dict(
        start_iter=2, end_iter=4, world_size=1, wrapper='RetinaNet')
    resumed = load_checkpoint(osp.join(work_dir, 'rank0_init.pth'))
    for name, value in resumed.items():
        assert torch.equal(value, first['state_dict'][name]), name
    last = load_checkpoint(osp.join(work_dir, 'iter_4.pth'))
    assert last['meta']['iter'] == 4
    losses = last['message_hub']['log_scalars']['train/loss'].data[0]
    assert len(losses) == 4  # two logged before the resume, two after


def test_test_tool_mmdet(det_run, tmp_path):
    config, work_dir = det_run
    out = str(tmp_path / 'dets.pkl')
    log = str(tmp_path / 'test.txt')
    rc = run_tool([
        PY, 'tools/test.py', config,
        osp.join(work_dir, 'iter_2.pth'), '--work-dir',
        str(tmp_path / 'test'), '--out', out
    ], log)
    assert rc == 0, tail(log)
    with open(out, 'rb') as f:
        dets = pickle.load(f)
    assert len(dets) == 16 and 'pred_instances' in dets[0]


def test_train_mmseg(tmp_path):
    data_root = make_tiny_seg(str(tmp_path / 'data'))
    work_dir = str(tmp_path / 'work')
    config = write_seg_config(
        str(tmp_path / 'fcn_tiny.py'), data_root, work_dir, max_iters=2)
    log = str(tmp_path / 'train.txt')
    assert run_tool([PY, 'tools/train.py', config], log) == 0, tail(log)
    assert rank_iters(work_dir) == dict(
        start_iter=0, end_iter=2, world_size=1, wrapper='EncoderDecoder')
    ckpt = load_checkpoint(osp.join(work_dir, 'iter_2.pth'))
    assert ckpt['meta']['dataset_meta']['classes'] == ('background', 'box')
