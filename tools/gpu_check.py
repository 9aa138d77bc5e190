"""The GPU check: mmcat's device-dependent checks in one run, written to one
Markdown report (each section with the commands that produced it).

    bash tools/gpu_check.sh --prepare     # with PyPI: fill .gpu_check/
    bash tools/gpu_check.sh               # on a CUDA machine: docs/gpu.md
    bash tools/gpu_check.sh --device cpu --out FILE.md   # the dry run

Steps, each a function below, each command under a time limit, all of them
under one overall limit:

1. install: the OpenMMLab stack from the prepared folder only (pip
   ``--no-index``), mmcv built with its CPU ops (no mmcv op ever sees a CUDA
   tensor here; ``tools/gpu_check_env/sitecustomize.py`` gives MMDetection's
   focal loss its PyTorch formula on CUDA); skipped when the pinned stack
   already imports;
2. environment: GPU, driver, torch, CUDA, cuDNN, package versions;
3. mixed-precision training of the FCOS and Semantic FPN CAT demos (float16
   and bfloat16 on CUDA, bfloat16 on the CPU), validation off: finite
   losses, the loss scale, checkpoints, ``--resume`` from the middle, and a
   resumed run's losses equal to the uninterrupted run's (deterministic
   kernels, ``CUBLAS_WORKSPACE_CONFIG=:4096:8``);
4. a one-process ``tools/dist_train.sh`` launch (NCCL; gloo on the CPU);
5. every parameter of every CAT config gets a gradient on the device;
6. the tests that take the ``device`` fixture, and the random-state /
   resume tests (the dry run only collects them: CI runs them anyway);
7. ``benchmark_backbones.py``: CAT-S, its transcription, Swin-T, R-50;
8. the SDPA backend table of ``sdpa_backends.py`` ('missing' when absent).

The dry run (``--device cpu``) runs the same steps at toy sizes, to test the
check itself; its figures are no GPU figures. Exit status: 0 when no step
failed, 1 when one did (the report is written all the same), 2 when CUDA is
missing without ``--device cpu``.
"""
import argparse
import datetime
import glob
import json
import math
import os
import os.path as osp
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
ENV_DIR = osp.join(REPO, 'tools', 'gpu_check_env')
SITE = osp.join(REPO, '.gpu_check_site')
PINS = ('mmengine', 'mmcv', 'mmdet', 'mmsegmentation')
DEMOS = (('fcos', 'configs/demo/fcos_cat_demo.py', 'coco_demo'),
         ('sem-fpn', 'configs/demo/sem-fpn_cat_demo.py',
          'ade_demo/ADEChallengeData2016'))
RNG_RESUME_TESTS = ('tests/test_engine/test_rng_state.py',
                    'tests/test_tools/test_resume_after_kill.py')
PARAM_TEST = 'tests/test_configs/test_cat_configs_use_every_parameter.py'
SDPA_TOOL = 'tools/analysis_tools/sdpa_backends.py'
BENCH_TOOL = 'tools/analysis_tools/benchmark_backbones.py'


@dataclass
class Profile:
    """The sizes of one mode of the check: the GPU run or the dry run."""
    device: str
    time_limit_s: float
    train_steps: int
    ckpt_interval: int
    amp_dtypes: Tuple[str, ...]
    train_batch: Optional[int]  # None: the demo config's
    num_images: int
    parallel_runs: int
    dist_steps: int
    run_device_tests: bool  # False: collect them only
    param_filter: str
    bench_args: Tuple[str, ...]
    sdpa_args: Tuple[str, ...]
    step_limits: Dict[str, float]  # each step's own limit, seconds


PROFILES = {
    'cuda': Profile(
        device='cuda', time_limit_s=450, train_steps=100, ckpt_interval=50,
        amp_dtypes=('float16', 'bfloat16'), train_batch=None, num_images=64,
        parallel_runs=4, dist_steps=10, run_device_tests=True,
        param_filter='cuda',
        bench_args=('--models', 'cat_s,ref_s,swin_t,r50', '--sizes',
                    '800x1344', '--batch', '2', '--dtypes', 'fp32,fp16,bf16',
                    '--warmup', '2', '--repeats', '5'),
        sdpa_args=('--models', 'cat_s', '--cpsa-num-heads', '1,7',
                   '--dtypes', 'fp32,fp16,bf16', '--size', '800x1344',
                   '--batch', '2'),
        step_limits=dict(install=330, environment=60, training=240,
                         parameters=120, distributed=120, tests=150,
                         benchmark=180, sdpa=120)),
    'cpu': Profile(
        device='cpu', time_limit_s=1200, train_steps=4, ckpt_interval=2,
        amp_dtypes=('bfloat16', ), train_batch=2, num_images=8,
        parallel_runs=2, dist_steps=2, run_device_tests=False,
        param_filter='cpu and demo',
        bench_args=('--models', 'cat_s,ref_s,swin_t,r50', '--sizes', '64x64',
                    '--batch', '1', '--dtypes', 'fp32', '--warmup', '0',
                    '--repeats', '1', '--gemm-size', '256', '--no-memory'),
        sdpa_args=('--models', 'cat_s', '--cpsa-num-heads', '1,7',
                   '--dtypes', 'fp32', '--size', '224x224', '--batch', '1'),
        # a shared 2-core CI machine can be several times slower than idle
        step_limits=dict(install=120, environment=120, training=600,
                         parameters=300, distributed=300, tests=300,
                         benchmark=300, sdpa=300)),
}


