"""``import mmcat`` changes nothing in torch or mmengine; the runner-level
fixes come from :func:`mmcat.engine.setup_runtime`, which the tools call and
``runner_type='MMCATRunner'`` applies. Each case runs in a fresh interpreter:
the fixes are process-wide."""
import json
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.config import Config
from mmengine.fileio.backends import LocalBackend

from mmcat.engine import setup_runtime

from engine_testkit import HERE, write_toy_config

REPO_ROOT = osp.dirname(osp.dirname(HERE))

# What the child prints: whether the fixes are in place at that moment.
PROBE = textwrap.dedent('''
    import json
    import torch
    from mmengine.fileio.backends import LocalBackend
    from mmengine.logging import HistoryBuffer

    def fixes():
        return dict(
            atomic=LocalBackend.put.__module__ == 'mmcat.engine.atomic_io',
            atomic_text=(LocalBackend.put_text.__module__ ==
                         'mmcat.engine.atomic_io'),
            allow_list=HistoryBuffer in torch.serialization.get_safe_globals())
''')
NONE = dict(atomic=False, atomic_text=False, allow_list=False)
ALL = dict(atomic=True, atomic_text=True, allow_list=True)


def _run(code: str, cwd: str = REPO_ROOT) -> dict:
    """Run ``PROBE + code`` in a fresh interpreter; the JSON of its last
    line of output."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('TORCH_FORCE_')}
    paths = [REPO_ROOT, HERE]
    if env.get('PYTHONPATH'):
        paths.append(env['PYTHONPATH'])
    env['PYTHONPATH'] = os.pathsep.join(paths)
    env['OMP_NUM_THREADS'] = '1'
    proc = subprocess.run([sys.executable, '-c', PROBE + code], cwd=cwd,
                          env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_mmcat_has_no_side_effects():
    # torch allow-lists its DTensor types when torch.distributed.tensor is
    # first imported (mmengine.runner does): load mmcat's dependencies first
    out = _run('''
import mmcv.cnn, mmengine.runner
import mmengine.fileio.backends.local_backend as l
put, put_text = l.LocalBackend.put, l.LocalBackend.put_text
safe = set(map(repr, torch.serialization.get_safe_globals()))
import mmcat
print(json.dumps(dict(
    put=l.LocalBackend.put is put, put_text=l.LocalBackend.put_text is
    put_text, safe=set(map(repr, torch.serialization.get_safe_globals()))
    == safe, fixes=fixes())))
''')
    assert out == dict(put=True, put_text=True, safe=True, fixes=NONE)


def test_setup_runtime_applies_the_fixes_idempotently():
    out = _run('''
from mmcat.engine import setup_runtime
before = fixes()
setup_runtime()
safe = set(map(repr, torch.serialization.get_safe_globals()))
put = LocalBackend.put
setup_runtime()
print(json.dumps(dict(before=before, after=fixes(), same=(
    safe == set(map(repr, torch.serialization.get_safe_globals()))
    and LocalBackend.put is put))))
''')
    assert out == dict(before=NONE, after=ALL, same=True)


def test_setup_runtime_with_a_single_process_config(monkeypatch):
    """No launcher: no process group, no wrapper config; SyncBN becomes BN.
    Twice is once."""
    monkeypatch.setattr(LocalBackend, 'put', LocalBackend.put)
    monkeypatch.setattr(LocalBackend, 'put_text', LocalBackend.put_text)
    cfg = Config(dict(
        launcher='none',
        model=dict(type='M', norm_cfg=dict(type='SyncBN', eps=1e-3)),
        env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    setup_runtime(cfg)
    assert cfg.to_dict() == dict(
        launcher='none',
        model=dict(type='M', norm_cfg=dict(type='BN', eps=1e-3)),
        env_cfg=dict(dist_cfg=dict(backend='nccl')))
    once = cfg.to_dict()
    setup_runtime(cfg)
    assert cfg.to_dict() == once


@pytest.mark.parametrize('tool, argv', [
    ('train', []),
    ('test', ['ckpt.pth']),
])
def test_tools_apply_the_fixes_before_building_the_runner(tool, argv,
                                                          tmp_path):
    """The tool's ``main`` with ``build_runner`` replaced by a probe."""
    config = write_toy_config(str(tmp_path / 'toy.py'), str(tmp_path), 2)
    out = _run(f'''
import runpy, sys
import mmcat.engine

seen = {{}}

class _Runner:
    def train(self):
        pass
    test = train

def probe(cfg):
    seen.update(fixes())
    return _Runner()

mmcat.engine.build_runner = probe
sys.argv = ['{tool}.py', {config!r}] + {argv!r}
before = fixes()
runpy.run_path('tools/{tool}.py', run_name='__main__')
print(json.dumps(dict(before=before, at_build=seen)))
''')
    assert out == dict(before=NONE, at_build=ALL)


@pytest.mark.skipif(torch.__version__ < '2.6',
                    reason='weights_only is the default from 2.6')
def test_a_config_naming_mmcat_runner_resumes(tmp_path):
    """A plain Runner cannot resume from its own checkpoint under torch's
    weights-only default; a config with ``runner_type='MMCATRunner'``
    (built by ``RUNNERS.build``, as MMDetection's tools do) can."""
    work_dir = str(tmp_path / 'work')
    first, plain, ours = (
        write_toy_config(str(tmp_path / f'{name}.py'), work_dir, iters,
                         runner_type=runner, resume=resume)
        for name, iters, runner, resume in [
            ('first', 2, 'Runner', False), ('plain', 3, 'Runner', True),
            ('ours', 3, 'MMCATRunner', True)])
    out = _run(f'''
import pickle
from mmengine.config import Config
from mmengine.fileio.backends import LocalBackend
from mmengine.registry import RUNNERS

RUNNERS.build(Config.fromfile({first!r})).train()
try:
    RUNNERS.build(Config.fromfile({plain!r})).train()
    plain = 'resumed'
except pickle.UnpicklingError as e:
    plain = 'refused' if 'Weights only load failed' in str(e) else str(e)
before = fixes()
runner = RUNNERS.build(Config.fromfile({ours!r}))
built = fixes()
runner.train()
print(json.dumps(dict(plain=plain, before=before, built=built,
                      type=type(runner).__name__, iter=runner.iter)))
''', cwd=str(tmp_path))
    assert out == dict(plain='refused', before=NONE, built=ALL,
                       type='MMCATRunner', iter=3)
