"""``tools/dist_train.sh`` with 2 CPU processes (gloo) keeps replicas equal:
a ResNet-18 RetinaNet, and a CAT one with a frozen stage and gradient
checkpointing."""
import os.path as osp
import sys

import pytest
import torch

from tools_testkit import (free_port, load_checkpoint, make_tiny_coco,
                           rank_iters, run_tool, tail, write_det_config)

pytestmark = pytest.mark.skipif(
    sys.platform == 'win32', reason='bash launcher script')

#: The tiny RetinaNet with a narrow CAT in place of its ResNet-18: stages
#: 1-3 feed the FPN (widths 16, 32, 64); the patch embedding, the position
#: table and stage 0 are frozen; every block is recomputed in backward.
#: Every trainable parameter gets a gradient, so DDP is told it need not
#: search for unused ones.
CAT_OVERRIDES = '''\
_base_ = {base!r}
custom_imports = dict(imports=['tools_testkit', 'mmcat'],
                      allow_failed_imports=False)
model = dict(backbone=dict(
    _delete_=True, type='CAT',
    arch=dict(embed_dims=8, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2)),
    patch_size=4, pretrain_img_size=64, drop_path_rate=0.1,
    out_indices=(1, 2, 3), frozen_stages=1, with_cp=True, init_cfg=None))
find_unused_parameters = False
'''
CAT_FROZEN = ('backbone.patch_embed.', 'backbone.absolute_pos_embed',
              'backbone.stages.0.')


def _load(work_dir: str, name: str) -> dict:
    return load_checkpoint(osp.join(work_dir, name))


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def _train_two_processes(tmp_path, overrides: str = '') -> str:
    """Train the tiny RetinaNet of tools_testkit (with ``overrides``, a
    config inheriting it) for 4 iterations in 2 processes; check both ranks
    ran them under DDP; return the work dir."""
    data_root = make_tiny_coco(str(tmp_path / 'data'))
    work_dir = str(tmp_path / 'work')
    config = write_det_config(
        str(tmp_path / 'retinanet_tiny.py'), data_root, work_dir, max_iters=4)
    if overrides:
        base, config = config, str(tmp_path / 'retinanet_tiny_custom.py')
        with open(config, 'w') as f:
            f.write(overrides.format(base=base))
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
    return work_dir


def test_dist_train_two_cpu_processes(tmp_path):
    work_dir = _train_two_processes(tmp_path)
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


def test_dist_train_cat_frozen_and_checkpointed(tmp_path):
    work_dir = _train_two_processes(tmp_path, CAT_OVERRIDES)
    init0, init1 = (_load(work_dir, f'rank{r}_init.pth') for r in (0, 1))
    final0, final1 = (_load(work_dir, f'rank{r}_final.pth') for r in (0, 1))
    assert any(k.startswith('backbone.stages.3.') for k in init0)
    _assert_same(init0, init1)
    _assert_same(final0, final1)
    for name in init0:   # frozen parts as they were, the rest trained
        frozen = name.startswith(CAT_FROZEN)
        assert torch.equal(init0[name], final0[name]) == frozen, name