@dataclass
class Section:
    """One step's part of the report."""
    title: str
    status: str = 'pass'  # pass | fail | missing
    commands: List[str] = field(default_factory=list)
    lines: List[str] = field(default_factory=list)
    seconds: float = 0.

    def fail(self, why: str) -> None:
        self.status = 'fail'
        self.lines.append(f'**fail**: {why}')


@dataclass
class Result:
    """A finished command."""
    rc: int
    output: str
    seconds: float
    timed_out: bool = False

    def tail(self, n: int = 25) -> str:
        return '\n'.join(self.output.strip().splitlines()[-n:])


class Check:
    """Runs the steps' commands with the check's environment and limits."""

    def __init__(self, profile: Profile, work_dir: str,
                 prepared: str) -> None:
        self.profile = profile
        self.work_dir = work_dir
        self.prepared = prepared
        self.deadline = time.monotonic() + profile.time_limit_s
        self.env = self._environment()

    def _environment(self) -> Dict[str, str]:
        """PYTHONPATH: the focal-loss shim, the repository, the installed
        stack; PATH: ``python`` is this interpreter, its folder's tools
        (ninja, torchrun) first."""
        env = dict(os.environ, PYTHONUNBUFFERED='1',
                   MMCAT_ATOMIC_FSYNC='0')
        paths = [ENV_DIR, REPO] + ([SITE] if osp.isdir(SITE) else [])
        env['PYTHONPATH'] = os.pathsep.join(
            paths + [p for p in env.get('PYTHONPATH', '').split(os.pathsep)
                     if p])
        shim = osp.join(self.work_dir, 'bin')
        os.makedirs(shim, exist_ok=True)
        for name in ('python', 'python3'):
            # a script, not a link: a venv's python finds its packages
            # through the path it is started by
            path = osp.join(shim, name)
            with open(path, 'w') as f:
                f.write(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} '
                        '"$@"\n')
            os.chmod(path, 0o755)
        env['PATH'] = os.pathsep.join(
            [shim, osp.dirname(sys.executable), env.get('PATH', '')])
        if self.profile.device == 'cpu':
            env['CUDA_VISIBLE_DEVICES'] = ''
        return env

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def limit(self, step: str) -> float:
        return max(1., min(self.profile.step_limits[step],
                           self.remaining()))

    def run(self, cmd: Sequence[str], timeout: float,
            env: Optional[Dict[str, str]] = None) -> Result:
        """Run ``cmd`` in the repository; killed (with its children) after
        ``timeout`` seconds."""
        t0 = time.monotonic()
        proc = subprocess.Popen(
            list(cmd), cwd=REPO, env={**self.env, **(env or {})},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            errors='replace', start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            _kill(proc)
            out, _ = proc.communicate()
            timed_out = True
        return Result(proc.returncode if not timed_out else 124, out or '',
                      time.monotonic() - t0, timed_out)

    def run_many(self, cmds: Sequence[Sequence[str]], timeout: float,
                 env: Optional[Dict[str, str]] = None) -> List[Result]:
        """Run the commands, ``profile.parallel_runs`` at a time; each is
        killed at the common ``timeout``."""
        t0 = time.monotonic()
        results: List[Optional[Result]] = [None] * len(cmds)
        running: Dict[int, Tuple[subprocess.Popen, str, float]] = {}
        todo = list(range(len(cmds)))
        while todo or running:
            while todo and len(running) < self.profile.parallel_runs:
                i = todo.pop(0)
                log = tempfile.NamedTemporaryFile(
                    'w+', dir=self.work_dir, suffix='.log', delete=False)
                proc = subprocess.Popen(
                    list(cmds[i]), cwd=REPO, env={**self.env, **(env or {})},
                    stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True)
                log.close()
                running[i] = (proc, log.name, time.monotonic())
            time.sleep(0.2)
            for i, (proc, log, start) in list(running.items()):
                finished = proc.poll() is not None
                late = not finished and time.monotonic() - t0 > timeout
                if not finished and not late:
                    continue
                if late:
                    _kill(proc)
                proc.wait()
                with open(log, errors='replace') as f:
                    out = f.read()
                results[i] = Result(124 if late else proc.returncode, out,
                                    time.monotonic() - start, late)
                del running[i]
        return results


def _kill(proc: subprocess.Popen) -> None:
    """Kill ``proc`` and the processes it started (its own session)."""
    try:
        os.killpg(proc.pid, 9)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _cmdline(cmd: Sequence[str], env: Optional[Dict[str, str]] = None
             ) -> str:
    """``cmd`` as one shell line, repository paths relative."""
    prefix = ' '.join(f'{k}={shlex.quote(v)}' for k, v in (env or {}).items())
    words = [osp.relpath(w, REPO) if osp.isabs(w) and w.startswith(REPO)
             else w for w in cmd]
    words = ['python' if w == sys.executable else w for w in words]
    return (prefix + ' ' if prefix else '') + ' '.join(
        shlex.quote(w) for w in words)


def _code_block(text: str, lang: str = '') -> List[str]:
    return ['```' + lang, text.rstrip(), '```']


def _pytest_summary(output: str) -> str:
    """The last summary line of a pytest run ('3 passed, 1 skipped in
    2.0s'), or ''."""
    found = re.findall(r'^=*\s*(\d+(?:/\d+)? (?:passed|failed|error|skipped|'
                       r'deselected|xfailed|tests? collected)[^\n]*?)\s*=*$',
                       output, re.M)
    return found[-1] if found else ''


# --------------------------------------------------------------- the steps

def step_install(check: Check) -> Section:
    """The pinned OpenMMLab stack: present already, or installed from the
    prepared folder (wheels, then mmcv built with its CPU ops)."""
    sec = Section('Install')
    probe = [sys.executable, '-c', _VERSIONS_CODE]
    sec.commands.append(_cmdline(probe))
    found = _versions(check.run(probe, 60))
    pins = _pins()
    if found and all(found.get(k) == v for k, v in pins.items()):
        sec.lines.append('The pinned stack imports already (mmcv with ops): '
                         + ', '.join(f'{k} {v}' for k, v in found.items()))
        return sec
    if check.profile.device == 'cpu':
        sec.fail(f'the pinned stack does not import here ({found}); the '
                 'dry run uses what is installed: run tools/install_deps.sh')
        return sec
    wheels = sorted(glob.glob(osp.join(check.prepared, 'wheels', '*.whl')))
    sdists = glob.glob(osp.join(check.prepared, 'sdist', 'mmcv-*.tar.gz'))
    if not wheels or not sdists:
        sec.fail(f'nothing prepared in {check.prepared}: run '
                 '`bash tools/gpu_check.sh --prepare` on a machine with PyPI '
                 'and carry the folder')
        return sec
    pip = [sys.executable, '-m', 'pip', 'install', '--disable-pip-version-'
           'check', '--no-index', '--no-deps', '--no-compile', '--target',
           SITE, '--upgrade']
    os.makedirs(SITE, exist_ok=True)
    sys.path.insert(0, SITE)  # reading checkpoints needs mmengine
    check.env['PYTHONPATH'] = os.pathsep.join(
        [ENV_DIR, REPO, SITE, check.env['PYTHONPATH']])
    steps = [(f'{len(wheels)} wheels', pip + wheels, None),
             # CUDA hidden: mmcv's setup.py builds CUDA ops when
             # torch.cuda.is_available() (or FORCE_CUDA=1), CPU ops otherwise.
             (f'{osp.basename(sdists[0])}, CPU ops',
              pip + ['--no-build-isolation', sdists[0]],
              dict(CUDA_VISIBLE_DEVICES='', FORCE_CUDA='0', MMCV_WITH_OPS='1',
                   MAX_JOBS=str(os.cpu_count() or 4)))]
    for label, cmd, env in steps:
        sec.commands.append(_cmdline(cmd, env))
        res = check.run(cmd, check.limit('install'), env)
        sec.lines.append(f'- {label}: exit {res.rc} in {res.seconds:.0f} s')
        if res.rc != 0:
            sec.fail('timed out' if res.timed_out else 'pip failed')
            sec.lines += _code_block(res.tail(40))
            return sec
    found = _versions(check.run(probe, 60))
    sec.lines.append('Installed: ' + ', '.join(
        f'{k} {v}' for k, v in (found or {}).items()))
    if not found or any(found.get(k) != v for k, v in pins.items()):
        sec.fail(f'the stack does not import as pinned: {found} vs {pins}')
    return sec


_VERSIONS_CODE = (
    'import json, mmengine, mmcv, mmcv.ops, mmdet, mmseg; '
    'print("VERSIONS " + json.dumps(dict(mmengine=mmengine.__version__, '
    'mmcv=mmcv.__version__, mmdet=mmdet.__version__, '
    'mmsegmentation=mmseg.__version__)))')


def _versions(res: Result) -> Optional[Dict[str, str]]:
    m = re.search(r'^VERSIONS (.*)$', res.output, re.M)
    return json.loads(m.group(1)) if m and res.rc == 0 else None


def _pins() -> Dict[str, str]:
    """requirements/openmmlab.txt's pins."""
    with open(osp.join(REPO, 'requirements', 'openmmlab.txt')) as f:
        pins = dict(re.findall(r'^([\w-]+)==([\w.]+)', f.read(), re.M))
    return {k: pins[k] for k in PINS}


_ENV_CODE = r'''
import json, os, platform, torch, mmengine, mmcv, mmdet, mmseg, mmcat
from mmcv.ops import get_compiling_cuda_version
cuda = torch.cuda.is_available()


def get(read, gpu=True):
    if gpu and not cuda:
        return None
    try:
        return read()
    except Exception as e:  # one unreadable item must not hide the rest
        return f'unknown ({type(e).__name__}: {e})'


info = {
    'python': platform.python_version(),
    'torch': torch.__version__,
    'CUDA (torch built with)': torch.version.cuda,
    'cuDNN': get(torch.backends.cudnn.version),
    'GPU': get(torch.cuda.get_device_name),
    'compute capability': get(lambda: '.'.join(
        map(str, torch.cuda.get_device_capability()))),
    'GPU memory GiB': get(lambda: round(
        torch.cuda.get_device_properties(0).total_memory / 2**30, 1)),
    'bf16 supported': get(torch.cuda.is_bf16_supported),
    'NCCL': get(lambda: '.'.join(map(str, torch.cuda.nccl.version()))),
    'mmengine': mmengine.__version__, 'mmcv': mmcv.__version__,
    'mmcv ops compiled with CUDA': get(get_compiling_cuda_version, False),
    'mmdet': mmdet.__version__, 'mmsegmentation': mmseg.__version__,
    'mmcat': mmcat.__version__,
    'CPUs': os.cpu_count(),
}
print('ENV ' + json.dumps(info))
'''


def step_environment(check: Check) -> Section:
    """Versions and the device."""
    sec = Section('Environment')
    cmd = [sys.executable, '-c', _ENV_CODE]
    sec.commands.append('python -c "<versions of torch, CUDA, cuDNN, the '
                        'OpenMMLab packages>"  # tools/gpu_check.py')
    res = check.run(cmd, check.limit('environment'))
    m = re.search(r'^ENV (.*)$', res.output, re.M)
    if res.rc != 0 or not m:
        sec.fail('the versions could not be read')
        sec.lines += _code_block(res.tail())
        return sec
    info = json.loads(m.group(1))
    if check.profile.device == 'cuda':
        smi = ['nvidia-smi', '--query-gpu=name,driver_version,memory.total',
               '--format=csv,noheader']
        sec.commands.append(' '.join(smi))
        if shutil.which('nvidia-smi'):
            out = check.run(smi, 30)
            info['nvidia-smi (name, driver, memory)'] = out.output.strip()
        if not info.get('GPU'):
            sec.fail('torch sees no GPU')
    sec.lines += ['| | |', '|---|---|'] + [
        f'| {k} | {v} |' for k, v in info.items() if v is not None]
    return sec


@dataclass
class TrainRun:
    """One demo in one autocast dtype: a full run and one resumed from its
    middle checkpoint. ``nondeterministic`` names the op that has no
    deterministic kernel on the device, when the deterministic run met one
    (both runs are then made without deterministic kernels)."""
    name: str
    dtype: str
    config: str
    base: str
    nondeterministic: Optional[str] = None

    @property
    def full_dir(self) -> str:
        return osp.join(self.base, 'full')

    @property
    def resumed_dir(self) -> str:
        return osp.join(self.base, 'resumed')

    def cmd(self, resumed: bool, ckpt_interval: int) -> List[str]:
        work = self.resumed_dir if resumed else self.full_dir
        cmd = [sys.executable, 'tools/train.py', self.config, '--amp',
               '--amp-dtype', self.dtype, '--work-dir', work]
        if self.nondeterministic:
            cmd += ['--cfg-options', 'randomness.deterministic=False']
        if resumed:
            cmd += ['--resume', osp.join(self.full_dir,
                                         f'iter_{ckpt_interval}.pth')]
        return cmd


#: torch's error for an op without a deterministic kernel on the device.
NONDETERMINISTIC = re.compile(
    r'(\w+) does not have a deterministic implementation')


def step_training(check: Check) -> Section:
    """Mixed-precision training of the demos, checkpoints, exact resume."""
    p = check.profile
    sec = Section('Mixed-precision training, checkpoint, exact resume')
    data = osp.join(check.work_dir, 'data')
    gen = [sys.executable, 'tools/generate_demo_data.py', '--out', data,
           '--task', 'all', '--num-train', str(p.num_images), '--num-val',
           '2', '--quiet']
    sec.commands.append(_cmdline(gen))
    res = check.run(gen, check.limit('training'))
    if res.rc != 0:
        sec.fail('the demo data could not be generated')
        sec.lines += _code_block(res.tail())
        return sec
    env = dict(CUBLAS_WORKSPACE_CONFIG=':4096:8')
    runs = [TrainRun(name, dtype, _write_demo_config(
                check, name, config, osp.join(data, root)),
                osp.join(check.work_dir, f'{name}_{dtype}'))
            for name, config, root in DEMOS for dtype in p.amp_dtypes]
    sec.commands += [_cmdline(runs[0].cmd(False, p.ckpt_interval), env),
                     _cmdline(runs[0].cmd(True, p.ckpt_interval), env),
                     f'# the same for each demo and dtype, '
                     f'{p.parallel_runs} at a time']
    t_end = time.monotonic() + check.limit('training')

    def left() -> float:
        return max(1., t_end - time.monotonic())

    full = check.run_many([r.cmd(False, p.ckpt_interval) for r in runs],
                          left(), env)
    # A demo that meets an op without a deterministic kernel trains again
    # without deterministic kernels: mixed precision and --resume are still
    # checked, the exact repetition cannot be.
    again = []
    for i, (run, res) in enumerate(zip(runs, full)):
        m = NONDETERMINISTIC.search(res.output) if res.rc != 0 else None
        if m:
            run.nondeterministic = m.group(1)
            shutil.rmtree(run.full_dir, ignore_errors=True)
            again.append(i)
    if again:
        sec.commands.append(
            '# where an op has no deterministic kernel: the same with '
            '--cfg-options randomness.deterministic=False')
        for i, res in zip(again, check.run_many(
                [runs[i].cmd(False, p.ckpt_interval) for i in again],
                left(), env)):
            full[i] = res
    resumed = check.run_many(
        [r.cmd(True, p.ckpt_interval) if a.rc == 0 else ['true']
         for r, a in zip(runs, full)], left(), env)
    sec.lines += [
        f'{p.train_steps} steps from scratch on generated data (batch '
        f'{p.train_batch or "of the config"}), validation off, '
        '`randomness.deterministic=True`, checkpoints every '
        f'{p.ckpt_interval} steps; the resumed run starts from iteration '
        f'{p.ckpt_interval} of the full one. The loss scale (float16\'s '
        'dynamic scaler) passes while it stays at least 1 and halves at most '
        'once from the first checkpoint to the last.', '',
        '| demo | amp dtype | steps | first / last loss | finite | loss '
        'scale at checkpoints | resumed iters | resumed = full | s full / '
        'resumed |', '|---|---|---|---|---|---|---|---|---|']
    with open(runs[0].config) as f:
        notes = [f'`{osp.basename(runs[0].config)}`, the config of the '
                 f'{runs[0].name} runs (the others alike):'] + _code_block(
                     f.read(), 'python')
    for run, a, b in zip(runs, full, resumed):
        row, problems = _training_row(check, run, a, b)
        sec.lines.append(row)
        for problem in problems:
            sec.fail(f'{run.name} {run.dtype}: {problem}')
        if run.nondeterministic:
            notes.append(f'{run.name} {run.dtype}: `{run.nondeterministic}` '
                         f'has no deterministic kernel on {p.device}, so '
                         'this demo cannot repeat a run exactly there; it '
                         'was trained without deterministic kernels.')
        for label, r in (('full', a), ('resumed', b)):
            if r.rc != 0 and r.output:
                notes += [f'{run.name} {run.dtype} {label} run, exit '
                          f'{r.rc}:'] + _code_block(r.tail(30))
    sec.lines += [''] + notes
    return sec


def _write_demo_config(check: Check, name: str, config: str,
                       data_root: str) -> str:
    """A config over ``config``: iteration-based, no validation, the
    generated data, per-step logs, deterministic kernels."""
    p = check.profile
    path = osp.join(check.work_dir, f'{name}_check.py')
    batch = f'batch_size={p.train_batch}, ' if p.train_batch else ''
    base = osp.relpath(osp.join(REPO, config), check.work_dir)
    with open(path, 'w') as f:
        f.write(f'''_base_ = {base!r}
train_dataloader = dict({batch}dataset=dict(data_root={data_root + '/'!r}))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop',
                 max_iters={p.train_steps})
val_cfg = None
val_dataloader = None
val_evaluator = None
test_cfg = None
test_dataloader = None
test_evaluator = None
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(by_epoch=False, interval={p.ckpt_interval},
                    max_keep_ckpts=-1))
log_processor = dict(by_epoch=False, window_size=1)
randomness = dict(seed=0, deterministic=True)
''')
    return path


def _scalars(work_dir: str) -> Dict[int, Dict[str, float]]:
    """iteration -> the loss terms logged at it (mmengine's scalars.json:
    ``loss``, ``loss_cls``, ``decode.loss_ce``, ...)."""
    logged: Dict[int, Dict[str, float]] = {}
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if 'iter' in rec:
                    logged[rec['iter']] = {k: v for k, v in rec.items()
                                           if 'loss' in k}
    return logged


def _loss_scales(work_dir: str) -> Dict[int, Optional[float]]:
    """iteration -> the dynamic loss scale saved in its checkpoint (None
    without a loss scaler)."""
    import torch
    scales = {}
    for path in glob.glob(osp.join(work_dir, 'iter_*.pth')):
        ckpt = torch.load(path, map_location='cpu', weights_only=False)
        scaler = ckpt.get('optimizer', {}).get('loss_scaler') or {}
        scale = scaler.get('scale')
        scales[int(re.findall(r'\d+', osp.basename(path))[0])] = (
            float(scale) if scale is not None else None)
    return dict(sorted(scales.items()))


def _training_row(check: Check, run: TrainRun, a: Result, b: Result
                  ) -> Tuple[str, List[str]]:
    """The table row of one demo and dtype, and what is wrong with it."""
    p = check.profile
    name, dtype = run.name, run.dtype
    full_dir, res_dir = run.full_dir, run.resumed_dir
    problems = []
    if a.rc != 0:
        problems.append('the full run ' + ('timed out' if a.timed_out
                                          else f'exited {a.rc}'))
    if a.rc == 0 and b.rc != 0:
        problems.append('the resumed run ' + ('timed out' if b.timed_out
                                             else f'exited {b.rc}'))
    if re.search(r'(Epoch|Iter)\(val\)', a.output + b.output):
        problems.append('validation ran (it must be off: no NMS on CUDA)')
    full, again = _scalars(full_dir), _scalars(res_dir)
    steps = sorted(full)
    if a.rc == 0 and steps != list(range(1, p.train_steps + 1)):
        problems.append(f'{len(steps)} steps logged, not {p.train_steps}')
    values = [v for it in steps for v in full[it].values()]
    finite = bool(values) and all(math.isfinite(v) for v in values)
    if a.rc == 0 and not finite:
        problems.append('a loss is not finite')
    scales = _loss_scales(full_dir) if osp.isdir(full_dir) else {}
    if a.rc == 0 and p.train_steps not in scales:
        problems.append(f'no checkpoint of iteration {p.train_steps}')
    known = [s for s in scales.values() if s is not None]
    if known and (min(known) < 1 or known[-1] < known[0] / 2):
        problems.append(f'the loss scale fell: {known}')
    resumed_iters = sorted(again)
    expected = list(range(p.ckpt_interval + 1, p.train_steps + 1))
    if a.rc == 0 and b.rc == 0 and resumed_iters != expected:
        problems.append(f'the resumed run logged iterations '
                        f'{resumed_iters[:3]}..., not {expected[:3]}...')
    diff = None
    if resumed_iters:
        diff = max((abs(full[it][k] - v) for it in resumed_iters
                    if it in full for k, v in again[it].items()
                    if k in full[it]), default=math.inf)
        if diff != 0 and not run.nondeterministic:
            problems.append(f'resumed losses differ from the uninterrupted '
                            f'run by up to {diff:.3g}')
    loss = [full[it].get('loss') for it in steps]
    first_last = (f'{loss[0]:.4f} / {loss[-1]:.4f}'
                  if loss and None not in (loss[0], loss[-1]) else '-')
    scale_text = ', '.join(f'{it}: {s:g}' if s is not None else f'{it}: none'
                           for it, s in scales.items()) or '-'
    span = (f'{resumed_iters[0]}-{resumed_iters[-1]}' if resumed_iters
            else '-')
    same = '-' if diff is None else ('yes' if diff == 0 else
                                     f'no (max diff {diff:.3g})')
    if run.nondeterministic:
        same = f'not deterministic ({same})'
    row = (f'| {name} | {dtype} | {len(steps)} | {first_last} | '
           f'{"yes" if finite else "no"} | {scale_text} | {span} | {same} | '
           f'{a.seconds:.0f} / {b.seconds:.0f} |')
    return row, problems


def step_parameters(check: Check) -> Section:
    """One training step of each CAT config on the device reaches every
    trainable parameter."""
    p = check.profile
    sec = Section('Every CAT config gives every parameter a gradient')
    cmd = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
           PARAM_TEST, '-k', p.param_filter]
    sec.commands.append(_cmdline(cmd))
    res = check.run(cmd, check.limit('parameters'))
    summary = _pytest_summary(res.output)
    sec.lines.append(f'pytest: {summary or "no summary"} (exit {res.rc})')
    if res.rc != 0:
        sec.fail('timed out' if res.timed_out else 'a config failed')
        sec.lines += _code_block(res.tail(40))
    return sec


