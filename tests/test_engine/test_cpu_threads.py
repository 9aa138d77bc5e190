"""A single-process CPU run leaves its data-loader workers CPUs of their own:
``tools/train.py`` and ``tools/test.py`` cap torch's threads, unless the
user set ``OMP_NUM_THREADS``, the run is launched, or CUDA is there."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from mmcat.engine import cap_cpu_threads
from mmcat.engine.cpu_threads import cpu_threads_for, loader_workers

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'configs', 'demo', 'fcos_cat_demo.py')


def _cfg(workers=2, launcher='none', loader='train_dataloader'):
    return Config({loader: dict(num_workers=workers), 'launcher': launcher})


def test_threads_leave_the_loader_workers_their_cpus() -> None:
    assert loader_workers(Config.fromfile(DEMO)) == 2
    # the loader the run uses, not the first one the config has
    cfg = Config(dict(train_dataloader=dict(num_workers=0),
                      test_dataloader=dict(num_workers=3)))
    assert loader_workers(cfg) == 0
    assert loader_workers(cfg, 'test_dataloader') == 3
    assert cpu_threads_for(cfg, cpus=4, threads=4) == 4
    assert cpu_threads_for(cfg, cpus=4, threads=4,
                           loader='test_dataloader') == 1
    assert loader_workers(Config()) == 0
    with pytest.raises(ValueError, match='test_dataloader'):
        loader_workers(cfg, 'test_loader')
    # 2 CPUs, torch's 2 threads, 2 workers: 1 thread
    assert cpu_threads_for(_cfg(2), cpus=2, threads=2) == 1
    assert cpu_threads_for(_cfg(2), cpus=1, threads=1) == 1
    # 16 CPUs (8 cores): torch's 8 threads stay
    assert cpu_threads_for(_cfg(2), cpus=16, threads=8) == 8
    assert cpu_threads_for(_cfg(0), cpus=4, threads=4) == 4


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)


def test_cap_sets_torch_threads_unless_told_otherwise(monkeypatch,
                                                      threads) -> None:
    import mmcat.engine.cpu_threads as cpu_threads
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    monkeypatch.setattr(cpu_threads, 'available_cpus', lambda: 3)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    torch.set_num_threads(3)
    assert cap_cpu_threads(_cfg(2)) == 1
    assert torch.get_num_threads() == 1
    assert cap_cpu_threads(_cfg(2)) is None  # a second call: no change

    for cfg, env in ((_cfg(2, launcher='pytorch'), None),   # launched
                     (_cfg(2), '3')):                       # user's choice
        torch.set_num_threads(3)
        if env:
            monkeypatch.setenv('OMP_NUM_THREADS', env)
        assert cap_cpu_threads(cfg) is None
        assert torch.get_num_threads() == 3
    monkeypatch.delenv('OMP_NUM_THREADS')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert cap_cpu_threads(_cfg(2)) is None and torch.get_num_threads() == 3


@pytest.mark.parametrize('tool,loader', [
    ('train.py', 'train_dataloader'), ('test.py', 'test_dataloader')])
def test_tools_cap_the_threads_for_their_loader(tmp_path, tool,
                                                loader) -> None:
    """tools/train.py and tools/test.py cap the threads before they build
    the runner, for the workers of the loader they run (3 CPUs, 2 workers
    there, none in the other loaders: 1 thread), and say how many and how
    to choose."""
    others = [f'{key}.num_workers=0' for key in
              ('train_dataloader', 'val_dataloader', 'test_dataloader')
              if key != loader]
    args = {'train.py': ['--work-dir', str(tmp_path)],
            'test.py': [str(tmp_path / 'latest.pth'), '--work-dir',
                        str(tmp_path)]}[tool]
    env = {k: v for k, v in os.environ.items() if k != 'OMP_NUM_THREADS'}
    code = (
        'import runpy, sys, torch\n'
        'import mmcat.engine as engine, mmcat.engine.cpu_threads as c\n'
        'c.available_cpus = lambda: 3\n'
        'torch.set_num_threads(3)\n'
        '# stop where the runner would be built\n'
        'engine.build_runner = lambda cfg: sys.exit(\n'
        '    f"THREADS {torch.get_num_threads()}")\n'
        'sys.argv = sys.argv[1:]\n'
        'runpy.run_path(sys.argv[0], run_name="__main__")\n')
    cmd = [sys.executable, '-c', code, f'tools/{tool}', DEMO, *args,
           '--cfg-options', *others]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert 'THREADS 1' in out, out[-3000:]
    assert '1 torch thread(s) instead of 3' in out
    assert f'2 data-loader worker(s) ({loader})' in out
    assert 'set OMP_NUM_THREADS to choose' in out
