""":mod:`mmcat.engine.resume`: a bare ``--resume`` passes over a truncated,
empty or foreign newest file to the newest checkpoint that loads; an explicit
unreadable checkpoint, or a work dir of unreadable ones only, is an error
naming each file and why; nothing is deleted."""
import os
import os.path as osp
import time

import pytest
import torch
from mmengine.config import Config

from mmcat.engine import setup_runtime
from mmcat.engine.resume import (CheckpointError, checkpoint_problem,
                                 resolve_checkpoint)

setup_runtime()


def _save(path: str, iteration: int) -> str:
    torch.save(dict(state_dict=dict(w=torch.full((64, 64), iteration)),
                    meta=dict(iter=iteration)), path)
    return path


def _touch_in_order(*paths: str) -> None:
    """Modification times in the given order, one second apart."""
    now = time.time()
    for i, path in enumerate(paths):
        os.utime(path, (now + i, now + i))


def _truncated(src: str, dst: str) -> str:
    with open(src, 'rb') as f:
        data = f.read()
    with open(dst, 'wb') as f:
        f.write(data[:len(data) // 2])
    return dst


def _resume_cfg(work_dir, load_from=None) -> Config:
    return Config(dict(work_dir=str(work_dir), resume=True,
                       load_from=load_from))


@pytest.fixture
def work_dir(tmp_path):
    good = _save(str(tmp_path / 'iter_2.pth'), 2)
    newer = _save(str(tmp_path / 'iter_4.pth'), 4)
    _touch_in_order(good, newer)
    return tmp_path


def _files(path) -> dict:
    return {n: osp.getsize(osp.join(path, n)) for n in os.listdir(path)}


@pytest.mark.parametrize('kind', ['truncated', 'empty', 'text', 'tensor'])
def test_bare_resume_falls_back_to_the_newest_that_loads(work_dir, kind):
    newest = str(work_dir / 'iter_6.pth')
    if kind == 'truncated':
        _truncated(str(work_dir / 'iter_4.pth'), newest)
    elif kind == 'empty':
        open(newest, 'wb').close()
    elif kind == 'text':
        with open(newest, 'w') as f:
            f.write('not a checkpoint\n')
    else:
        torch.save(torch.zeros(3), newest)
    _touch_in_order(str(work_dir / 'iter_2.pth'), str(work_dir /
                                                      'iter_4.pth'), newest)
    with open(work_dir / 'last_checkpoint', 'w') as f:
        f.write(newest)
    before = _files(work_dir)
    cfg = _resume_cfg(work_dir)
    with pytest.warns(UserWarning, match='skips .*iter_6.pth') as record:
        assert resolve_checkpoint(cfg) == str(work_dir / 'iter_4.pth')
    assert cfg.load_from == str(work_dir / 'iter_4.pth') and cfg.resume
    assert any('continues from' in str(w.message) for w in record)
    assert _files(work_dir) == before  # nothing deleted or rewritten


def test_problems_say_why(work_dir):
    good = str(work_dir / 'iter_4.pth')
    assert checkpoint_problem(good) is None
    assert 'does not exist' in checkpoint_problem(str(work_dir / 'no.pth'))
    empty = str(work_dir / 'empty.pth')
    open(empty, 'wb').close()
    assert checkpoint_problem(empty) == 'it is empty (0 bytes)'
    cut = _truncated(good, str(work_dir / 'cut.pth'))
    assert 'truncated copy or not a checkpoint' in checkpoint_problem(cut)
    tensor = str(work_dir / 'tensor.pth')
    torch.save(torch.zeros(3), tensor)
    assert 'Tensor without "state_dict"' in checkpoint_problem(tensor)


def test_every_checkpoint_unreadable_is_an_error(tmp_path):
    open(tmp_path / 'epoch_1.pth', 'wb').close()
    with open(tmp_path / 'epoch_2.pth', 'w') as f:
        f.write('x' * 100)
    with pytest.raises(CheckpointError) as info:
        resolve_checkpoint(_resume_cfg(tmp_path))
    text = str(info.value)
    assert f'no checkpoint in {tmp_path} loads' in text
    assert 'epoch_1.pth: it is empty (0 bytes)' in text
    assert 'epoch_2.pth: torch.load failed' in text
    assert sorted(os.listdir(tmp_path)) == ['epoch_1.pth', 'epoch_2.pth']


def test_explicit_unreadable_checkpoint_is_an_error(work_dir):
    cut = _truncated(str(work_dir / 'iter_4.pth'), str(work_dir / 'cut.pth'))
    with pytest.raises(CheckpointError, match=f'cannot resume from {cut}: '
                       'torch.load failed'):
        resolve_checkpoint(_resume_cfg(work_dir, load_from=cut))
    cfg = Config(dict(work_dir=str(work_dir), resume=False, load_from=cut))
    with pytest.raises(CheckpointError, match=f'cannot load {cut}: '):
        resolve_checkpoint(cfg)
    assert osp.getsize(cut) > 0


def test_nothing_to_resume_starts_from_scratch(tmp_path):
    cfg = _resume_cfg(tmp_path)
    assert resolve_checkpoint(cfg) is None and cfg.load_from is None
    remote = Config(dict(work_dir=str(tmp_path), resume=False,
                         load_from='https://example.org/x.pth'))
    assert resolve_checkpoint(remote) == 'https://example.org/x.pth'
