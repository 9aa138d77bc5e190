"""Print the cost of every convolution kind of the guide for one layer shape.

For an input (N, C, H, W) and an nn.Conv2d-style layer (out channels, kernel,
stride, padding), each kind is built through ``mmcv.cnn.build_conv_layer``
with its registered ``conv_cfg`` type and reported with its output shape,
parameters, multiplications (multiply-adds, bias not counted),
multiplications relative to the standard (ungrouped, undilated) convolution
and the median time of one forward pass on this machine.

Examples:
    # the guide's 7x7x3 -> 5x5x128 example (3x3 kernels)
    python tools/analysis_tools/conv_table.py --input 1 3 7 7 \\
        --out-channels 128 --kernel-size 3

    # a ResNet-like layer, grouped kinds with 8 groups, no timing
    python tools/analysis_tools/conv_table.py --input 1 64 56 56 \\
        --out-channels 128 --kernel-size 3 --padding 1 --groups 8 --no-time
"""
import argparse
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import build_conv_layer
from torch.utils.benchmark import Timer

from mmcat.models.layers.conv_cost import ConvCost, conv_cost
from mmcat.models.layers.convs import CONV_KINDS

# What each kind changes in the given layer so that it can be built.
NOTES = {
    '3d': 'input as a (N, 1, C, H, W) volume, k x k x k kernel',
    'pointwise': '1x1, padding 0',
    'transposed': 'up-samples (scatter form)',
    'pointwise_grouped': '1x1, padding 0',
    'slice': 'stride = kernel_size, padding 0',
}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        epilog=__doc__[__doc__.index('Examples:'):],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        '--input',
        type=int,
        nargs=4,
        metavar=('N', 'C', 'H', 'W'),
        default=[1, 3, 7, 7],
        help='input shape (default: the guide\'s 1 3 7 7)')
    parser.add_argument(
        '--out-channels',
        type=int,
        default=128,
        help='output channels (default: 128)')
    parser.add_argument(
        '--kernel-size', type=int, default=3, help='kernel size k (default 3)')
    parser.add_argument('--stride', type=int, default=1, help='default 1')
    parser.add_argument('--padding', type=int, default=0, help='default 0')
    parser.add_argument(
        '--dilation',
        type=int,
        default=2,
        help='dilation rate of the dilated kind; the others use 1 '
        '(default 2)')
    parser.add_argument(
        '--groups',
        type=int,
        default=None,
        help='groups of the grouped kinds (grouped, shuffled_grouped, '
        'pointwise_grouped); the others use 1 (default: the largest number '
        '<= 4 that divides both channel counts)')
    parser.add_argument(
        '--bias', action='store_true', help='give the layers a bias')
    parser.add_argument(
        '--kinds',
        nargs='+',
        choices=list(CONV_KINDS),
        default=list(CONV_KINDS),
        metavar='KIND',
        help='kinds to show, among: ' + ', '.join(CONV_KINDS))
    parser.add_argument(
        '--no-time', action='store_true', help='skip the timing column')
    parser.add_argument(
        '--min-run-time',
        type=float,
        default=0.2,
        help='seconds of timing per kind (default 0.2)')
    parser.add_argument(
        '--threads',
        type=int,
        default=1,
        help=f'torch threads while timing (default 1, steadiest on a busy '
        f'machine; this one has {torch.get_num_threads()})')
    parser.add_argument(
        '--markdown', action='store_true', help='print a Markdown table')
    return parser.parse_args(argv)


GROUPED = ('grouped', 'shuffled_grouped', 'pointwise_grouped')


def groups_of(args: argparse.Namespace) -> int:
    """``--groups``, or the largest number <= 4 dividing both channels."""
    if args.groups is not None:
        return args.groups
    c, out = args.input[1], args.out_channels
    return max(g for g in range(1, 5) if c % g == 0 and out % g == 0)


