"""Backbone benchmark: mmcat's CAT against the paper's straightforward
transcription (:class:`~mmcat.testing.cat_reference.ReferenceCAT`),
MMDetection's Swin-T and ResNet-50, in one run and on the same inputs.

What one run measures, for every input size:

* **latency** of a forward pass (``eval()``, ``no_grad``) and of a training
  step (``train()``, forward, ``sum of output means`` as the loss, backward;
  gradients set to None first, no optimizer step), as medians over repeats.
  Timed calls are interleaved round-robin over every (model, dtype) pair and
  a large GEMM of each dtype (the starting model rotates each round), so
  that machine noise, which on a shared CPU is large, hits all of them
  alike; ratios taken from one run are what to trust.
* **peak memory** of one forward and of one training step. On CPU each
  model runs in a fresh worker process; before each measured step the
  worker runs one warm-up step, frees what Python and glibc hold
  (``gc.collect`` + ``malloc_trim``), resets the kernel's peak-RSS mark
  (``/proc/self/clear_refs``) and reads ``VmHWM - VmRSS-before`` after the
  step: the resident memory the step needed on top of weights, input and
  warm caches, whatever allocated it (torch, oneDNN, MKL). A parent watchdog
  kills a worker whose RSS passes the limit. On CUDA,
  ``torch.cuda.max_memory_allocated`` growth.
* **multiply-adds** (attention products included, :mod:`mmcat.utils.flops`),
  the achieved rate (``MACs / latency``; a training step counts as 3x the
  forward MACs) and that rate over the machine's GEMM peak: the best rate of
  an ``n x n x n`` matmul (``n^3`` MACs) timed in the same rounds, with the
  same threads and dtype.
* **ratios** (against the reference, bf16 against fp32) are medians of the
  per-round ratios: both calls of a pair ran within one round, so slow drifts
  of the machine's load cancel.
* **the allocator** it ran with: glibc's default, which returns large blocks
  to the kernel so that big temporaries page-fault on every call, or glibc
  keeping freed memory (``--malloc retain``, :func:`retain_freed_memory`).
  Ratios against the transcription depend on it (docs/benchmark.md).
* **agreement** of every CAT with its reference, loaded with the same
  weights (``cat_converter`` + ``CAT.load_pretrained``): max abs difference
  of all outputs against the fp32 reference.

Everything here is library code; the command line is
``tools/analysis_tools/benchmark_backbones.py``.
"""
import ctypes
import gc
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import (Any, Callable, Dict, Iterable, List, Optional, Sequence,
                    Tuple)

import torch
import torch.nn as nn

from mmcat.utils.benchmark import Timing, cpu_name, synchronize

Size = Tuple[int, int]

# ------------------------------------------------------------- the models

#: CAT arch names of the mmcat models and their references.
_ARCH = {'t': 'tiny', 's': 'small', 'b': 'base'}
MODEL_NAMES = ('cat_t', 'cat_s', 'cat_b', 'ref_t', 'ref_s', 'ref_b', 'swin_t',
               'r50', 'cat_t_cp', 'cat_s_cp', 'cat_b_cp')
MODEL_LABELS = {
    'cat_t': 'CAT-T (mmcat)', 'cat_s': 'CAT-S (mmcat)',
    'cat_b': 'CAT-B (mmcat)', 'ref_t': 'CAT-T (reference)',
    'ref_s': 'CAT-S (reference)', 'ref_b': 'CAT-B (reference)',
    'swin_t': 'Swin-T (mmdet)', 'r50': 'ResNet-50 (mmdet)',
    # with gradient checkpointing (with_cp=True): lean training steps
    'cat_t_cp': 'CAT-T (mmcat, with_cp)', 'cat_s_cp': 'CAT-S (mmcat, with_cp)',
    'cat_b_cp': 'CAT-B (mmcat, with_cp)'
}
DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16,
          'fp16': torch.float16}
MODES = ('fwd', 'train')


def canonical_model_name(name: str) -> str:
    """'CAT-S', 'cat-s', 'cat_s' -> 'cat_s'; 'swin' -> 'swin_t';
    'resnet50' -> 'r50'."""
    key = name.strip().lower().replace('-', '_')
    key = {'swin': 'swin_t', 'resnet50': 'r50', 'resnet_50': 'r50',
           'r_50': 'r50'}.get(key, key)
    if key not in MODEL_NAMES:
        raise ValueError(f'unknown model {name!r}; choose from '
                         f'{", ".join(MODEL_NAMES)}')
    return key


def reference_of(name: str) -> Optional[str]:
    """The reference a model's ratios are taken against: ``cat_x -> ref_x``,
    a reference against itself, None for Swin-T and ResNet-50."""
    if name.startswith(('cat_', 'ref_')):
        return 'ref_' + name[4]
    return None


