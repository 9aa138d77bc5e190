"""Compare runs: final metrics side by side (differences to the first run),
loss curves and a bar chart of the metrics.

    python tools/analysis_tools/compare_results.py \
        work_dirs/fcos_cat_s_1x_coco work_dirs/fcos_r50_1x_coco \
        --names CAT ResNet --out-dir work_dirs/compare

Each RUN is an mmengine work dir (its ``<timestamp>/vis_data/scalars.json``
and, after tools/test.py, ``<timestamp>/<timestamp>.json`` are read), a
``scalars.json`` or a test-metrics JSON. The metrics of a run are those of its
last evaluation (validation or test). Writes ``comparison.png``, ``.json``
and ``.md`` to ``--out-dir``.
"""
import argparse
import sys

from mmcat.analysis import compare_runs


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('runs', nargs='+', metavar='RUN',
                        help='work dirs (or their log files); the first is '
                        'the reference')
    parser.add_argument('--names', nargs='+', default=None,
                        help='one label per run (default: the dir names)')
    parser.add_argument('--out-dir', default=None,
                        help='where to write comparison.{png,json,md} '
                        '(default: print only)')
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    try:
        result = compare_runs(args.runs, args.names, args.out_dir)
    except (FileNotFoundError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    for name in result['names']:
        run = result['runs'][name]
        evals = run['evaluations']
        last = evals[-1] if evals else None
        where = (f'last evaluation: {last["source"]} after iteration '
                 f'{last["iter"]:g}' if last and last['iter'] is not None
                 else 'last evaluation: ' + (last['source'] if last
                                             else 'none'))
        print(f'{name}: {run["path"]} ({len(evals)} evaluations; {where})')
    print()
    if result['rows']:
        print(result['text'])
    else:
        print('no metrics found in these runs')
    for kind, path in result['files'].items():
        print(f'written {kind}: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
