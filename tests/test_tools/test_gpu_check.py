"""tools/gpu_check.sh: the dry run on the CPU writes a report whose every
step passed, a machine without CUDA gets one line and exit status 2, the
focal-loss shim of the check equals the focal loss written out, and the
training step catches a resume whose losses differ."""
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from tool_loader import load_tool
from tools_testkit import REPO_ROOT, tool_env

# The sections of a report, in order; the SDPA tool may not exist yet.
SECTIONS = ('Install', 'Environment',
            'Mixed-precision training, checkpoint, exact resume',
            'Every CAT config gives every parameter a gradient',
            'One-process distributed launch (tools/dist_train.sh)',
            'Tests on cpu', 'Backbone benchmark', 'SDPA backends')


def _status(report: str, title: str) -> str:
    m = re.search(rf'^## {re.escape(title)}\n\nStatus: \*\*(\w+)\*\*',
                  report, re.M)
    assert m, f'no section {title!r} in the report'
    return m.group(1)


def test_dry_run_passes_every_step(tmp_path):
    out = tmp_path / 'report.md'
    proc = subprocess.run(
        ['bash', 'tools/gpu_check.sh', '--device', 'cpu', '--out', str(out),
         '--work-dir', str(tmp_path / 'work')],
        cwd=REPO_ROOT, env=tool_env(PYTHON=sys.executable),
        capture_output=True, text=True, timeout=1500)
    report = out.read_text()
    assert proc.returncode == 0, proc.stderr[-3000:] + report[-6000:]
    assert report.startswith('# GPU check (dry run on the CPU)')
    assert 'These are no GPU figures' in report
    for title in SECTIONS:
        allowed = ('pass', 'missing') if title == 'SDPA backends' else (
            'pass', )
        assert _status(report, title) in allowed, report
    # both demos trained, resumed from the middle and repeated the losses
    for demo in ('fcos', 'sem-fpn'):
        row = re.search(rf'^\| {demo} \| bfloat16 \| 4 \| .*$', report, re.M)
        assert row, report
        cells = [c.strip() for c in row.group(0).strip('|').split('|')]
        assert cells[4] == 'yes' and cells[6] == '3-4' and cells[7] == 'yes'
    # the benchmark's table and the commands are in the report
    assert '| 64x64 | fp32 | CAT-S (mmcat) |' in report
    assert 'tools/analysis_tools/benchmark_backbones.py --device cpu' in report


