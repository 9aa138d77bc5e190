"""One benchmark run: every model at every input size, measured in this order
per size: peak memory (fresh worker processes, which also guard the
in-process steps after it), multiply-adds, agreement with the reference,
then latency in interleaved rounds."""
import statistics
import sys
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, List, Sequence, Tuple

import torch
import torch.nn as nn

from mmcat.analysis.flops import analyze_flops, count_parameters
from .machine import bf16_supported, machine_summary
from .memory import measure_cuda_memory, measure_memory
from .procmem import available_memory_bytes
from .results import Row
from .round_robin import time_round_robin
from .work import DTYPES, as_list, make_gemm, make_step, max_abs_diff
from .zoo import (MODEL_NAMES, Size, build_backbone, canonical_model_name,
                  make_input, reference_of)

Log = Callable[[str], None]


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
class _Session:
    """What every size of a run shares: settings, built models, GEMMs."""
    cfg: BenchConfig
    is_cuda: bool
    models: List[str]
    dtypes: List[str]
    modes: List[str]
    limit: int
    zoo: Dict[str, nn.Module]
    gemm: Dict[str, Tuple[Callable[[], None], int]]
    gemm_times: Dict[str, List[float]]
    log: Log


def _log_to_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _usable_dtypes(dtypes: Sequence[str], device: str,
                   is_cuda: bool) -> Tuple[List[str], List[str]]:
    """The dtypes this device runs natively, and notes on those skipped."""
    notes: List[str] = []
    usable = []
    for d in dtypes:
        if d not in DTYPES:
            raise ValueError(f'unknown dtype {d!r}; choose from '
                             f'{", ".join(DTYPES)}')
        if d == 'bf16' and not bf16_supported(device):
            notes.append('bf16 skipped: no native bfloat16 on this device')
            continue
        if d == 'fp16' and not is_cuda:
            notes.append('fp16 autocast is measured on CUDA only')
            continue
        usable.append(d)
    return usable, notes


def _memory_limit(mem_limit_gb: float) -> int:
    """RSS a memory worker may reach: the limit asked for, at most the
    available memory less 1 GiB."""
    limit = int(mem_limit_gb * 2**30)
    avail = available_memory_bytes()
    if avail is not None:
        limit = min(limit, avail - 2**30)
    return limit


def _measure_memory(s: _Session, size: Size, x: torch.Tensor,
                    rows: Dict[Tuple[str, str], Row]) -> None:
    """Peak memory of every (model, dtype, mode); what fails is skipped."""
    cfg = s.cfg
    for m in s.models:
        s.log(f'{size[0]}x{size[1]} memory: {m}')
        wanted = [(d, mode) for mode in s.modes for d in s.dtypes]
        if s.is_cuda:
            got = {(d, mode): measure_cuda_memory(
                make_step(s.zoo[m], x, mode, d), cfg.device, cfg.mem_warmup)
                for d, mode in wanted}
        else:
            got = measure_memory(m, size, cfg.batch, wanted, cfg.threads,
                                 cfg.seed, cfg.mem_warmup, s.limit)
        for (d, mode), res in got.items():
            rows[(d, m)].memory[mode] = res
            if res.get('error'):
                rows[(d, m)].skipped[mode] = res['error']
                s.log(f'  {m} {d} {mode}: {res["error"]}')


def _count_macs(s: _Session, size: Size, x: torch.Tensor,
                rows: Dict[Tuple[str, str], Row]) -> None:
    """Multiply-adds of the batch: batch 1, traced, fp32, times the batch."""
    for m in s.models:
        if any(rows[(d, m)].skipped.get('fwd') for d in s.dtypes):
            continue
        s.log(f'{size[0]}x{size[1]} multiply-adds: {m}')
        macs = analyze_flops(s.zoo[m], (x[:1], )).total * s.cfg.batch
        for d in s.dtypes:
            rows[(d, m)].macs = int(macs)


def _check_agreement(s: _Session, size: Size, x: torch.Tensor,
                     rows: Dict[Tuple[str, str], Row]) -> None:
    """Largest output difference of every CAT, in each dtype, from its fp32
    reference."""
    ref_out: Dict[str, List[torch.Tensor]] = {}
    for m in s.models:
        ref = reference_of(m)
        if not m.startswith('cat_') or ref not in s.zoo:
            continue
        if rows.get(('fp32', ref)) is not None and \
                rows[('fp32', ref)].skipped.get('fwd'):
            continue
        s.log(f'{size[0]}x{size[1]} agreement: {m} vs {ref}')
        if ref not in ref_out:
            with torch.no_grad():
                ref_out[ref] = [o.float() for o in as_list(
                    s.zoo[ref].eval()(x))]
        for d in s.dtypes:
            with torch.no_grad(), torch.autocast(
                    torch.device(s.cfg.device).type, dtype=DTYPES[d],
                    enabled=d != 'fp32'):
                out = s.zoo[m].eval()(x)
            rows[(d, m)].max_abs_diff = max_abs_diff(out, ref_out[ref])
    del ref_out


