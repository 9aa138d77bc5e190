"""Compare training runs: loss curves and final metrics of mmengine work dirs.

mmengine writes, per launch, ``<work_dir>/<timestamp>/vis_data/scalars.json``
(JSON lines: one line per logged training iteration with ``loss*``, ``lr``,
``iter``, ``step``; one line per validation with the metrics, e.g.
``coco/bbox_mAP`` or ``mIoU``, ``data_time``, ``time`` and ``step``) and, at
test time, ``<work_dir>/<timestamp>/<timestamp>.json`` (one JSON object with
the test metrics). :func:`parse_run` reads either, :func:`compare_runs` puts
several runs side by side (table, JSON, Markdown, PNG plot).

    >>> from mmcat.analysis import compare_runs
    >>> result = compare_runs(['work_dirs/fcos_cat', 'work_dirs/fcos_r50'],
    ...                       ['CAT', 'ResNet'], 'work_dirs/compare')
    >>> print(result['text'])
"""
import glob
import json
import math
import os
import os.path as osp
import re
from dataclasses import asdict, dataclass, field
from numbers import Real
from typing import Dict, List, Optional, Sequence, Tuple

#: Keys of a scalars line that are bookkeeping, not metrics.
NON_METRIC_KEYS = frozenset(
    {'step', 'iter', 'epoch', 'time', 'data_time', 'memory', 'lr', 'eta',
     'base_lr', 'momentum'})
_TIMESTAMP = re.compile(r'^\d{8}_\d{6}$')


@dataclass
class RunSummary:
    """What one run logged.

    Attributes:
        name: label of the run.
        path: the work dir (or file) it was read from.
        curves: training scalar -> ``{'iter': [...], 'value': [...]}`` for
            every ``loss*`` key (and ``lr``), sorted by iteration.
        evaluations: every evaluation in order, each ``{'source': 'val' or
            'test', 'iter': last training iteration before it (or None),
            'metrics': {name: value}}``.
        metrics: metrics of the last evaluation.
        files: the files read.
    """
    name: str
    path: str
    curves: Dict[str, Dict[str, List[float]]] = field(default_factory=dict)
    evaluations: List[dict] = field(default_factory=list)
    metrics: Dict[str, float] = field(default_factory=dict)
    files: List[str] = field(default_factory=list)


# ------------------------------------------------------------------ parsing


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and \
        math.isfinite(float(value))


def _metrics_of(entry: dict) -> Dict[str, float]:
    return {k: float(v) for k, v in entry.items()
            if k not in NON_METRIC_KEYS and _is_number(v)}


def _is_train_entry(entry: dict) -> bool:
    return 'lr' in entry or any(k.startswith('loss') for k in entry)


def read_scalars(path: str) -> List[dict]:
    """The entries of a JSON-lines ``scalars.json`` (blank or broken lines,
    e.g. the last one of a run still writing, are skipped)."""
    entries = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
    return entries


def _find_logs(path: str) -> List[Tuple[str, str]]:
    """(kind, file) of the logs of a work dir, oldest launch first.

    kind is 'scalars' (JSON lines) or 'test' (a ``<ts>/<ts>.json`` of
    metrics, written after the scalars of the same launch)."""
    found = set()
    for pattern in ('*/vis_data/scalars.json', 'vis_data/scalars.json',
                    'scalars.json'):
        for file in glob.glob(osp.join(path, pattern)):
            launch = osp.dirname(file)
            if osp.basename(launch) == 'vis_data':
                launch = osp.dirname(launch)
            found.add((osp.abspath(launch), 0, 'scalars', file))
    for sub in [path] + sorted(glob.glob(osp.join(path, '*'))):
        stamp = osp.basename(osp.abspath(sub))
        file = osp.join(sub, f'{stamp}.json')
        if _TIMESTAMP.match(stamp) and osp.isfile(file):
            found.add((osp.abspath(sub), 1, 'test', file))
    if not found:
        # vis_data/<ts>.json is the same JSON-lines log as scalars.json
        for file in glob.glob(osp.join(path, '*', 'vis_data', '*.json')):
            found.add((osp.abspath(osp.dirname(osp.dirname(file))), 0,
                       'scalars', file))
    return [(kind, file) for _, _, kind, file in sorted(found)]


def _read_test_json(path: str) -> Dict[str, float]:
    with open(path) as f:
        text = f.read().strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        # a JSON-lines file after all: take its last entry
        data = json.loads(text.splitlines()[-1])
    if not isinstance(data, dict):
        raise ValueError(f'{path}: expected a JSON object of metrics')
    return _metrics_of(data)