def test_without_cuda_one_line_and_exit_2(tmp_path):
    out = tmp_path / 'report.md'
    proc = subprocess.run(
        ['bash', 'tools/gpu_check.sh', '--out', str(out), '--work-dir',
         str(tmp_path / 'work')],
        cwd=REPO_ROOT,
        env=tool_env(PYTHON=sys.executable, CUDA_VISIBLE_DEVICES=''),
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert 'no CUDA device' in proc.stderr and '--device cpu' in proc.stderr
    assert not out.exists()


def test_focal_loss_shim_is_the_written_out_formula():
    """With ``tools/gpu_check_env`` on the path and an mmcv without CUDA
    ops, mmdet's focal loss calls the shim, which gives the focal loss of
    mmcv's kernel (class indices, index C the background)."""
    code = '''
import json, torch, mmdet.models.losses.focal_loss as fl
from mmcv.ops import get_compiling_cuda_version
torch.manual_seed(0)
pred = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
target = torch.tensor([0, 1, 2, 3, 3, 1, 0])  # 3: background
loss = fl._sigmoid_focal_loss(pred, target, 2.0, 0.25, None, 'none')
p = pred.sigmoid()
t = torch.nn.functional.one_hot(target, 4)[:, :3].double()
ref = -(0.25 * t * (1 - p) ** 2 * p.log()
        + 0.75 * (1 - t) * p ** 2 * (1 - p).log())
loss.sum().backward()
print(json.dumps(dict(
    shim=fl._sigmoid_focal_loss.__module__, cuda=get_compiling_cuda_version(),
    diff=(loss - ref).abs().max().item(), shape=list(loss.shape),
    grad=bool(pred.grad.abs().sum() > 0))))
'''
    env = tool_env()
    env['PYTHONPATH'] = os.pathsep.join(
        [osp.join(REPO_ROOT, 'tools', 'gpu_check_env'), env['PYTHONPATH']])
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    if got['cuda'] != 'not available':
        pytest.skip('this mmcv has CUDA ops: the shim stays out')
    assert got['shim'] == 'sitecustomize'
    assert got['shape'] == [7, 3] and got['diff'] < 1e-12 and got['grad']


def _fake_run(work_dir, losses, scales=None):
    """A training work dir: scalars.json with ``losses`` (iteration ->
    loss) and checkpoints with the loss scale of ``scales``."""
    vis = work_dir / '20260101_000000' / 'vis_data'
    vis.mkdir(parents=True)
    with open(vis / 'scalars.json', 'w') as f:
        for it, loss in losses.items():
            f.write(json.dumps(dict(loss=loss, loss_cls=loss / 2, lr=1e-3,
                                    iter=it, step=it)) + '\n')
    for it, scale in (scales or {}).items():
        torch.save(dict(optimizer=dict(loss_scaler=dict(scale=scale))),
                   work_dir / f'iter_{it}.pth')


def test_training_row_catches_a_resume_that_differs(tmp_path):
    check = load_tool('tools/gpu_check.py')
    ctx = check.Check.__new__(check.Check)
    ctx.profile = check.PROFILES['cpu']  # 4 steps, checkpoint at 2
    done = check.Result(0, '', 1.)
    losses = {1: 2.0, 2: 1.5, 3: 1.25, 4: 1.0}

    def row(case, full, resumed, scales, nondeterministic=None):
        run = check.TrainRun('fcos', 'float16', 'cfg.py', str(tmp_path / case),
                             nondeterministic)
        _fake_run(tmp_path / case / 'full', full, scales)
        _fake_run(tmp_path / case / 'resumed', resumed)
        return check._training_row(ctx, run, done, done)

    text, problems = row('same', losses, {3: 1.25, 4: 1.0},
                         {2: 65536., 4: 65536.})
    assert problems == [] and '| yes |' in text
    assert '2: 65536, 4: 65536' in text and '| 3-4 |' in text
    _, problems = row('other', losses, {3: 1.25, 4: 1.0 + 1e-6},
                      {2: 65536., 4: 65536.})
    assert len(problems) == 1 and 'differ' in problems[0]
    # no deterministic kernel: the difference is reported, not a failure
    text, problems = row('nondet', losses, {3: 1.25, 4: 1.0 + 1e-6},
                         {2: 65536., 4: 65536.}, 'upsample_bilinear2d')
    assert problems == [] and 'not deterministic (no (max diff' in text
    # validation must stay off (no NMS on CUDA with the check's mmcv)
    run = check.TrainRun('fcos', 'float16', 'cfg.py', str(tmp_path / 'same'))
    validated = check.Result(0, 'Iter(val) [1/2]  eta: 0:00:01', 1.)
    _, problems = check._training_row(ctx, run, validated, done)
    assert problems == ['validation ran (it must be off: no NMS on CUDA)']
    _, problems = row('nan', {1: 2.0, 2: float('nan'), 3: 1.0, 4: 1.0},
                      {3: 1.0, 4: 1.0}, {2: 65536., 4: 8.})
    assert any('not finite' in p for p in problems)
    assert any('loss scale fell' in p for p in problems)


def test_install_uses_the_prepared_folder_and_hides_cuda(tmp_path,
                                                         monkeypatch):
    """Where the stack is missing: the wheels, then mmcv's source built with
    CUDA hidden (its CPU ops), both from the prepared folder only."""
    check = load_tool('tools/gpu_check.py')
    prepared = tmp_path / 'prepared'
    (prepared / 'wheels').mkdir(parents=True)
    (prepared / 'sdist').mkdir()
    for name in ('addict-2.4.0-py3-none-any.whl',
                 'mmdet-3.3.0-py3-none-any.whl'):
        (prepared / 'wheels' / name).write_text('')
    (prepared / 'sdist' / 'mmcv-2.1.0.tar.gz').write_text('')
    monkeypatch.setattr(check, 'SITE', str(tmp_path / 'site'))
    monkeypatch.setattr(sys, 'path', list(sys.path))
    ctx = check.Check.__new__(check.Check)
    ctx.profile, ctx.prepared = check.PROFILES['cuda'], str(prepared)
    ctx.env, ctx.deadline = {'PYTHONPATH': ''}, float('inf')
    calls = []

    def run(cmd, timeout, env=None):
        calls.append((cmd, env))
        if '-c' not in cmd:
            return check.Result(0, '', 1.)
        if len(calls) == 1:  # the stack is missing at first
            return check.Result(1, 'ModuleNotFoundError: mmcv', 1.)
        return check.Result(0, 'VERSIONS ' + json.dumps(check._pins()), 1.)

    ctx.run = run
    sec = check.step_install(ctx)
    assert sec.status == 'pass', sec.lines
    (wheels, wheels_env), (mmcv, mmcv_env) = calls[1:3]
    for cmd in (wheels, mmcv):
        assert cmd[1:4] == ['-m', 'pip', 'install'] and '--no-index' in cmd
        assert cmd[cmd.index('--target') + 1] == str(tmp_path / 'site')
    assert [osp.basename(w) for w in wheels if w.endswith('.whl')] == [
        'addict-2.4.0-py3-none-any.whl', 'mmdet-3.3.0-py3-none-any.whl']
    assert mmcv[-1] == str(prepared / 'sdist' / 'mmcv-2.1.0.tar.gz')
    assert '--no-build-isolation' in mmcv and wheels_env is None
    assert mmcv_env['CUDA_VISIBLE_DEVICES'] == '' and \
        mmcv_env['FORCE_CUDA'] == '0' and mmcv_env['MMCV_WITH_OPS'] == '1'
    assert str(tmp_path / 'site') in ctx.env['PYTHONPATH'].split(os.pathsep)
