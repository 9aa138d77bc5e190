"""A benchmark run as a Markdown table: machine, settings, GEMM rates, one
row per (size, dtype, model) and the meaning of every column."""
import math
from typing import Any, Dict, List, Optional

from .results import cpu_ratio, paired_ratio, ratio, rows_from_result
from .work import MODES
from .zoo import MODEL_LABELS, reference_of

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
    ('autocast speed-up', 'fp32 forward latency over this dtype\'s (bf16, '
     'fp16; median of per-round ratios)'),
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
#: Columns left out when no row has a value in them.
_OPTIONAL = ('autocast speed-up', 'fwd CPU x ref', 'train CPU x ref')


def _fmt(value: Optional[float], spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '-'
    return format(value, spec)


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
            cells[f'{mode} CPU x ref'] = _fmt(cpu_ratio(r, ref_row, mode),
                                              '.2f')
            macs = r.mode_macs(mode)
            rate = None if (macs is None or t is None) else macs / t / 1e9
            cells[f'{mode} GMAC/s'] = _fmt(rate, '.1f')
            cells[f'{mode} % GEMM'] = _fmt(
                None if rate is None or not g else 100 * rate / g, '.1f')
            cells[f'{mode} mem MB'] = _memory_cell(r.peak_bytes(mode),
                                                   r.memory.get(mode, {}))
        cells['autocast speed-up'] = (_fmt(paired_ratio(
            fp32_row.times.get('fwd') if fp32_row else None,
            r.times.get('fwd')), '.2f') if r.dtype != 'fp32' else '-')
        cells['train mem x ref'] = _fmt(ratio(
            r.peak_bytes('train'),
            ref_row.peak_bytes('train') if ref_row else None), '.2f')
        cells['max abs diff vs ref'] = _fmt(r.max_abs_diff, '.1e')
        out.append(cells)
    return out


def _memory_cell(peak: Optional[int], mem: Dict[str, Any]) -> str:
    """MB, 'over limit', or '>=MB' for a lower bound."""
    text = _fmt(None if peak is None else peak / 2**20, '.0f')
    if mem.get('over_limit'):
        return 'over limit'
    if peak is not None and not mem.get('exact', True):
        return '>=' + text
    return text


def _header_lines(result: Dict[str, Any], command: Optional[str]
                  ) -> List[str]:
    """Title, command, machine and settings."""
    cfg, mach = result['config'], result['machine']
    lines = ['# Backbone benchmark', '']
    if command:
        lines += ['```', command, '```', '']
    where = mach.get('gpu') or mach.get('cpu')
    cuda = f' (CUDA {mach["cuda"]})' if mach.get('cuda') else ''
    lines.append(f'- machine: {where}{cuda}; {mach.get("logical_cpus")} '
                 f'logical CPUs; torch threads {mach.get("threads")}; torch '
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
    return lines


def _gemm_lines(gemm: Dict[str, Dict[str, Any]]) -> List[str]:
    """The GEMM rates of the run, a table (none when not measured)."""
    if not gemm:
        return []
    lines = ['| GEMM | n | calls | median GMAC/s | best GMAC/s |',
             '|---|---|---|---|---|']
    for d, g in gemm.items():
        lines.append(f'| {d} | {g["n"]} | {g["calls"]} | '
                     f'{g["median_gmacs"]:.1f} | {g["best_gmacs"]:.1f} |')
    lines.append('')
    return lines


def to_markdown(result: Dict[str, Any], command: Optional[str] = None
                ) -> str:
    """The run as Markdown: machine, settings, GEMM rates, the table, and
    the meaning of every column."""
    lines = _header_lines(result, command) + _gemm_lines(
        result.get('gemm'))
    cells = table_rows(result)
    headers = [h for h, _ in COLUMNS]
    if not result['config'].get('train', True):
        headers = [h for h in headers if not h.startswith('train')]
    for optional in _OPTIONAL:
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