def reference_cat(arch: str, seed: int = 0) -> nn.Module:
    """The paper's transcription of CAT-``arch`` ('t'/'s'/'b'), detection
    flavour, filled with seeded random weights (norms included)."""
    from mmcat.models.backbones.cat import CAT
    from mmcat.testing.cat_reference import ReferenceCAT
    spec = CAT.arch_zoo[_ARCH[arch]]
    return ReferenceCAT(embed_dims=spec['embed_dims'], depths=spec['depths'],
                        num_heads=spec['num_heads']).randomize_(seed)


def build_backbone(name: str, seed: int = 0) -> nn.Module:
    """One benchmark model, in eval mode.

    CAT-T/S/B (mmcat, the arch's default drop-path) and their references
    carry the same seeded random weights, so their outputs can be compared;
    Swin-T and ResNet-50 are MMDetection's backbones as constructed.
    """
    name = canonical_model_name(name)
    if name.startswith('ref_'):
        model = reference_cat(name[4], seed)
    elif name.startswith('cat_'):
        from mmcat.models.backbones.cat import CAT
        model = CAT(arch=_ARCH[name[4]], with_cp=name.endswith('_cp'))
        ref = reference_cat(name[4], seed)
        missing, unexpected = model.load_pretrained(ref.state_dict(),
                                                    source='reference')
        if missing or unexpected:
            raise RuntimeError(f'{name}: the reference weights do not map '
                               f'one to one: missing {missing}, unexpected '
                               f'{unexpected}')
        del ref
    elif name == 'swin_t':
        from mmdet.models.backbones import SwinTransformer
        torch.manual_seed(seed)
        model = SwinTransformer(embed_dims=96, depths=(2, 2, 6, 2),
                                num_heads=(3, 6, 12, 24), window_size=7)
    else:
        from mmdet.models.backbones import ResNet
        torch.manual_seed(seed)
        model = ResNet(depth=50)
    model.eval()  # mmdet's train() overrides return None: no chaining
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------- capabilities


def bf16_supported(device: str = 'cpu') -> bool:
    """Whether bfloat16 autocast runs natively (CPU: AVX512-BF16 or AMX)."""
    if torch.device(device).type == 'cuda':
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    caps = getattr(torch.cpu, 'get_capabilities', lambda: {})()
    if caps:
        return bool(caps.get('avx512_bf16') or caps.get('amx_bf16'))
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def machine_summary(device: str = 'cpu', threads: Optional[int] = None
                    ) -> Dict[str, Any]:
    """Where the numbers come from."""
    info: Dict[str, Any] = dict(
        device=str(device), torch=torch.__version__,
        python=platform.python_version(), logical_cpus=os.cpu_count(),
        threads=threads if threads is not None else torch.get_num_threads())
    if torch.device(device).type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
        info['cuda'] = torch.version.cuda
    else:
        info['cpu'] = cpu_name()
        caps = getattr(torch.cpu, 'get_capabilities', lambda: {})()
        info['cpu_features'] = [k for k in ('avx512_f', 'avx512_bf16',
                                            'amx_bf16', 'amx_tile')
                                if caps.get(k)]
        info['load_average'] = list(os.getloadavg()) if hasattr(
            os, 'getloadavg') else None
        info['omp_wait_policy'] = os.environ.get('OMP_WAIT_POLICY')
    return info


# --------------------------------------------------------------- the work


def _as_list(outs: Any) -> List[torch.Tensor]:
    if isinstance(outs, torch.Tensor):
        return [outs]
    return list(outs)


def make_step(model: nn.Module, x: torch.Tensor, mode: str,
              dtype: str = 'fp32') -> Callable[[], None]:
    """A callable running one forward (``mode='fwd'``: eval, no_grad) or one
    training step (``'train'``: train mode, forward, backward of the sum of
    the outputs' means, gradients set to None first) in ``dtype`` (fp32, or
    autocast to bf16/fp16)."""
    if mode not in MODES:
        raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
    device_type = x.device.type
    cast = DTYPES[dtype]

    def autocast():
        return torch.autocast(device_type, dtype=cast,
                              enabled=dtype != 'fp32')

    if mode == 'fwd':

        def forward() -> None:
            model.eval()
            with torch.no_grad(), autocast():
                model(x)

        return forward

    def train_step() -> None:
        model.train()
        model.zero_grad(set_to_none=True)
        with autocast():
            outs = _as_list(model(x))
        loss = sum(o.float().mean() for o in outs)
        loss.backward()

    return train_step


