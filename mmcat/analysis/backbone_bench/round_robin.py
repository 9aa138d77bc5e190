"""Latency of several callables timed in interleaved rounds, so that the
noise of a shared machine hits all of them alike."""
import time
from typing import Callable, Dict, List, Optional

import torch

from mmcat.analysis.timing import Timing, synchronize


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