def _time(s: _Session, size: Size, x: torch.Tensor,
          rows: Dict[Tuple[str, str], Row]) -> None:
    """Latency of every (model, dtype) and of the GEMMs, per mode, in
    interleaved rounds."""
    cfg = s.cfg
    for mode in s.modes:
        fns: Dict[str, Callable[[], None]] = {}
        for m in s.models:
            for d in s.dtypes:
                if rows[(d, m)].skipped.get(mode):
                    continue
                fns[f'{m}|{d}'] = make_step(s.zoo[m], x, mode, d)
        for d in s.dtypes:
            fns[f'gemm|{d}'] = s.gemm[d][0]
        s.log(f'{size[0]}x{size[1]} {mode} latency: {len(fns)} '
              f'participants, {cfg.warmup} + {cfg.repeats} rounds')
        cpu: Dict[str, List[float]] = {}
        timings = time_round_robin(
            fns, cfg.repeats, cfg.warmup,
            cfg.device if s.is_cuda else None, s.log,
            None if s.is_cuda else cpu)
        for key, timing in timings.items():
            m, d = key.split('|')
            if m == 'gemm':
                s.gemm_times[d].extend(timing.times)
            else:
                rows[(d, m)].times[mode] = timing.times
                if key in cpu:
                    rows[(d, m)].cpu_times[mode] = cpu[key]
        for model in s.zoo.values():
            model.zero_grad(set_to_none=True)
            model.eval()


def _run_size(s: _Session, size: Size) -> List[Row]:
    """Every measurement the config asks for at one input size."""
    cfg = s.cfg
    x = make_input(size, cfg.batch, cfg.seed, cfg.device)
    rows = {(d, m): Row(size=size, dtype=d, model=m,
                        params=count_parameters(s.zoo[m]))
            for d in s.dtypes for m in s.models}
    if cfg.memory:
        _measure_memory(s, size, x, rows)
    if cfg.flops:
        _count_macs(s, size, x, rows)
    if cfg.check:
        _check_agreement(s, size, x, rows)
    if cfg.timing:
        _time(s, size, x, rows)
    return [rows[(d, m)] for d in s.dtypes for m in s.models]


def _gemm_summary(s: _Session) -> Dict[str, Dict[str, Any]]:
    """Calls, median and best time and rate of each dtype's GEMM."""
    summary = {}
    for d in s.dtypes:
        macs = s.gemm[d][1]
        times = s.gemm_times[d]
        if times:
            summary[d] = dict(
                n=s.cfg.gemm_size, calls=len(times),
                median_s=statistics.median(times), best_s=min(times),
                median_gmacs=macs / statistics.median(times) / 1e9,
                best_gmacs=macs / min(times) / 1e9)
    return summary


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def run_benchmark(cfg: BenchConfig,
                  log: Log = _log_to_stderr) -> Dict[str, Any]:
    """Run the benchmark.

    Returns:
        A JSON-able dict: ``config``, ``machine``, ``gemm`` (rates per
        dtype), ``notes`` and ``rows`` (one :class:`Row` per size, dtype and
        model); see :func:`~.report.to_markdown`.
    """
    device = cfg.device
    is_cuda = torch.device(device).type == 'cuda'
    if not is_cuda:
        torch.set_num_threads(cfg.threads)
    models = [canonical_model_name(m) for m in cfg.models]
    dtypes, notes = _usable_dtypes(cfg.dtypes, device, is_cuda)
    modes = ['fwd'] + (['train'] if cfg.train else [])
    limit = _memory_limit(cfg.mem_limit_gb)

    log(f'building {", ".join(models)}')
    zoo = {name: build_backbone(name, cfg.seed).to(device) for name in models}
    session = _Session(
        cfg=cfg, is_cuda=is_cuda, models=models, dtypes=dtypes, modes=modes,
        limit=limit, zoo=zoo,
        gemm={d: make_gemm(cfg.gemm_size, d, device) for d in dtypes},
        gemm_times={d: [] for d in dtypes}, log=log)
    rows: List[Row] = []
    for size in cfg.sizes:
        rows.extend(_run_size(session, tuple(size)))
    machine = machine_summary(device, None if is_cuda else cfg.threads)
    return dict(config=_jsonable(asdict(cfg)), machine=machine,
                gemm=_gemm_summary(session), notes=notes,
                rows=[_jsonable(asdict(r)) for r in rows])