def make_gemm(n: int, dtype: str, device: str = 'cpu'
              ) -> Tuple[Callable[[], None], int]:
    """An ``n x n x n`` matmul in ``dtype`` and its multiply-adds (n^3)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device, DTYPES[dtype])
    b = torch.randn(n, n, generator=g).to(device, DTYPES[dtype])
    out = torch.empty(n, n, device=device, dtype=DTYPES[dtype])

    def gemm() -> None:
        torch.mm(a, b, out=out)

    return gemm, n ** 3


def time_round_robin(fns: Dict[str, Callable[[], None]], repeats: int,
                     warmup: int = 1, device: Optional[str] = None,
                     log: Optional[Callable[[str], None]] = None,
                     cpu_times: Optional[Dict[str, List[float]]] = None
                     ) -> Dict[str, Timing]:
    """Time every callable once per round, ``warmup + repeats`` rounds.

    Within a round the callables run one after the other (round-robin), the
    first one rotating from round to round, so slow phases of a noisy machine
    spread over all of them. The first ``warmup`` rounds are not kept.
    ``cpu_times``, when given, receives each kept call's process CPU time
    (all threads): the work done, which time spent descheduled by other
    processes does not inflate.
    """
    if repeats < 1:
        raise ValueError(f'repeats must be >= 1, got {repeats}')
    names = list(fns)
    timings = {k: Timing() for k in names}
    dev = torch.device(device) if device is not None else None
    t_start = time.perf_counter()
    for r in range(warmup + repeats):
        start = r % len(names) if names else 0
        for k in names[start:] + names[:start]:
            synchronize(dev)
            c0, t0 = time.process_time(), time.perf_counter()
            fns[k]()
            synchronize(dev)
            if r >= warmup:
                timings[k].times.append(time.perf_counter() - t0)
                if cpu_times is not None:
                    cpu_times.setdefault(k, []).append(
                        time.process_time() - c0)
        if log is not None:
            kept = '' if r >= warmup else ' (warm-up)'
            log(f'  round {r + 1}/{warmup + repeats}{kept}, '
                f'{time.perf_counter() - t_start:.0f} s')
    return timings


def max_abs_diff(a: Any, b: Any) -> float:
    """Largest absolute difference over paired output tensors (fp32)."""
    la, lb = _as_list(a), _as_list(b)
    if len(la) != len(lb):
        raise ValueError(f'{len(la)} outputs against {len(lb)}')
    worst = 0.
    for x, y in zip(la, lb):
        if x.shape != y.shape:
            raise ValueError(f'shape {tuple(x.shape)} against '
                             f'{tuple(y.shape)}')
        worst = max(worst, (x.float() - y.float()).abs().max().item())
    return worst


def make_input(size: Size, batch: int, seed: int = 0,
               device: str = 'cpu') -> torch.Tensor:
    """The (batch, 3, H, W) input every model sees at this size."""
    g = torch.Generator().manual_seed(seed + 7919 * size[0] + size[1])
    return torch.randn(batch, 3, *size, generator=g).to(device)


# ------------------------------------------------------------ peak memory


def _proc_status_kb(field_name: str, pid: str = 'self') -> Optional[int]:
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith(field_name + ':'):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def rss_bytes(pid: str = 'self') -> Optional[int]:
    """Current resident set size (Linux), or None."""
    kb = _proc_status_kb('VmRSS', pid)
    return None if kb is None else kb * 1024


def peak_rss_bytes() -> int:
    """The peak-RSS mark of this process (``VmHWM``; ``ru_maxrss`` where
    /proc is missing)."""
    kb = _proc_status_kb('VmHWM')
    if kb is None:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb * 1024


def reset_peak_rss() -> bool:
    """Reset this process's peak-RSS mark to its current RSS (Linux >= 4.0:
    ``5`` to ``/proc/self/clear_refs``). Returns whether it worked."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        return False
    hwm, rss = _proc_status_kb('VmHWM'), _proc_status_kb('VmRSS')
    return hwm is not None and rss is not None and hwm <= rss + 1024


#: ``--malloc`` choices: glibc as it comes, or keeping freed memory.
MALLOC_MODES = ('default', 'retain')
#: glibc's mallopt parameters and the environment variables of the same.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_RETAIN_SETTINGS = (('MALLOC_MMAP_THRESHOLD_', _M_MMAP_THRESHOLD, 1 << 30),
                    ('MALLOC_TRIM_THRESHOLD_', _M_TRIM_THRESHOLD, 2**31 - 1))


def retain_freed_memory() -> str:
    """Make glibc keep freed memory for reuse, in this process (``mallopt``)
    and in the workers it starts (the ``MALLOC_*_`` variables).

    By default glibc serves every block above its mmap threshold (at most
    32 MB, adapted at run time) with a fresh ``mmap`` and returns heap tops
    above its trim threshold to the kernel, so a model whose temporaries are
    tens or hundreds of MB touches new pages, and zeroes them in the
    kernel, on every forward: the straightforward CAT-S at 800x1344 takes
    about 800,000 page faults per forward, mmcat's about 130,000. With
    this setting, as with jemalloc or tcmalloc (which PyTorch's CPU tuning
    guide recommends), both take none after the first forward.

    Returns:
        The settings, for the report.

    Raises:
        RuntimeError: not glibc (no ``mallopt``), or glibc refused a value.
    """
    try:
        mallopt = ctypes.CDLL('libc.so.6').mallopt
    except (OSError, AttributeError) as err:
        raise RuntimeError(
            f'--malloc retain needs glibc (mallopt): {err}; use --malloc '
            'default, or preload jemalloc/tcmalloc yourself') from err
    for env, param, value in _RETAIN_SETTINGS:
        if mallopt(param, ctypes.c_int(value)) != 1:
            raise RuntimeError(f'glibc refused mallopt({param}, {value})')
        os.environ[env] = str(value)
    return ', '.join(f'{env}={value}' for env, _, value in _RETAIN_SETTINGS)