def step_distributed(check: Check) -> Section:
    """A one-process ``dist_train.sh`` run of the FCOS demo."""
    p = check.profile
    sec = Section('One-process distributed launch (tools/dist_train.sh)')
    config = osp.join(check.work_dir, 'fcos_check.py')
    if not osp.isfile(config):
        sec.fail('the training step wrote no demo config')
        return sec
    work = osp.join(check.work_dir, 'dist')
    cmd = ['bash', 'tools/dist_train.sh', config, '1', '--work-dir', work,
           '--cfg-options', f'train_cfg.max_iters={p.dist_steps}',
           f'default_hooks.checkpoint.interval={p.dist_steps}']
    env = dict(PORT=str(_free_port()))
    sec.commands.append(_cmdline(cmd, env))
    res = check.run(cmd, check.limit('distributed'), env)
    logged = _scalars(work)
    backend = re.findall(r"backend['\"]?[:=]\s*['\"]?(\w+)", res.output)
    want = 'nccl' if p.device == 'cuda' else 'gloo'
    sec.lines.append(
        f'exit {res.rc} in {res.seconds:.0f} s; {len(logged)} steps logged '
        f'(of {p.dist_steps}); process-group backend: '
        f'{", ".join(sorted(set(backend))) or "not logged"}')
    values = [v for rec in logged.values() for v in rec.values()]
    if res.rc != 0:
        sec.fail('timed out' if res.timed_out else f'exit {res.rc}')
        sec.lines += _code_block(res.tail(40))
    elif len(logged) != p.dist_steps or not all(
            math.isfinite(v) for v in values):
        sec.fail('not every step logged a finite loss')
    elif 'Distributed training: True' not in res.output:
        sec.fail('the run did not train distributed')
    elif backend and want not in backend:
        sec.fail(f'backend {backend}, not {want}')
    return sec


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def device_test_files() -> List[str]:
    """Test files with a test function that takes ``device`` (the fixture
    of ``tests/conftest.py``, CPU and CUDA)."""
    found = []
    for path in sorted(glob.glob(osp.join(REPO, 'tests', '**', 'test_*.py'),
                                 recursive=True)):
        with open(path) as f:
            src = f.read()
        if re.search(r'def test_\w+\([^)]*\bdevice\b', src):
            found.append(osp.relpath(path, REPO))
    return found