def build_kind(kind: str, args: argparse.Namespace
               ) -> Tuple[nn.Module, Tuple[int, ...], str]:
    """Build ``kind`` for the layer in ``args``.

    Returns:
        The module, its input shape and a note on what was adapted.

    Raises:
        ValueError: if the kind cannot take these arguments.
    """
    n, c, h, w = args.input
    note = NOTES.get(kind, '')
    kw: Dict = dict(
        kernel_size=args.kernel_size,
        stride=args.stride,
        padding=args.padding,
        dilation=1,
        groups=1,
        bias=args.bias)
    if kind == 'dilated':
        kw['dilation'] = args.dilation
    if kind in GROUPED:
        kw['groups'] = groups_of(args)
    if kind in ('pointwise', 'pointwise_grouped'):
        kw.update(kernel_size=1, padding=0, dilation=1)
    if kind == 'slice':
        kw.update(stride=args.kernel_size, padding=0)
    shape: Tuple[int, ...] = (n, c, h, w)
    in_channels = c
    if kind == '3d':
        in_channels, shape = 1, (n, 1, c, h, w)
    module = build_conv_layer(
        dict(type=CONV_KINDS[kind]), in_channels, args.out_channels, **kw)
    return module.eval(), shape, note


def median_time(module: nn.Module, shape: Tuple[int, ...],
                min_run_time: float, threads: int) -> float:
    """Median seconds of one forward pass (no autograd)."""
    x = torch.randn(shape)
    timer = Timer(
        stmt='module(x)',
        globals=dict(module=module, x=x),
        num_threads=threads)
    with torch.no_grad():
        module(x)  # warm-up
        return timer.blocked_autorange(min_run_time=min_run_time).median


def _seconds(t: float) -> str:
    for unit, scale in (('s', 1), ('ms', 1e-3), ('us', 1e-6)):
        if t >= scale:
            return f'{t / scale:.3g} {unit}'
    return f'{t * 1e9:.3g} ns'


def make_rows(args: argparse.Namespace) -> List[List[str]]:
    """One row of strings per kind, standard convolution first."""
    rows = []
    standard: Optional[ConvCost] = None
    kinds = ['standard'] + [k for k in args.kinds if k != 'standard']
    for kind in kinds:
        try:
            module, shape, note = build_kind(kind, args)
            cost = conv_cost(module, shape)
        except (ValueError, TypeError) as err:
            rows.append([kind, CONV_KINDS[kind], '-', '-', '-', '-', '-',
                         f'n/a: {err}'])
            continue
        if kind == 'standard':
            standard = cost
            if 'standard' not in args.kinds:
                continue
        ratio = (f'{cost.mults / standard.mults:.3f}'
                 if standard is not None and standard.mults else '-')
        time = '-' if args.no_time else _seconds(
            median_time(module, shape, args.min_run_time, args.threads))
        rows.append([
            kind, CONV_KINDS[kind], 'x'.join(map(str, cost.output_shape)),
            f'{cost.params:,}', f'{cost.mults:,}', ratio, time, note
        ])
    return rows


HEADER = ['kind', 'conv_cfg type', 'output', 'params', 'mults',
          'mults / std', 'median time', 'note']
NUMERIC = {'params', 'mults', 'mults / std', 'median time'}


def format_table(rows: List[List[str]], markdown: bool = False) -> str:
    """Align ``rows`` under :data:`HEADER` (numbers right-aligned)."""
    widths = [max(len(r[i]) for r in [HEADER] + rows)
              for i in range(len(HEADER))]

    def line(cells: List[str]) -> str:
        padded = [
            cell.rjust(w) if head in NUMERIC else cell.ljust(w)
            for cell, w, head in zip(cells, widths, HEADER)
        ]
        if markdown:
            return '| ' + ' | '.join(padded) + ' |'
        return '  '.join(padded).rstrip()

    if markdown:
        rule = '|' + '|'.join(('-' * (w + 1) + ':') if h in NUMERIC else
                              ('-' * (w + 2))
                              for w, h in zip(widths, HEADER)) + '|'
    else:
        rule = '  '.join('-' * w for w in widths)
    return '\n'.join([line(HEADER), rule] + [line(r) for r in rows])


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    n, c, h, w = args.input
    print(f'input {n}x{c}x{h}x{w} -> {args.out_channels} channels, kernel '
          f'{args.kernel_size}, stride {args.stride}, padding {args.padding}, '
          f'bias {args.bias}; dilated kind: dilation {args.dilation}; grouped '
          f'kinds: groups {groups_of(args)}. mults = multiply-adds for the '
          f'batch, bias not counted' +
          ('' if args.no_time else
           f'; time = median forward, {args.threads} thread(s)'))
    print(format_table(make_rows(args), args.markdown))


if __name__ == '__main__':
    main()
