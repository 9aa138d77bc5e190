"""Atomic local writes for mmengine checkpoints.

mmengine's ``LocalBackend.put`` opens the target file and writes into it, so
a run killed during a checkpoint write leaves a truncated ``epoch_N.pth`` (or
``last_checkpoint``) behind. :func:`enable_atomic_local_writes` makes both
``put`` and ``put_text`` write to a temporary file in the same directory,
fsync it, and ``os.replace`` it over the target: a reader sees the old file
or the complete new one, never a partial write.
"""
import os
import os.path as osp
import tempfile
from pathlib import Path
from typing import Union

from mmengine.fileio.backends import LocalBackend


def atomic_write_bytes(data: bytes, filepath: Union[str, Path]) -> None:
    """Write ``data`` to ``filepath`` atomically (creating its directory)."""
    filepath = str(filepath)
    directory = osp.dirname(osp.abspath(filepath))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(filepath)}.',
                               suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, filepath)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def _put(self, obj: bytes, filepath: Union[str, Path]) -> None:
    atomic_write_bytes(obj, filepath)


def _put_text(self, obj: str, filepath: Union[str, Path],
              encoding: str = 'utf-8') -> None:
    atomic_write_bytes(obj.encode(encoding), filepath)


def enable_atomic_local_writes() -> None:
    """Route mmengine's local ``put``/``put_text`` through atomic writes
    (idempotent)."""
    LocalBackend.put = _put
    LocalBackend.put_text = _put_text