def step_tests(check: Check) -> Section:
    """The device tests on the device, and the random-state / resume tests
    (collected only in the dry run: CI runs them)."""
    p = check.profile
    sec = Section(f'Tests on {p.device}')
    files = device_test_files()
    runs = [(files, ['-k', p.device]), (list(RNG_RESUME_TESTS), [])]
    extra = [] if p.run_device_tests else ['--collect-only']
    t_end = time.monotonic() + check.limit('tests')
    for paths, select in runs:
        if not paths:
            sec.lines.append('- no test takes the `device` fixture yet')
            continue
        cmd = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider'
               ] + extra + paths + select
        sec.commands.append(_cmdline(cmd))
        res = check.run(cmd, max(1., t_end - time.monotonic()))
        summary = _pytest_summary(res.output)
        sec.lines.append(f'- {len(paths)} files {" ".join(select)}: '
                         f'{summary or "no summary"} (exit {res.rc})')
        if res.rc != 0:
            sec.fail('timed out' if res.timed_out else 'tests failed')
            sec.lines += _code_block(res.tail(40))
    if not p.run_device_tests:
        sec.lines.append('(dry run: collected, not run; CI runs them on '
                         'the CPU)')
    return sec


def step_benchmark(check: Check) -> Section:
    """``benchmark_backbones.py`` on the device; every row measured."""
    p = check.profile
    sec = Section('Backbone benchmark')
    out = osp.join(check.work_dir, 'bench')
    cmd = [sys.executable, BENCH_TOOL, '--device', p.device,
           *p.bench_args, '--out', out]
    sec.commands.append(_cmdline(cmd))
    res = check.run(cmd, check.limit('benchmark'))
    if res.rc != 0 or not osp.isfile(out + '.json'):
        sec.fail('timed out' if res.timed_out else f'exit {res.rc}')
        sec.lines += _code_block(res.tail(40))
        return sec
    with open(out + '.json') as f:
        result = json.load(f)
    for row in result['rows']:
        what = f'{row["model"]} {row["dtype"]}'
        for mode in ('fwd', 'train'):
            if not row['times'].get(mode):
                sec.fail(f'{what}: no {mode} time '
                         f'({row["skipped"].get(mode, "not measured")})')
            if p.device == 'cuda' and row['memory'].get(mode, {}).get(
                    'peak_bytes') is None:
                sec.fail(f'{what}: no {mode} peak memory')
    wanted = {d for d in p.bench_args[p.bench_args.index('--dtypes') + 1]
              .split(',')}
    got = {row['dtype'] for row in result['rows']}
    if got != wanted:
        sec.fail(f'dtypes measured: {sorted(got)}, asked: {sorted(wanted)}')
    with open(out + '.md') as f:
        sec.lines += _demote(f.read())
    return sec