def release_free_memory() -> None:
    """Collect garbage and give glibc's free heap pages back to the kernel,
    so that RSS is what is in use."""
    gc.collect()
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass


def measure_step_memory(step: Callable[[], None], warmup: int = 1
                        ) -> Dict[str, Any]:
    """Peak RSS growth of one call of ``step`` in this process.

    ``warmup`` untimed calls first; then free memory is released, the
    peak-RSS mark is reset, and the mark after the call minus the RSS before
    it is returned. Where the mark cannot be reset the result is a lower
    bound (``exact`` False): the growth above the process's earlier peak.
    """
    for _ in range(warmup):
        step()
    release_free_memory()
    before = rss_bytes() or 0
    exact = reset_peak_rss()
    floor = before if exact else max(before, peak_rss_bytes())
    step()
    peak = peak_rss_bytes()
    return dict(peak_bytes=max(peak - floor, 0), base_bytes=before,
                exact=exact)


def measure_cuda_memory(step: Callable[[], None], device: str,
                        warmup: int = 1) -> Dict[str, Any]:
    """Peak growth of ``torch.cuda.memory_allocated`` over one call."""
    for _ in range(warmup):
        step()
    torch.cuda.synchronize(device)
    gc.collect()
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    step()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    return dict(peak_bytes=peak - base, base_bytes=base, exact=True)


_WORKER_TAG = 'MMCAT_MEM '


def memory_worker_main(argv: Optional[Sequence[str]] = None) -> None:
    """Entry point of a memory worker process (see :func:`measure_memory`).

    Reads a JSON job (model, size, batch, seed, threads, warmup and a list of
    [dtype, mode] measurements) from ``argv[0]`` and prints one tagged JSON
    line per measurement as soon as it is done."""
    job = json.loads((argv or sys.argv[1:])[0])
    torch.set_num_threads(job['threads'])
    model = build_backbone(job['model'], job['seed'])
    x = make_input(tuple(job['size']), job['batch'], job['seed'])
    for dtype, mode in job['measurements']:
        print(_WORKER_TAG + json.dumps(dict(dtype=dtype, mode=mode,
                                            started=True)), flush=True)
        result = measure_step_memory(make_step(model, x, mode, dtype),
                                     job['warmup'])
        result.update(dtype=dtype, mode=mode)
        print(_WORKER_TAG + json.dumps(result), flush=True)


def available_memory_bytes() -> Optional[int]:
    """``MemAvailable`` from /proc/meminfo, or None."""
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def _package_root() -> str:
    import mmcat
    return os.path.dirname(os.path.dirname(os.path.abspath(mmcat.__file__)))


def measure_memory(model: str, size: Size, batch: int,
                   measurements: Sequence[Tuple[str, str]],
                   threads: int = 2, seed: int = 0, warmup: int = 1,
                   limit_bytes: Optional[int] = None,
                   timeout_s: Optional[float] = None
                   ) -> Dict[Tuple[str, str], Dict[str, Any]]:
    """Peak memory of one model at one size, measured in a fresh process.

    The worker runs the ``(dtype, mode)`` measurements one after the other
    (:func:`measure_step_memory` before each). A watchdog polls the worker's
    RSS and kills it once it passes ``limit_bytes``; that measurement is
    reported with ``over_limit`` and the rest go to a new worker.

    Returns:
        (dtype, mode) -> dict with ``peak_bytes`` (None when not measured),
        ``base_bytes``, ``exact``, ``over_limit``, ``error``.
    """
    pending = [tuple(m) for m in measurements]
    results: Dict[Tuple[str, str], Dict[str, Any]] = {}
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    env['PYTHONPATH'] = os.pathsep.join(
        [_package_root()] + [p for p in env.get('PYTHONPATH', '').split(
            os.pathsep) if p])
    code = ('from mmcat.utils.backbone_bench import memory_worker_main; '
            'memory_worker_main()')
    while pending:
        job = dict(model=model, size=list(size), batch=batch, seed=seed,
                   threads=threads, warmup=warmup,
                   measurements=[list(m) for m in pending])
        proc = subprocess.Popen(
            [sys.executable, '-c', code, json.dumps(job)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env)
        killed = {'why': None}
        peak_seen = {'rss': 0}

        def watch() -> None:
            t0 = time.monotonic()
            while proc.poll() is None:
                rss = rss_bytes(str(proc.pid)) or 0
                peak_seen['rss'] = max(peak_seen['rss'], rss)
                if limit_bytes is not None and rss > limit_bytes:
                    killed['why'] = 'over_limit'
                    proc.kill()
                    return
                if timeout_s is not None and \
                        time.monotonic() - t0 > timeout_s:
                    killed['why'] = 'timeout'
                    proc.kill()
                    return
                time.sleep(0.01)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        stderr_chunks: List[str] = []
        err_reader = threading.Thread(
            target=lambda: stderr_chunks.append(proc.stderr.read()),
            daemon=True)
        err_reader.start()
        current: Optional[Tuple[str, str]] = None
        for line in proc.stdout:
            if not line.startswith(_WORKER_TAG):
                continue
            msg = json.loads(line[len(_WORKER_TAG):])
            key = (msg['dtype'], msg['mode'])
            if msg.get('started'):
                current = key
                continue
            results[key] = dict(peak_bytes=msg['peak_bytes'],
                                base_bytes=msg['base_bytes'],
                                exact=msg['exact'], over_limit=False,
                                error=None)
            pending.remove(key)
            current = None
        proc.wait()
        watcher.join()
        err_reader.join()
        if not pending:
            break
        failed = current if current is not None else pending[0]
        if killed['why'] == 'over_limit':
            error = (f'RSS passed the limit of {limit_bytes / 2**30:.1f} '
                     f'GiB: killed')
        elif killed['why'] == 'timeout':
            error = f'no result within {timeout_s:.0f} s: killed'
        else:
            tail = ''.join(stderr_chunks).strip().splitlines()[-3:]
            error = f'worker exited with {proc.returncode}: ' + ' | '.join(
                tail)
        results[failed] = dict(peak_bytes=None, base_bytes=None, exact=False,
                               over_limit=killed['why'] == 'over_limit',
                               error=error)
        pending.remove(failed)
    return results


# -------------------------------------------------------------- the run


def parse_size(text: str) -> Size:
    """'800x1344' -> (800, 1344); '224' -> (224, 224)."""
    parts = text.lower().replace('*', 'x').split('x')
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f'bad size {text!r}: use HxW, e.g. 800x1344')
    if len(dims) == 1:
        dims = dims * 2
    if len(dims) != 2 or min(dims) < 1:
        raise ValueError(f'bad size {text!r}: use HxW, e.g. 800x1344')
    return dims[0], dims[1]


