"""mmengine checkpoints load under torch's weights-only default; crafted
pickles stay refused."""
import io
import os
import os.path as osp
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import Runner, load_checkpoint

from mmcat.engine.checkpoint_compat import register_mmengine_safe_globals

from engine_testkit import ToyModel, toy_runner

pytestmark = pytest.mark.skipif(
    torch.__version__ < '2.6', reason='weights_only is the default from 2.6')


@pytest.fixture(autouse=True)
def weights_only_default(monkeypatch):
    """Neither of torch's overrides may decide the tests."""
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', raising=False)
    monkeypatch.delenv('TORCH_FORCE_WEIGHTS_ONLY_LOAD', raising=False)
    register_mmengine_safe_globals()


def _runner(work_dir: str, max_iters: int, **kwargs) -> Runner:
    return toy_runner(
        work_dir, max_iters,
        param_scheduler=dict(
            type='MultiStepLR', by_epoch=False, milestones=[1], gamma=0.5),
        **kwargs)


@pytest.fixture(scope='module')
def runner_ckpt(tmp_path_factory) -> str:
    """A checkpoint written by an mmengine Runner after 2 iterations."""
    work_dir = str(tmp_path_factory.mktemp('toy'))
    _runner(work_dir, max_iters=2).train()
    return osp.join(work_dir, 'iter_2.pth')


def test_register_is_idempotent():
    before = set(map(repr, torch.serialization.get_safe_globals()))
    register_mmengine_safe_globals()
    register_mmengine_safe_globals()
    assert set(map(repr, torch.serialization.get_safe_globals())) == before


def test_runner_checkpoint_loads_weights_only(runner_ckpt):
    ckpt = torch.load(runner_ckpt, weights_only=True)
    assert ckpt['meta']['iter'] == 2
    loss = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(loss, HistoryBuffer)
    assert loss.data[0].dtype == np.float64 and len(loss.data[0]) == 2
    assert loss.statistics('mean') == loss.data[0].mean()
    assert 'milestones' in ckpt['param_schedulers'][0]


def test_runner_resumes(runner_ckpt, tmp_path):
    runner = _runner(
        str(tmp_path), max_iters=3, resume=True, load_from=runner_ckpt)
    runner.train()
    assert runner.iter == 3
    ckpt = torch.load(osp.join(tmp_path, 'iter_3.pth'), weights_only=True)
    assert ckpt['meta']['iter'] == 3
    # the logs of the first run came back through the message hub
    assert len(ckpt['message_hub']['log_scalars']['train/loss'].data[0]) == 3


def test_load_checkpoint(runner_ckpt):
    model = ToyModel()
    ckpt = load_checkpoint(model, runner_ckpt, map_location='cpu')
    saved = torch.load(runner_ckpt, weights_only=True)['state_dict']
    assert torch.equal(model.linear.weight, saved['linear.weight'])
    assert 'message_hub' in ckpt


class _SystemCall:
    """Pickles as a shell command that creates ``marker``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


class _Exec:
    """Pickles as ``exec`` of Python code that creates ``marker``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f'open({self.marker!r}, "w").close()', )


class _GetAttr:
    """Pickles as ``getattr(obj, name)``."""

    def __init__(self, obj, name: str) -> None:
        self.obj, self.name = obj, name

    def __reduce__(self):
        return getattr, (self.obj, self.name)


class _Call:
    """Pickles as ``_rebuild_from_type_v2(func, new_type, args, None)``,
    which torch allows by default and which calls ``func(*args)``."""

    def __init__(self, func, new_type, args: tuple) -> None:
        self.func_args = (func, new_type, args, None)

    def __reduce__(self):
        return torch._tensor._rebuild_from_type_v2, self.func_args


def _getattr_gadget(marker: str) -> _Call:
    """From an allowed function to ``eval`` through ``getattr`` only."""
    start = torch.serialization._get_layout  # allow-listed by torch itself
    module_dict = _GetAttr(start, '__globals__')
    builtins = _Call(
        _GetAttr(module_dict, 'get'), _GetAttr(module_dict, '__class__'),
        ('__builtins__', ))
    get_builtin = _GetAttr(builtins, 'get')
    eval_ = _Call(get_builtin, _GetAttr(get_builtin, '__class__'), ('eval', ))
    return _Call(eval_, _GetAttr(0, '__class__'),
                 (f'open({marker!r}, "w").close() or 0', ))


def _save(obj, path: str) -> str:
    torch.save({'state_dict': {'w': torch.ones(1)}, 'meta': obj}, path)
    return path


@pytest.mark.parametrize('payload, reason', [
    (_SystemCall, 'system whose module (posix|nt) is blocked'),
    (_Exec, 'GLOBAL exec was not an allowed global'),
    (_getattr_gadget, "getattr\\(<function _get_layout"),
])
def test_malicious_pickles_refused(payload, reason, tmp_path):
    marker = str(tmp_path / 'pwned')
    path = _save(payload(marker), str(tmp_path / 'evil.pth'))
    with pytest.raises(pickle.UnpicklingError, match=reason):
        torch.load(path)
    with pytest.raises(pickle.UnpicklingError, match=reason):
        load_checkpoint(ToyModel(), path, map_location='cpu')
    assert not osp.exists(marker)


def test_restricted_getattr(tmp_path):
    """Only HistoryBuffer's statistics methods resolve through getattr."""
    ok = _save(_GetAttr(HistoryBuffer, 'mean'), str(tmp_path / 'ok.pth'))
    assert torch.load(ok)['meta'] is HistoryBuffer.mean
    for obj, name in [(HistoryBuffer, '__init__'),
                      (HistoryBuffer, 'update'),
                      (torch.serialization._get_layout, '__globals__')]:
        bad = _save(_GetAttr(obj, name), str(tmp_path / 'bad.pth'))
        with pytest.raises(pickle.UnpicklingError, match='getattr'):
            torch.load(bad)


def test_getattr_gadget_is_live(tmp_path):
    """Positive control: with the real ``getattr`` allow-listed (what
    mmcat avoids), the gadget above runs its code during a weights-only
    load. Run in a fresh interpreter, without mmcat's registration."""
    marker = str(tmp_path / 'pwned')
    path = _save(_getattr_gadget(marker), str(tmp_path / 'evil.pth'))
    code = textwrap.dedent(f'''
        import torch
        with torch.serialization.safe_globals([getattr]):
            torch.load({path!r})
    ''')
    env = {
        k: v
        for k, v in os.environ.items() if not k.startswith('TORCH_FORCE_')
    }
    proc = subprocess.run([sys.executable, '-c', code],
                          env=env,
                          capture_output=True,
                          text=True)
    if proc.returncode != 0 and 'UnpicklingError' in proc.stderr:
        pytest.skip('this torch refuses the gadget even with getattr')
    assert proc.returncode == 0, proc.stderr
    assert osp.exists(marker)


def test_checkpoint_loads_from_bytes():
    """Runner checkpoints also load from memory (mmengine's http/ceph
    loaders pass a buffer)."""
    buf = io.BytesIO()
    hub = HistoryBuffer()
    hub.update(1.5)
    torch.save({'hub': hub, 'eta': np.float64(2.0)}, buf)
    buf.seek(0)
    loaded = torch.load(buf)
    assert loaded['hub'].current() == 1.5 and loaded['eta'] == 2.0