def step_sdpa(check: Check) -> Section:
    """The SDPA backend table (``sdpa_backends.py``), where the tool
    exists."""
    p = check.profile
    sec = Section('SDPA backends')
    out = osp.join(check.work_dir, 'sdpa.md')
    cmd = [sys.executable, SDPA_TOOL, *p.sdpa_args[:4], '--device',
           p.device, *p.sdpa_args[4:], '--out', out]
    sec.commands.append(_cmdline(cmd))
    if not osp.isfile(osp.join(REPO, SDPA_TOOL)):
        sec.status = 'missing'
        sec.lines.append(f'missing: {SDPA_TOOL} does not exist')
        return sec
    res = check.run(cmd, check.limit('sdpa'))
    if res.rc != 0:
        sec.fail('timed out' if res.timed_out else f'exit {res.rc}')
        sec.lines += _code_block(res.tail(40))
    elif osp.isfile(out):
        with open(out) as f:
            sec.lines += _demote(f.read())
    else:
        sec.lines += _code_block(res.tail(60))
    return sec


def _demote(markdown: str) -> List[str]:
    """A tool's Markdown with its headings two levels down."""
    return [('##' + line) if line.startswith('#') else line
            for line in markdown.rstrip().splitlines()]


STEPS = (step_install, step_environment, step_training, step_distributed,
         step_parameters, step_tests, step_benchmark, step_sdpa)
