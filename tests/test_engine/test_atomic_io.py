"""Atomic checkpoint writes: a write killed half-way leaves the old file;
permissions, refused chmod and leftovers on shared filesystems."""
import errno
import os
import stat
import time

import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.fileio.backends import LocalBackend
from mmengine.runner.checkpoint import save_checkpoint

from mmcat.engine import atomic_io
from mmcat.engine.atomic_io import (atomic_write_bytes,
                                    enable_atomic_local_writes)


@pytest.fixture(autouse=True)
def atomic_writes(monkeypatch):
    """mmengine's local writes made atomic for one test, then restored."""
    monkeypatch.setattr(LocalBackend, 'put', LocalBackend.put)
    monkeypatch.setattr(LocalBackend, 'put_text', LocalBackend.put_text)
    enable_atomic_local_writes()


def test_checkpoint_save_goes_through_an_atomic_replace(tmp_path,
                                                        monkeypatch):
    target = tmp_path / 'epoch_1.pth'
    save_checkpoint({'w': torch.ones(3)}, str(target))
    assert torch.equal(torch.load(target)['w'], torch.ones(3))

    # A crash in the middle of the next write leaves the old file intact
    # and no temporary file behind.
    def crash(*args, **kwargs):
        raise KeyboardInterrupt('killed during write')
    monkeypatch.setattr(os, 'fsync', crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({'w': torch.zeros(3)}, str(target))
    assert torch.equal(torch.load(target)['w'], torch.ones(3))
    assert os.listdir(tmp_path) == ['epoch_1.pth']


def test_text_writes_are_atomic_too(tmp_path):
    backend = get_file_backend(str(tmp_path))
    backend.put_text('epoch_1.pth', str(tmp_path / 'last_checkpoint'))
    assert (tmp_path / 'last_checkpoint').read_text() == 'epoch_1.pth'
    atomic_write_bytes(b'x', tmp_path / 'sub' / 'f.bin')
    assert (tmp_path / 'sub' / 'f.bin').read_bytes() == b'x'


@pytest.fixture
def umask():
    """Set the process umask for one test; the old one comes back."""
    old = os.umask(0o022)
    os.umask(old)

    def set_umask(mask: int) -> None:
        os.umask(mask)

    yield set_umask
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_new_files_get_the_permissions_open_would_give(tmp_path, umask):
    umask(0o002)  # a group-writable project directory
    atomic_write_bytes(b'x', tmp_path / 'a.pth')
    assert _mode(tmp_path / 'a.pth') == 0o664
    umask(0o077)
    atomic_write_bytes(b'x', tmp_path / 'b.pth')
    assert _mode(tmp_path / 'b.pth') == 0o600
    # a file replaced keeps its permissions, as a rewrite in place would
    os.chmod(tmp_path / 'a.pth', 0o640)
    atomic_write_bytes(b'y', tmp_path / 'a.pth')
    assert _mode(tmp_path / 'a.pth') == 0o640


def test_a_filesystem_that_refuses_chmod_only_warns_once(tmp_path,
                                                         monkeypatch):
    """FUSE and object-store mounts answer chmod with EPERM."""
    def refuse(*args):
        raise PermissionError(errno.EPERM, 'Operation not permitted')

    monkeypatch.setattr(os, 'chmod', refuse)
    monkeypatch.setattr(os, 'fchmod', refuse)
    monkeypatch.setattr(atomic_io, '_chmod_warned', False, raising=False)
    with pytest.warns(RuntimeWarning, match='refuses chmod') as record:
        save_checkpoint({'w': torch.ones(3)}, str(tmp_path / 'epoch_1.pth'))
        save_checkpoint({'w': torch.ones(3)}, str(tmp_path / 'epoch_2.pth'))
    assert len(record) == 1
    assert torch.equal(torch.load(tmp_path / 'epoch_2.pth')['w'],
                       torch.ones(3))


def test_the_first_write_removes_what_a_killed_run_left(tmp_path):
    """A SIGKILL during a write leaves ``.<name>.<random>.tmp``; only such
    names from before this process started are removed."""
    hour_ago = time.time() - 3600
    names = {
        '.epoch_3.pth.k2_x9q0a.tmp': True,  # a killed run's
        '.last_checkpoint.abcdefgh.tmp': True,
        '.epoch_3.pth.tmp': False,  # not this writer's pattern
        '.epoch_3.pth.ABCDEFGH.tmp': False,
        'epoch_3.pth.abcdefgh.tmp': False,
        '.epoch_3.pth.abcdefgh.tmp.bak': False,
    }
    for name in names:
        (tmp_path / name).write_bytes(b'partial')
        os.utime(tmp_path / name, (hour_ago, hour_ago))
    (tmp_path / '.epoch_4.pth.abcdefgh.tmp').write_bytes(b'being written')
    names['.epoch_4.pth.abcdefgh.tmp'] = False  # newer than this process

    save_checkpoint({'w': torch.ones(3)}, str(tmp_path / 'epoch_5.pth'))
    left = set(os.listdir(tmp_path))
    assert left == {'epoch_5.pth'} | {n for n, gone in names.items()
                                      if not gone}


def test_fsync_can_be_turned_off(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(os, 'fsync', lambda fd: calls.append(fd))
    atomic_write_bytes(b'x', tmp_path / 'a')
    assert len(calls) == 1
    monkeypatch.setenv(atomic_io.FSYNC_ENV, '0')
    atomic_write_bytes(b'y', tmp_path / 'a')
    assert len(calls) == 1 and (tmp_path / 'a').read_bytes() == b'y'