def parse_run(path: str, name: Optional[str] = None) -> RunSummary:
    """Read a work dir (or a ``scalars.json``, or a test-metrics JSON).

    Launches are read in timestamp order; a resumed run's curves are merged
    (a later launch overrides the iterations it logged again). The final
    metrics are those of the last evaluation, validation or test.

    Raises:
        FileNotFoundError: no mmengine log found under ``path``.
        ValueError: a file that is not such a log (e.g. a ``--out`` pickle).
    """
    name = name or osp.basename(osp.normpath(path))
    run = RunSummary(name=name, path=path)
    if osp.isdir(path):
        logs = _find_logs(path)
    elif osp.isfile(path):
        if path.endswith(('.pkl', '.pickle')):
            raise ValueError(
                f'{path}: a --out pickle holds raw predictions, not metrics. '
                f'Pass the work dir instead: tools/test.py writes the '
                f'metrics to <work_dir>/<timestamp>/<timestamp>.json')
        kind = 'scalars' if osp.basename(path) == 'scalars.json' else None
        if kind is None:
            with open(path) as f:
                lines = [ln for ln in f.read().splitlines() if ln.strip()]
            kind = 'scalars' if len(lines) > 1 else 'test'
        logs = [(kind, path)]
    else:
        raise FileNotFoundError(f'{path}: no such work dir or file')
    if not logs:
        raise FileNotFoundError(
            f'{path}: no mmengine logs found (expected '
            f'<timestamp>/vis_data/scalars.json or <timestamp>/<timestamp>'
            f'.json under it)')

    points: Dict[str, Dict[float, float]] = {}
    last_iter: Optional[float] = None
    for kind, file in logs:
        run.files.append(file)
        if kind == 'test':
            metrics = _read_test_json(file)
            if metrics:
                run.evaluations.append(dict(source='test', iter=last_iter,
                                            metrics=metrics))
            continue
        for entry in read_scalars(file):
            if _is_train_entry(entry):
                it = entry.get('iter', entry.get('step'))
                if not _is_number(it):
                    continue
                last_iter = float(it)
                for key, value in entry.items():
                    if (key.startswith('loss') or key == 'lr') and \
                            _is_number(value):
                        points.setdefault(key, {})[last_iter] = float(value)
            else:
                metrics = _metrics_of(entry)
                if metrics:
                    run.evaluations.append(dict(
                        source='val', iter=last_iter, step=entry.get('step'),
                        metrics=metrics))
    for key, by_iter in points.items():
        iters = sorted(by_iter)
        run.curves[key] = dict(iter=iters, value=[by_iter[i] for i in iters])
    if run.evaluations:
        run.metrics = dict(run.evaluations[-1]['metrics'])
    return run


# ---------------------------------------------------------------- tables


def compare_metrics(runs: Sequence[RunSummary]) -> List[dict]:
    """One row per metric (union over the runs, the first run's order
    first): each run's value and its difference to the first run.

    Metrics that are -1 in every run (COCO's "no objects of this size")
    are left out.

    Returns:
        rows ``{'metric', 'values': {name: v or None}, 'diff': {name: abs
        difference or None}, 'rel_diff_pct': {name: % or None}}``; the
        differences are left out for the first run.
    """
    order: List[str] = []
    for run in runs:
        order += [m for m in run.metrics if m not in order]
    # COCO reports -1 for an area range with no objects: not a metric.
    order = [m for m in order
             if any(run.metrics.get(m, -1) != -1 for run in runs)]
    base = runs[0]
    rows = []
    for metric in order:
        ref = base.metrics.get(metric)
        row = dict(metric=metric, values={}, diff={}, rel_diff_pct={})
        for run in runs:
            value = run.metrics.get(metric)
            row['values'][run.name] = value
            if run is base:
                continue
            diff = None if value is None or ref is None else value - ref
            row['diff'][run.name] = diff
            row['rel_diff_pct'][run.name] = (
                None if diff is None or ref == 0 else 100 * diff / abs(ref))
        rows.append(row)
    return rows


def _num(value: Optional[float], signed: bool = False,
         suffix: str = '') -> str:
    if value is None:
        return '-'
    text = f'{value:+.4f}' if signed else f'{value:.4f}'
    if suffix:
        text = f'{value:+.2f}{suffix}'
    return text


def _table_cells(rows: Sequence[dict], names: Sequence[str]
                 ) -> Tuple[List[str], List[List[str]]]:
    header = ['metric'] + list(names)
    for name in names[1:]:
        header += [f'{name} - {names[0]}', f'{name} vs {names[0]} (%)']
    body = []
    for row in rows:
        cells = [row['metric']] + [_num(row['values'][n]) for n in names]
        for name in names[1:]:
            cells += [_num(row['diff'][name], signed=True),
                      _num(row['rel_diff_pct'][name], suffix='%')]
        body.append(cells)
    return header, body


def format_table(rows: Sequence[dict], names: Sequence[str]) -> str:
    """Plain-text table of :func:`compare_metrics` rows."""
    header, body = _table_cells(rows, names)
    widths = [max(len(r[i]) for r in [header] + body)
              for i in range(len(header))]
    lines = ['  '.join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i])
                       for i, c in enumerate(r)).rstrip()
             for r in [header] + body]
    lines.insert(1, '  '.join('-' * w for w in widths))
    return '\n'.join(lines)