@dataclass
class BenchConfig:
    """Settings of one benchmark run (see the tool's ``--help``)."""
    models: Sequence[str] = MODEL_NAMES
    sizes: Sequence[Size] = ((224, 224), (512, 512), (800, 1344))
    batch: int = 1
    threads: int = 2
    repeats: int = 5
    warmup: int = 1
    dtypes: Sequence[str] = ('fp32', 'bf16')
    train: bool = True
    timing: bool = True
    memory: bool = True
    flops: bool = True
    check: bool = True
    gemm_size: int = 4096
    mem_limit_gb: float = 16.
    mem_warmup: int = 1
    seed: int = 0
    device: str = 'cpu'


@dataclass
class Row:
    """Results of one (size, dtype, model)."""
    size: Size
    dtype: str
    model: str
    params: int = 0
    macs: Optional[int] = None
    times: Dict[str, List[float]] = field(default_factory=dict)
    cpu_times: Dict[str, List[float]] = field(default_factory=dict)
    memory: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    max_abs_diff: Optional[float] = None
    skipped: Dict[str, str] = field(default_factory=dict)

    def median(self, mode: str) -> Optional[float]:
        t = self.times.get(mode)
        return statistics.median(t) if t else None

    def peak_bytes(self, mode: str) -> Optional[int]:
        return self.memory.get(mode, {}).get('peak_bytes')


def _mode_macs(row: Row, mode: str) -> Optional[int]:
    if row.macs is None:
        return None
    return row.macs * (3 if mode == 'train' else 1)