#: The order the steps run in: stages one after the other; the lanes of a
#: stage side by side (the GPU and the cores have room for both), each lane's
#: steps in turn. Timings come last, alone.
PLAN = (((step_install, ), ), ((step_environment, ), ),
        ((step_training, step_distributed), (step_parameters, step_tests)),
        ((step_benchmark, ), ), ((step_sdpa, ), ))


# ---------------------------------------------------------------- report

def render(sections: Sequence[Section], profile: Profile, argv: List[str],
           seconds: float) -> str:
    """The report: a summary table, then one section per step."""
    dry = profile.device == 'cpu'
    when = datetime.datetime.now(datetime.timezone.utc).strftime(
        '%Y-%m-%d %H:%M UTC')
    lines = ['# GPU check' + (' (dry run on the CPU)' if dry else ''), '',
             f"`{_cmdline(['bash', 'tools/gpu_check.sh'] + argv)}`", '',
             f'Written {when} in {seconds:.0f} s by `tools/gpu_check.py` '
             f'(steps and limits there).']
    if dry:
        lines += ['', '**Dry run**: the steps at toy sizes on the CPU, to '
                  'test the check itself. These are no GPU figures.']
    lines += ['', '| step | status | s |', '|---|---|---|']
    lines += [f'| {s.title} | {s.status} | {s.seconds:.0f} |'
              for s in sections]
    for s in sections:
        lines += ['', f'## {s.title}', '', f'Status: **{s.status}** '
                  f'({s.seconds:.0f} s)', '']
        lines += _code_block('\n'.join(s.commands), 'bash') + ['']
        lines += s.lines
    return '\n'.join(lines) + '\n'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[1:]))
    parser.add_argument('--device', choices=tuple(PROFILES), default='cuda',
                        help='cuda: the check (default); cpu: the dry run')
    parser.add_argument('--out', default=None,
                        help='the report (default: docs/gpu.md on CUDA, '
                        'work_dirs/gpu_check/report_cpu.md in the dry run)')
    parser.add_argument('--work-dir', default='work_dirs/gpu_check',
                        help='runs, data and logs (emptied first)')
    parser.add_argument('--prepared', default='.gpu_check',
                        help='the folder of `gpu_check.sh --prepare`')
    parser.add_argument('--time-limit', type=float, default=None,
                        help='seconds for all steps (default: 450 on CUDA, '
                        '1200 in the dry run)')
    parser.add_argument('--steps', default=None,
                        help='comma-separated subset of: ' + ', '.join(
                            s.__name__[5:] for s in STEPS))
    return parser.parse_args(argv)


