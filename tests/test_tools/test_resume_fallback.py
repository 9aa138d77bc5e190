"""``tools/train.py --resume`` when the newest checkpoint is a truncated
copy: the run goes on from the newest one that loads, with a warning; with
only unreadable checkpoints, or an explicit unreadable one, it stops with an
error naming the file and why (exit status non-zero, no traceback)."""
import os
import os.path as osp
import shutil
import sys

from tools_testkit import (load_checkpoint, make_tiny_coco, rank_iters,
                           run_tool, tail, write_det_config)

PY = sys.executable


def _truncate(path: str) -> None:
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 3])


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def test_resume_passes_over_a_truncated_checkpoint(tmp_path):
    data_root = make_tiny_coco(str(tmp_path / 'data'))
    work_dir = str(tmp_path / 'work')
    config = write_det_config(str(tmp_path / 'det.py'), data_root, work_dir,
                              max_iters=2, ckpt_interval=1)
    log = str(tmp_path / 'train.txt')
    assert run_tool([PY, 'tools/train.py', config], log) == 0, tail(log)
    newest = osp.join(work_dir, 'iter_2.pth')
    _truncate(newest)

    log = str(tmp_path / 'resume.txt')
    rc = run_tool([PY, 'tools/train.py', config, '--resume', '--cfg-options',
                   'train_cfg.max_iters=3'], log)
    assert rc == 0, tail(log)
    text = _read(log)
    assert f'--resume skips {newest}: torch.load failed' in text
    assert 'continues from ' + osp.join(work_dir, 'iter_1.pth') in text
    assert rank_iters(work_dir) == dict(
        start_iter=1, end_iter=3, world_size=1, wrapper='RetinaNet')
    # the truncated file stayed until the run saved its own iteration 2
    assert load_checkpoint(newest)['meta']['iter'] == 2
    _truncate(newest)

    # an explicit unreadable checkpoint
    log = str(tmp_path / 'explicit.txt')
    rc = run_tool([PY, 'tools/train.py', config, '--resume', newest], log)
    text = _read(log)
    assert rc != 0 and 'Traceback' not in text, text[-3000:]
    assert f'error: cannot resume from {newest}: torch.load failed' in text

    # every checkpoint unreadable
    bad_dir = str(tmp_path / 'bad')
    os.makedirs(bad_dir)
    shutil.copy(newest, osp.join(bad_dir, 'iter_2.pth'))
    open(osp.join(bad_dir, 'iter_1.pth'), 'wb').close()
    log = str(tmp_path / 'all_bad.txt')
    rc = run_tool([PY, 'tools/train.py', config, '--resume', '--work-dir',
                   bad_dir], log)
    text = _read(log)
    assert rc != 0 and 'Traceback' not in text, text[-3000:]
    assert f'error: --resume: no checkpoint in {bad_dir} loads' in text
    assert osp.join(bad_dir, 'iter_1.pth') + ': it is empty (0 bytes)' in text
    assert sorted(os.listdir(bad_dir)) == ['iter_1.pth', 'iter_2.pth']