def run_benchmark(cfg: BenchConfig,
                  log: Callable[[str], None] = lambda s: print(
                      s, file=sys.stderr, flush=True)) -> Dict[str, Any]:
    """Run the benchmark; returns a JSON-able dict (see :func:`to_markdown`).
    """
    device = cfg.device
    is_cuda = torch.device(device).type == 'cuda'
    if not is_cuda:
        torch.set_num_threads(cfg.threads)
    models = [canonical_model_name(m) for m in cfg.models]
    notes: List[str] = []
    dtypes = []
    for d in cfg.dtypes:
        if d not in DTYPES:
            raise ValueError(f'unknown dtype {d!r}; choose from '
                             f'{", ".join(DTYPES)}')
        if d == 'bf16' and not bf16_supported(device):
            notes.append('bf16 skipped: no native bfloat16 on this device')
            continue
        if d == 'fp16' and not is_cuda:
            notes.append('fp16 autocast is measured on CUDA only')
            continue
        dtypes.append(d)
    modes = ['fwd'] + (['train'] if cfg.train else [])
    limit = int(cfg.mem_limit_gb * 2**30)
    avail = available_memory_bytes()
    if avail is not None:
        limit = min(limit, avail - 2**30)

    log(f'building {", ".join(models)}')
    zoo = {name: build_backbone(name, cfg.seed).to(device) for name in models}
    gemm = {d: make_gemm(cfg.gemm_size, d, device) for d in dtypes}
    gemm_times: Dict[str, List[float]] = {d: [] for d in dtypes}
    rows: List[Row] = []
    for size in cfg.sizes:
        size = tuple(size)
        x = make_input(size, cfg.batch, cfg.seed, device)
        size_rows = {(d, m): Row(size=size, dtype=d, model=m,
                                 params=count_parameters(zoo[m]))
                     for d in dtypes for m in models}
        # 1. memory, first: it also guards the in-process runs below
        if cfg.memory:
            for m in models:
                log(f'{size[0]}x{size[1]} memory: {m}')
                wanted = [(d, mode) for mode in modes for d in dtypes]
                if is_cuda:
                    got = {(d, mode): measure_cuda_memory(
                        make_step(zoo[m], x, mode, d), device, cfg.mem_warmup)
                        for d, mode in wanted}
                else:
                    got = measure_memory(m, size, cfg.batch, wanted,
                                         cfg.threads, cfg.seed,
                                         cfg.mem_warmup, limit)
                for (d, mode), res in got.items():
                    size_rows[(d, m)].memory[mode] = res
                    if res.get('error'):
                        size_rows[(d, m)].skipped[mode] = res['error']
                        log(f'  {m} {d} {mode}: {res["error"]}')
        # 2. multiply-adds (batch 1, traced, fp32) times the batch
        if cfg.flops:
            from mmcat.utils.flops import analyze_flops
            for m in models:
                if any(size_rows[(d, m)].skipped.get('fwd') for d in dtypes):
                    continue
                log(f'{size[0]}x{size[1]} multiply-adds: {m}')
                macs = analyze_flops(zoo[m], (x[:1], )).total * cfg.batch
                for d in dtypes:
                    size_rows[(d, m)].macs = int(macs)
        # 3. agreement with the fp32 reference
        if cfg.check:
            ref_out: Dict[str, List[torch.Tensor]] = {}
            for m in models:
                ref = reference_of(m)
                if not m.startswith('cat_') or ref not in zoo:
                    continue
                if size_rows.get(('fp32', ref)) is not None and \
                        size_rows[('fp32', ref)].skipped.get('fwd'):
                    continue
                log(f'{size[0]}x{size[1]} agreement: {m} vs {ref}')
                if ref not in ref_out:
                    with torch.no_grad():
                        ref_out[ref] = [o.float() for o in _as_list(
                            zoo[ref].eval()(x))]
                for d in dtypes:
                    with torch.no_grad(), torch.autocast(
                            torch.device(device).type, dtype=DTYPES[d],
                            enabled=d != 'fp32'):
                        out = zoo[m].eval()(x)
                    size_rows[(d, m)].max_abs_diff = max_abs_diff(
                        out, ref_out[ref])
            del ref_out
        # 4. latency, interleaved over (model, dtype) and the GEMMs
        if cfg.timing:
            for mode in modes:
                fns: Dict[str, Callable[[], None]] = {}
                for m in models:
                    for d in dtypes:
                        if size_rows[(d, m)].skipped.get(mode):
                            continue
                        fns[f'{m}|{d}'] = make_step(zoo[m], x, mode, d)
                for d in dtypes:
                    fns[f'gemm|{d}'] = gemm[d][0]
                log(f'{size[0]}x{size[1]} {mode} latency: '
                    f'{len(fns)} participants, {cfg.warmup} + {cfg.repeats} '
                    f'rounds')
                cpu: Dict[str, List[float]] = {}
                timings = time_round_robin(
                    fns, cfg.repeats, cfg.warmup,
                    device if is_cuda else None, log,
                    None if is_cuda else cpu)
                for key, timing in timings.items():
                    m, d = key.split('|')
                    if m == 'gemm':
                        gemm_times[d].extend(timing.times)
                    else:
                        size_rows[(d, m)].times[mode] = timing.times
                        if key in cpu:
                            size_rows[(d, m)].cpu_times[mode] = cpu[key]
                for model in zoo.values():
                    model.zero_grad(set_to_none=True)
                    model.eval()
        rows.extend(size_rows[(d, m)] for d in dtypes for m in models)

    gemm_summary = {}
    for d in dtypes:
        macs = gemm[d][1]
        times = gemm_times[d]
        if times:
            gemm_summary[d] = dict(
                n=cfg.gemm_size, calls=len(times),
                median_s=statistics.median(times), best_s=min(times),
                median_gmacs=macs / statistics.median(times) / 1e9,
                best_gmacs=macs / min(times) / 1e9)
    machine = machine_summary(device, None if is_cuda else cfg.threads)
    return dict(config=_jsonable(asdict(cfg)), machine=machine,
                gemm=gemm_summary, notes=notes,
                rows=[_jsonable(asdict(r)) for r in rows])


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def rows_from_result(result: Dict[str, Any]) -> List[Row]:
    """The :class:`Row` objects of a :func:`run_benchmark` result."""
    return [Row(**dict(r, size=tuple(r['size']))) for r in result['rows']]