def format_markdown(rows: Sequence[dict], names: Sequence[str]) -> str:
    """Markdown table of :func:`compare_metrics` rows."""
    header, body = _table_cells(rows, names)
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '|'.join(['---'] + ['---:'] * (len(header) - 1)) + '|']
    lines += ['| ' + ' | '.join(r) + ' |' for r in body]
    return '\n'.join(lines)


# ------------------------------------------------------------------ plot


def _loss_key(run: RunSummary) -> Optional[str]:
    if 'loss' in run.curves:
        return 'loss'
    keys = sorted(k for k in run.curves if k.startswith('loss'))
    return keys[0] if keys else None


def plot_runs(runs: Sequence[RunSummary], rows: Sequence[dict],
              path: str) -> str:
    """Write a PNG: loss vs iteration (left) and the final metrics as
    grouped bars (right). Returns ``path``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_bar) = plt.subplots(
        1, 2, figsize=(13, 4.8), gridspec_kw=dict(width_ratios=[1, 1.3]))
    for run in runs:
        key = _loss_key(run)
        if key:
            curve = run.curves[key]
            ax_loss.plot(curve['iter'], curve['value'], label=f'{run.name}'
                         + ('' if key == 'loss' else f' ({key})'),
                         linewidth=1.2)
    ax_loss.set_xlabel('iteration')
    ax_loss.set_ylabel('training loss')
    ax_loss.set_title('loss')
    ax_loss.grid(alpha=.3)
    if ax_loss.get_legend_handles_labels()[0]:
        ax_loss.legend()
    else:
        ax_loss.text(.5, .5, 'no training losses logged', ha='center',
                     transform=ax_loss.transAxes)

    metrics = [r['metric'] for r in rows]
    width = .8 / max(len(runs), 1)
    for k, run in enumerate(runs):
        xs = [i + (k - (len(runs) - 1) / 2) * width
              for i in range(len(metrics))]
        values = [r['values'][run.name] for r in rows]
        bars = ax_bar.bar(xs, [v if v is not None else 0 for v in values],
                          width, label=run.name)
        for bar, value in zip(bars, values):
            if value is not None:
                ax_bar.annotate(f'{value:.3g}', (bar.get_x() +
                                                 bar.get_width() / 2,
                                                 bar.get_height()),
                                ha='center', va='bottom', fontsize=7)
    ax_bar.set_xticks(range(len(metrics)))
    ax_bar.set_xticklabels(metrics, rotation=30, ha='right', fontsize=8)
    ax_bar.set_title('final metrics (last evaluation)')
    ax_bar.grid(axis='y', alpha=.3)
    if metrics:
        ax_bar.legend()
    else:
        ax_bar.text(.5, .5, 'no metrics logged', ha='center',
                    transform=ax_bar.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ------------------------------------------------------------------- API


def compare_runs(work_dirs: Sequence[str],
                 names: Optional[Sequence[str]] = None,
                 out_dir: Optional[str] = None,
                 prefix: str = 'comparison') -> dict:
    """Compare runs: parse, tabulate against the first one, and (when
    ``out_dir`` is given) write ``<prefix>.png``, ``.json`` and ``.md``.

    Args:
        work_dirs: mmengine work dirs (or their ``scalars.json`` / test
            metrics JSON files); the first is the reference.
        names: labels, one per run (default: the dir names).
        out_dir: where the files go; nothing is written when ``None``.
        prefix: file name stem.

    Returns:
        dict with ``names``, ``runs`` (name -> :class:`RunSummary` as a
        dict), ``rows`` (see :func:`compare_metrics`), ``text`` and
        ``markdown`` (the table) and ``files`` (kind -> path).
    """
    if not work_dirs:
        raise ValueError('compare_runs needs at least one run')
    if names is None:
        names = [osp.basename(osp.normpath(p)) for p in work_dirs]
    names = list(names)
    if len(names) != len(work_dirs):
        raise ValueError(f'{len(work_dirs)} runs but {len(names)} names')
    if len(set(names)) != len(names):
        raise ValueError(f'run names must be distinct, got {names}')
    runs = [parse_run(p, n) for p, n in zip(work_dirs, names)]
    rows = compare_metrics(runs)
    result = dict(names=names, runs={r.name: asdict(r) for r in runs},
                  rows=rows, text=format_table(rows, names),
                  markdown=format_markdown(rows, names), files={})
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        stem = osp.join(out_dir, prefix)
        result['files'] = dict(png=stem + '.png', json=stem + '.json',
                               md=stem + '.md')
        plot_runs(runs, rows, result['files']['png'])
        with open(result['files']['md'], 'w') as f:
            f.write(f'# Comparison: {", ".join(names)}\n\n'
                    f'Metrics of the last evaluation of each run; '
                    f'differences to {names[0]}.\n\n'
                    f'{result["markdown"]}\n')
        with open(result['files']['json'], 'w') as f:
            json.dump(dict(
                names=names, reference=names[0], rows=rows,
                runs={r.name: dict(path=r.path, metrics=r.metrics,
                                   evaluations=r.evaluations,
                                   files=r.files) for r in runs}),
                f, indent=2)
    return result