def _run_lane(check: Check, steps: Sequence, done: Dict[str, Section]
              ) -> None:
    """Run ``steps`` one after the other into ``done`` (name -> section)."""
    for step in steps:
        name = step.__name__[5:]
        print(f'[gpu_check] {name} ({check.remaining():.0f} s left)',
              file=sys.stderr, flush=True)
        start = time.monotonic()
        if check.remaining() < 5:
            sec = Section(name)
            sec.fail('not run: the check\'s time limit was reached')
        else:
            try:
                sec = step(check)
            except Exception as e:  # a broken step must not lose the report
                sec = Section(name)
                sec.fail(f'{type(e).__name__}: {e}')
        sec.seconds = time.monotonic() - start
        print(f'[gpu_check] {name}: {sec.status} in {sec.seconds:.0f} s',
              file=sys.stderr, flush=True)
        done[step.__name__] = sec


def _cuda_available() -> bool:
    probe = subprocess.run(
        [sys.executable, '-c',
         'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'],
        capture_output=True)
    return probe.returncode == 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.device == 'cuda' and not _cuda_available():
        print('gpu_check: no CUDA device here; on a CPU run the dry run: '
              'bash tools/gpu_check.sh --device cpu --out FILE',
              file=sys.stderr)
        return 2
    profile = PROFILES[args.device]
    if args.time_limit is not None:
        profile.time_limit_s = args.time_limit
    out = args.out or ('docs/gpu.md' if args.device == 'cuda' else
                       osp.join(args.work_dir, 'report_cpu.md'))
    work_dir = osp.abspath(args.work_dir)
    shutil.rmtree(work_dir, ignore_errors=True)
    os.makedirs(work_dir)
    if SITE not in sys.path and osp.isdir(SITE):
        sys.path.insert(0, SITE)  # reading checkpoints needs mmengine
    check = Check(profile, work_dir, osp.abspath(args.prepared))
    chosen = set(args.steps.split(',')) if args.steps else None
    t0 = time.monotonic()
    done: Dict[str, Section] = {}
    for stage in PLAN:
        lanes = [[st for st in lane
                  if chosen is None or st.__name__[5:] in chosen]
                 for lane in stage]
        threads = [threading.Thread(target=_run_lane, args=(check, lane, done))
                   for lane in lanes if lane]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    sections = [done[st.__name__] for st in STEPS if st.__name__ in done]
    text = render(sections, profile, argv, time.monotonic() - t0)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        f.write(text)
    failed = [s.title for s in sections if s.status == 'fail']
    print(f'[gpu_check] wrote {out}; '
          + (f'failed: {", ".join(failed)}' if failed else 'no step failed'),
          file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
