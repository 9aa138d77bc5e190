"""Atomic local writes for mmengine checkpoints.

mmengine's ``LocalBackend.put`` opens the target file and writes into it, so
a run killed during a checkpoint write leaves a truncated ``epoch_N.pth`` (or
``last_checkpoint``) behind. :func:`enable_atomic_local_writes` makes both
``put`` and ``put_text`` write to a temporary file in the same directory,
fsync it, and ``os.replace`` it over the target: a reader sees the old file
or the complete new one, never a partial write.

On shared filesystems: the file gets the permissions ``open()`` would give it
(the umask's, or the replaced file's); a filesystem that refuses ``chmod``
(FUSE, object-store mounts) only costs a warning; temporary files that a
killed run left behind are removed before the first write into a directory;
``MMCAT_ATOMIC_FSYNC=0`` skips the fsync (see the README).
"""
import os
import os.path as osp
import re
import stat
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import List, Optional, Set, Union

from mmengine.fileio.backends import LocalBackend

__all__ = [
    'atomic_write_bytes', 'enable_atomic_local_writes', 'file_mode_for',
    'remove_stale_temporaries'
]

#: Set to ``0`` to write without fsync (faster on network filesystems; a
#: node crash right after a write may then leave an incomplete file).
FSYNC_ENV = 'MMCAT_ATOMIC_FSYNC'

# Temporary files are ``.<target name>.<8 characters of mkstemp>.tmp``.
_TMP_NAME = re.compile(r'^\..+\.[a-z0-9_]{8}\.tmp$')

# When this process began: temporary files older than that are no one's.
_STARTED = time.time()
_swept_dirs: Set[str] = set()
_chmod_warned = False
_umask_lock = threading.Lock()


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells it
    (``os.umask`` can only be read by setting it)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def file_mode_for(filepath: str) -> int:
    """The permissions ``open(filepath, 'wb')`` would leave: the existing
    file's, or ``0o666`` less the umask for a new one."""
    try:
        return stat.S_IMODE(os.stat(filepath).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _set_mode(fd: int, mode: int) -> None:
    """``fchmod`` the temporary file; where the filesystem refuses it, warn
    once and keep the file as it is."""
    global _chmod_warned
    try:
        os.fchmod(fd, mode)
    except OSError as error:
        if not _chmod_warned:
            _chmod_warned = True
            warnings.warn(
                f'Atomic checkpoint writes: this filesystem refuses chmod '
                f'({error}); checkpoints keep the permissions it gives new '
                f'files. Warned once.', RuntimeWarning, stacklevel=3)


def remove_stale_temporaries(directory: str,
                             older_than: Optional[float] = None
                             ) -> List[str]:
    """Remove the temporary files of :func:`atomic_write_bytes` that a run
    killed during a write left in ``directory``.

    Only names of exactly this writer's pattern
    (``.<name>.<8 random characters>.tmp``) last modified before
    ``older_than`` are removed, so another run's write in progress is left
    alone.

    Args:
        directory: the directory to sweep (not recursively).
        older_than: a time (seconds since the epoch); default: when this
            process imported this module.

    Returns:
        The paths removed.
    """
    older_than = _STARTED if older_than is None else older_than
    removed = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return removed
    for entry in entries:
        if not _TMP_NAME.match(entry.name):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and \
                    entry.stat(follow_symlinks=False).st_mtime < older_than:
                os.remove(entry.path)
                removed.append(entry.path)
        except FileNotFoundError:
            pass  # removed meanwhile
    return removed


def _fsync_wanted() -> bool:
    return os.environ.get(FSYNC_ENV, '1').strip().lower() not in (
        '0', 'false', 'no', 'off')


def atomic_write_bytes(data: bytes, filepath: Union[str, Path]) -> None:
    """Write ``data`` to ``filepath`` atomically (creating its directory).

    The first write into a directory removes the temporary files a killed
    run left there (:func:`remove_stale_temporaries`).
    """
    filepath = str(filepath)
    directory = osp.dirname(osp.abspath(filepath))
    os.makedirs(directory, exist_ok=True)
    if directory not in _swept_dirs:
        remove_stale_temporaries(directory)
        _swept_dirs.add(directory)
    mode = file_mode_for(filepath)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(filepath)}.',
                               suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as f:
            _set_mode(f.fileno(), mode)
            f.write(data)
            f.flush()
            if _fsync_wanted():
                os.fsync(f.fileno())
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
