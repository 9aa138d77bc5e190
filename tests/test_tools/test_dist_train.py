"""``tools/dist_train.sh`` with 2 CPU processes (gloo) keeps replicas equal."""
import os.path as osp
import sys

import pytest
import torch

from tools_testkit import (free_port, load_checkpoint, make_tiny_coco,
                           rank_iters, run_tool, tail, write_det_config)


def _load(work_dir: str, name: str) -> dict:
    return load_checkpoint(osp.join(work_dir, name))


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.mark.skipif(
    sys.platform == 'win32', reason='bash launcher script')
def test_dist_train_two_cpu_processes(tmp_path):
    data_root = make_tiny_coco(str(tmp_path / 'data'))
    work_dir = str(tmp_path / 'work')
    config = write_det_config(
        str(tmp_path / 'retinanet_tiny.py'), data_root, work_dir, max_iters=4)
    log = str(tmp_path / 'log.txt')

    rc = run_tool(['bash', 'tools/dist_train.sh', config, '2'],
                  log,
                  PORT=str(free_port()))
    assert rc == 0, tail(log)

    for rank in (0, 1):
        assert rank_iters(work_dir, rank) == dict(
            start_iter=0,
            end_iter=4,
            world_size=2,
            wrapper='MMDistributedDataParallel')
    init0, init1 = (_load(work_dir, f'rank{r}_init.pth') for r in (0, 1))
    final0, final1 = (_load(work_dir, f'rank{r}_final.pth') for r in (0, 1))
    # Same start, and the two ranks trained on different halves of the
    # data: equal end weights need the gradient all-reduce to have worked.
    _assert_same(init0, init1)
    _assert_same(final0, final1)
    assert all(not torch.equal(init0[k], final0[k]) for k in init0)
    # the checkpoint rank 0 wrote holds the same weights
    ckpt = _load(work_dir, 'iter_4.pth')
    _assert_same(final0, {k: ckpt['state_dict'][k] for k in final0})
    assert ckpt['meta']['iter'] == 4