def _cpu_ratio(a: Row, b: Optional[Row], mode: str) -> Optional[float]:
    if b is None:
        return None
    return paired_ratio(a.cpu_times.get(mode), b.cpu_times.get(mode))


# ------------------------------------------------------------ the table

#: (header, meaning) of the Markdown table's columns.
COLUMNS = (
    ('size', 'input H x W'),
    ('dtype', 'fp32, or autocast dtype'),
    ('model', ''),
    ('params M', 'parameters, millions'),
    ('GMACs', 'multiply-adds of one forward (attention products included)'),
    ('fwd ms', 'median forward latency'),
    ('fwd x ref', 'forward latency over the reference\'s (same arch, same '
     'dtype; median of per-round ratios)'),
    ('fwd CPU x ref', 'the same ratio in process CPU time (all threads; '
     'robust to time spent descheduled on a shared machine)'),
    ('bf16 speed-up', 'fp32 forward latency over this dtype\'s (median of '
     'per-round ratios)'),
    ('train ms', 'median training-step latency (forward + backward)'),
    ('train x ref', 'training-step latency over the reference\'s'),
    ('train CPU x ref', 'the same in process CPU time'),
    ('fwd GMAC/s', 'achieved multiply-adds per second, forward'),
    ('fwd % GEMM', 'that rate over the GEMM peak (best rate) of the same '
     'dtype'),
    ('train GMAC/s', 'achieved rate of the training step (3x forward MACs)'),
    ('train % GEMM', 'that rate over the GEMM peak'),
    ('fwd mem MB', 'peak memory growth of one forward'),
    ('train mem MB', 'peak memory growth of one training step'),
    ('train mem x ref', 'training-step peak memory over the reference\'s'),
    ('max abs diff vs ref', 'largest output difference from the fp32 '
     'reference with the same weights'),
)


