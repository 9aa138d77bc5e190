"""When one rank of a 2-process CPU run (``tools/dist_train.sh``, gloo) fails,
the whole job exits non-zero in bounded time instead of hanging.

* The rank raises: torchrun's agent sees the worker exit and stops the
  other one (which waits in DDP's all-reduce) with SIGTERM.
* The rank stops taking part without exiting (a deadlock, a stuck read):
  nothing exits, so only a collective timeout ends the job; it is set with
  ``env_cfg.dist_cfg.timeout`` (seconds; torch's default is 30 minutes).
"""
import sys
import time

import pytest

from reliability_testkit import write_det_config_with_hooks
from tools_testkit import free_port, make_tiny_coco, run_tool, tail

pytestmark = pytest.mark.skipif(
    sys.platform == 'win32', reason='bash launcher script')

LIMIT_S = 120


@pytest.fixture(scope='module')
def data_root(tmp_path_factory) -> str:
    return make_tiny_coco(str(tmp_path_factory.mktemp('data')))


def _run_failing_job(tmp_path, data_root: str, mode: str,
                     **overrides) -> tuple:
    """Launch 2 processes whose rank 1 fails at iteration 2; returns
    (exit code, seconds, log text)."""
    config = write_det_config_with_hooks(
        str(tmp_path / 'retinanet_tiny.py'), data_root,
        str(tmp_path / 'work'),
        hooks=(dict(type='FailOnRankHook', rank=1, at_iter=2, mode=mode), ),
        max_iters=4, **overrides)
    log = str(tmp_path / 'log.txt')
    start = time.monotonic()
    rc = run_tool(['bash', 'tools/dist_train.sh', config, '2'], log,
                  timeout=LIMIT_S + 60, PORT=str(free_port()))
    elapsed = time.monotonic() - start
    with open(log) as f:
        return rc, elapsed, f.read()


def test_a_rank_that_raises_ends_the_job(tmp_path, data_root):
    rc, elapsed, text = _run_failing_job(tmp_path, data_root, 'raise')
    assert rc != 0, tail(str(tmp_path / 'log.txt'))
    assert elapsed < LIMIT_S, f'{elapsed:.0f} s'
    assert 'injected failure on rank 1 at iteration 2' in text
    assert 'Iter(train) [4/4]' not in text


def test_a_rank_that_hangs_ends_the_job_at_the_timeout(tmp_path, data_root):
    rc, elapsed, text = _run_failing_job(
        tmp_path, data_root, 'hang',
        env_cfg=dict(dist_cfg=dict(backend='gloo', timeout=15)))
    assert rc != 0, tail(str(tmp_path / 'log.txt'))
    assert elapsed < LIMIT_S, f'{elapsed:.0f} s'
    assert 'Timed out' in text, tail(str(tmp_path / 'log.txt'))
