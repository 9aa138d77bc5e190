"""Timing helpers shared by the speed tools (whole models, backbones).

:func:`time_fn` runs a callable ``warmup + num_iters`` times, synchronising
the GPU around every timed call, and returns a :class:`Timing` (median,
percentiles, FPS). :func:`device_summary` says where it ran (device, torch
threads), which a CPU number is meaningless without.
"""
import math
import os
import platform
import statistics
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import (Any, Callable, ContextManager, Dict, List, Optional,
                    Sequence)

import torch


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation (numpy's
    default method)."""
    if not values:
        raise ValueError('percentile of an empty sequence')
    if not 0 <= q <= 100:
        raise ValueError(f'q must be in [0, 100], got {q}')
    data = sorted(values)
    pos = (len(data) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


@dataclass
class Timing:
    """Per-call wall times (seconds) of a benchmark.

    Attributes:
        times: the timed calls, in order.
        batch: images per call (for FPS).
    """
    times: List[float] = field(default_factory=list)
    batch: int = 1

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.times)

    @property
    def stdev(self) -> float:
        return statistics.stdev(self.times) if len(self.times) > 1 else 0.

    def pct(self, q: float) -> float:
        """``q``-th percentile of the call times."""
        return percentile(self.times, q)

    @property
    def fps(self) -> float:
        """Images per second at the median call time."""
        return self.batch / self.median

    def summary(self) -> Dict[str, float]:
        """Median / mean / p90 / p99 / min / max latency in ms, and FPS."""
        return dict(
            iters=len(self.times), batch=self.batch,
            median_ms=1e3 * self.median, mean_ms=1e3 * self.mean,
            stdev_ms=1e3 * self.stdev, p90_ms=1e3 * self.pct(90),
            p99_ms=1e3 * self.pct(99), min_ms=1e3 * min(self.times),
            max_ms=1e3 * max(self.times), fps=self.fps)

    def format(self) -> str:
        """One line: FPS, median latency and spread."""
        s = self.summary()
        return (f'{s["fps"]:.3g} img/s (batch {self.batch}); latency per '
                f'call: median {s["median_ms"]:.1f} ms, mean '
                f'{s["mean_ms"]:.1f} ms, p90 {s["p90_ms"]:.1f} ms, p99 '
                f'{s["p99_ms"]:.1f} ms, min {s["min_ms"]:.1f} ms over '
                f'{s["iters"]} calls')


def synchronize(device: Optional[torch.device] = None) -> None:
    """Wait for the GPU's queued work (no-op on CPU)."""
    if device is not None and torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)
    elif device is None and torch.cuda.is_available() and \
            torch.cuda.is_initialized():
        torch.cuda.synchronize()


def time_fn(fn: Callable[[], Any],
            num_iters: int = 50,
            warmup: int = 5,
            batch: int = 1,
            device: Optional[torch.device] = None,
            max_seconds: Optional[float] = None) -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls, then ``num_iters`` timed ones.

    Args:
        fn: the work of one call (e.g. one forward pass); its result is
            dropped.
        num_iters: timed calls.
        warmup: untimed calls first (allocator, kernel selection, caches).
        batch: images per call, for :attr:`Timing.fps`.
        device: the GPU to synchronise before and after each timed call.
        max_seconds: stop the timed loop early (after at least one call)
            once this much time has been spent in it.
    """
    if num_iters < 1:
        raise ValueError(f'num_iters must be >= 1, got {num_iters}')
    for _ in range(max(warmup, 0)):
        fn()
    synchronize(device)
    timing = Timing(batch=batch)
    spent = 0.
    for _ in range(num_iters):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        timing.times.append(time.perf_counter() - start)
        spent += timing.times[-1]
        if max_seconds is not None and spent >= max_seconds:
            break
    return timing


def autocast_context(device: torch.device, enabled: bool) -> ContextManager:
    """Mixed precision for inference: float16 on CUDA, bfloat16 on CPU."""
    if not enabled:
        return nullcontext()
    device = torch.device(device)
    dtype = torch.float16 if device.type == 'cuda' else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


def cpu_name() -> str:
    """The CPU model (from /proc/cpuinfo on Linux)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_summary(device: Optional[torch.device] = None) -> str:
    """Where timings come from: CPU model and torch threads, or the GPU."""
    device = torch.device(device or ('cuda' if torch.cuda.is_available()
                                     else 'cpu'))
    threads = (f'torch threads {torch.get_num_threads()} (interop '
               f'{torch.get_num_interop_threads()}), {os.cpu_count()} '
               f'logical CPUs')
    if device.type == 'cuda':
        name = torch.cuda.get_device_name(device)
        return f'GPU {name} (CUDA {torch.version.cuda}), torch ' \
               f'{torch.__version__}; {threads}'
    return f'CPU {cpu_name()}, torch {torch.__version__}; {threads}'