def _fmt(value: Optional[float], spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '-'
    return format(value, spec)


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or b is None or b == 0:
        return None
    return a / b


def paired_ratio(a: Optional[Sequence[float]],
                 b: Optional[Sequence[float]]) -> Optional[float]:
    """Median over rounds of ``a[i] / b[i]`` (times of the same rounds);
    the ratio of the medians when the rounds do not pair up."""
    if not a or not b:
        return None
    if len(a) != len(b) or not all(b):
        return _ratio(statistics.median(a), statistics.median(b))
    return statistics.median(x / y for x, y in zip(a, b))


def table_rows(result: Dict[str, Any]) -> List[Dict[str, str]]:
    """One dict per table row, column header -> formatted cell."""
    rows = rows_from_result(result)
    by_key = {(r.size, r.dtype, r.model): r for r in rows}
    gemm = result.get('gemm', {})
    out = []
    for r in rows:
        ref = reference_of(r.model)
        ref_row = by_key.get((r.size, r.dtype, ref)) if ref else None
        fp32_row = by_key.get((r.size, 'fp32', r.model))
        g = gemm.get(r.dtype, {}).get('best_gmacs')
        cells = {}
        cells['size'] = f'{r.size[0]}x{r.size[1]}'
        cells['dtype'] = r.dtype
        cells['model'] = MODEL_LABELS.get(r.model, r.model)
        cells['params M'] = _fmt(r.params / 1e6, '.2f')
        cells['GMACs'] = _fmt(None if r.macs is None else r.macs / 1e9,
                              '.1f')
        for mode in MODES:
            t = r.median(mode)
            cells[f'{mode} ms'] = (_fmt(None if t is None else 1e3 * t,
                                        '.1f') if mode not in r.skipped
                                   else 'skipped')
            cells[f'{mode} x ref'] = _fmt(paired_ratio(
                r.times.get(mode),
                ref_row.times.get(mode) if ref_row else None), '.2f')
            cells[f'{mode} CPU x ref'] = _fmt(_cpu_ratio(r, ref_row, mode),
                                              '.2f')
            macs = _mode_macs(r, mode)
            rate = None if (macs is None or t is None) else macs / t / 1e9
            cells[f'{mode} GMAC/s'] = _fmt(rate, '.1f')
            cells[f'{mode} % GEMM'] = _fmt(
                None if rate is None or not g else 100 * rate / g, '.1f')
            peak = r.peak_bytes(mode)
            mem = r.memory.get(mode, {})
            text = _fmt(None if peak is None else peak / 2**20, '.0f')
            if mem.get('over_limit'):
                text = 'over limit'
            elif peak is not None and not mem.get('exact', True):
                text = '>=' + text
            cells[f'{mode} mem MB'] = text
        cells['bf16 speed-up'] = (_fmt(paired_ratio(
            fp32_row.times.get('fwd') if fp32_row else None,
            r.times.get('fwd')), '.2f') if r.dtype != 'fp32' else '-')
        cells['train mem x ref'] = _fmt(_ratio(
            r.peak_bytes('train'),
            ref_row.peak_bytes('train') if ref_row else None), '.2f')
        cells['max abs diff vs ref'] = _fmt(r.max_abs_diff, '.1e')
        out.append(cells)
    return out


def to_markdown(result: Dict[str, Any], command: Optional[str] = None
                ) -> str:
    """The run as Markdown: machine, settings, GEMM rates, the table, and
    the meaning of every column."""
    cfg, mach = result['config'], result['machine']
    lines = ['# Backbone benchmark', '']
    if command:
        lines += ['```', command, '```', '']
    where = mach.get('gpu') or mach.get('cpu')
    lines.append(f'- machine: {where}; {mach.get("logical_cpus")} logical '
                 f'CPUs; torch threads {mach.get("threads")}; torch '
                 f'{mach["torch"]}, Python {mach["python"]}')
    if mach.get('omp_wait_policy'):
        lines.append(f'- OMP_WAIT_POLICY: {mach["omp_wait_policy"]}')
    if mach.get('malloc'):
        lines.append(f'- allocator: {mach["malloc"]}')
    if mach.get('cpu_features'):
        lines.append(f'- CPU features: {", ".join(mach["cpu_features"])}')
    if mach.get('load_average'):
        lines.append('- load average at the end: ' + ', '.join(
            f'{v:.2f}' for v in mach['load_average']))
    lines.append(f'- batch {cfg["batch"]}; {cfg["warmup"]} warm-up + '
                 f'{cfg["repeats"]} timed rounds, interleaved; medians')
    for note in result.get('notes', []):
        lines.append(f'- {note}')
    lines.append('')
    if result.get('gemm'):
        lines += ['| GEMM | n | calls | median GMAC/s | best GMAC/s |',
                  '|---|---|---|---|---|']
        for d, g in result['gemm'].items():
            lines.append(f'| {d} | {g["n"]} | {g["calls"]} | '
                         f'{g["median_gmacs"]:.1f} | {g["best_gmacs"]:.1f} |')
        lines.append('')
    cells = table_rows(result)
    headers = [h for h, _ in COLUMNS]
    if not cfg.get('train', True):
        headers = [h for h in headers if not h.startswith('train')]
    for optional in ('bf16 speed-up', 'fwd CPU x ref', 'train CPU x ref'):
        if optional in headers and all(c[optional] == '-' for c in cells):
            headers.remove(optional)
    lines.append('| ' + ' | '.join(headers) + ' |')
    lines.append('|' + '---|' * len(headers))
    for c in cells:
        lines.append('| ' + ' | '.join(c[h] for h in headers) + ' |')
    lines += ['', 'Columns:', '']
    lines += [f'- **{h}**: {meaning}' for h, meaning in COLUMNS
              if h in headers and meaning]
    return '\n'.join(lines) + '\n'


def check_claims(result: Dict[str, Any]) -> List[Tuple[str, Optional[bool],
                                                       str]]:
    """The issue's targets, evaluated on whatever this run measured.

    Returns (claim, passed or None when not measured, evidence)."""
    rows = rows_from_result(result)
    by_key = {(r.size, r.dtype, r.model): r for r in rows}
    batch = result['config']['batch']
    claims = []
    for r in rows:
        if not r.model.startswith('cat_'):
            continue
        ref = by_key.get((r.size, r.dtype, reference_of(r.model)))
        tag = f'{MODEL_LABELS[r.model]} {r.size[0]}x{r.size[1]} {r.dtype}'
        if r.dtype == 'fp32' and ref is not None:
            ratio = paired_ratio(r.times.get('fwd'), ref.times.get('fwd'))
            if ratio is not None:
                cpu = _cpu_ratio(r, ref, 'fwd')
                extra = '' if cpu is None else f' (CPU time {cpu:.2f}x)'
                claims.append((f'{tag}: forward <= 0.6x reference',
                               ratio <= 0.6, f'{ratio:.2f}x{extra}'))
            if r.max_abs_diff is not None:
                claims.append((f'{tag}: outputs within 1e-4 of reference',
                               r.max_abs_diff <= 1e-4,
                               f'max abs diff {r.max_abs_diff:.1e}'))
            mem = _ratio(r.peak_bytes('train'), ref.peak_bytes('train'))
            if mem is not None:
                claims.append((f'{tag} batch {batch}: training peak memory '
                               f'<= 0.5x reference', mem <= 0.5,
                               f'{mem:.2f}x'))
        if r.dtype == 'bf16':
            fp32 = by_key.get((r.size, 'fp32', r.model))
            speed = paired_ratio(fp32.times.get('fwd') if fp32 else None,
                                 r.times.get('fwd'))
            if speed is not None:
                claims.append((f'{tag}: autocast forward >= 1.8x faster '
                               f'than fp32', speed >= 1.8, f'{speed:.2f}x'))
    return claims


def format_claims(claims: Iterable[Tuple[str, Optional[bool], str]]) -> str:
    lines = ['| target | result | measured |', '|---|---|---|']
    for claim, ok, evidence in claims:
        mark = '-' if ok is None else ('pass' if ok else 'FAIL')
        lines.append(f'| {claim} | {mark} | {evidence} |')
    return '\n'.join(lines) + '\n'
