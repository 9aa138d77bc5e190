"""Peak memory of one forward or training step.

On CPU each model runs in a fresh worker process: before each measured step
the worker runs a warm-up step, frees what Python and glibc hold, resets the
kernel's peak-RSS mark and reads ``VmHWM - VmRSS-before`` after the step,
whatever allocated the memory (torch, oneDNN, MKL). A watchdog in the parent
kills a worker whose RSS passes the limit. On CUDA: the growth of
``torch.cuda.max_memory_allocated``.
"""
import gc
import json
import os
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from .procmem import (peak_rss_bytes, release_free_memory, reset_peak_rss,
                      rss_bytes)
from .work import make_step
from .zoo import Size, build_backbone, make_input

Measurement = Tuple[str, str]  # (dtype, mode)

_WORKER_TAG = 'MMCAT_MEM '
_WORKER_CODE = ('from mmcat.analysis.backbone_bench.memory import '
                'memory_worker_main; memory_worker_main()')


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


def _package_root() -> str:
    import mmcat
    return os.path.dirname(os.path.dirname(os.path.abspath(mmcat.__file__)))


def _worker_env(threads: int) -> Dict[str, str]:
    """This process's environment with the worker's thread counts and this
    mmcat first on ``PYTHONPATH``."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    env['PYTHONPATH'] = os.pathsep.join(
        [_package_root()] + [p for p in env.get('PYTHONPATH', '').split(
            os.pathsep) if p])
    return env


def _start_watchdog(proc: subprocess.Popen, limit_bytes: Optional[int],
                    timeout_s: Optional[float]
                    ) -> Tuple[threading.Thread, Dict[str, Optional[str]]]:
    """A thread killing ``proc`` once its RSS passes ``limit_bytes`` or it
    runs past ``timeout_s``; the dict's ``why`` then says which."""
    killed: Dict[str, Optional[str]] = {'why': None}

    def watch() -> None:
        t0 = time.monotonic()
        while proc.poll() is None:
            rss = rss_bytes(str(proc.pid)) or 0
            if limit_bytes is not None and rss > limit_bytes:
                killed['why'] = 'over_limit'
                proc.kill()
                return
            if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                killed['why'] = 'timeout'
                proc.kill()
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher, killed


def _collect(proc: subprocess.Popen, pending: List[Measurement],
             results: Dict[Measurement, Dict[str, Any]]
             ) -> Optional[Measurement]:
    """Read the worker's results as they come; returns the measurement it
    had started and not finished (None when none)."""
    current: Optional[Measurement] = None
    for line in proc.stdout:
        if not line.startswith(_WORKER_TAG):
            continue
        msg = json.loads(line[len(_WORKER_TAG):])
        key = (msg['dtype'], msg['mode'])
        if msg.get('started'):
            current = key
            continue
        results[key] = dict(peak_bytes=msg['peak_bytes'],
                            base_bytes=msg['base_bytes'], exact=msg['exact'],
                            over_limit=False, error=None)
        pending.remove(key)
        current = None
    return current


def _failure(why: Optional[str], limit_bytes: Optional[int],
             timeout_s: Optional[float], returncode: int,
             stderr: str) -> Dict[str, Any]:
    """The result of a measurement whose worker was killed or died."""
    if why == 'over_limit':
        error = (f'RSS passed the limit of {limit_bytes / 2**30:.1f} '
                 f'GiB: killed')
    elif why == 'timeout':
        error = f'no result within {timeout_s:.0f} s: killed'
    else:
        tail = stderr.strip().splitlines()[-3:]
        error = f'worker exited with {returncode}: ' + ' | '.join(tail)
    return dict(peak_bytes=None, base_bytes=None, exact=False,
                over_limit=why == 'over_limit', error=error)


def measure_memory(model: str, size: Size, batch: int,
                   measurements: Sequence[Measurement],
                   threads: int = 2, seed: int = 0, warmup: int = 1,
                   limit_bytes: Optional[int] = None,
                   timeout_s: Optional[float] = None
                   ) -> Dict[Measurement, Dict[str, Any]]:
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
    results: Dict[Measurement, Dict[str, Any]] = {}
    env = _worker_env(threads)
    while pending:
        job = dict(model=model, size=list(size), batch=batch, seed=seed,
                   threads=threads, warmup=warmup,
                   measurements=[list(m) for m in pending])
        proc = subprocess.Popen(
            [sys.executable, '-c', _WORKER_CODE, json.dumps(job)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env)
        watcher, killed = _start_watchdog(proc, limit_bytes, timeout_s)
        stderr_chunks: List[str] = []
        err_reader = threading.Thread(
            target=lambda: stderr_chunks.append(proc.stderr.read()),
            daemon=True)
        err_reader.start()
        current = _collect(proc, pending, results)
        proc.wait()
        watcher.join()
        err_reader.join()
        if not pending:
            break
        failed = current if current is not None else pending[0]
        results[failed] = _failure(killed['why'], limit_bytes, timeout_s,
                                   proc.returncode, ''.join(stderr_chunks))
        pending.remove(failed)
    return results
