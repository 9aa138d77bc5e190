"""A run killed with SIGKILL resumes with ``tools/train.py --resume`` and ends
with exactly the weights of a run that was never interrupted.

The model (RetinaNet with a narrow CAT, stochastic depth 0.3) draws from
torch's RNG at every iteration, and the 8 images make 4 iterations an epoch,
so resuming from iteration 6 skips back across an epoch boundary: the test
fails without :class:`mmcat.engine.hooks.RNGStateHook` (which
``tools/train.py`` adds by default), and with a hook that restored the
states before mmengine's data skip rather than after it.

The run is killed while it writes its last checkpoint (iteration 8): the
previous one (iteration 6) must be intact and be what ``--resume`` finds.
"""
import glob
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import torch

from reliability_testkit import STALL_IN_SAVE, write_cat_det_config
from tools_testkit import (REPO_ROOT, load_checkpoint, make_tiny_coco,
                           run_tool, tail, tool_env)

PY = sys.executable


def _start(config: str, work_dir: str, log: str, **env: str):
    with open(log, 'w') as f:
        return subprocess.Popen(
            [PY, 'tools/train.py', config, '--work-dir', work_dir],
            cwd=REPO_ROOT, env=tool_env(**env), stdout=f,
            stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for(cond, proc, log: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert proc.poll() is None, f'exited {proc.returncode}\n{tail(log)}'
        assert time.monotonic() < deadline, tail(log)
        time.sleep(0.05)


def _check_and_resume(config: str, work_dir: str, log: str) -> None:
    """Killed mid-write: no iter_8.pth, the previous checkpoint is whole and
    is the one ``last_checkpoint`` names; ``--resume`` goes on from it."""
    assert not osp.exists(osp.join(work_dir, 'iter_8.pth'))
    previous = load_checkpoint(osp.join(work_dir, 'iter_6.pth'))
    assert previous['meta']['iter'] == 6
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert osp.basename(f.read().strip()) == 'iter_6.pth'
    rc = run_tool([PY, 'tools/train.py', config, '--work-dir', work_dir,
                   '--resume'], log)
    assert rc == 0, tail(log)
    with open(log) as f:
        assert 'Advance dataloader 6 steps' in f.read()


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    data_root = make_tiny_coco(str(tmp_path / 'data'), num_images=8)
    config = write_cat_det_config(
        str(tmp_path / 'retinanet_cat_tiny.py'), data_root,
        str(tmp_path / 'unused'), max_iters=8, ckpt_interval=2)
    ref_dir, work_dir = str(tmp_path / 'ref'), str(tmp_path / 'killed')
    ref_log, log = str(tmp_path / 'ref.txt'), str(tmp_path / 'killed.txt')

    # The reference run and the run to kill side by side.
    ref = _start(config, ref_dir, ref_log)
    proc = _start(config, work_dir, log, **{STALL_IN_SAVE: '8'})
    try:
        _wait_for(lambda: glob.glob(osp.join(work_dir, '.iter_8.pth.*.tmp')),
                  proc, log)
        assert osp.isfile(osp.join(work_dir, 'iter_6.pth'))
        os.killpg(proc.pid, signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
        _check_and_resume(config, work_dir, str(tmp_path / 'resume.txt'))
        assert ref.wait(timeout=300) == 0, tail(ref_log)
    finally:
        for p in (ref, proc):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()

    expected = load_checkpoint(osp.join(ref_dir, 'iter_8.pth'))
    got = load_checkpoint(osp.join(work_dir, 'iter_8.pth'))
    assert got['meta']['iter'] == expected['meta']['iter'] == 8
    assert 'rng_states' in got
    assert got['state_dict'].keys() == expected['state_dict'].keys()
    differ = [k for k, v in expected['state_dict'].items()
              if not torch.equal(v, got['state_dict'][k])]
    assert differ == [], f'{len(differ)} tensors differ: {differ[:5]}'
    # the optimizer (SGD momentum) ends in the same state too
    for a, b in zip(expected['optimizer']['state'].values(),
                    got['optimizer']['state'].values()):
        assert torch.equal(a['momentum_buffer'], b['momentum_buffer'])
