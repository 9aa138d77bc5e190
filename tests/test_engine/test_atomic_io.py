"""Atomic checkpoint writes: a write killed half-way leaves the old file."""
import os

import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.fileio.backends import LocalBackend
from mmengine.runner.checkpoint import save_checkpoint

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
